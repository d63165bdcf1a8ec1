"""kill -9 at seeded random moments of fetch, detect, report and demo; the rerun must repair everything.

Each command runs in a forked child of the test process (everything is already
imported there, so a run costs only its own work) with its own fork server and
resource tracker, marked by an environment variable. The child is SIGKILLed
after a seeded random delay; the command is run again (and killed again) until
one run completes. Then every output must be byte-identical to a clean run's,
no temporary file may be left, and no process of the killed runs (fork server,
resource tracker, detection workers) may be alive.
"""

from __future__ import annotations

import multiprocessing.forkserver
import multiprocessing.resource_tracker
import os
import random
import shutil
import signal
import sqlite3
import sys
import time
from pathlib import Path

import pytest

from berthwatch.pipeline.core.atomic import is_temp_name

TINY = Path(__file__).parent / "scenarios" / "tiny.yaml"
MARK = "BERTHWATCH_CRASH_TEST"
SEED = 16
#: Arguments the demo uses internally for its stages (tiny scenario: Rajin, 4-6 Sep 2023).
RANGE = ["--aoi", "rajin", "--start", "2023-09-04", "--end", "2023-09-06"]


def _child(args: list[str], token: str) -> None:
    """Run the CLI in this forked process with a fresh fork server and resource tracker; never returns."""
    code = 1
    try:
        os.environ[MARK] = token
        os.environ["SOURCE_DATE_EPOCH"] = "1696636800"  # the report's "generated" stamp, fixed
        os.environ["OGR_CURRENT_DATE"] = "2023-10-07T00:00:00Z"  # GeoPackage last_change stamps, fixed
        # The modules bind their functions to the instance at import: replace those too, or a
        # fork server started earlier in this test process (an in-process pool) is reused.
        fs, rt = multiprocessing.forkserver, multiprocessing.resource_tracker
        fs._forkserver = fs.ForkServer()
        for name in ("ensure_running", "get_inherited_fds", "connect_to_new_process", "set_forkserver_preload"):
            setattr(fs, name, getattr(fs._forkserver, name))
        rt._resource_tracker = rt.ResourceTracker()
        for name in ("ensure_running", "register", "unregister", "getfd"):
            setattr(rt, name, getattr(rt._resource_tracker, name))
        null = os.open(os.devnull, os.O_WRONLY)
        os.dup2(null, 1)
        os.dup2(null, 2)
        sys.stdout = sys.stderr = open(os.devnull, "w")
        from typer.main import get_command

        from berthwatch.pipeline.cli import app

        code = get_command(app).main(args, prog_name="berthwatch", standalone_mode=False)
    finally:
        os._exit(code if isinstance(code, int) else 1)


def start(args: list[str], token: str) -> int:
    """Fork a child running ``berthwatch args``; its pid."""
    pid = os.fork()
    if pid == 0:
        _child(args, token)
    return pid


def run(args: list[str], token: str) -> tuple[bool, int]:
    """(False, exit status) of ``berthwatch args`` run to completion in a forked child."""
    _, status = os.waitpid(start(args, token), 0)
    return False, os.waitstatus_to_exitcode(status)


def run_chains(chains: list[list[tuple[list[str], float | None]]], token: str) -> list[list[tuple[bool, int]]]:
    """Run several chains of commands concurrently (one child per chain at a time, no threads).

    Each step is ``(args, kill_after)``: the command is SIGKILLed ``kill_after`` seconds
    after it started if it is still running (None: run to completion). Returns, per
    chain, ``(killed while running, exit status)`` of each step.
    """
    results: list[list[tuple[bool, int]]] = [[] for _ in chains]
    running: dict[int, tuple[int, float | None, float]] = {}  # chain -> (pid, kill_after, started)
    while True:
        for c, steps in enumerate(chains):
            if c not in running and len(results[c]) < len(steps):
                args, kill_after = steps[len(results[c])]
                running[c] = (start(args, token), kill_after, time.monotonic())
        if not running:
            return results
        for c, (pid, kill_after, started) in list(running.items()):
            done, status = os.waitpid(pid, os.WNOHANG)
            if done:
                results[c].append((False, os.waitstatus_to_exitcode(status)))
                del running[c]
            elif kill_after is not None and time.monotonic() - started >= kill_after:
                os.kill(pid, signal.SIGKILL)
                _, status = os.waitpid(pid, 0)
                results[c].append((True, os.waitstatus_to_exitcode(status)))
                del running[c]
        time.sleep(0.005)


def marked_processes(token: str) -> list[int]:
    """Live processes started by the runs marked with ``token``."""
    found = []
    needle = f"{MARK}={token}".encode()
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            if needle in (entry / "environ").read_bytes().split(b"\0"):
                state = (entry / "stat").read_text().rsplit(")", 1)[1].split()[0]
                if state != "Z":
                    found.append(int(entry.name))
        except OSError:
            continue
    return found


def outputs(root: Path) -> dict[str, bytes]:
    """Every output file (not the lock, not the manifests' stat caches) by relative path.

    A GeoPackage is compared by its SQL dump with the output folder's path replaced:
    it records each row's source file by absolute path.
    """
    out = {}
    for p in sorted(root.rglob("*")):
        if not p.is_file() or ".berthwatch" in p.parts:
            continue
        if p.suffix == ".gpkg":
            with sqlite3.connect(p) as db:
                out[p.relative_to(root).as_posix()] = "\n".join(db.iterdump()).replace(str(root), "<out>").encode()
        else:
            out[p.relative_to(root).as_posix()] = p.read_bytes()
    return out


def temp_files(root: Path) -> list[Path]:
    return [p for p in root.rglob("*") if is_temp_name(p.name)]


@pytest.mark.skipif(not hasattr(os, "fork") or not Path("/proc/self/environ").exists(), reason="needs fork and /proc")
def test_kill9_at_random_points_then_rerun_is_byte_identical(tmp_path):
    token = f"{os.getpid()}-{time.monotonic_ns()}"
    rng = random.Random(SEED)
    clean = tmp_path / "clean"
    assert run(["demo", "--scenario", str(TINY), "--out-dir", str(clean)], token) == (False, 0)
    want = outputs(clean)
    # How long each stage took in the clean run (from when its outputs were written): kill
    # delays are drawn within these, so that they land inside the command, wherever that is.
    ends = {name: max(p.stat().st_mtime for p in (clean / sub).rglob("*") if p.is_file())
            for name, sub in (("sample", "sample"), ("fetch", "data/tiles"), ("detect", "detections"),
                              ("report", "report"))}
    took = {"fetch": ends["fetch"] - ends["sample"], "detect": ends["detect"] - ends["fetch"],
            "report": ends["report"] - ends["detect"], "demo": ends["report"] - ends["sample"]}
    assert any(k.startswith("report/") for k in want) and any(k.startswith("detections/") for k in want)

    # Stage by stage on a copy of the simulated sample, as the demo runs them; then the demo itself.
    staged, demo = tmp_path / "staged", tmp_path / "demo"
    for target in (staged, demo):
        shutil.copytree(clean / "sample", target / "sample")
    catalog = staged / "sample" / "catalog.json"
    commands = [
        ["fetch", *RANGE, "--source", "local", "--catalog", str(catalog), "--max-cloud", "100",
         "--data-dir", str(staged / "data")],
        ["detect", *RANGE, "--workers", "2", "--data-dir", str(staged / "data"), "--out-dir", str(staged)],
        ["report", *RANGE, "--data-dir", str(staged / "data"), "--out-dir", str(staged)],
        ["demo", "--scenario", str(TINY), "--out-dir", str(demo)],
    ]
    steps = []
    for args in commands:
        # Three kills, then a run to completion; each rerun has less left to do (what the
        # killed runs finished is kept), so the later delays are shorter.
        steps.append([(args, rng.uniform(0.02, 0.9 * max(took[args[0]], 0.1) / (i + 1))) for i in range(3)]
                     + [(args, None)])
    # The stages in one folder and the demo in another run side by side.
    staged_steps = [step for chain in steps[:3] for step in chain]
    results = run_chains([staged_steps, steps[3]], token)
    outcomes = results[0] + results[1]
    kills = sum(killed for killed, _ in outcomes)
    finals = [outcomes[i] for i in (3, 7, 11, 15)]
    assert finals == [(False, 0)] * 4, finals
    assert kills >= 8, f"only {kills} of 12 kills hit a running command"

    deadline = time.monotonic() + 10
    while marked_processes(token) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert marked_processes(token) == [], "processes of killed runs are still alive"
    for root in (staged, demo):
        assert temp_files(root) == []
        got = outputs(root)
        assert sorted(got) == sorted(want)
        assert [k for k in want if got[k] != want[k]] == []
