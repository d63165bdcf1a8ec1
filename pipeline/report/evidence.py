"""What lets a reader check the report: thumbnails, the vessel table, links to every data file.

* :func:`write_thumbnails` draws each AOI-date-sensor image with its
  detections (:mod:`.thumbnails`) into ``<report>/thumbnails/`` and returns
  the contact sheet's entries;
* :func:`vessel_rows` is the table of every detected vessel (date, AOI,
  lon/lat, length, sensor, score, whether the date is usable);
* :func:`data_links` lists every file the report was made from or beside it,
  as paths relative to the report folder (the links of ``index.html``).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import logging
import os
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from ..core.atomic import write_bytes_atomic
from ..core.contracts import S1, S2, TileRef, detection_path, timeseries_path
from .thumbnails import thumbnail_path, thumbnail_png, tiles_by_date

log = logging.getLogger(__name__)

SENSOR_LABEL = {S2: "Sentinel-2", S1: "Sentinel-1"}


def rel(path: Path, start: Path) -> str:
    """``path`` relative to ``start``, with forward slashes (a link in HTML)."""
    return Path(os.path.relpath(Path(path).absolute(), Path(start).absolute())).as_posix()


def planned_thumbnails(keys: list[tuple[str, dt.date]], data_dir: Path, dest: Path) -> list[tuple]:
    """``(aoi, date, sensor, tiles, path)`` for each AOI-date of ``keys`` and sensor with tiles on disk."""
    aois = sorted({a for a, _ in keys})
    tiles = tiles_by_date(data_dir, aois) if aois and (Path(data_dir) / "tiles").is_dir() else {}
    out = []
    for aoi, date in sorted(set(keys)):
        for sensor in (S2, S1):
            ts: list[TileRef] = tiles.get((aoi, date, sensor), [])
            if ts:
                out.append((aoi, date, sensor, ts, thumbnail_path(dest, aoi, date, sensor)))
    return out


def write_thumbnails(planned: list[tuple], observations, features: dict, aoi_objects: dict, params,
                     dest: Path, threads: int = 2, index: dict | None = None, code: str = "",
                     reuse: bool = False) -> list[dict]:
    """Draw and write the thumbnails of the observed sensors; one contact-sheet entry per image.

    ``threads`` draw at once: reading the tile, the stretch and the PNG encoding release
    Python's lock, so two threads use two cores. ``index`` (:func:`read_thumbnail_index`,
    updated in place) holds, per thumbnail, a digest of what it was drawn from
    (:func:`thumbnail_inputs_digest`, with ``code``: a digest of the drawing code) and the PNG's
    size and modification time; with ``reuse``, a thumbnail whose digest and file are those
    recorded is kept as it is, so a report over years of dates redraws only the dates whose
    tiles or detections changed. The PNGs themselves carry no digest: the same inputs give the
    same bytes in any folder.
    """
    by_key = {(o.aoi, o.date): o for o in observations}
    jobs = [(by_key[aoi, date], sensor, ts, path) for aoi, date, sensor, ts, path in planned
            if (aoi, date) in by_key and sensor in by_key[aoi, date].clear]
    index = {} if index is None else index

    def draw(job) -> dict:
        o, sensor, ts, path = job
        feats = features.get((o.aoi, o.date), [])
        obj = aoi_objects.get(o.aoi)
        usable = o.sensor_usable(sensor, params)
        n = sum(1 for f in feats if (f.get("properties") or {}).get("kind") == "vessel")
        caption = (f"{o.aoi} {o.date.isoformat()} {SENSOR_LABEL[sensor]}: {round(100 * o.clear[sensor])} % of the AOI "
                   f"clear, {'usable' if usable else 'not usable'}; {n} vessels on the date")
        geometry = obj.geometry if obj else None
        digest = thumbnail_inputs_digest(ts, feats, geometry, o.simulated, caption, code)
        key = str(Path(path).resolve())
        if not (reuse and key in index and index[key] == _index_entry(path, digest)):
            write_bytes_atomic(path, thumbnail_png(ts, feats, geometry, o.simulated, caption))
        index[key] = _index_entry(path, digest)
        return {"aoi": o.aoi, "date": o.date, "sensor": sensor, "label": SENSOR_LABEL[sensor],
                "href": rel(path, dest), "clear_fraction": o.clear[sensor], "usable": usable, "vessels": n,
                "detections": rel(Path(o.source), dest) if o.source else None,
                "tiles": [rel(t.path, dest) for t in ts]}

    if threads <= 1 or len(jobs) < 2:
        return [draw(j) for j in jobs]
    with ThreadPoolExecutor(max_workers=threads, thread_name_prefix="thumbnail") as pool:
        return list(pool.map(draw, jobs))


def _index_entry(path: Path, digest: str) -> dict | None:
    try:
        st = Path(path).stat()
    except OSError:
        return None
    return {"inputs": digest, "size": st.st_size, "mtime_ns": st.st_mtime_ns}


def read_thumbnail_index(index: Path) -> dict:
    """The thumbnail index of :func:`write_thumbnails`, or {} when it is missing or damaged (all is redrawn)."""
    try:
        data = json.loads(Path(index).read_text(encoding="utf-8"))
        return data if isinstance(data, dict) else {}
    except (OSError, ValueError):
        return {}


def vessel_rows(observations, features: dict, params) -> list[dict]:
    """Every detected vessel, by AOI and date; ``usable`` says whether its date counts."""
    rows = []
    for o in sorted(observations, key=lambda o: (o.aoi, o.date)):
        for f in features.get((o.aoi, o.date), []):
            p = f.get("properties") or {}
            if p.get("kind") != "vessel":
                continue
            rows.append({"id": p.get("id"), "date": o.date, "aoi": o.aoi, "lon": p.get("lon"), "lat": p.get("lat"),
                         "length_m": p.get("length_m"), "width_m": p.get("width_m"), "sensor": p.get("sensor"),
                         "sensors": p.get("sensors") or [p.get("sensor")], "score": p.get("score"),
                         "at_berth": bool(p.get("at_berth")), "usable": o.usable(params)})
    return rows


def data_links(out_dir: Path, dest: Path, observations, extra: dict[str, Path] | None = None) -> list[dict]:
    """The run's data files that exist, as ``{"label", "href"}`` relative to the report folder."""
    out_dir = Path(out_dir)
    links = []
    for label, path in (("time series (CSV, one row per AOI and date)", timeseries_path(out_dir)),
                        ("all detections (GeoPackage: summaries, vessels, stacks)", out_dir / "detections.gpkg"),
                        ("summary.json (machine-readable results)", dest / "summary.json"),
                        ("report.md (this report as Markdown)", dest / "report.md"), *(extra or {}).items()):
        if Path(path).exists() or Path(path).parent == dest:
            links.append({"label": label, "href": rel(path, dest)})
    for o in sorted(observations, key=lambda o: (o.aoi, o.date)):
        path = Path(o.source) if o.source else detection_path(out_dir, o.aoi, o.date)
        links.append({"label": f"detections {o.aoi} {o.date.isoformat()} (GeoJSON)", "href": rel(path, dest)})
    return links


def thumbnail_inputs_digest(tiles: list[TileRef], features: list[dict], aoi_geometry, simulated: bool,
                            caption: str, code: str) -> str:
    """Digest of what a thumbnail shows: its tiles (path, size, modification time), the date's
    detections, the AOI outline, the stamp, the caption and the drawing code."""
    h = hashlib.sha256()
    for t in tiles:
        st = Path(t.path).stat()
        h.update(f"{Path(t.path).resolve()}|{st.st_size}|{st.st_mtime_ns}\n".encode())
    h.update(json.dumps(features, sort_keys=True, default=str).encode())
    h.update(f"|{aoi_geometry.wkt if aoi_geometry is not None else ''}|{simulated}|{caption}|{code}".encode())
    return h.hexdigest()


def thumbnail_outputs(planned: list[tuple]) -> list[Path]:
    return [p for *_, p in planned]


def thumbnail_inputs(planned: list[tuple]) -> list[Path]:
    return sorted({t.path for *_, ts, _ in planned for t in ts})


def dates_without_tiles(observations, entries: list[dict]) -> list[tuple[str, dt.date]]:
    """AOI-dates of the report with no image drawn (their tiles are not under ``--data-dir``)."""
    have = {(e["aoi"], e["date"]) for e in entries}
    return sorted({(o.aoi, o.date) for o in observations} - have)
