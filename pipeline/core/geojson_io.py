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
    try:
        fc = json.loads(Path(path).read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise UserError(f"{path}: no such detections file") from None
    except json.JSONDecodeError as exc:
        raise UserError(f"{path}: not valid JSON ({exc})") from None
    feats = fc.get("features") if isinstance(fc, dict) else None
    if not feats or feats[0].get("properties", {}).get("kind") != "aoi_summary":
        raise UserError(f"{path}: first feature must be the aoi_summary")
    summary = feats[0]["properties"]
    missing = [k for k in SUMMARY_FIELDS if k not in summary]
    if missing:
        raise UserError(f"{path}: summary lacks {', '.join(missing)}")
    return summary, feats[1:]


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
