from __future__ import annotations

from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
MODELS = ROOT / "models"


@pytest.fixture
def write_yaml(tmp_path):
    """Write a model text to a file and return its path."""
    def write(text: str, name: str = "model.yaml") -> Path:
        path = tmp_path / name
        path.write_text(text)
        return path
    return write


MINIMAL = """\
name: tiny
classes:
  get: {share: 1.0, entry: api}
services:
  api:
    workers: 2
    service_time_s: {dist: exponential, mean: 0.01}
"""
