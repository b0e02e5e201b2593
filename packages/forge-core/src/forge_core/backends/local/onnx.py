"""Causal language models exported to ONNX, run by onnxruntime and tokenised by ``tokenizers``.

A model directory holds the graph (``model.onnx``, or the only ``*.onnx``), ``tokenizer.json``
and usually ``config.json`` (``eos_token_id``, head counts) as written by common exporters
(optimum, transformers.js). The graph takes ``input_ids`` and, when it has them,
``attention_mask``, ``position_ids`` and ``past_key_values.N.key|value``; it returns ``logits``
and, with a KV cache, ``present.N.key|value`` (the ``present`` outputs feed the next step's
``past_key_values`` in order). Without a KV cache every step re-runs the whole sequence.

onnxruntime, onnx and tokenizers are the ``forge-core[onnx]`` extra, imported on first use.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["OnnxCausalLM", "render_chat"]

_PAST = re.compile(r"^past_key_values\.(\d+)\.(key|value)$")
_INT_TYPES = {"tensor(int64)": np.int64, "tensor(int32)": np.int32}
_FLOAT_TYPES = {"tensor(float)": np.float32, "tensor(float16)": np.float16}


def render_chat(messages: Sequence[dict[str, Any]], template: str | None) -> str:
    """The prompt for ``messages``: the tokenizer's Jinja chat template, else ``role: text`` lines.

    The fallback ends with ``assistant:`` so the model continues as the assistant.
    """
    if template:
        from jinja2.sandbox import ImmutableSandboxedEnvironment

        environment = ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True)
        return environment.from_string(template).render(
            messages=list(messages), add_generation_prompt=True, bos_token="", eos_token=""
        )
    lines = [f"{message['role']}: {message.get('content') or ''}" for message in messages]
    return "\n".join([*lines, "assistant:"])


@dataclass(frozen=True)
class _PastInput:
    name: str
    output: str
    shape: tuple[int, ...]
    dtype: Any


class OnnxCausalLM:
    """One ONNX causal LM loaded in an onnxruntime session (one per pool slot).

    ``generate`` yields text pieces as tokens are chosen: greedy at ``temperature`` 0 (or None),
    sampled from the softmax of ``logits / temperature`` otherwise (``seed`` makes it repeatable).
    """

    def __init__(self, directory: Path, *, n_threads: int | None = None) -> None:
        import onnxruntime
        from tokenizers import Tokenizer

        self.directory = directory
        graphs = sorted(directory.glob("*.onnx"))
        graph = directory / "model.onnx" if (directory / "model.onnx").is_file() else graphs[0]
        self.tokenizer = Tokenizer.from_file(str(directory / "tokenizer.json"))
        self.config = _read_json(directory / "config.json")
        tokenizer_config = _read_json(directory / "tokenizer_config.json")
        template = tokenizer_config.get("chat_template")
        self.chat_template: str | None = template if isinstance(template, str) else None
        self.eos_ids = self._eos_ids(tokenizer_config)
        options = onnxruntime.SessionOptions()
        if n_threads:
            options.intra_op_num_threads = n_threads
        self.session = onnxruntime.InferenceSession(
            str(graph), sess_options=options, providers=["CPUExecutionProvider"]
        )
        inputs = {node.name: node for node in self.session.get_inputs()}
        self._input_names = set(inputs)
        self._id_dtype = _INT_TYPES.get(inputs["input_ids"].type, np.int64)
        self._past = self._past_inputs(inputs)
        outputs = [node.name for node in self.session.get_outputs()]
        self._logits = "logits" if "logits" in outputs else outputs[0]
        self.context_window = _first_int(
            self.config, "max_position_embeddings", "n_positions", "max_seq_len"
        )

    @property
    def has_kv_cache(self) -> bool:
        """Whether the graph takes ``past_key_values`` (each step then feeds one new token)."""
        return bool(self._past)

    def tokenize(self, text: str) -> list[int]:
        """Token ids of ``text`` (special tokens such as BOS added as the tokenizer says)."""
        return list(self.tokenizer.encode(text).ids)

    def close(self) -> None:
        """Drop the session (onnxruntime frees it with the last reference)."""
        self.session = None

    def generate(
        self,
        prompt: Sequence[int],
        *,
        max_tokens: int,
        temperature: float | None = None,
        seed: int | None = None,
        stop: Sequence[str] = (),
    ) -> Iterator[tuple[str, int]]:
        """Yield ``(text_piece, token_id)`` per generated token until EOS, a stop or the limit.

        Text is decoded from all generated ids each step and the new suffix yielded, so tokens
        that only make sense together (byte-level BPE) come out whole. A stop string ends
        generation and is not yielded.
        """
        rng = np.random.default_rng(seed)
        ids = list(prompt)
        generated: list[int] = []
        emitted = ""
        past: dict[str, np.ndarray] | None = None
        for _ in range(max_tokens):
            logits, past = self._step(ids, past)
            token = _choose(logits, temperature, rng)
            if token in self.eos_ids:
                return
            ids.append(token)
            generated.append(token)
            text = self.tokenizer.decode(generated)
            hit = _first_stop(text, stop)
            if hit is not None:
                if hit > len(emitted):
                    yield text[len(emitted) : hit], token
                return
            if text.endswith("\ufffd"):
                continue
            piece = text[len(emitted) :] if text.startswith(emitted) else text
            emitted = text
            yield piece, token

    # -- graph calls --------------------------------------------------------------------------

    def _step(
        self, ids: list[int], past: dict[str, np.ndarray] | None
    ) -> tuple[np.ndarray, dict[str, np.ndarray] | None]:
        total = len(ids)
        if self._past:
            if past is None:
                past = {
                    item.name: np.zeros((1, item.shape[0], 0, item.shape[1]), dtype=item.dtype)
                    for item in self._past
                }
                new = ids
            else:
                new = ids[-1:]
        else:
            new = ids
        feed: dict[str, np.ndarray] = {"input_ids": np.array([new], dtype=self._id_dtype)}
        if "attention_mask" in self._input_names:
            feed["attention_mask"] = np.ones((1, total), dtype=np.int64)
        if "position_ids" in self._input_names:
            feed["position_ids"] = np.arange(total - len(new), total, dtype=np.int64)[None, :]
        if past is not None:
            feed.update(past)
        output_names = [self._logits, *(item.output for item in self._past)]
        results = self.session.run(output_names, feed)
        logits = np.asarray(results[0])[0, -1].astype(np.float64)
        if not self._past:
            return logits, None
        return logits, {item.name: results[i + 1] for i, item in enumerate(self._past)}

    def _past_inputs(self, inputs: dict[str, Any]) -> list[_PastInput]:
        found = []
        for name, node in inputs.items():
            match = _PAST.match(name)
            if match is None:
                continue
            layer, kind = match.groups()
            dims = node.shape
            heads = dims[1] if isinstance(dims[1], int) else self._kv_heads()
            head_dim = dims[3] if isinstance(dims[3], int) else self._head_dim()
            found.append(
                _PastInput(
                    name,
                    f"present.{layer}.{kind}",
                    (heads, head_dim),
                    _FLOAT_TYPES.get(node.type, np.float32),
                )
            )
        return sorted(found, key=lambda item: item.name)

    def _kv_heads(self) -> int:
        heads = _first_int(self.config, "num_key_value_heads", "num_attention_heads", "n_head")
        if heads is None:
            raise ValueError("config.json names no attention head count for the KV cache")
        return heads

    def _head_dim(self) -> int:
        head_dim = _first_int(self.config, "head_dim")
        if head_dim is not None:
            return head_dim
        hidden = _first_int(self.config, "hidden_size", "n_embd")
        heads = _first_int(self.config, "num_attention_heads", "n_head")
        if hidden is None or heads is None:
            raise ValueError("config.json gives no head_dim (nor hidden_size and head count)")
        return hidden // heads

    def _eos_ids(self, tokenizer_config: dict[str, Any]) -> frozenset[int]:
        raw = self.config.get("eos_token_id")
        ids = raw if isinstance(raw, list) else [raw] if isinstance(raw, int) else []
        eos_token = tokenizer_config.get("eos_token")
        if isinstance(eos_token, str):
            token_id = self.tokenizer.token_to_id(eos_token)
            if token_id is not None:
                ids.append(token_id)
        return frozenset(int(item) for item in ids)


def _choose(logits: np.ndarray, temperature: float | None, rng: np.random.Generator) -> int:
    if not temperature:
        return int(np.argmax(logits))
    scaled = logits / temperature
    scaled -= scaled.max()
    weights = np.exp(scaled)
    return int(rng.choice(len(weights), p=weights / weights.sum()))


def _first_stop(text: str, stop: Sequence[str]) -> int | None:
    positions = [text.find(item) for item in stop if item and item in text]
    return min(positions) if positions else None


def _first_int(data: dict[str, Any], *keys: str) -> int | None:
    for key in keys:
        value = data.get(key)
        if isinstance(value, int):
            return value
    return None


def _read_json(path: Path) -> dict[str, Any]:
    if not path.is_file():
        return {}
    data = json.loads(path.read_text(encoding="utf-8"))
    return data if isinstance(data, dict) else {}
