"""Recipe: RAG with LangChain over local files, embeddings and answers both by forge.

`ForgeEmbeddings` fills an `InMemoryVectorStore` with the files in tests/data, each question
retrieves the closest file, and `ForgeChat` answers from it in an LCEL chain. Nothing leaves
the machine (`local_only=True`): with no Ollama running, the embedded model embeds and answers
in process. It is a small chat model, so ask with words the files use, and judge the
retrieval rather than its prose; a bigger model (Ollama, in forge.yaml) answers better.

Run: `.tools/bin/uv run python cookbook/langchain_rag.py` from the repo root.
"""

from pathlib import Path

from langchain_core.documents import Document
from langchain_core.output_parsers import StrOutputParser
from langchain_core.prompts import ChatPromptTemplate
from langchain_core.vectorstores import InMemoryVectorStore
from langchain_forge import ForgeChat, ForgeEmbeddings

DOCS = Path(__file__).resolve().parents[1] / "tests" / "data"  # four short .txt files
QUESTIONS = [
    "How do plants turn sunlight into food?",
    "Why does lava come out of a mountain?",
    "How do you bake a loaf of bread with a starter?",
    "How do I define a function with def and return a value?",
]

embeddings = ForgeEmbeddings(local_only=True)  # private files: never a cloud call
documents = [
    Document(page_content=path.read_text(), metadata={"source": path.name})
    for path in sorted(DOCS.glob("*.txt"))
]
store = InMemoryVectorStore.from_documents(documents, embeddings)
retriever = store.as_retriever(search_kwargs={"k": 1})

prompt = ChatPromptTemplate.from_messages(
    [
        ("system", "Answer in one sentence, using only this text:\n\n{context}"),
        ("human", "{question}"),
    ]
)
llm = ForgeChat(max_tokens=24, temperature=0, local_only=True)
answer_chain = prompt | llm | StrOutputParser()

for question in QUESTIONS:
    [best] = retriever.invoke(question)
    print("question:", question)
    print("source:", best.metadata["source"])
    answer = answer_chain.invoke({"context": best.page_content, "question": question})
    print("answer:", answer.strip())
print("embedded by", embeddings.served)
