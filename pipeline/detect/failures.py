"""What failed in the detect stage: ``<out>/detections/failed.json`` and the summary table.

A failing AOI-date (a corrupt tile, an unreadable folder, a detector error)
never stops the others. Its reason is listed here until a later run computes
the date successfully (or its tiles are gone); a detection it produced before
is kept, so the time series keeps its last good value, and
``failed.json`` says which dates that is. The file is RFC 8259 JSON::

    {"failed": [{"aoi": "rajin", "date": "2023-09-08", "error": "...", "kept_previous": true}, ...]}

sorted by AOI and date; the errors pass through :func:`.core.scrub.one_line`.
``berthwatch detect`` exits 1 when the list of this run's failures is not empty.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

from rich.markup import escape
from rich.table import Table

from ..core.atomic import write_json_atomic
from ..core.options import stderr
from ..core.scrub import one_line

log = logging.getLogger(__name__)


def failed_path(out_dir: Path) -> Path:
    return Path(out_dir) / "detections" / "failed.json"


def read_failed(out_dir: Path) -> dict[str, dict]:
    """The recorded failures by ``<aoi>/<date>`` key (empty when the file is missing or damaged)."""
    path = failed_path(out_dir)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        return {f"{e['aoi']}/{e['date']}": e for e in data["failed"] if isinstance(e, dict)}
    except FileNotFoundError:
        return {}
    except (OSError, ValueError, KeyError, TypeError) as exc:
        log.warning("%s: unreadable (%s); rewriting it", path, type(exc).__name__)
        return {}


def update_failed(out_dir: Path, attempted: set[str], failed: dict[str, str], existing: set[str]) -> list[dict]:
    """Record this run's failures; forget keys that now succeeded or whose tiles are gone.

    ``attempted``: keys this run computed or found up to date; ``failed``: key ->
    reason of this run's failures; ``existing``: keys that still have tiles.
    """
    entries = {k: e for k, e in read_failed(out_dir).items() if k in existing and k not in attempted}
    for key, reason in failed.items():
        aoi, date = key.split("/", 1)
        entries[key] = {"aoi": aoi, "date": date, "error": one_line(reason),
                        "kept_previous": (Path(out_dir) / "detections" / aoi / f"{date}.geojson").exists()}
    listed = [entries[k] for k in sorted(entries)]
    path = failed_path(out_dir)
    if listed or path.exists():
        write_json_atomic(path, {"failed": listed})
    return listed


def print_summary(done: list[str], skipped: list[str], failed: dict[str, str], removed: list[str],
                  failed_file: Path | None = None) -> None:
    """Per AOI: dates computed, up to date, failed, removed (each failure was logged as it happened)."""
    counts: dict[str, list[int]] = {}
    for i, keys in enumerate((done, skipped, list(failed), removed)):
        for key in keys:
            aoi = key.split("/")[1] if key.startswith("detections/") else key.split("/")[0]
            counts.setdefault(aoi, [0, 0, 0, 0])[i] += 1
    if not failed and logging.getLogger("berthwatch").getEffectiveLevel() > logging.INFO:
        return
    table = Table(title="detect")
    for col in ("aoi", "computed", "up to date", "failed", "removed"):
        table.add_column(col, justify="left" if col == "aoi" else "right")
    for aoi, (d, s, f, r) in sorted(counts.items()):
        table.add_row(aoi, str(d), str(s), f"[red]{f}[/red]" if f else "0", str(r))
    stderr.print(table)
    if failed and failed_file is not None:
        stderr.print(f"{len(failed)} AOI-date(s) failed, listed in {escape(str(failed_file))}; "
                     "their earlier detections, if any, are kept", highlight=False, soft_wrap=True)
