"""What the previous runs left in an output folder, read from the detect manifest and the outputs.

``berthwatch update`` compares two snapshots of the output folder, taken before
and after a night's run: the acquisitions the detect stage has processed (the
tiles recorded as inputs of each detections file in
``<out>/.berthwatch/manifest-detect.json``), the fingerprints of the
detections files (so it knows which AOI-dates were recomputed, and whether the
AOI's reference files were among the changed inputs), the rows of
``timeseries.csv`` and the report's ``summary.json``. Nothing here writes.
"""

from __future__ import annotations

import csv
import datetime as dt
import json
import re
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

from ..core.contracts import report_dir, timeseries_path
from ..core.errors import UserError
from ..core.manifest import MANIFEST_DIR

#: A tile among a detections file's recorded inputs: ``.../tiles/<aoi>/<sensor>/<date>/<scene>.tif``.
TILE_INPUT = re.compile(r"(?:^|/)tiles/(?P<aoi>[^/]+)/(?P<sensor>[^/]+)/(?P<date>\d{4}-\d{2}-\d{2})/"
                        r"(?P<scene>[^/]+)\.tif$")
#: The AOI's reference files (water mask, Sentinel-2 median, yards) among the inputs.
REFERENCE_INPUT = re.compile(r"(?:^|/)" + re.escape(MANIFEST_DIR) + r"/reference/")


@dataclass(frozen=True)
class Acquisition:
    """One tile the detect stage has processed: an AOI, a sensor, a UTC date and a scene."""

    aoi: str
    sensor: str
    date: dt.date
    scene: str


@dataclass
class DetectionRecord:
    """A detections file as its manifest entry describes it."""

    key: str                      # "<aoi>/<date>"
    aoi: str
    date: dt.date
    output_sha256: str
    output_mtime_ns: int
    tiles: dict[str, str]         # tile input -> sha256
    reference: dict[str, str]     # reference input -> sha256
    params_hash: str


@dataclass
class Snapshot:
    """The state of an output folder at one moment."""

    detections: dict[str, DetectionRecord] = field(default_factory=dict)
    timeseries: dict[tuple[str, str], dict] = field(default_factory=dict)
    summary: dict | None = None

    @property
    def acquisitions(self) -> set[Acquisition]:
        out = set()
        for rec in self.detections.values():
            for path in rec.tiles:
                m = TILE_INPUT.search(path)
                out.add(Acquisition(m["aoi"], m["sensor"], dt.date.fromisoformat(m["date"]), m["scene"]))
        return out

    def last_processed(self) -> dict[tuple[str, str], dt.date]:
        """The date of the last processed acquisition per (AOI, sensor)."""
        last: dict[tuple[str, str], dt.date] = {}
        for a in self.acquisitions:
            if (a.aoi, a.sensor) not in last or a.date > last[(a.aoi, a.sensor)]:
                last[(a.aoi, a.sensor)] = a.date
        return last


def read_detect_manifest(out_dir: Path) -> dict[str, DetectionRecord]:
    """The detections files recorded in ``<out>/.berthwatch/manifest-detect.json`` that still exist."""
    path = Path(out_dir) / MANIFEST_DIR / "manifest-detect.json"
    if not path.exists():
        return {}
    try:
        entries = json.loads(path.read_text(encoding="utf-8")).get("outputs", {})
    except (json.JSONDecodeError, OSError, UnicodeDecodeError, AttributeError) as exc:
        raise UserError(f"{path}: unreadable manifest ({exc}); delete it to rebuild") from None
    records = {}
    for rel, entry in entries.items():
        if not rel.startswith("detections/") or not isinstance(entry, dict):
            continue
        if not (Path(out_dir) / rel).exists():
            continue
        key = str(entry.get("key", ""))
        aoi, _, day = key.partition("/")
        try:
            date = dt.date.fromisoformat(day)
        except ValueError:
            continue
        inputs = entry.get("inputs") or {}
        tiles = {p: rec.get("sha256", "") for p, rec in inputs.items() if TILE_INPUT.search(p)}
        reference = {p: rec.get("sha256", "") for p, rec in inputs.items() if REFERENCE_INPUT.search(p)}
        out = entry.get("output") or {}
        records[key] = DetectionRecord(key, aoi, date, str(out.get("sha256", "")), int(out.get("mtime_ns", 0)),
                                       tiles, reference, str(entry.get("params_hash", "")))
    return records


def read_timeseries(out_dir: Path) -> dict[tuple[str, str], dict]:
    """Rows of ``timeseries.csv`` by (aoi, ISO date); empty when there is none yet."""
    path = timeseries_path(out_dir)
    if not path.exists():
        return {}
    try:
        with open(path, newline="", encoding="utf-8") as f:
            return {(row["aoi"], row["date"]): row for row in csv.DictReader(f)}
    except (OSError, KeyError, UnicodeDecodeError, csv.Error) as exc:
        raise UserError(f"{path}: unreadable time series ({exc})") from None


def read_summary(out_dir: Path) -> dict | None:
    """The report's ``summary.json``, or None before the first report."""
    path = report_dir(out_dir) / "summary.json"
    if not path.exists():
        return None
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, OSError, UnicodeDecodeError) as exc:
        raise UserError(f"{path}: unreadable report summary ({exc})") from None
    if not isinstance(data, dict):
        raise UserError(f"{path}: not a JSON object")
    return data


def snapshot(out_dir: Path) -> Snapshot:
    return Snapshot(read_detect_manifest(out_dir), read_timeseries(out_dir), read_summary(out_dir))


def recomputed(before: Snapshot, after: Snapshot) -> dict[str, str]:
    """AOI-dates whose detections file was written between the snapshots, each with why.

    Reasons, first that applies: ``new`` (no file before), ``new tiles`` (its
    set of tiles changed: a further sensor or a replaced product),
    ``reference changed`` (the AOI's reference water mask, Sentinel-2 median or
    yards changed, which every date of the AOI depends on), ``parameters``
    (detector parameters, version or code), ``retried`` (same inputs; e.g. a
    date that had failed).
    """
    out = {}
    for key, rec in after.detections.items():
        old = before.detections.get(key)
        if old is None:
            out[key] = "new"
        elif (old.output_sha256, old.output_mtime_ns) == (rec.output_sha256, rec.output_mtime_ns):
            continue
        elif old.tiles != rec.tiles:
            out[key] = "new tiles"
        elif old.reference != rec.reference:
            out[key] = "reference changed"
        elif old.params_hash != rec.params_hash:
            out[key] = "parameters"
        else:
            out[key] = "retried"
    return dict(sorted(out.items()))


def new_acquisitions(before: Snapshot, after: Snapshot) -> dict[tuple[str, dt.date], list[Acquisition]]:
    """Acquisitions processed since ``before``, grouped by (AOI, date)."""
    grouped: dict[tuple[str, dt.date], list[Acquisition]] = defaultdict(list)
    for a in sorted(after.acquisitions - before.acquisitions, key=lambda a: (a.aoi, a.date, a.sensor, a.scene)):
        grouped[(a.aoi, a.date)].append(a)
    return dict(grouped)
