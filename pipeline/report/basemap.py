"""The AOI's Sentinel-2 median composite as a map background, offline.

The detect stage writes the per-band median of an AOI's Sentinel-2 tiles
(``<out>/.berthwatch/reference/<aoi>-s2-median.tif``, UTM, 10 m; see
:func:`..core.contracts.median_composite_path`). The report reprojects its
true colour to WGS84 lon/lat (bilinear, at about the source resolution) and
draws it under the static map and as an image layer of the interactive map, so
outlines sit on the port as it usually looks, with no tile server.
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import rasterio
from PIL import Image
from rasterio.warp import Resampling, calculate_default_transform, reproject

from ..core.contracts import median_composite_path
from .thumbnails import true_colour


@dataclass(frozen=True)
class Basemap:
    """An RGBA image in lon/lat and its extent ``(west, south, east, north)``."""

    rgba: np.ndarray
    extent: tuple[float, float, float, float]
    source: Path

    def png(self) -> bytes:
        buf = io.BytesIO()
        # zlib level 3: a tenth of the time of optimize=True for 9 % more bytes (it is encoded on every report)
        Image.fromarray(self.rgba, "RGBA").save(buf, format="PNG", compress_level=3)
        return buf.getvalue()


def load_basemap(out_dir: Path, aoi_id: str) -> Basemap | None:
    """The AOI's median composite in lon/lat, or None when detect has not written one."""
    path = median_composite_path(out_dir, aoi_id)
    if not path.exists():
        return None
    with rasterio.open(path) as src:
        names = list(src.descriptions)
        if not {"B02", "B03", "B04"} <= set(names):
            return None
        dst_crs = "EPSG:4326"
        transform, width, height = calculate_default_transform(src.crs, dst_crs, src.width, src.height,
                                                               *src.bounds)
        out = np.full((3, height, width), np.nan, np.float32)
        for i, band in enumerate(("B04", "B03", "B02")):
            reproject(src.read(names.index(band) + 1).astype(np.float32), out[i], src_transform=src.transform,
                      src_crs=src.crs, dst_transform=transform, dst_crs=dst_crs, resampling=Resampling.bilinear,
                      src_nodata=np.nan, dst_nodata=np.nan)
    rgb = true_colour({"B04": out[0], "B03": out[1], "B02": out[2]})
    alpha = np.where(np.isfinite(out).all(axis=0), 255, 0).astype(np.uint8)
    west, north = transform @ (0, 0)
    east, south = transform @ (width, height)
    return Basemap(np.dstack([rgb, alpha]), (west, south, east, north), path)
