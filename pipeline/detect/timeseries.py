"""``<out>/timeseries.csv``: one row per detections file, rebuilt from all of them."""

from __future__ import annotations

from pathlib import Path

from ..core import observed
from ..core.contracts import S1, S2, TIMESERIES_COLUMNS, timeseries_path
from ..core.geojson_io import write_csv
from .detection_files import detection_files, read_detection_files


def _bool(value) -> str:
    return "true" if value else "false"


def timeseries_rows(parsed: list[tuple[Path, list[dict]]]) -> list[dict]:
    """One row per detections file of ``parsed`` (:func:`.detection_files.read_detection_files`), in its order.

    Counts of a date that is not usable for them (:func:`..core.observed.usable`:
    too little of the AOI, its berths or its yards seen clearly) are left empty:
    unobserved is missing, never 0. ``usable*`` and ``observed_fraction*`` say why.
    """
    rows = []
    for _, feats in parsed:
        s = feats[0]["properties"]
        cf = s.get("clear_fraction") or {}
        fr = observed.summary_fractions(s)
        ok = observed.usable(s)
        row = {
            "portid": s["aoi"], "portname": s.get("aoi_name") or s["aoi"], "date": s["date"], "aoi": s["aoi"],
            "role": s.get("role"), "sensors": ";".join(s["sensors"]), "scenes": ";".join(s["scenes"]),
            "clear_fraction_s2": cf.get(S2), "clear_fraction_s1": cf.get(S1),
            **{k: s.get(k) for k in ("vessels", "vessels_at_berth", "large_vessels", "container_stack_area_m2",
                                     "teu_estimate", "teu_low", "teu_high", "detector_version", "params_hash")},
            "simulated": _bool(s.get("simulated")),
            "usable": _bool(ok["vessels"]), "usable_stacks": _bool(ok["stacks"]),
            "usable_s2": _bool(ok.get(S2, False)), "usable_s1": _bool(ok.get(S1, False)),
            "s1_polarisations": s.get("s1_polarisations"),
        }
        for sensor, tag in ((S2, "s2"), (S1, "s1")):
            zones = fr.get(sensor) or {}
            row[f"observed_fraction_{tag}"] = zones.get("aoi")
            row[f"observed_fraction_{tag}_berths"] = zones.get("berths")
            if sensor == S2:
                row["observed_fraction_s2_yards"] = zones.get("yards")
        rows.append(observed.blank_unusable(row, ok))
    return rows


def write_timeseries(out_dir: Path, parsed: list[tuple[Path, list[dict]]] | None = None) -> int:
    """Rebuild ``<out>/timeseries.csv`` from the detections files (``parsed``: already read); return its rows."""
    if parsed is None:
        parsed = read_detection_files(detection_files(out_dir))
    rows = timeseries_rows(parsed)
    write_csv(timeseries_path(out_dir), rows, TIMESERIES_COLUMNS)
    return len(rows)
