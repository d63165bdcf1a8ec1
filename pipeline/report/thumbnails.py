"""The image behind every count: one thumbnail per AOI, date and sensor, detections drawn.

``<out>/report/thumbnails/<aoi>/<date>-s2.png`` is the Sentinel-2 true colour
(B04 B03 B02, stretched between the 2nd and 98th percentiles of the date's
clear pixels, gamma 1/1.6) and ``<date>-s1.png`` the Sentinel-1 VV backscatter
in dB as greyscale (-25 dB black to 0 dB white, the range of sea clutter to
steel hulls), both at the tile's native 10 m (one image pixel per tile pixel),
north up. Drawn on them: vessels (outline and a ring around it, red at berth,
cyan otherwise), container stacks (orange, half transparent) and the AOI
outline (thin white line). Pixels without data are dark grey. Saved as
256-colour PNG (about 130-400 kB each) with the SIMULATED stamp when the input
was simulated (:mod:`.stamp`).

These are the only report files made from the tiles (``<data>/tiles``) rather
than from detections: the report reads the tiles for them, lists the tiles
as inputs (a changed tile redraws its thumbnail) and skips a date whose tiles
are gone, saying so.
"""

from __future__ import annotations

import datetime as dt
import logging
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw
from pyproj import Transformer
from shapely.geometry import shape

from ..core.contracts import S1, S2, TileRef, find_tiles, read_tile
from .stamp import png_bytes, stamp_image

log = logging.getLogger(__name__)

SENSOR_TAG = {S2: "s2", S1: "s1"}
S1_DB_RANGE = (-25.0, 0.0)
S2_PERCENTILES = (2.0, 98.0)
S2_GAMMA = 1.6
NO_DATA_RGB = (64, 64, 64)
VESSEL_RING_PX = 9
COLOURS = {"at_berth": (239, 68, 68), "vessel": (34, 211, 238), "container_stack": (251, 146, 60),
           "aoi": (255, 255, 255)}


def thumbnail_path(report_dir: Path, aoi: str, date: dt.date, sensor: str) -> Path:
    """``<report>/thumbnails/<aoi>/<date>-s2.png`` or ``-s1.png`` (other tools link to this layout)."""
    return Path(report_dir) / "thumbnails" / aoi / f"{date.isoformat()}-{SENSOR_TAG[sensor]}.png"


def tiles_by_date(data_dir: Path, aois: list[str]) -> dict[tuple[str, dt.date, str], list[TileRef]]:
    out: dict[tuple[str, dt.date, str], list[TileRef]] = {}
    for t in find_tiles(data_dir, aois):
        out.setdefault((t.aoi, t.date, t.sensor), []).append(t)
    return out


def _mosaic(tiles: list[TileRef]):
    """Bands of a date's tiles, the first valid value per pixel (as the detect stage mosaics)."""
    bands, grid = read_tile(tiles[0].path)
    for t in tiles[1:]:
        more, g = read_tile(t.path)
        if (g.width, g.height) != (grid.width, grid.height):
            continue
        for k, v in bands.items():
            bands[k] = np.where(np.isfinite(v), v, more[k])
    return bands, grid


#: The gamma as a table over 4,096 steps of the stretched value: the same 8-bit colours to within
#: one level, without a power per pixel (the thumbnails' largest cost after reading the tile).
_GAMMA_STEPS = 4096
_GAMMA_TABLE = (np.linspace(0.0, 1.0, _GAMMA_STEPS) ** (1 / S2_GAMMA) * 255).astype(np.uint8)


def true_colour(bands: dict[str, np.ndarray]) -> np.ndarray:
    """(H, W, 3) uint8 true colour of Sentinel-2 reflectance; no data is :data:`NO_DATA_RGB`."""
    rgb = [np.asarray(bands[b], dtype=np.float32) for b in ("B04", "B03", "B02")]
    valid = np.isfinite(rgb[0]) & np.isfinite(rgb[1]) & np.isfinite(rgb[2])
    if not valid.any():
        return np.broadcast_to(np.array(NO_DATA_RGB, np.uint8), valid.shape + (3,)).copy()
    # The stretch from every 4th pixel in each direction (tens of thousands of values): the same
    # percentiles to a fraction of a grey level, at a tenth of the time.
    sample = np.concatenate([c[::4, ::4][valid[::4, ::4]] for c in rgb])
    if sample.size < 3000:
        sample = np.concatenate([c[valid] for c in rgb])
    lo, hi = np.percentile(sample, S2_PERCENTILES)
    scale = (_GAMMA_STEPS - 1) / max(float(hi - lo), 1e-6)
    img = np.empty(valid.shape + (3,), np.uint8)
    for i, c in enumerate(rgb):
        step = np.nan_to_num(c, nan=lo) - lo
        step *= scale
        np.clip(step, 0, _GAMMA_STEPS - 1, out=step)
        img[..., i] = _GAMMA_TABLE[step.astype(np.uint16)]
    img[~valid] = NO_DATA_RGB
    return img


def db_greyscale(vv_linear: np.ndarray) -> np.ndarray:
    """(H, W, 3) uint8 greyscale of VV backscatter in dB over :data:`S1_DB_RANGE`."""
    valid = np.isfinite(vv_linear) & (vv_linear > 0)
    db = 10 * np.log10(np.where(valid, vv_linear, 1.0))
    lo, hi = S1_DB_RANGE
    grey = (np.clip((db - lo) / (hi - lo), 0, 1) * 255).astype(np.uint8)
    img = np.dstack([grey] * 3)
    img[~valid] = NO_DATA_RGB
    return img


def _pixel_rings(geom, to_utm: Transformer, inverse_transform) -> list[list[tuple[float, float]]]:
    rings = []
    for g in getattr(geom, "geoms", [geom]):
        if g.geom_type != "Polygon":
            continue
        lon, lat = np.asarray(g.exterior.coords).T
        x, y = to_utm.transform(lon, lat)
        cols, rows = inverse_transform @ (np.asarray(x), np.asarray(y))
        rings.append(list(zip(np.asarray(cols).tolist(), np.asarray(rows).tolist())))
    return rings


def draw_detections(img: np.ndarray, grid, features: list[dict], aoi_geometry=None, sensor: str | None = None) -> Image.Image:
    """The image with detection outlines drawn (features in lon/lat, as in the detections files).

    Vessels seen by the other sensor only are drawn too: a merged vessel is one
    record, drawn on every image of the date.
    """
    pil = Image.fromarray(img, "RGB").convert("RGBA")
    overlay = Image.new("RGBA", pil.size, (0, 0, 0, 0))
    draw = ImageDraw.Draw(overlay)
    to_utm = Transformer.from_crs("EPSG:4326", grid.crs, always_xy=True)
    inv = ~grid.transform
    if aoi_geometry is not None:
        for ring in _pixel_rings(aoi_geometry, to_utm, inv):
            draw.line(ring, fill=COLOURS["aoi"], width=1)
    for f in features:
        props = f.get("properties") or {}
        kind = props.get("kind")
        rings = _pixel_rings(shape(f["geometry"]), to_utm, inv)
        if kind == "container_stack":
            for ring in rings:  # filled, half transparent: the stack's pixels stay visible
                draw.polygon(ring, fill=COLOURS["container_stack"] + (110,), outline=COLOURS["container_stack"] + (255,))
        elif kind == "vessel":
            colour = (COLOURS["at_berth"] if props.get("at_berth") else COLOURS["vessel"]) + (255,)
            for ring in rings:
                draw.line(ring + ring[:1], fill=colour, width=1)
            # A ship is a few pixels at 10 m: a ring around it makes it findable at a glance.
            pts = [xy for ring in rings for xy in ring]
            if pts:
                cx, cy = sum(x for x, _ in pts) / len(pts), sum(y for _, y in pts) / len(pts)
                r = max(VESSEL_RING_PX, max(max(abs(x - cx), abs(y - cy)) for x, y in pts) + 4)
                draw.ellipse([cx - r, cy - r, cx + r, cy + r], outline=colour, width=2)
    return Image.alpha_composite(pil, overlay).convert("RGB")


def thumbnail_png(tiles: list[TileRef], features: list[dict], aoi_geometry, simulated: bool,
                  caption: str = "") -> bytes:
    """The PNG of one AOI, date and sensor with its detections, stamped when simulated."""
    bands, grid = _mosaic(tiles)
    sensor = tiles[0].sensor
    img = true_colour(bands) if sensor == S2 else db_greyscale(bands["VV"])
    pil = stamp_image(draw_detections(img, grid, features, aoi_geometry, sensor), simulated)
    # Octree quantisation keeps the few pixels of the overlay colours (median cut merges them away).
    pil = pil.quantize(colors=256, method=Image.Quantize.FASTOCTREE, dither=Image.Dither.NONE)
    what = "Sentinel-2 true colour (B04 B03 B02)" if sensor == S2 else \
        f"Sentinel-1 VV backscatter, dB, {S1_DB_RANGE[0]:g} (black) to {S1_DB_RANGE[1]:g} (white)"
    return png_bytes(pil, simulated, f"{what}. {caption}".strip())
