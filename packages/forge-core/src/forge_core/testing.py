"""A scripted backend for tests (in progress)."""
