"""Shared test fixtures."""

from __future__ import annotations

import os
import time
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


@pytest.fixture(scope="session")
def demo_run(tmp_path_factory) -> tuple[Path, Path, float]:
    """One `berthwatch demo` run shared by the tests: (out dir, report path, seconds)."""
    from berthwatch.pipeline.demo import run_demo

    out = tmp_path_factory.mktemp("demo")
    t0 = time.perf_counter()
    report = run_demo(None, out)
    return out, report, time.perf_counter() - t0


@pytest.fixture(scope="session")
def demo_out(demo_run) -> Path:
    """Output folder of `berthwatch demo` (sample, fetch, detect, report on simulated data)."""
    return demo_run[0]


@pytest.fixture(scope="session")
def dask_cluster():
    """A real dask.distributed LocalCluster (2 worker processes, 1 thread each, loopback only), shared."""
    distributed = pytest.importorskip("distributed")
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True, host="127.0.0.1",
                                  dashboard_address=None) as cluster:
        yield cluster
