"""The command line as a user runs it: exit codes, one-line errors, no tracebacks."""

import json
import subprocess
import sys

import pytest


def bw(*args, cwd=None):
    return subprocess.run([sys.executable, "-m", "berthwatch.pipeline.cli", *args], capture_output=True, text=True,
                          cwd=cwd, timeout=120)


def test_version_and_aoi_commands():
    r = bw("--version")
    assert r.returncode == 0 and r.stdout.startswith("berthwatch ")
    r = bw("aoi", "list")
    assert r.returncode == 0 and "rajin" in r.stdout and "EPSG:32653" in r.stdout
    r = bw("aoi", "show", "rajin")
    info = json.loads(r.stdout)
    assert info["utm_epsg"] == 32652 and info["role"] == "origin" and info["request_tiles"] == 1


@pytest.mark.parametrize(
    "args, code, message",
    [
        (["detect", "--start", "2023-10-01", "--end", "2023-09-01"], 2, "--end 2023-09-01 is before --start"),
        (["detect", "--start", "1 Sept"], 2, "--start: '1 Sept' is not a date"),
        (["detect", "--sensor", "landsat"], 2, "--sensor: unknown sensor 'landsat'"),
        (["detect", "--aoi", "atlantis"], 2, "--aoi: unknown AOI 'atlantis'"),
        (["fetch", "--source", "ftp", "--start", "2023-09-01", "--end", "2023-09-02"], 2, "--source: unknown source"),
        (["fetch", "--source", "stac"], 2, "--start and --end are required"),
        (["report", "--claim", "missing.yaml"], 1, "missing.yaml: no such claim file"),
        (["aoi", "show", "nowhere/x.geojson"], 1, "nowhere/x.geojson: no such AOI file"),
    ],
)
def test_bad_input_is_one_line_and_nonzero(tmp_path, args, code, message):
    r = bw(*args, cwd=tmp_path)
    assert r.returncode == code, r.stderr
    lines = [ln for ln in r.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1 and message in lines[0] and "Traceback" not in r.stderr
    assert list(tmp_path.iterdir()) == [], "a failed command must leave no output behind"


def test_verbose_shows_the_traceback_for_user_errors(tmp_path):
    r = bw("-v", "report", "--claim", "missing.yaml", cwd=tmp_path)
    assert r.returncode == 1 and "Traceback" in r.stderr


def test_typer_usage_errors_exit_2():
    r = bw("detect", "--no-such-option")
    assert r.returncode == 2
