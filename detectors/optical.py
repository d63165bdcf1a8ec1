"""Vessel detection in Sentinel-2 L2A reflectance.

A vessel is an object on the sea domain that is not water now: on the
reference water mask of a time series when one is given, otherwise on the
single-scene water body with vessel-sized bays closed
(:func:`detectors.water.fill_berthed_vessels`). Water is mapped with NDWI
(McFeeters 1996) and MNDWI (Xu 2006). Candidates must be brighter in NIR than
the surrounding water (ships reflect 0.1-0.3 in B08, water below 0.05 and
rarely above 0.15 even in haze), sized like a ship, and spectrally unlike
cloud (bright and white in the visible, large) and sun glint (bright in all
bands including SWIR, NDWI near 0, low contrast to its surround). Ships
moored side by side are split by a watershed on the distance transform
(Beucher & Meyer 1993) when the merged object is wider than a ship.

This follows the classical optical ship-detection chain reviewed by
Kanjir, Greidanus & Oštir (2018): sea-land masking, candidate extraction by
contrast to the water background, and discrimination by size, shape and
spectrum.

References
----------
Kanjir, U., Greidanus, H., Oštir, K. (2018). Vessel detection and
classification from spaceborne optical images: A literature survey. Remote
Sensing of Environment, 207, 1-26.

Beucher, S., Meyer, F. (1993). The morphological approach to segmentation:
the watershed transformation. In Mathematical Morphology in Image
Processing, 433-481.
"""

from __future__ import annotations

import math

import numpy as np
from affine import Affine
from scipy import ndimage
from skimage.morphology import h_maxima
from skimage.segmentation import watershed

from .measure import measure_objects
from .records import Vessel
from .water import fill_berthed_vessels, water_mask_optical

SENSOR = "sentinel-2-l2a"
BAND_KEYS = ("B02", "B03", "B04", "B08", "B11")

DEFAULTS = dict(
    ndwi_threshold=0.0,
    mndwi_threshold=-0.1,
    fill_radius_m=60.0,
    min_water_area_m2=50_000.0,
    background_sigma_m=150.0,
    min_nir_contrast=0.03,
    bright_nir_contrast=0.05,
    max_ndvi=0.4,
    berth_min_length_m=40.0,
    berth_min_fill_ratio=0.5,
    berth_min_contact=0.5,
    thin_structure_m=10.0,
    min_length_m=20.0,
    max_length_m=400.0,
    max_width_m=70.0,
    min_area_m2=200.0,
    max_area_m2=30_000.0,
    min_fill_ratio=0.35,
    cloud_min_blue=0.25,
    cloud_max_colour=0.15,
    glint_max_ndwi_depth=0.05,
)


def _local_water_mean(values: np.ndarray, water: np.ndarray, sigma_px: float) -> np.ndarray:
    """Gaussian-weighted mean of ``values`` over water pixels (normalised convolution)."""
    w = water.astype(np.float32)
    v = np.where(water, values, 0.0).astype(np.float32)
    num = ndimage.gaussian_filter(v, sigma_px, mode="nearest")
    den = ndimage.gaussian_filter(w, sigma_px, mode="nearest")
    with np.errstate(divide="ignore", invalid="ignore"):
        out = num / den
    # Far from any water the estimate is undefined: use the scene's water median.
    fallback = float(np.median(values[water])) if water.any() else 0.0
    out[~(den > 1e-3)] = fallback
    return out


def _split_side_by_side(mask: np.ndarray, max_width_px: float, min_separation_px: float) -> np.ndarray:
    """Label ``mask``; components wider than a ship are split by watershed.

    Markers are the regional maxima of the distance transform higher than
    ``min_separation_px / 2`` (h-maxima), so a neck between two hulls
    separates them while a single hull with a bulge stays whole.
    """
    labels, n = ndimage.label(mask, structure=np.ones((3, 3), bool))
    if n == 0:
        return labels
    dist = ndimage.distance_transform_edt(mask)
    max_dist = ndimage.maximum(dist, labels, np.arange(1, n + 1))
    # Only objects that could hold two hulls are worth splitting.
    wide = np.flatnonzero(np.asarray(max_dist) * 2.0 > max_width_px * 0.5) + 1
    if wide.size == 0:
        return labels
    region = np.isin(labels, wide)
    h = max(min_separation_px / 2.0, 1.0)
    # Smoothing removes the staircase maxima of an obliquely rasterised hull.
    smooth = ndimage.gaussian_filter(np.where(region, dist, 0.0), 1.0)
    peaks = h_maxima(smooth, h) & region
    markers, n_markers = ndimage.label(peaks, structure=np.ones((3, 3), bool))
    if n_markers == 0:
        return labels
    split = watershed(-smooth, markers, mask=region)
    out = labels.copy()
    out[region] = 0
    # Untouched objects keep their labels; split parts are numbered after them.
    offset = int(labels.max())
    out[region] = np.where(split[region] > 0, split[region] + offset, 0)
    # Parts of a region without a marker fall back to their component label.
    orphan = region & (split == 0)
    out[orphan] = labels[orphan]
    return out


def detect_vessels_optical(
    bands: dict,
    transform: Affine,
    scl: np.ndarray | None = None,
    reference_water: np.ndarray | None = None,
    pixel_size: float = 10.0,
    **params,
) -> list[Vessel]:
    """Detect vessels in one Sentinel-2 L2A scene.

    Parameters
    ----------
    bands : dict of str -> (H, W) float ndarray
        Surface reflectance (0-1) for ``B02``, ``B03``, ``B04``, ``B08`` and
        optionally ``B11``, all on the grid of ``transform``. Non-finite or 0
        is no data.
    transform : affine.Affine
        Pixel-to-CRS transform (CRS in metres).
    scl : (H, W) int ndarray, optional
        L2A scene classification; cloud, shadow and defective pixels are
        excluded.
    reference_water : (H, W) bool ndarray, optional
        Water mask from a time series
        (:func:`detectors.water.reference_water_mask`). When given, the sea
        domain is this mask, so berthed vessels are the pixels of the usual
        water that are not water now. Without it the single-scene domain of
        :func:`detectors.water.fill_berthed_vessels` is used.
    pixel_size : float
        Pixel size in metres.
    **params
        Overrides of the defaults (physical units):

        ``ndwi_threshold`` (0.0), ``mndwi_threshold`` (-0.1)
            Water index thresholds.
        ``fill_radius_m`` (60)
            Closing radius for single-scene berth filling (about a ship beam).
        ``min_water_area_m2`` (5e4)
            Smallest water body considered sea.
        ``background_sigma_m`` (150)
            Scale of the local water background estimate.
        ``min_nir_contrast`` (0.03)
            Minimum mean B08 reflectance above the local water background.
        ``min_length_m`` (20), ``max_length_m`` (400), ``max_width_m`` (70),
        ``min_area_m2`` (200), ``max_area_m2`` (30 000)
            Ship size range (small boats to Valemax ore carriers).
        ``min_fill_ratio`` (0.35)
            Pixel area over rotated-rectangle area; irregular land slivers
            from the berth filling score below it.
        ``cloud_min_blue`` (0.25), ``cloud_max_colour`` (0.15)
            An object is cloud when its mean B02 exceeds ``cloud_min_blue``
            and its visible spectrum is flat (max/min - 1 of B02-B04 below
            ``cloud_max_colour``) and it is larger than a small boat.
        ``glint_max_ndwi_depth`` (0.05)
            Sun glint stays spectrally flat from B03 to B08, so its NDWI is
            only marginally below 0; a candidate whose mean NDWI is above
            ``-glint_max_ndwi_depth`` and whose SWIR is as bright as its NIR is
            glint.

    Returns
    -------
    list of detectors.records.Vessel
        ``sensor='sentinel-2-l2a'``; ``attributes`` holds mean reflectances
        (``B02`` ... ``B11``), ``ndwi``, ``nir_contrast``, ``fill_ratio`` and
        ``touches_land``.
    """
    unknown = set(params) - set(DEFAULTS)
    if unknown:
        raise TypeError(f"unknown parameters: {sorted(unknown)}")
    p = {**DEFAULTS, **params}
    b = {k: np.asarray(bands[k], dtype=np.float32) for k in BAND_KEYS if k in bands and bands[k] is not None}
    for k in ("B02", "B03", "B04", "B08"):
        if k not in b:
            raise KeyError(f"band {k} is required")
    swir = b.get("B11")
    water, valid = water_mask_optical(
        b["B03"], b["B08"], swir, scl, p["ndwi_threshold"], p["mndwi_threshold"]
    )
    for k in ("B02", "B04"):
        valid &= np.isfinite(b[k]) & (b[k] > 0)
    water &= valid

    if reference_water is not None:
        domain = np.asarray(reference_water, dtype=bool)
        if domain.shape != water.shape:
            raise ValueError("reference_water must be on the band grid")
    else:
        domain = fill_berthed_vessels(
            water,
            max_width_m=p["fill_radius_m"],
            pixel_size=pixel_size,
            min_water_area_m2=p["min_water_area_m2"],
        )
    nir = b["B08"]
    background_water = water & domain
    bg_nir = _local_water_mean(nir, background_water, p["background_sigma_m"] / pixel_size)
    # White decks and hulls can be greener than they are NIR-bright, so NDWI
    # calls them water; their NIR excess over the water background does not.
    with np.errstate(invalid="ignore"):
        bright = (nir - bg_nir) > p["bright_nir_contrast"]
    candidates = domain & (~water | bright) & valid
    if not candidates.any():
        return []
    land = ~domain & valid
    land_adjacent = ndimage.binary_dilation(land, structure=np.ones((3, 3), bool))
    # Where candidates touch land, quays, jetties and piers narrower than a
    # hull run along and into them; an opening removes structures thinner
    # than ``thin_structure_m`` there, leaving the hull.
    lab0, n0 = ndimage.label(candidates, structure=np.ones((3, 3), bool))
    if n0:
        touching = np.zeros(n0 + 1, bool)
        touching[np.unique(lab0[land_adjacent & candidates])] = True
        touching[0] = False
        attached = touching[lab0]
        k = max(int(round(p["thin_structure_m"] / pixel_size)), 1)
        opened = ndimage.binary_opening(attached, structure=np.ones((k + 1, k + 1), bool))
        candidates = (candidates & ~attached) | opened

    labels = _split_side_by_side(
        candidates,
        max_width_px=p["max_width_m"] / pixel_size,
        min_separation_px=max(3.0, 0.5 * p["max_width_m"] / pixel_size),
    )
    objects = measure_objects(labels, transform)
    if not objects:
        return []

    index = np.array([o["label"] for o in objects])
    means = {k: np.asarray(ndimage.mean(v, labels, index)) for k, v in b.items()}
    mean_bg = np.asarray(ndimage.mean(bg_nir, labels, index))
    ndwi_img = (b["B03"] - nir) / np.maximum(b["B03"] + nir, 1e-6)
    mean_ndwi = np.asarray(ndimage.mean(ndwi_img, labels, index))
    contact_px = np.asarray(ndimage.sum_labels(land_adjacent, labels, index))
    touches = contact_px > 0
    ndvi_img = (nir - b["B04"]) / np.maximum(nir + b["B04"], 1e-6)
    mean_ndvi = np.asarray(ndimage.mean(ndvi_img, labels, index))

    vessels: list[Vessel] = []
    for i, o in enumerate(objects):
        length, width, area = o["length_m"], o["width_m"], o["area_m2"]
        if not (p["min_length_m"] <= length <= p["max_length_m"]):
            continue
        if width > p["max_width_m"] or not (p["min_area_m2"] <= area <= p["max_area_m2"]):
            continue
        rect_area = max(length * width, pixel_size * pixel_size)
        fill_ratio = area / rect_area
        if fill_ratio < p["min_fill_ratio"]:
            continue
        if mean_ndvi[i] > p["max_ndvi"]:
            continue
        contact = float(contact_px[i]) * pixel_size / max(length, pixel_size)
        if touches[i] and (
            length < p["berth_min_length_m"]
            or fill_ratio < p["berth_min_fill_ratio"]
            or contact < p["berth_min_contact"]
        ):
            continue
        contrast = float(means["B08"][i] - mean_bg[i])
        if contrast < p["min_nir_contrast"]:
            continue
        vis = np.array([means["B02"][i], means["B03"][i], means["B04"][i]])
        colour = float(vis.max() / max(vis.min(), 1e-6) - 1.0)
        if means["B02"][i] > p["cloud_min_blue"] and colour < p["cloud_max_colour"] and area > 5_000.0:
            continue
        if swir is not None and mean_ndwi[i] > -p["glint_max_ndwi_depth"]:
            if means["B11"][i] >= 0.8 * means["B08"][i] and not touches[i]:
                continue
        # Confidence: NIR contrast in units of the threshold, damped for
        # objects touching land (where the berth filling can mistake quay
        # structures for ships).
        score = 1.0 - math.exp(-contrast / p["min_nir_contrast"])
        score *= 0.5 + 0.5 * min(fill_ratio / 0.7, 1.0)
        if touches[i]:
            score *= 0.8
        attrs = {k: float(means[k][i]) for k in means}
        attrs.update(
            ndwi=float(mean_ndwi[i]),
            nir_contrast=contrast,
            fill_ratio=float(fill_ratio),
            touches_land=bool(touches[i]),
            ndvi=float(mean_ndvi[i]),
            land_contact=contact,
            n_pixels=int(o["n_pixels"]),
        )
        vessels.append(
            Vessel(
                outline=o["outline"],
                x=o["x"],
                y=o["y"],
                length_m=float(length),
                width_m=float(width),
                heading_deg=float(o["heading_deg"]),
                area_m2=float(area),
                score=float(np.clip(score, 0.0, 1.0)),
                sensor=SENSOR,
                attributes=attrs,
            )
        )
    return vessels
