"""``<out>/detections.gpkg``: every detections file of a run in one GeoPackage.

Three layers, WGS84 lon/lat, one row per feature of the GeoJSON files:

``summaries``
    one polygon per AOI and date (the AOI) with the summary's scalar fields,
    ``usable``/``usable_stacks`` and the observed fractions; counts of a date
    unusable for them are NULL, as in ``timeseries.csv``.
``vessels``, ``stacks``
    the vessel outlines and container-stack polygons with their fields
    (:mod:`.features`).

``date`` is a DateTime field (midnight UTC of the date) and ``acquired`` the
scene's acquisition time, so QGIS's temporal controller animates any layer
by date (Layer Properties > Temporal > Single field with date/time: ``date``).
Nested summary fields (per-sensor dicts, lists) are JSON text. The file is
rebuilt from the detections files on every run of detect, written to a
temporary file and renamed; it is left alone when no detections file changed.
"""

from __future__ import annotations

import hashlib
import json
import logging
from pathlib import Path

import geopandas as gpd
import pandas as pd
from shapely.geometry import shape

from ..core import observed
from ..core.atomic import atomic_path
from ..core.errors import UserError
from ..core.geojson_io import read_detections_features
from ..core.manifest import MANIFEST_DIR

log = logging.getLogger(__name__)

LAYERS = ("summaries", "vessels", "stacks")
_KIND_LAYER = {"vessel": "vessels", "container_stack": "stacks"}
#: Geometry type of each layer (so an empty layer still has a schema).
_GEOMETRY_TYPE = {"summaries": "Polygon", "vessels": "Polygon", "stacks": "MultiPolygon"}


def geopackage_path(out_dir: Path) -> Path:
    return Path(out_dir) / "detections.gpkg"


def _flat(props: dict) -> dict:
    """Scalars as they are; dicts and lists as JSON text (GeoPackage fields are scalar)."""
    return {k: json.dumps(v, sort_keys=True) if isinstance(v, (dict, list)) else v for k, v in props.items()}


def _frame(rows: list[dict], geoms: list, layer: str) -> gpd.GeoDataFrame:
    df = pd.DataFrame(rows)
    for col in ("date", "acquired"):
        if col in df:
            df[col] = pd.to_datetime(df[col], utc=True, errors="coerce", format="ISO8601")
    gdf = gpd.GeoDataFrame(df, geometry=gpd.GeoSeries(geoms, crs="EPSG:4326"), crs="EPSG:4326")
    if layer == "stacks":
        gdf.geometry = gdf.geometry.apply(
            lambda g: g if g.geom_type == "MultiPolygon" else shape({"type": "MultiPolygon",
                                                                     "coordinates": [g.__geo_interface__["coordinates"]]}))
    return gdf


def geopackage_layers(files: list[Path]) -> dict[str, gpd.GeoDataFrame]:
    """The three layers built from detections files (unreadable files left out with a warning)."""
    rows: dict[str, list] = {k: [] for k in LAYERS}
    geoms: dict[str, list] = {k: [] for k in LAYERS}
    for path in files:
        try:
            first, *feats = read_detections_features(path)
        except UserError as exc:
            log.warning("detections.gpkg leaves out %s", exc)
            continue
        summary = first["properties"]
        ok = observed.usable(summary)
        s = observed.blank_unusable(dict(summary), ok)
        s.update(usable=ok["vessels"], usable_stacks=ok["stacks"], file=str(path))
        rows["summaries"].append(_flat(s))
        geoms["summaries"].append(shape(first["geometry"]))
        for f in feats:
            layer = _KIND_LAYER.get(f["properties"].get("kind"))
            if layer:
                rows[layer].append(_flat(f["properties"]))
                geoms[layer].append(shape(f["geometry"]))
    return {k: _frame(rows[k], geoms[k], k) for k in LAYERS}


def _key(files: list[Path]) -> str:
    h = hashlib.sha256()
    for p in files:
        st = p.stat()
        h.update(f"{p}\0{st.st_size}\0{st.st_mtime_ns}\n".encode())
    return h.hexdigest()


def write_geopackage(out_dir: Path) -> Path | None:
    """Rebuild ``<out>/detections.gpkg`` from ``<out>/detections/*/*.geojson``; None when there are none."""
    out_dir = Path(out_dir)
    files = sorted((out_dir / "detections").glob("*/*.geojson"))
    dest = geopackage_path(out_dir)
    key_file = out_dir / MANIFEST_DIR / "detections-gpkg.key"
    if not files:
        dest.unlink(missing_ok=True)
        return None
    key = _key(files)
    if dest.exists() and key_file.exists() and key_file.read_text() == key:
        return dest
    layers = geopackage_layers(files)
    with atomic_path(dest) as tmp:
        tmp.unlink()  # GDAL creates the GeoPackage itself; an empty file is not one
        for name, gdf in layers.items():
            gdf.to_file(tmp, layer=name, driver="GPKG", engine="pyogrio",
                        geometry_type=_GEOMETRY_TYPE[name] if gdf.empty else None)
    key_file.parent.mkdir(parents=True, exist_ok=True)
    key_file.write_text(key)
    return dest
