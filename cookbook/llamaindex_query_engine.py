"""Recipe: a LlamaIndex query engine over local files, embeddings and answers both by forge.

Run: `.tools/bin/uv run python cookbook/llamaindex_query_engine.py` from the repo root. Nothing
leaves the machine: `ForgeEmbedding` embeds in process (the embedded model, or Ollama's
`nomic-embed-text` when pulled) and `ForgeLLM` answers from the retrieved text. The embedded
model is a small chat model, so ask with words the files use; see llamaindex-forge's README.
"""

from pathlib import Path

from llama_index.core import Settings, SimpleDirectoryReader, VectorStoreIndex
from llamaindex_forge import ForgeEmbedding, ForgeLLM

DOCS = Path(__file__).resolve().parents[1] / "tests" / "data"  # four short .txt files
QUESTIONS = [
    "How do plants turn sunlight into food?",
    "Why does lava come out of a mountain?",
    "How do you bake a loaf of bread with a starter?",
    "How do I define a function with def and return a value?",
]

Settings.embed_model = ForgeEmbedding(local_only=True)  # private files: never a cloud call
Settings.llm = ForgeLLM(max_tokens=24, temperature=0, local_only=True)

documents = SimpleDirectoryReader(str(DOCS), required_exts=[".txt"]).load_data()
index = VectorStoreIndex.from_documents(documents)
engine = index.as_query_engine(similarity_top_k=1)

for question in QUESTIONS:
    response = engine.query(question)
    print("question:", question)
    for source in response.source_nodes:
        print("source:", Path(source.node.metadata["file_path"]).name, f"score={source.score:.2f}")
    print("answer:", str(response).strip())
print("embedded by", Settings.embed_model.model_name)
