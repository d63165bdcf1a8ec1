"""The execution engine: the same detections whichever scheduler runs them, and robust to a dying worker.

A real ``dask.distributed`` LocalCluster (worker processes, 127.0.0.1 only) runs
the tasks; results are compared byte for byte with the in-process run.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest
import rasterio
from tile_factory import harbour_series

from berthwatch.pipeline.core.aoi import available_aois, load_aoi
from berthwatch.pipeline.core.contracts import S1, S2, timeseries_path
from berthwatch.pipeline.core.engine import Engine, parse_scheduler
from berthwatch.pipeline.core.errors import UsageError
from berthwatch.pipeline.core.options import RunOptions
from berthwatch.pipeline.detect import run_detect
from berthwatch.pipeline.simulation.synthetic_aois import write_square_aoi

DATES = [dt.date(2023, 9, 1) + dt.timedelta(days=3 * i) for i in range(6)]


@pytest.fixture(scope="module")
def series(tmp_path_factory):
    """Six dates of Sentinel-1 + Sentinel-2 tiles over Rajin and a small SIMULATED port, detected in this
    process one AOI after the other (the reference)."""
    root = tmp_path_factory.mktemp("engine")
    aois = [available_aois()["rajin"], load_aoi(write_square_aoi(root / "port01.geojson", "port01", 131.0, 42.0, 2.0))]
    for aoi in aois:
        harbour_series(root / "data", aoi.id, aoi.grid(), DATES, berthed_on=DATES[1::3], sensors=(S1, S2),
                       clouds_on=DATES[2::4])
    assert run_detect(RunOptions(aois=aois, data_dir=root / "data", out_dir=root / "local",
                                 extra={"workers": 1})) == 0
    return root, aois


def outputs(out: Path) -> dict[str, bytes]:
    """Every detection file, the table and the reference rasters' pixels, by relative path."""
    files = {p.relative_to(out).as_posix(): p.read_bytes() for p in sorted((out / "detections").rglob("*"))
             if p.is_file()}
    files["timeseries.csv"] = timeseries_path(out).read_bytes()
    for tif in sorted((out / ".berthwatch" / "reference").glob("*.tif")):
        with rasterio.open(tif) as ds:
            files[tif.name] = ds.read().tobytes()
    return files


def recorded_outputs(out: Path) -> dict[str, str]:
    entries = json.loads((out / ".berthwatch" / "manifest-detect.json").read_text())["outputs"]
    return {rel: e["output"]["sha256"] for rel, e in entries.items()}


@pytest.mark.parametrize("value, expected", [
    (None, "processes"), ("processes", "processes"), ("DASK", "dask"),
    ("tcp://10.0.0.5:8786", "tcp://10.0.0.5:8786"), ("tls://sched.example:8786", "tls://sched.example:8786"),
])
def test_scheduler_values(value, expected):
    assert parse_scheduler(value) == expected


@pytest.mark.parametrize("value, message", [
    ("threads", "choose processes, dask, tcp://host:port or a scheduler .json file"),
    ("tcp://nohost", "is not a scheduler address"),
    ("missing/scheduler.json", "no such scheduler file"),
])
def test_bad_scheduler_values_are_usage_errors(value, message):
    with pytest.raises(UsageError, match=message):
        parse_scheduler(value)


def test_cli_rejects_a_bad_scheduler_in_one_line(tmp_path):
    res = subprocess.run([sys.executable, "-m", "berthwatch.pipeline.cli", "detect", "--scheduler", "threads",
                          "--data-dir", str(tmp_path), "--out-dir", str(tmp_path / "out")],
                         capture_output=True, text=True, timeout=60)
    assert res.returncode == 2
    assert res.stderr.strip().splitlines() == [
        "berthwatch: error: --scheduler: 'threads': choose processes, dask, tcp://host:port or a scheduler .json file"]
    assert not (tmp_path / "out").exists()


def test_cli_dask_localcluster_writes_the_same_bytes_and_prints_the_dashboard(series, tmp_path):
    root, aois = series
    port = aois[1]
    res = subprocess.run([sys.executable, "-m", "berthwatch.pipeline.cli", "detect", "--aoi", str(port.path),
                          "--data-dir", str(root / "data"), "--out-dir", str(tmp_path / "out"),
                          "--scheduler", "dask", "--workers", "1"],
                         capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, res.stderr
    assert "dask: LocalCluster of 1 worker process on 127.0.0.1; dashboard http://127.0.0.1:" in res.stderr
    expected = {k: v for k, v in outputs(root / "local").items() if port.id in k}
    got = outputs(tmp_path / "out")
    assert len(expected) == len(DATES) + 3 and {k: got[k] for k in expected} == expected
    assert set(got) == set(expected) | {"timeseries.csv"}
    lines = timeseries_path(root / "local").read_text().splitlines()
    assert got["timeseries.csv"].decode().splitlines() == [lines[0]] + [ln for ln in lines[1:] if port.id in ln]
    local = recorded_outputs(root / "local")
    assert recorded_outputs(tmp_path / "out") == {k: v for k, v in local.items() if port.id in k}


def _kill_a_busy_worker(address: str, stop: threading.Event, killed: list) -> None:
    """SIGKILL the first worker seen running an AOI-date task."""
    from distributed import Client

    with Client(address, timeout="20s") as client:
        pids = client.run(os.getpid)
        while not stop.is_set():
            for worker, keys in client.processing().items():
                if any("_detect_in_worker" in str(k) for k in keys) and worker in pids:
                    os.kill(pids[worker], signal.SIGKILL)
                    killed.append(worker)
                    return
            time.sleep(0.005)


def test_existing_cluster_survives_a_worker_killed_mid_run(series, tmp_path, dask_cluster):
    root, aois = series
    out = tmp_path / "out"
    opts = RunOptions(aois=aois, data_dir=root / "data", out_dir=out,
                      extra={"scheduler": dask_cluster.scheduler_address})
    stop, killed = threading.Event(), []
    killer = threading.Thread(target=_kill_a_busy_worker, args=(dask_cluster.scheduler_address, stop, killed))
    killer.start()
    try:
        code = run_detect(opts)
    finally:
        stop.set()
        killer.join(timeout=60)
    assert killed, "no worker was running a detection task to kill"
    expected = outputs(root / "local")
    # Nothing is corrupted: whatever was written is what the local run wrote, and no temporary file is left.
    got = outputs(out)
    assert all(got[k] == expected[k] for k in got)
    assert not [p for p in out.rglob("*") if ".tmp" in p.name]
    if code != 0:  # a task failed despite the retries: the rerun completes it
        code = run_detect(opts)
    assert code == 0
    assert outputs(out) == expected
    assert recorded_outputs(out) == recorded_outputs(root / "local")


def test_engine_map_runs_an_initializer_once_per_worker(dask_cluster):
    with Engine(dask_cluster.scheduler_address) as engine:
        assert engine.workers == 2 and engine.parallel(1)
        got = list(engine.map(np.add.reduce, [np.arange(n) for n in range(5)], preload=__name__))
        assert got == [0, 0, 1, 3, 6]


def test_workers_write_the_detections_and_the_coordinator_only_renames_and_records(series, tmp_path, monkeypatch):
    """Tasks of 3 dates on 2 local processes: the same bytes and manifest as an in-process run, though this
    process neither encodes a detection file nor hashes a tile or a detection; a corrupt tile fails its date
    alone, the other dates of its task are written."""
    import shutil

    from berthwatch.pipeline.core import manifest as manifest_mod
    from berthwatch.pipeline.detect import date_tasks, stage

    root, aois = series
    port = aois[1]
    data = tmp_path / "data"
    shutil.copytree(root / "data" / "tiles" / port.id, data / "tiles" / port.id)
    bad = sorted((data / "tiles" / port.id / S2 / DATES[4].isoformat()).glob("*.tif"))[0]
    bad.write_bytes(bad.read_bytes()[:5000])  # truncated after fetch
    assert run_detect(RunOptions(aois=[port], data_dir=data, out_dir=tmp_path / "local", extra={"workers": 1})) == 1
    monkeypatch.setattr(date_tasks, "TASKS_PER_WORKER", 1)
    monkeypatch.setattr(date_tasks, "MAX_DATES_PER_TASK", 3)
    submitted = []
    real_submit = date_tasks.submit_dates
    monkeypatch.setattr(stage, "submit_dates", lambda stale, engine, *a: submitted.append(engine.workers)
                        or real_submit(stale, engine, *a))

    def no_write(path, *args, **kwargs):
        raise AssertionError(f"the coordinator wrote {path}")

    hashed = []
    real_sha = manifest_mod.sha256_file
    monkeypatch.setattr(stage, "write_feature_collection", no_write)
    monkeypatch.setattr(manifest_mod, "sha256_file", lambda p, *a: hashed.append(Path(p)) or real_sha(p, *a))
    code = run_detect(RunOptions(aois=[port], data_dir=data, out_dir=tmp_path / "out",
                                 extra={"scheduler": "processes", "workers": 2}))
    assert code == 1 and submitted == [2]
    assert date_tasks.dates_per_task(len(DATES), 2) == 3  # two tasks of three dates
    got = outputs(tmp_path / "out")
    bad_key = f"detections/{port.id}/{DATES[4].isoformat()}.geojson"
    assert bad_key not in got and len([k for k in got if k.endswith(".geojson")]) == len(DATES) - 1
    assert got == outputs(tmp_path / "local")
    failed = json.loads(got["detections/failed.json"])["failed"]
    assert [(f["date"], "checksum" in f["error"]) for f in failed] == [(DATES[4].isoformat(), True)]
    # The tiles are hashed once, for the reference mask (built here: one AOI); not again to record the dates.
    tiles = [p for p in hashed if "tiles" in p.relative_to(tmp_path).parts]
    assert tiles and len(tiles) == len(set(tiles)) and not [p for p in hashed if p.suffix == ".geojson"]
    recorded = recorded_outputs(tmp_path / "out")
    assert recorded == recorded_outputs(tmp_path / "local")
    assert not [p for p in (tmp_path / "out").rglob("*") if ".tmp" in p.name]


def test_processes_engine_reuses_one_pool_across_rounds_of_tasks():
    """A caller with several rounds of tasks (scene windows rescanned) gets the same worker processes."""
    with Engine("processes", 2) as engine:
        pids = set()
        for _ in range(3):
            pids |= {f.result() for f in engine.submit_all(os.getpid, [()] * 4,
                                                            preload="berthwatch.pipeline.core.engine")}
        assert 1 <= len(pids) <= 2 and os.getpid() not in pids


def test_a_task_is_fetched_once_for_all_its_dates(monkeypatch):
    """A task of several dates is one future: its result is fetched from the cluster once, not once per
    date (each Dask ``result()`` is a round trip to the worker)."""
    from berthwatch.pipeline.detect import date_tasks

    fetched = []

    class Future:
        def __init__(self, n):
            self.n = n

        def result(self):
            fetched.append(self)
            return list(range(self.n))

    class FakeEngine:
        workers = 1

        def submit_all(self, fn, args, preload):
            return [Future(len(a[2])) for a in args]

    class T:
        def __init__(self, i):
            self.key = f"port/{i}"
            self.outputs = [Path(f"/tmp/{i}.geojson")]
            self.meta = {"aoi": aoi, "reference": ref, "date": DATES[0], "tiles": []}

    aoi = available_aois()["rajin"]

    class Ref:
        def files(self):
            return None

    ref = Ref()
    monkeypatch.setattr(date_tasks, "MAX_DATES_PER_TASK", 3)
    monkeypatch.setattr(date_tasks, "TASKS_PER_WORKER", 1)
    slots = date_tasks.submit_dates([T(i) for i in range(6)], FakeEngine(), params={})
    got = [future.result()[index] for future, index in (slots[f"port/{i}"] for i in range(6))]
    assert got == [0, 1, 2, 0, 1, 2] and len(fetched) == 2


def test_own_localcluster_turns_the_dashboard_profiler_off_and_slows_the_monitors():
    """berthwatch's LocalCluster: the workers do not sample their tasks' stacks every 10 ms (an idle
    cluster of 2 took 15 % of a core with Dask's defaults, 2 % with these)."""
    import dask

    from berthwatch.pipeline.core.engine import LOCAL_CLUSTER_CONFIG

    with Engine("dask", 1) as engine:
        seen = engine.client.run(lambda: {k: dask.config.get(k) for k in LOCAL_CLUSTER_CONFIG})
    assert list(seen.values()) == [LOCAL_CLUSTER_CONFIG]
    assert dask.config.get("distributed.worker.profile.enabled") is True  # this process's settings are its own
