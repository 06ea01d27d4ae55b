"""Shared fixtures: the engine is built once per test session (the knowledge base is closed once)."""

from __future__ import annotations

from pathlib import Path

import pytest

TESTS_DIR = Path(__file__).parent


@pytest.fixture(scope="session")
def engine():
    from myeloma_kg.recommend import default_engine

    return default_engine()
