"""Shared test fixtures."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

PROJECT_ROOT = Path(__file__).resolve().parents[1]
DATASETS = PROJECT_ROOT.parent / "shared" / "datasets"

# Tests never reach the network; keep GDAL from probing for sidecar files remotely.
os.environ.setdefault("GDAL_DISABLE_READDIR_ON_OPEN", "EMPTY_DIR")


def dataset_dir(name: str) -> Path:
    """Folder of a shared validation dataset, or skip the test with a clear message."""
    path = DATASETS / name
    if not path.is_dir():
        pytest.skip(f"validation dataset {name!r} not found at {path} (lay ../shared/datasets beside the clone)")
    return path


@pytest.fixture
def project_root() -> Path:
    return PROJECT_ROOT
