"""Shape measurements of labelled objects: outline, length, width, heading."""

from __future__ import annotations

import math
from collections import defaultdict

import numpy as np
from affine import Affine
from rasterio import features
from shapely.geometry import shape
from shapely.ops import unary_union


def rectangle_axes(polygon) -> tuple[float, float, float]:
    """Length, width and axis heading of a polygon's minimum rotated rectangle.

    Parameters
    ----------
    polygon : shapely geometry
        In a projected CRS with metres, y pointing north.

    Returns
    -------
    length_m, width_m, heading_deg : float
        ``heading_deg`` is the orientation of the long side, clockwise from
        north, in [0, 180).
    """
    rect = polygon.minimum_rotated_rectangle
    coords = np.asarray(rect.exterior.coords)
    if len(coords) < 4:  # degenerate (point or line)
        return 0.0, 0.0, 0.0
    e1 = coords[1] - coords[0]
    e2 = coords[2] - coords[1]
    l1, l2 = float(np.hypot(*e1)), float(np.hypot(*e2))
    long_edge = e1 if l1 >= l2 else e2
    heading = math.degrees(math.atan2(long_edge[0], long_edge[1])) % 180.0
    return max(l1, l2), min(l1, l2), heading


def measure_objects(labels: np.ndarray, transform: Affine, offset: tuple[int, int] = (0, 0)) -> list[dict]:
    """Outline and shape of every labelled object.

    Outlines are the union of the object's pixel squares (vectorised once for
    the objects' bounding box with :func:`rasterio.features.shapes`), so length and width
    come from the minimum rotated rectangle of the pixel footprint: a ship of
    12 x 2 pixels along a grid axis measures 120 x 20 m at 10 m.

    Parameters
    ----------
    labels : (H, W) int ndarray
        0 for background, 1..N for objects (e.g. from :func:`scipy.ndimage.label`).
    transform : affine.Affine
        Pixel-to-CRS transform of the grid ``labels`` lies on.
    offset : (int, int)
        Row and column of ``labels[0, 0]`` on that grid (``labels`` is a
        window of a larger raster). Positions are computed on the grid, so a
        window measures its objects as the whole raster does, to the last bit.

    Returns
    -------
    list of dict
        One per label, ordered by label: ``label``, ``outline`` (shapely
        Polygon/MultiPolygon in CRS units), ``x``, ``y`` (centroid), ``row``,
        ``col`` (pixel centroid), ``length_m``, ``width_m``, ``heading_deg``,
        ``area_m2``, ``n_pixels``.
    """
    labels = np.asarray(labels)
    rows, cols = np.nonzero(labels > 0)
    if rows.size == 0:
        return []
    # Objects are few and small: everything is computed on the labelled pixels
    # and their bounding box (GDAL polygonises every pixel it is given), which
    # makes the cost independent of the image size.
    pixel_labels = labels[rows, cols].astype(np.intp)
    r0, c0 = int(rows.min()), int(cols.min())
    box = labels[r0 : int(rows.max()) + 1, c0 : int(cols.max()) + 1].astype(np.int32)
    dr, dc = int(offset[0]), int(offset[1])
    rows, cols, r0, c0 = rows + dr, cols + dc, r0 + dr, c0 + dc
    parts: dict[int, list] = defaultdict(list)
    for geom, value in features.shapes(box, mask=box > 0, transform=transform @ Affine.translation(c0, r0)):
        parts[int(value)].append(shape(geom))
    index = np.arange(1, int(pixel_labels.max()) + 1)
    n_labels = index.size + 1
    counts = np.bincount(pixel_labels, minlength=n_labels)[1:]
    # Sums of integer pixel indices are exact in float64, so these centroids are
    # those of ndimage.center_of_mass to the last bit.
    with np.errstate(invalid="ignore", divide="ignore"):
        row_mean = np.bincount(pixel_labels, weights=rows, minlength=n_labels)[1:] / counts
        col_mean = np.bincount(pixel_labels, weights=cols, minlength=n_labels)[1:] / counts
    centres = zip(row_mean.tolist(), col_mean.tolist())
    pixel_area = abs(transform.a * transform.e - transform.b * transform.d)
    out = []
    for lab, n, (r, c) in zip(index, counts, centres):
        if n == 0:
            continue
        geoms = parts[int(lab)]
        outline = geoms[0] if len(geoms) == 1 else unary_union(geoms)
        length, width, heading = rectangle_axes(outline)
        x, y = transform @ (c + 0.5, r + 0.5)
        out.append(
            {
                "label": int(lab),
                "outline": outline,
                "x": float(x),
                "y": float(y),
                "row": float(r),
                "col": float(c),
                "length_m": length,
                "width_m": width,
                "heading_deg": heading,
                "area_m2": float(n) * pixel_area,
                "n_pixels": int(n),
            }
        )
    return out
