"""Fixtures shared by the provider client tests."""

from __future__ import annotations

from collections.abc import Generator

import pytest
from forge_cassettes import RecordingPool


@pytest.fixture
def pool() -> Generator[RecordingPool, None, None]:
    """A client pool whose clients record through vcrpy cassettes; closed after the test."""
    pool = RecordingPool()
    yield pool
    pool.close()
