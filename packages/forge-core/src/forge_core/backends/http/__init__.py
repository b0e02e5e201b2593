"""Backends that speak to a server over HTTP (httpx): OpenAI-compatible, Ollama, Anthropic."""
