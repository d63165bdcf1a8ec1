"""The detectors' measured accuracy, for the report: which dataset, what it means for the counts.

Read from ``berthwatch validate``'s ``metrics.json`` files
(``<out>/validate/<dataset>/metrics.json``, written by ``make validate``)
when they exist; otherwise from the record shipped with the package
(``accuracy.json`` beside this module), which holds the overall figures of the
last ``make validate`` on the labelled datasets and says so. Refresh the record
after a detector change with::

    python -m berthwatch.pipeline.report.accuracy out/validate
"""

from __future__ import annotations

import datetime as dt
import json
import sys
from pathlib import Path

from ..core.atomic import write_json_atomic
from ..core.contracts import S1, S2

RECORD = Path(__file__).with_name("accuracy.json")
#: The labelled datasets of ``../shared/datasets``, what they measure and how.
DATASETS = {
    "sen2ships": {
        "sensor": S2,
        "title": "sen2ships: 8 ports, Sentinel-2 L2A, hand-labelled vessel boxes",
        "mode": "single scene (no history, no SCL), the detector's mode with fewer than two dates",
    },
    "opensarship": {
        "sensor": S1,
        "title": "OpenSARShip: Sentinel-1 GRD chips of AIS-matched ships",
        "mode": "CFAR on chips; only AIS ships are labelled, so precision (false alarms) is not measurable",
    },
}
KEYS = ("precision", "recall", "f1", "tp", "fp", "fn", "length_mae_m", "width_mae_m")


def _overall(metrics: dict) -> dict:
    overall = metrics.get("overall") or {}
    out = {k: overall.get(k) for k in KEYS}
    cv = metrics.get("cross_validation")
    if isinstance(cv, dict):
        out["cross_validation"] = {k: cv.get(k) for k in ("method", "precision", "recall", "f1", "measured")}
    out["scenes"] = len(metrics.get("scenes") or {})
    if isinstance(metrics.get("calibration"), dict):
        out["calibration"] = metrics["calibration"]
    return out


def load_accuracy(validate_dir: Path | None) -> list[dict]:
    """One row per dataset: ``name``, ``sensor``, ``title``, ``mode``, ``source``, figures, ``meaning``.

    ``source`` names the file the figures come from (a run's ``metrics.json``
    or the shipped record with its date). A dataset with neither has
    ``source`` None and no figures.
    """
    record = json.loads(RECORD.read_text(encoding="utf-8")) if RECORD.exists() else {}
    rows = []
    for name, info in DATASETS.items():
        row = {"name": name, **info, "source": None}
        path = Path(validate_dir) / name / "metrics.json" if validate_dir else None
        if path is not None and path.is_file():
            try:
                row.update(_overall(json.loads(path.read_text(encoding="utf-8"))), source=str(path))
            except (OSError, json.JSONDecodeError, AttributeError):
                pass
        if row["source"] is None and name in record.get("datasets", {}):
            row.update(record["datasets"][name],
                       source=f"berthwatch's record of make validate ({record.get('recorded', 'undated')}; "
                              "rerun make validate to measure this version)")
        row["meaning"] = meaning(row)
        rows.append(row)
    return rows


def meaning(row: dict) -> str:
    """What the figures imply for a count read off the report."""
    p, r = row.get("precision"), row.get("recall")
    if r is None:
        return "not measured"
    if p is None:
        return (f"Of every 10 labelled ships, about {10 * r:.1f} are detected, so a count misses about "
                f"{100 * (1 - r):.0f} % of such ships; false alarms are not measured, so a count may also "
                "include clutter, wakes or structures.")
    return (f"Of every 10 vessels reported, about {10 * p:.0f} are real; of every 10 real vessels about "
            f"{10 * r:.0f} are found. A count of N therefore stands for about N x {p:.2f} / {r:.2f} = "
            f"{p / r:.1f} N vessels present, in this mode.")


def record(validate_dir: Path) -> Path:
    """Write the shipped record from a ``make validate`` output folder."""
    datasets = {}
    for name in DATASETS:
        path = Path(validate_dir) / name / "metrics.json"
        if path.is_file():
            datasets[name] = _overall(json.loads(path.read_text(encoding="utf-8")))
    if not datasets:
        raise SystemExit(f"{validate_dir}: no <dataset>/metrics.json; run `make validate` first")
    write_json_atomic(RECORD, {"recorded": dt.date.today().isoformat(), "datasets": datasets})
    return RECORD


if __name__ == "__main__":
    print(record(Path(sys.argv[1] if len(sys.argv) > 1 else "out/validate")))
