"""Tiny real ONNX causal LMs (graph, tokenizer, config) built with ``onnx`` and ``tokenizers``.

No download: the weights are seeded numpy arrays, kept so tests can compute reference answers.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

VOCAB = [
    "[UNK]",
    "[EOS]",
    "user",
    "assistant",
    "system",
    ":",
    "name",
    "a",
    "colour",
    "red",
    "green",
    "blue",
    "sky",
    "sea",
    "grass",
    "is",
    "the",
    "bright",
]
HIDDEN = 8
EOS_ID = 1


@dataclass(frozen=True)
class TinyOnnxModel:
    """A model directory and the weights its graph computes with.

    The graph is ``logits[t] = cumsum(E[ids])[t] @ W``: every earlier token counts, so a KV
    cache that dropped or repeated a step would change the answer.
    """

    directory: Path
    embedding: np.ndarray
    projection: np.ndarray
    kv_cache: bool

    def reference_logits(self, ids: list[int]) -> np.ndarray:
        """The next-token logits after ``ids``, computed with numpy from the same weights."""
        hidden = self.embedding[ids].astype(np.float64).sum(axis=0)
        return np.asarray(hidden @ self.projection.astype(np.float64))

    def reference_greedy(self, prompt: list[int], max_tokens: int) -> list[int]:
        """Greedy decoding with numpy: argmax each step, stop at EOS or ``max_tokens``."""
        ids = list(prompt)
        out: list[int] = []
        for _ in range(max_tokens):
            token = int(np.argmax(self.reference_logits(ids)))
            if token == EOS_ID:
                break
            ids.append(token)
            out.append(token)
        return out


def _tokenizer_json(directory: Path) -> None:
    from tokenizers import Tokenizer, models, pre_tokenizers

    tokenizer = Tokenizer(
        models.WordLevel({word: i for i, word in enumerate(VOCAB)}, unk_token="[UNK]")
    )
    tokenizer.pre_tokenizer = pre_tokenizers.Whitespace()
    tokenizer.save(str(directory / "tokenizer.json"))


def build_tiny_onnx_model(directory: Path, *, kv_cache: bool, seed: int = 7) -> TinyOnnxModel:
    """Write ``model.onnx``, ``tokenizer.json`` and ``config.json`` for a tiny causal LM."""
    from onnx import TensorProto, checker, helper, numpy_helper, save

    directory.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    embedding = rng.normal(size=(len(VOCAB), HIDDEN)).astype(np.float32)
    # Each token's row pushes away from what was already said, so greedy output moves around
    # the vocabulary instead of repeating one word, and a KV-cache slip would show.
    projection = (-embedding.T + 0.5 * rng.normal(size=(HIDDEN, len(VOCAB)))).astype(np.float32)
    projection[:, EOS_ID] = 0.0
    initializers = [
        numpy_helper.from_array(embedding, "embedding"),
        numpy_helper.from_array(projection, "projection"),
    ]
    inputs = [helper.make_tensor_value_info("input_ids", TensorProto.INT64, ["batch", "seq"])]
    outputs = [
        helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["batch", "seq", len(VOCAB)])
    ]
    nodes = [helper.make_node("Gather", ["embedding", "input_ids"], ["embedded"], axis=0)]
    if kv_cache:
        # Exporters add these; declaring them makes onnxruntime check their names, types and ranks.
        inputs += [
            helper.make_tensor_value_info("attention_mask", TensorProto.INT64, ["batch", "total"]),
            helper.make_tensor_value_info("position_ids", TensorProto.INT64, ["batch", "seq"]),
        ]
        past_shape = ["batch", 1, "past", HIDDEN]
        for kind in ("key", "value"):
            inputs.append(
                helper.make_tensor_value_info(
                    f"past_key_values.0.{kind}", TensorProto.FLOAT, past_shape
                )
            )
            outputs.append(
                helper.make_tensor_value_info(
                    f"present.0.{kind}", TensorProto.FLOAT, ["batch", 1, "total", HIDDEN]
                )
            )
        initializers += [
            numpy_helper.from_array(np.array(2, dtype=np.int64), "axis2"),
            numpy_helper.from_array(np.array([1], dtype=np.int64), "axes1"),
        ]
        nodes += [
            helper.make_node("Unsqueeze", ["embedded", "axes1"], ["new_kv"]),
            helper.make_node(
                "Concat", ["past_key_values.0.key", "new_kv"], ["present.0.key"], axis=2
            ),
            helper.make_node(
                "Concat", ["past_key_values.0.value", "new_kv"], ["present.0.value"], axis=2
            ),
            helper.make_node("CumSum", ["present.0.key", "axis2"], ["running"]),
            helper.make_node("Squeeze", ["running", "axes1"], ["hidden"]),
        ]
    else:
        initializers.append(numpy_helper.from_array(np.array(1, dtype=np.int64), "axis1"))
        nodes.append(helper.make_node("CumSum", ["embedded", "axis1"], ["hidden"]))
    nodes.append(helper.make_node("MatMul", ["hidden", "projection"], ["logits"]))
    graph = helper.make_graph(nodes, "tiny_causal_lm", inputs, outputs, initializers)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    checker.check_model(model)
    save(model, str(directory / "model.onnx"))
    _tokenizer_json(directory)
    config = {
        "model_type": "tiny",
        "eos_token_id": EOS_ID,
        "hidden_size": HIDDEN,
        "num_attention_heads": 1,
        "max_position_embeddings": 64,
    }
    (directory / "config.json").write_text(json.dumps(config), encoding="utf-8")
    return TinyOnnxModel(directory, embedding, projection, kv_cache)
