"""Berth flags and cross-sensor de-duplication of vessel detections.

A vessel is at berth when its outline comes within a set distance of land
(land = valid pixels outside the reference water mask) or touches a berth
zone drawn by an analyst. The distance to land is the Euclidean distance
transform of the land mask (Danielsson 1980) sampled at the outline vertices
and the centroid; only those pixels are computed, exactly, with
:func:`.water.distance_to_mask` (nearest land boundary pixel by k-d tree).

Sentinel-1 and Sentinel-2 detections of the same date are merged by a
minimum-cost one-to-one assignment (Kuhn 1955; Hungarian algorithm in
:func:`scipy.optimize.linear_sum_assignment`) on centroid distance, accepting
only pairs whose lengths agree.

References
----------
Danielsson, P.-E. (1980). Euclidean distance mapping. Computer Graphics and
Image Processing, 14(3), 227-248.

Kuhn, H. W. (1955). The Hungarian method for the assignment problem. Naval
Research Logistics Quarterly, 2, 83-97.
"""

from __future__ import annotations

import dataclasses

import numpy as np
from affine import Affine
from scipy.optimize import linear_sum_assignment

from .water import distance_to_mask


def _outline_points(geom) -> np.ndarray:
    if geom.geom_type == "Polygon":
        return np.asarray(geom.exterior.coords)
    return np.concatenate([np.asarray(g.exterior.coords) for g in geom.geoms])


def flag_at_berth(
    vessels: list,
    land_mask: np.ndarray,
    transform: Affine,
    distance_m: float = 30.0,
    berth_zones=None,
) -> list:
    """Copies of ``vessels`` with ``at_berth`` set.

    Parameters
    ----------
    vessels : list of detectors.records.Vessel
        Outlines in the CRS of ``transform``.
    land_mask : (H, W) bool ndarray
        True on land (e.g. ``~reference_water & valid``).
    transform : affine.Affine
        Pixel-to-CRS transform of ``land_mask`` (CRS in metres).
    distance_m : float
        A vessel whose outline comes within this distance of land is at
        berth (a ship alongside a quay has fenders and mixed pixels between
        hull and quay; 30 m is three Sentinel pixels).
    berth_zones : iterable of shapely geometries, optional
        Berth polygons in CRS units; a vessel intersecting one is at berth.

    Returns
    -------
    list of Vessel
        New records; the input is not modified. ``attributes`` gains
        ``distance_to_land_m`` (inf when the scene has no land).
    """
    land = np.asarray(land_mask, dtype=bool)
    pixel = float(np.sqrt(abs(transform.a * transform.e - transform.b * transform.d)))
    zones = list(berth_zones) if berth_zones is not None else []
    inv = ~transform
    h, w = land.shape
    samples = []
    for v in vessels:
        pts = np.vstack([_outline_points(v.outline), [[v.x, v.y]]])
        cols, rows = inv @ (pts[:, 0], pts[:, 1])
        # Outline vertices lie on pixel edges: sample the pixels on both
        # sides by flooring and by rounding.
        rr = np.concatenate([np.floor(rows), np.round(rows) - 1]).astype(int)
        cc = np.concatenate([np.floor(cols), np.round(cols) - 1]).astype(int)
        inside = (rr >= 0) & (rr < h) & (cc >= 0) & (cc < w)
        samples.append(rr[inside] * w + cc[inside])
    pixels = np.unique(np.concatenate(samples)) if samples else np.empty(0, int)
    if pixels.size and land.any():
        # Distance from each sampled pixel centre to the nearest land pixel
        # centre (the values of a full Euclidean distance transform, computed
        # at the sampled pixels only), minus half a pixel so a hull pixel
        # adjacent to land is at ~5 m.
        at = np.zeros(land.shape, dtype=bool)
        at.flat[pixels] = True
        dist = distance_to_mask(land, at) * pixel
        dist = np.maximum(dist - pixel / 2.0, 0.0)
    else:
        dist = None
    out = []
    for v, flat in zip(vessels, samples):
        d_land = float("inf")
        if dist is not None and flat.size:
            d_land = float(dist[np.searchsorted(pixels, flat)].min())
        in_zone = any(v.outline.intersects(z) for z in zones)
        attrs = {**v.attributes, "distance_to_land_m": d_land}
        out.append(dataclasses.replace(v, at_berth=bool(in_zone or d_land <= distance_m), attributes=attrs))
    return out


def merge_sensor_duplicates(
    primary: list,
    secondary: list,
    max_distance_m: float = 100.0,
    max_length_ratio: float = 2.0,
) -> list:
    """Count a vessel seen by two sensors on the same date once.

    Pairs are found by a one-to-one assignment minimising centroid distance;
    a pair is accepted when the centroids are within ``max_distance_m`` (SAR
    geolocation and the S1/S2 time gap of minutes to hours allow some
    drift) and the longer length is at most ``max_length_ratio`` times the
    shorter.

    The merged record keeps the outline, heading and position of the
    **Sentinel-2** detection when one of the pair is optical: 10 m optical
    pixels outline the hull, while SAR outlines are inflated by sidelobes
    and layover. Its length and width are the means of the two sensors'
    measurements (two independent estimates of one hull; either may lose
    part of a hull). For two detections of the same sensor the higher score
    wins. ``score`` is the larger of the two, ``at_berth`` is True when
    either is, and ``attributes['sensors']`` lists both sensors;
    ``attributes['merged_from']`` keeps the other record's sensor,
    centroid and length.

    Parameters
    ----------
    primary, secondary : list of Vessel
        Detections of the two sensors (same CRS).
    max_distance_m : float
        Largest centroid distance of a pair.
    max_length_ratio : float
        Largest ratio of the two lengths of a pair.

    Returns
    -------
    list of Vessel
        Merged pairs, then unmatched primary, then unmatched secondary.
    """
    primary = list(primary)
    secondary = list(secondary)
    if not primary or not secondary:
        return [_with_sensors(v) for v in primary + secondary]
    a = np.array([[v.x, v.y] for v in primary])
    b = np.array([[v.x, v.y] for v in secondary])
    dist = np.hypot(a[:, None, 0] - b[None, :, 0], a[:, None, 1] - b[None, :, 1])
    la = np.array([max(v.length_m, 1e-6) for v in primary])
    lb = np.array([max(v.length_m, 1e-6) for v in secondary])
    ratio = np.maximum(la[:, None], lb[None, :]) / np.minimum(la[:, None], lb[None, :])
    ok = (dist <= max_distance_m) & (ratio <= max_length_ratio)
    cost = np.where(ok, dist, 1e12)
    rows, cols = linear_sum_assignment(cost)
    merged, used_a, used_b = [], set(), set()
    for i, j in zip(rows, cols):
        if not ok[i, j]:
            continue
        used_a.add(i)
        used_b.add(j)
        merged.append(_merge_pair(primary[i], secondary[j]))
    rest = [_with_sensors(v) for k, v in enumerate(primary) if k not in used_a]
    rest += [_with_sensors(v) for k, v in enumerate(secondary) if k not in used_b]
    return merged + rest


def _with_sensors(v):
    sensors = v.attributes.get("sensors", [v.sensor])
    return dataclasses.replace(v, attributes={**v.attributes, "sensors": list(sensors)})


def _merge_pair(p, s):
    optical = "sentinel-2-l2a"
    if (p.sensor == optical) != (s.sensor == optical):
        keep, other = (p, s) if p.sensor == optical else (s, p)
    else:
        keep, other = (p, s) if p.score >= s.score else (s, p)
    sensors = []
    for v in (keep, other):
        for name in v.attributes.get("sensors", [v.sensor]):
            if name not in sensors:
                sensors.append(name)
    attrs = {
        **keep.attributes,
        "sensors": sensors,
        "merged_from": {"sensor": other.sensor, "x": other.x, "y": other.y, "length_m": other.length_m},
    }
    mixed = keep.sensor != other.sensor
    return dataclasses.replace(
        keep,
        # Two independent measurements of one hull: their mean. A hull partly lost
        # against the water or the quay in one image is measured short there.
        length_m=(keep.length_m + other.length_m) / 2 if mixed else keep.length_m,
        width_m=(keep.width_m + other.width_m) / 2 if mixed else keep.width_m,
        score=max(keep.score, other.score),
        at_berth=keep.at_berth or other.at_berth,
        attributes=attrs,
    )
