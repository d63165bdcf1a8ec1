"""Whether detect and report would do nothing, told without loading them.

A night with no new acquisition is the common case, and loading the detectors
and the report (scipy, geopandas, matplotlib) costs more than the work that
is left. After every complete run ``berthwatch update`` records, in
``<out>/.berthwatch/watch-state.json``, a key of everything besides the tiles
that determines the detections and the report (berthwatch's version, the
bytes of its source code and templates, the AOI and claim files, the
parameters, AOIs and sensors), the size and modification time of every tile it
used, and those of every output. When the next run finds the same key, the
same tiles and its outputs untouched, detect and report could only confirm
that everything is up to date, so they are not run. Any difference, or any
doubt (no state, an unreadable one), runs them: the stages' own manifests then
decide what to recompute.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
from pathlib import Path

from berthwatch import __version__

from ..core.atomic import write_json_atomic
from ..core.claims import Claim
from ..core.contracts import find_tiles, report_dir, timeseries_path
from ..core.manifest import MANIFEST_DIR
from ..core.options import RunOptions

STATE_FILE = "watch-state.json"
#: ``opts.extra`` entries that say where work runs, not what it computes.
EXECUTION_ONLY = ("workers", "scheduler")


def _package_dirs() -> list[Path]:
    """Source folders of berthwatch's pipeline and detectors (found without importing them)."""
    dirs = []
    for name in ("berthwatch.pipeline", "berthwatch.detectors"):
        spec = importlib.util.find_spec(name)
        dirs += [Path(p) for p in (spec.submodule_search_locations or [])] if spec else []
    return dirs


def run_key(opts: RunOptions, claim: Claim) -> str:
    """Digest of the code, configuration and input files (other than tiles) of detect and report."""
    h = hashlib.sha256(__version__.encode())
    for folder in _package_dirs():
        for f in sorted(p for p in folder.rglob("*") if p.is_file() and p.suffix in (".py", ".j2", ".html", ".css",
                                                                                       ".js", ".yaml", ".json")):
            h.update(f.relative_to(folder).as_posix().encode())
            h.update(f.read_bytes())
    for path in [a.path for a in opts.aois] + [claim.path]:
        h.update(str(path).encode())
        if path is not None and Path(path).is_file():
            h.update(Path(path).read_bytes())
    extra = {k: v for k, v in (opts.extra or {}).items() if k not in EXECUTION_ONLY}
    h.update(json.dumps([opts.aoi_ids, list(opts.sensors), claim.id, extra], sort_keys=True, default=str).encode())
    return h.hexdigest()


def _stat(path: Path) -> list[int]:
    st = path.stat()
    return [st.st_size, st.st_mtime_ns]


def _tiles(opts: RunOptions) -> dict[str, list[int]]:
    out = {}
    for t in find_tiles(opts.data_dir, opts.aoi_ids, opts.sensors):
        for p in (t.path, t.item):
            if p.exists():
                out[str(p.resolve())] = _stat(p)
    return out


def _outputs(out_dir: Path) -> dict[str, list[int]]:
    out_dir = Path(out_dir)
    files = list((out_dir / "detections").rglob("*")) + list(report_dir(out_dir).rglob("*"))
    files += [timeseries_path(out_dir), out_dir / MANIFEST_DIR / "manifest-detect.json",
              out_dir / MANIFEST_DIR / "manifest-report.json"]
    return {p.relative_to(out_dir).as_posix(): _stat(p) for p in sorted(files) if p.is_file()}


def current_state(opts: RunOptions, claim: Claim) -> dict:
    return {"key": run_key(opts, claim), "tiles": _tiles(opts), "outputs": _outputs(opts.out_dir)}


def state_path(out_dir: Path) -> Path:
    return Path(out_dir) / MANIFEST_DIR / STATE_FILE


def record(opts: RunOptions, claim: Claim, state: dict | None = None) -> None:
    """Remember what a complete run used and wrote (the outputs are read again: the run just wrote them)."""
    state = state or current_state(opts, claim)
    state["outputs"] = _outputs(opts.out_dir)
    write_json_atomic(state_path(opts.out_dir), state, indent=None)


def forget(out_dir: Path) -> None:
    state_path(out_dir).unlink(missing_ok=True)


def nothing_to_do(opts: RunOptions, claim: Claim) -> tuple[bool, dict]:
    """(True when detect and report are known to be up to date, the current state)."""
    state = current_state(opts, claim)
    try:
        recorded = json.loads(state_path(opts.out_dir).read_text(encoding="utf-8"))
    except (OSError, ValueError, UnicodeDecodeError):
        return False, state
    return isinstance(recorded, dict) and recorded == state and bool(state["outputs"]), state
