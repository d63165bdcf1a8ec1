"""Real data through `make`: every fetch option reaches `berthwatch run`, and a dry run needs no account."""

from __future__ import annotations

import os
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def _env_without_credentials(tmp_path: Path) -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SH_")}
    env["XDG_CONFIG_HOME"] = str(tmp_path / "xdg")  # no sentinelhub profile either
    env["HOME"] = str(tmp_path)
    return env


@pytest.mark.parametrize("command", ["fetch", "run"])
def test_dry_run_without_credentials_lists_what_it_can_and_says_what_it_needs(tmp_path, command):
    cmd = [sys.executable, "-m", "berthwatch.pipeline.cli", command, "--aoi", "rajin,dunai", "--start", "2023-09-01",
           "--end", "2023-09-30", "--source", "sentinelhub", "--endpoint", "cdse", "--dry-run",
           "--data-dir", str(tmp_path / "data")]
    if command == "run":
        cmd += ["--out-dir", str(tmp_path / "out")]
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=120, env=_env_without_credentials(tmp_path))
    assert r.returncode == 1
    rows = [line.split("\t") for line in r.stdout.splitlines() if not line.startswith("#")]
    assert rows[0] == ["aoi", "sensor", "start", "end", "tile_px", "est_pu_per_date"]
    assert {(x[0], x[1]) for x in rows[1:]} == {(a, s) for a in ("rajin", "dunai")
                                                for s in ("sentinel-1-grd", "sentinel-2-l2a")}
    assert all(float(x[5]) > 0 for x in rows[1:])
    err = r.stderr.strip().splitlines()
    assert len(err) == 1 and "SH_CLIENT_ID" in err[0] and "--source stac" in err[0], r.stderr
    assert not (tmp_path / "data" / "tiles").exists() and not (tmp_path / "out").exists()


def _make_n(*assignments: str) -> str:
    r = subprocess.run(["make", "-n", "-C", str(ROOT), *assignments], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    return r.stdout.replace("\\\n", " ")


def test_make_passes_every_real_data_option():
    out = _make_n("run", "ENDPOINT=cdse", "DRY_RUN=1", "WORKERS=3", "MAX_CLOUD=30", "ORBIT=ascending", "FORCE=1",
                  "DEBUG_FEATURES=1", "SOURCE=stac")
    line = next(x for x in out.splitlines() if "berthwatch run" in x)
    args = shlex.split(line)
    for opt, value in (("--endpoint", "cdse"), ("--workers", "3"), ("--max-cloud", "30"), ("--orbit", "ascending"),
                       ("--source", "stac")):
        assert args[args.index(opt) + 1] == value, line
    for flag in ("--dry-run", "--force", "--debug-features"):
        assert flag in args, line
    fetch = next(x for x in _make_n("fetch", "ENDPOINT=cdse", "DRY_RUN=1").splitlines() if "berthwatch fetch" in x)
    assert "--endpoint cdse" in fetch and "--dry-run" in fetch and "--workers" not in fetch
    detect = next(x for x in _make_n("detect", "DEBUG_FEATURES=1").splitlines() if "berthwatch detect" in x)
    assert "--debug-features" in detect


def test_run_takes_every_fetch_option():
    from typer.main import get_command

    from berthwatch.pipeline.cli import app

    cli = get_command(app)
    opts = {name: {o for p in cli.commands[name].params for o in p.opts} for name in ("fetch", "run")}
    assert opts["fetch"] - {"--help"} <= opts["run"], opts["fetch"] - opts["run"]


def test_unresolvable_host_fails_fast_in_one_line_naming_it(tmp_path):
    """No retry storm for a name that does not resolve (.invalid never does, RFC 6761)."""
    import time

    cmd = [sys.executable, "-m", "berthwatch.pipeline.cli", "fetch", "--source", "stac", "--stac-api",
           "https://no-such-host.invalid/v1", "--aoi", "rajin", "--start", "2023-09-01", "--end", "2023-09-05",
           "--sensor", "s2", "--dry-run", "--data-dir", str(tmp_path / "data")]
    t0 = time.monotonic()
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=120, env=_env_without_credentials(tmp_path))
    elapsed = time.monotonic() - t0
    err = r.stderr.strip().splitlines()
    assert r.returncode == 1 and len(err) == 1, r.stderr
    assert "--stac-api" in err[0] and "no-such-host.invalid" in err[0] and "resolve" in err[0]
    assert elapsed < 30  # was about a minute with two retry layers stacked
