"""Backends that run a model in forge's own process or its worker processes (GGUF, ONNX)."""
