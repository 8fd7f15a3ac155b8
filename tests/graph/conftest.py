"""Fixtures for the Graph adapter tests."""

from __future__ import annotations

import pytest
from graph_fakes import FakeGraph, sample_graph


@pytest.fixture
def fake_graph() -> FakeGraph:
    return sample_graph()
