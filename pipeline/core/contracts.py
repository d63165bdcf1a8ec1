"""The contracts between stages: where files live and what they hold.

tiles (fetch -> detect)
    ``<data>/tiles/<aoi>/<sensor>/<YYYY-MM-DD>/<scene-id>.tif``: Cloud-Optimized
    GeoTIFF on the AOI's UTM grid at 10 m, float32, NaN = no data, one named band
    per entry of :data:`SENSOR_BANDS`. Beside it ``<scene-id>.json``, a STAC Item.
detections (detect -> report)
    ``<out>/detections/<aoi>/<YYYY-MM-DD>.geojson`` and ``<out>/timeseries.csv``;
    the fields are :data:`SUMMARY_FIELDS`, :data:`VESSEL_FIELDS`, :data:`STACK_FIELDS`.
report
    ``<out>/report/`` with ``index.html``, ``report.md``, ``summary.json`` and PNGs.
"""

from __future__ import annotations

import datetime as dt
import glob
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pystac
import rasterio
from rasterio.io import MemoryFile
from rasterio.shutil import copy as rio_copy

from . import stac_fields
from .aoi import Grid, grid_footprint_lonlat
from .atomic import atomic_path, write_json_atomic
from .errors import UserError
from .manifest import sha256_file

S2 = "sentinel-2-l2a"
S1 = "sentinel-1-grd"
#: Bands of each sensor's tile, in file order. S2: surface reflectance (0-1) and the
#: L2A scene classification (SCL) stored as float32 class codes (NaN = no data).
#: S1: sigma0 in linear power.
SENSOR_BANDS: dict[str, tuple[str, ...]] = {
    S2: ("B02", "B03", "B04", "B08", "B11", "SCL"),
    S1: ("VV", "VH"),
}
SENSORS = tuple(SENSOR_BANDS)
#: Band sets a Sentinel-1 tile may hold, co-polarised band first, as the products
#: come: dual VV+VH (1SDV, fetch writes these), single VV (1SSV), dual HH+HV (1SDH,
#: polar and some coastal acquisitions) and single HH (1SSH).
S1_POLARISATIONS: tuple[tuple[str, ...], ...] = (("VV", "VH"), ("VV",), ("HH", "HV"), ("HH",))


def allowed_bands(sensor: str) -> tuple[tuple[str, ...], ...]:
    """The band sets a tile of ``sensor`` may hold, in file order."""
    return S1_POLARISATIONS if sensor == S1 else (SENSOR_BANDS[sensor],)


def polarisation_bands(bands) -> tuple[str, str | None]:
    """Names of the co-polarised (VV or HH) and cross-polarised (VH, HV or None) bands of an S1 image."""
    names = tuple(bands)
    for allowed in S1_POLARISATIONS:
        if set(allowed) <= set(names) and (len(allowed) == 2 or allowed[0] in names):
            return allowed[0], (allowed[1] if len(allowed) == 2 else None)
    raise ValueError(f"Sentinel-1 bands {names} are none of {S1_POLARISATIONS}")


def polarisation_label(bands) -> str:
    """``VV+VH``, ``VV``, ``HH+HV`` or ``HH``: the polarisations an S1 image provides."""
    co, cross = polarisation_bands(bands)
    return co + (f"+{cross}" if cross else "")
SCENE_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")

#: Summary properties of the first feature of a detections file.
SUMMARY_FIELDS = (
    "kind", "aoi", "date", "sensors", "scenes", "clear_fraction", "vessels", "vessels_at_berth",
    "large_vessels", "container_stack_area_m2", "teu_estimate", "teu_low", "teu_high",
    "detector_version", "params_hash",
)
VESSEL_FIELDS = ("kind", "length_m", "width_m", "heading_deg", "area_m2", "score", "at_berth", "sensor", "scene")
STACK_FIELDS = ("kind", "area_m2", "teu_estimate")
#: Columns of timeseries.csv; ``portid``/``portname``/``date`` first so it joins with
#: per-port daily tables such as IMF PortWatch's.
TIMESERIES_COLUMNS = (
    "portid", "portname", "date", "aoi", "role", "sensors", "scenes", "clear_fraction_s2",
    "clear_fraction_s1", "vessels", "vessels_at_berth", "large_vessels", "container_stack_area_m2",
    "teu_estimate", "teu_low", "teu_high", "simulated", "detector_version", "params_hash",
    # Appended (earlier columns keep their positions): which counts mean something (core.observed).
    # Counts of a date unusable for them are empty, never 0.
    "usable", "usable_stacks", "usable_s2", "usable_s1",
    "observed_fraction_s2", "observed_fraction_s2_berths", "observed_fraction_s2_yards",
    "observed_fraction_s1", "observed_fraction_s1_berths",
    # Appended: which Sentinel-1 polarisations the detectors had (VV+VH, VV, HH+HV, HH).
    "s1_polarisations",
)
LARGE_VESSEL_M = 80.0


# ---------------------------------------------------------------- paths
def tile_dir(data_dir: Path, aoi: str, sensor: str, date: dt.date) -> Path:
    return Path(data_dir) / "tiles" / aoi / sensor / date.isoformat()


def tile_path(data_dir: Path, aoi: str, sensor: str, date: dt.date, scene_id: str) -> Path:
    if not SCENE_ID.match(scene_id):
        raise ValueError(f"scene id {scene_id!r} has characters not allowed in a file name")
    return tile_dir(data_dir, aoi, sensor, date) / f"{scene_id}.tif"


def item_path(tile: Path) -> Path:
    return tile.with_suffix(".json")


def detection_path(out_dir: Path, aoi: str, date: dt.date) -> Path:
    return Path(out_dir) / "detections" / aoi / f"{date.isoformat()}.geojson"


def timeseries_path(out_dir: Path) -> Path:
    return Path(out_dir) / "timeseries.csv"


def median_composite_path(out_dir: Path, aoi: str) -> Path:
    """The AOI's Sentinel-2 per-band median composite written by detect (the report's basemap)."""
    return Path(out_dir) / ".berthwatch" / "reference" / f"{aoi}-s2-median.tif"


def report_dir(out_dir: Path) -> Path:
    return Path(out_dir) / "report"


@dataclass(frozen=True)
class TileRef:
    """A tile found on disk by :func:`find_tiles`."""

    aoi: str
    sensor: str
    date: dt.date
    scene_id: str
    path: Path

    @property
    def item(self) -> Path:
        return item_path(self.path)


def find_tiles(data_dir: Path, aois=None, sensors=None, start=None, end=None) -> list[TileRef]:
    """Tiles under ``<data>/tiles`` matching the filters, sorted by aoi, date, sensor."""
    root = Path(data_dir) / "tiles"
    out = []
    if not root.is_dir():
        return out
    # Only the folders of the AOIs and sensors asked for are listed (one AOI of many: not the whole tree).
    patterns = [f"{a}/{s}/*/*.tif" for a in (dict.fromkeys(map(glob.escape, aois)) if aois else ["*"])
                for s in (dict.fromkeys(map(glob.escape, sensors)) if sensors else ["*"])]
    for tif in (t for pattern in patterns for t in root.glob(pattern)):
        if tif.name.startswith(".") or not tif.is_file():
            continue  # temporary file of an interrupted write
        aoi, sensor, day = tif.parts[-4], tif.parts[-3], tif.parts[-2]
        try:
            date = dt.date.fromisoformat(day)
        except ValueError:
            continue
        if (aois and aoi not in aois) or (sensors and sensor not in sensors) or sensor not in SENSOR_BANDS:
            continue
        if (start and date < start) or (end and date > end):
            continue
        out.append(TileRef(aoi, sensor, date, tif.stem, tif))
    return sorted(out, key=lambda t: (t.aoi, t.date, t.sensor, t.scene_id))


# ---------------------------------------------------------------- tiles
def write_tile(path: Path, bands: dict[str, np.ndarray], grid: Grid, sensor: str) -> None:
    """Write a tile as a Cloud-Optimized GeoTIFF, atomically.

    ``bands`` must hold exactly the sensor's bands, each ``(grid.height, grid.width)``.
    """
    names = next((a for a in allowed_bands(sensor) if set(a) == set(bands)), None)
    if names is None:
        raise ValueError(f"{sensor} tile needs bands {' or '.join(map(str, allowed_bands(sensor)))}, "
                         f"got {tuple(bands)}")
    stack = np.stack([np.asarray(bands[n], dtype=np.float32) for n in names])
    if stack.shape[1:] != (grid.height, grid.width):
        raise ValueError(f"band shape {stack.shape[1:]} != grid {(grid.height, grid.width)}")
    profile = dict(driver="GTiff", dtype="float32", count=len(names), width=grid.width, height=grid.height,
                   crs=grid.crs, transform=grid.transform, nodata=np.nan)
    with MemoryFile() as mem:
        with mem.open(**profile) as ds:
            ds.write(stack)
            for i, n in enumerate(names, 1):
                ds.set_band_description(i, n)
            # What QGIS and GDAL need to show the tile right: R, G, B bands named as such
            # (true colour by default) and each band's unit; the values stay as stored.
            describe_bands(ds, sensor)
            ds.update_tags(sensor=sensor)
        with mem.open() as src, atomic_path(path) as tmp:
            # ZSTD level 1 with the floating-point predictor: 2-5x faster to write and
            # read than DEFLATE at about the same size; GDAL >= 2.3 (QGIS, rasterio) reads it.
            # 256-px blocks: AOI tiles are a few hundred pixels a side, and 512-px edge
            # blocks are mostly padding that is decoded on every read (Dunai, 674 x 633:
            # 2.5x the pixels; a read takes 34 ms instead of 46).
            rio_copy(src, tmp, driver="COG", compress="ZSTD", level=1, predictor=3, blocksize=256,
                     overviews="AUTO", resampling="average")


def describe_bands(ds, sensor: str) -> None:
    """Colour interpretation (Sentinel-2 B04/B03/B02 as red/green/blue) and units of an open tile."""
    from rasterio.enums import ColorInterp

    names = tuple(ds.descriptions)  # the tile's own bands (Sentinel-1 may be single-polarised)
    rgb = {"B04": ColorInterp.red, "B03": ColorInterp.green, "B02": ColorInterp.blue}
    ds.colorinterp = [rgb.get(n, ColorInterp.gray if i == 0 else ColorInterp.undefined) if sensor == S2
                      else (ColorInterp.gray if i == 0 else ColorInterp.undefined) for i, n in enumerate(names)]
    for i, entry in enumerate(stac_fields.band_entries(names, sensor == S2), 1):
        ds.set_band_unit(i, entry["unit"])
        ds.update_tags(i, description=entry["description"])
    if sensor == S1:
        ds.update_tags(display_hint="linear power: show 10*log10(value), about -25 to 0 dB")


def read_tile(path: Path) -> tuple[dict[str, np.ndarray], Grid]:
    """Bands of a tile by name, and its grid."""
    with rasterio.open(path) as ds:
        names = ds.descriptions
        data = ds.read()
        grid = Grid(ds.crs, ds.transform, ds.width, ds.height)
    return {n: data[i] for i, n in enumerate(names)}, grid


def validate_tile(path: Path, sensor: str, grid: Grid | None = None) -> None:
    """Check a tile against the contract; raise :class:`UserError` naming the problem."""
    try:
        ds = rasterio.open(path)
    except rasterio.errors.RasterioIOError as exc:
        raise UserError(f"{path}: not a readable GeoTIFF ({exc})") from None
    with ds:
        if ds.driver != "GTiff":
            raise UserError(f"{path}: driver {ds.driver}, expected GTiff/COG")
        if tuple(ds.descriptions) not in allowed_bands(sensor):
            raise UserError(f"{path}: bands {ds.descriptions}, expected "
                            f"{' or '.join(map(str, allowed_bands(sensor)))}")
        if any(dt_ != "float32" for dt_ in ds.dtypes):
            raise UserError(f"{path}: dtype {ds.dtypes[0]}, expected float32")
        if grid is not None:
            if ds.crs != grid.crs or (ds.width, ds.height) != (grid.width, grid.height) or \
                    not ds.transform.almost_equals(grid.transform):
                raise UserError(f"{path}: grid {ds.crs} {ds.width}x{ds.height} differs from the AOI grid "
                                f"{grid.crs} {grid.width}x{grid.height}")
        if ds.tags(ns="IMAGE_STRUCTURE").get("LAYOUT") != "COG":
            raise UserError(f"{path}: not a Cloud-Optimized GeoTIFF")
        try:
            data = ds.read()
        except rasterio.errors.RasterioIOError as exc:
            raise UserError(f"{path}: truncated or corrupt data ({exc})") from None
    finite = np.isfinite(data)
    if not finite.any():
        raise UserError(f"{path}: no valid pixel (all no data)")
    if np.isinf(data).any():
        raise UserError(f"{path}: infinite values")
    for i, name in enumerate(ds.descriptions):
        problem = physical_range_problem(name, data[i])
        if problem:
            raise UserError(f"{path}: {problem}")


def write_item(
    tile: Path, *, sensor: str, grid: Grid, datetime: dt.datetime, platform: str, source: str,
    product_ids: list[str], processing: dict, simulated: bool = False, extra: dict | None = None,
) -> pystac.Item:
    """Write the STAC Item beside a tile (atomically) and return it.

    Holds the acquisition time, platform, source, product ids, processing options and
    the tile's SHA-256 (``file:checksum`` as a multihash). Never put credentials here.
    """
    footprint = grid_footprint_lonlat(grid)
    if datetime.tzinfo is None:
        datetime = datetime.replace(tzinfo=dt.timezone.utc)
    scl = None
    if sensor == S2:
        with rasterio.open(tile) as ds:
            scl = ds.read(SENSOR_BANDS[S2].index("SCL") + 1)
    centre = footprint.centroid
    extensions, ext_props, asset_fields = stac_fields.item_fields(sensor == S2, _tile_bands(tile), datetime,
                                                                   (centre.x, centre.y), scl)
    props = {
        "platform": platform,
        "constellation": "sentinel-1" if sensor == S1 else "sentinel-2",
        "berthwatch:sensor": sensor,
        "berthwatch:source": source,
        "berthwatch:product_ids": list(product_ids),
        "berthwatch:processing": processing,
        "berthwatch:simulated": bool(simulated),
        "proj:code": f"EPSG:{grid.crs.to_epsg()}",
        "proj:shape": [grid.height, grid.width],
        "proj:transform": list(grid.transform)[:6],
        "proj:bbox": list(grid.bounds),
        **ext_props,
        **(extra or {}),
    }
    item = pystac.Item(id=tile.stem, geometry=footprint.__geo_interface__, bbox=list(footprint.bounds),
                       datetime=datetime, properties=props, stac_extensions=extensions)
    item.add_asset("data", pystac.Asset(
        href=f"./{tile.name}", media_type=pystac.MediaType.COG, roles=["data"],
        title=f"{sensor} tile, {', '.join(_tile_bands(tile))}",
        extra_fields={"file:checksum": "1220" + sha256_file(tile), "file:size": tile.stat().st_size,
                      **asset_fields},
    ))
    write_json_atomic(item_path(tile), item.to_dict(include_self_link=False, transform_hrefs=False))
    return item


def _tile_bands(tile: Path) -> tuple[str, ...]:
    with rasterio.open(tile) as ds:
        return tuple(ds.descriptions)


def read_item(tile: Path) -> dict:
    """The STAC item beside ``tile``, checked to be an object with an ``assets`` object."""
    import json

    p = item_path(tile)
    try:
        item = json.loads(p.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise UserError(f"{p}: STAC item missing beside its tile") from None
    except IsADirectoryError:
        raise UserError(f"{p}: is a folder, expected the tile's STAC item") from None
    except OSError as exc:
        raise UserError(f"{p}: cannot read ({exc.strerror})") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise UserError(f"{p}: not valid JSON ({exc})") from None
    if not isinstance(item, dict):
        raise UserError(f"{p}: a STAC item must be a JSON object, got {type(item).__name__}")
    for key in ("assets", "properties"):
        if key in item and not isinstance(item[key], dict):
            raise UserError(f"{p}: '{key}' must be an object, got {type(item[key]).__name__}")
    return item


#: Physically possible values per band. Sentinel-2 L2A reflectance: 0-65535 DN with
#: the -1000 DN offset of baseline 04.00, scaled by 1/10000; SCL: class codes 0-11.
#: Sentinel-1 sigma0: non-negative power, at most +40 dB (corner reflectors, hulls).
#: A tile beyond these was corrupted or written in other units (DN instead of
#: reflectance, dB instead of linear power), and would give plausible wrong numbers.
PHYSICAL_RANGE = {**{b: (-0.1, 6.5536) for b in ("B02", "B03", "B04", "B08", "B11")}, "SCL": (0.0, 11.0),
                  **{b: (0.0, 1e4) for b in ("VV", "VH", "HH", "HV")}}


def physical_range_problem(name: str, data: np.ndarray) -> str | None:
    """Why the finite values of band ``name`` cannot be a real measurement, or None."""
    low, high = PHYSICAL_RANGE[name]
    finite = data[np.isfinite(data)]
    if finite.size == 0:
        return None
    lo, hi = float(finite.min()), float(finite.max())
    if lo < low - 1e-6 or hi > high + 1e-6:
        return f"band {name} has values {lo:.4g}..{hi:.4g} outside the physical range {low:g}..{high:g}"
    return None


def unreadable_date_folders(data_dir: Path, aois=None, sensors=None) -> dict[str, str]:
    """``{"<aoi>/<date>": reason}`` for date folders of tiles that cannot be listed.

    :func:`find_tiles` cannot see tiles in them; their dates fail with this reason
    instead of silently vanishing from the results.
    """
    import os

    root = Path(data_dir) / "tiles"
    problems: dict[str, str] = {}
    if not root.is_dir():
        return problems
    for aoi_dir in sorted(p for p in root.iterdir() if p.is_dir() and (not aois or p.name in aois)):
        for sensor_dir in sorted(p for p in aoi_dir.iterdir() if p.is_dir() and p.name in SENSOR_BANDS
                                 and (not sensors or p.name in sensors)):
            if not os.access(sensor_dir, os.R_OK | os.X_OK):
                problems[f"{aoi_dir.name}/{sensor_dir.name}"] = f"{sensor_dir}: folder not readable"
                continue
            for day in sorted(sensor_dir.iterdir()):
                try:
                    dt.date.fromisoformat(day.name)
                except ValueError:
                    continue
                try:
                    os.listdir(day)  # also a dangling or looping link, an I/O error
                except NotADirectoryError:
                    continue
                except OSError as exc:
                    problems[f"{aoi_dir.name}/{day.name}"] = f"{day}: folder not readable ({exc.strerror})"
                    continue
                if not os.access(day, os.R_OK | os.X_OK):
                    problems[f"{aoi_dir.name}/{day.name}"] = f"{day}: folder not readable (permission denied)"
    return problems


def tile_checksum_ok(tile: Path) -> bool:
    """True when the tile exists and matches the checksum recorded in its STAC item."""
    if not tile.exists() or not item_path(tile).exists():
        return False
    try:
        recorded = read_item(tile)["assets"]["data"]["file:checksum"]
    except (UserError, KeyError):
        return False
    return recorded == "1220" + sha256_file(tile)
