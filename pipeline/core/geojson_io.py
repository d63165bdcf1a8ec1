"""RFC 7946 GeoJSON writing and reading for the detections contract.

Geometries are reprojected to WGS84 lon/lat, polygon exteriors made
counter-clockwise (holes clockwise) and coordinates rounded to 1e-7 degrees
(about 1 cm), so QGIS, GDAL/OGR and geopandas read the files as they are.
"""

from __future__ import annotations

import csv
import io
import json
import math
from pathlib import Path
from typing import Any, Iterable

import numpy as np
import shapely
from pyproj import CRS
from shapely.geometry import MultiPolygon, Polygon, mapping, shape
from shapely.geometry.polygon import orient

from .aoi import reproject_geometry
from .atomic import write_text_atomic
from .contracts import SUMMARY_FIELDS, TIMESERIES_COLUMNS
from .errors import UserError


def to_lonlat(crs: CRS):
    """A function reprojecting shapely geometries from ``crs`` to WGS84 lon/lat."""
    wgs84 = CRS.from_epsg(4326)
    return lambda geom: reproject_geometry(geom, crs, wgs84)


def rfc7946_geometry(geom) -> dict:
    """GeoJSON geometry dict with right-hand-rule rings and 7-decimal coordinates."""
    if isinstance(geom, Polygon):
        geom = orient(geom, 1.0)
    elif isinstance(geom, MultiPolygon):
        geom = MultiPolygon([orient(p, 1.0) for p in geom.geoms])
    geom = shapely.transform(geom, lambda xy: np.round(xy, 7))
    return mapping(geom)


def _clean(value: Any) -> Any:
    """JSON-safe property values (numpy scalars to Python, NaN to null)."""
    if isinstance(value, dict):
        return {k: _clean(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_clean(v) for v in value]
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float):
        return None if not math.isfinite(value) else round(value, 6)
    return value


def feature(geom_lonlat, properties: dict) -> dict:
    return {"type": "Feature", "properties": _clean(properties), "geometry": rfc7946_geometry(geom_lonlat)}


def feature_collection_text(features: Iterable[dict], **foreign: Any) -> str:
    fc = {"type": "FeatureCollection", **_clean(foreign), "features": list(features)}
    return json.dumps(fc, ensure_ascii=False, allow_nan=False, separators=(",", ":")) + "\n"


def write_feature_collection(path: Path, features: Iterable[dict], **foreign: Any) -> None:
    """Write a FeatureCollection atomically. ``foreign`` members go at the top level."""
    write_text_atomic(path, feature_collection_text(features, **foreign))


def read_detections(path: Path) -> tuple[dict, list[dict]]:
    """The summary properties and the other features of a detections file."""
    feats = read_detections_features(path)
    return feats[0]["properties"], feats[1:]


def read_detections_features(path: Path) -> list[dict]:
    """Every feature of a detections file, the ``aoi_summary`` first (checked as :func:`read_detections` does)."""
    try:
        fc = json.loads(Path(path).read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise UserError(f"{path}: no such detections file") from None
    except OSError as exc:
        raise UserError(f"{path}: cannot read ({exc.strerror})") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise UserError(f"{path}: not valid JSON ({exc})") from None
    feats = fc.get("features") if isinstance(fc, dict) else None
    if not isinstance(feats, list) or not feats or not all(
            isinstance(f, dict) and isinstance(f.get("properties"), dict) for f in feats):
        raise UserError(f"{path}: not a FeatureCollection of features with properties")
    if feats[0]["properties"].get("kind") != "aoi_summary":
        raise UserError(f"{path}: first feature must be the aoi_summary")
    summary = feats[0]["properties"]
    missing = [k for k in SUMMARY_FIELDS if k not in summary]
    if missing:
        raise UserError(f"{path}: summary lacks {', '.join(missing)}")
    problem = _summary_problem(summary)
    if problem:
        raise UserError(f"{path}: summary {problem}")
    return feats


def _summary_problem(s: dict) -> str | None:
    """What in a summary has the wrong kind (the report and the table rely on these)."""
    import datetime as dt

    for key in ("sensors", "scenes"):
        if not isinstance(s[key], list) or not all(isinstance(v, str) for v in s[key]):
            return f"'{key}' must be a list of names, got {s[key]!r}"
    if not isinstance(s["aoi"], str):
        return f"'aoi' must be an AOI id, got {s['aoi']!r}"
    try:
        dt.date.fromisoformat(str(s["date"]))
    except ValueError:
        return f"'date' {s['date']!r} is not a date (YYYY-MM-DD)"
    if not isinstance(s["clear_fraction"], dict):
        return f"'clear_fraction' must map sensors to fractions, got {s['clear_fraction']!r}"
    for key in ("vessels", "vessels_at_berth", "large_vessels"):
        v = s[key]
        if not isinstance(v, int) or isinstance(v, bool) or v < 0:
            return f"'{key}' must be a count, got {v!r}"
    for key in ("container_stack_area_m2", "teu_estimate", "teu_low", "teu_high"):
        v = s[key]
        if v is not None and (not isinstance(v, (int, float)) or isinstance(v, bool) or not math.isfinite(v)
                              or v < 0):
            return f"'{key}' must be a non-negative number or null, got {v!r}"
    return None


def feature_shapes(features: list[dict], kind: str) -> list[tuple[Any, dict]]:
    """(shapely geometry in lon/lat, properties) of the features of one kind."""
    return [(shape(f["geometry"]), f["properties"]) for f in features if f["properties"].get("kind") == kind]


def write_csv(path: Path, rows: list[dict], columns: tuple[str, ...] = TIMESERIES_COLUMNS) -> None:
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=list(columns), extrasaction="ignore", lineterminator="\n")
    w.writeheader()
    for row in rows:
        w.writerow({k: ("" if row.get(k) is None else row.get(k)) for k in columns})
    text = buf.getvalue()
    # Rebuilt on every run: leave an unchanged file alone so its mtime says when it last changed.
    if Path(path).is_file() and Path(path).read_text(encoding="utf-8") == text:
        return
    write_text_atomic(path, text)
