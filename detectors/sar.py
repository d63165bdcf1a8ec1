"""Sentinel-1 GRD vessel detection: water mask, CFAR, clustering, measurement.

Pipeline (Crisp 2004, *The state-of-the-art in ship detection in synthetic
aperture radar imagery*, DSTO-RR-0272, fig. 1: land masking, pre-screening,
discrimination):

1. Valid water pixels: finite, positive, outside the (buffered) land mask.
2. Pre-screening with the gamma two-parameter CFAR of :mod:`.cfar` on VV and
   on VH separately, OR-ed, each at half the requested PFA so that the union
   keeps the nominal false-alarm rate (Bonferroni). Both channels are used
   because they fail differently: VH sea clutter is 6-10 dB darker than VV
   (higher ship-to-clutter ratio for most hulls), while VV keeps small boats
   and ships whose cross-polar return is near the VH noise floor.
3. Clustering: a one-pixel closing (gaps below the ~20 m impulse response
   width are not physical) and 8-connected components.
4. Extent: a bright ship's impulse response spreads side lobes and blur far
   above the clutter level, so the CFAR footprint grows with brightness.
   Within each object only pixels within ``extent_db`` of the object's peak
   are kept for the outline (a fraction-of-peak rule as in the ship-length
   literature reviewed by Crisp 2004, section 6). The footprint that remains
   is the hull convolved with the impulse response, so it is shrunk by the
   system resolution ``resolution_m`` (IW GRDH ~20 m x 22 m). Length is the
   long side of the minimum rotated rectangle; width is the footprint area
   divided by that length (the rectangle's short side is inflated by ragged,
   staircase outlines of objects only 2-4 pixels wide), minus the resolution.
   ``extent_db = 15`` was chosen once, globally, among 22 / 15 / 10 / 6 dB on
   the four public OpenSARShip scenes (see the validation module); it lies
   between the side-lobe level of the S1 processor (about -21 dB) and the
   -10 dB at which hull scatterers of large ships start to be cut.
5. Discrimination by length (``min_length_m`` .. ``max_length_m``).

Polarisations: Sentinel-1 products are dual VV+VH (1SDV, the usual IW mode
over Europe and Asia), single VV (1SSV), dual HH+HV (1SDH) or single HH
(1SSH). The functions take the co-polarised channel (VV or HH) as ``vv`` and
the cross-polarised one (VH or HV) as ``vh``, or None for single-pol
products. HH sea clutter is 1-3 dB darker than VV at IW incidence angles
(polarisation ratio, e.g. Thompson 1998, J. Geophys. Res. 103(C9)), so ships
contrast at least as well and the VV water threshold keeps the sea as water;
HV and VH are equal for a reciprocal scatterer. With one channel the CFAR
runs on it alone at the full PFA.
"""

from __future__ import annotations

import math

import numpy as np
from affine import Affine
from scipy import ndimage

from .cfar import cfar_two_parameter
from .measure import measure_objects
from .records import Vessel

__all__ = ["water_mask_sar", "detect_vessels_sar", "sar_valid", "cluster_detections", "vessels_from_clusters"]

SENSOR = "sentinel-1-grd"


def _db(x):
    with np.errstate(divide="ignore", invalid="ignore"):
        return 10.0 * np.log10(x)


def water_mask_sar(
    vv,
    vh=None,
    threshold_db: float = -15.0,
    pixel_size: float = 10.0,
    *,
    threshold_vh_db: float = -21.0,
    smoothing_m: float = 100.0,
    min_feature_m: float = 600.0,
):
    """Water as low, speckle-smoothed backscatter.

    Open water is a specular reflector: its sigma0 is far below that of land
    (VV around -15 dB and lower except in strong wind, VH around -22 dB and
    lower, near the instrument noise floor), while land and built-up areas
    scatter diffusely (VH -12..-18 dB and above). The intensity is averaged
    over ``smoothing_m`` before the threshold to beat speckle; ships and other
    bright objects smaller than ``min_feature_m`` inside water are filled back
    in, and water specks smaller than that on land are removed.

    Reference: the threshold approach of Crisp (2004), DSTO-RR-0272, section 3
    (land masking from the image itself when no coastline is available).

    Parameters
    ----------
    vv, vh : (H, W) ndarray
        Linear sigma0, co-polarised (VV or HH) and cross-polarised (VH or HV;
        None for single-pol products). When ``vh`` is given the cross-polar
        channel decides (wind roughens the sea far less in VH than in VV);
        otherwise the co-polarised one.
    threshold_db : float
        VV threshold in dB.
    pixel_size : float
        Pixel spacing in metres.
    threshold_vh_db : float
        VH threshold in dB.
    smoothing_m : float
        Side of the averaging box, metres.
    min_feature_m : float
        Holes and islands with an area below ``min_feature_m ** 2`` are removed.

    Returns
    -------
    (H, W) bool ndarray
        True for water.
    """
    from skimage.morphology import remove_small_holes, remove_small_objects

    band, thr = (vv, threshold_db) if vh is None else (vh, threshold_vh_db)
    band = np.asarray(band, dtype=np.float32)
    finite = np.isfinite(band)
    size = max(1, int(round(smoothing_m / pixel_size)))
    smooth = ndimage.uniform_filter(np.where(finite, band, 0.0).astype(np.float32), size)
    water = finite & (_db(np.maximum(smooth, 1e-12)) < thr)
    area_px = int((min_feature_m / pixel_size) ** 2)
    try:  # scikit-image >= 0.26 names the size limit max_size (inclusive)
        water = remove_small_holes(water, max_size=area_px - 1)
        water = remove_small_objects(water, max_size=area_px - 1)
    except TypeError:
        water = remove_small_holes(water, area_threshold=area_px)
        water = remove_small_objects(water, min_size=area_px)
    return water


def _buffered(mask, buffer_m, pixel_size):
    r = int(math.ceil(buffer_m / pixel_size))
    if r <= 0:
        return mask
    return ndimage.maximum_filter(mask.astype(np.uint8), size=2 * r + 1).astype(bool)


def _score(scr_db):
    """Map the peak signal-to-clutter ratio (dB) to [0, 1].

    0.5 at 10 dB, a little above the CFAR threshold of gamma clutter at
    PFA 10^-6.5 (8-9 dB above the mean for ENL 4.4): detections barely above
    the threshold are coin flips between a small boat and a clutter spike.
    """
    return float(1.0 / (1.0 + math.exp(-(scr_db - 10.0) / 3.0)))


def detect_vessels_sar(
    vv,
    vh=None,
    transform=None,
    pixel_size: float = 10.0,
    land_mask=None,
    land_buffer_m: float = 0.0,
    min_length_m: float = 20.0,
    max_length_m: float = 600.0,
    *,
    extent_db: float = 15.0,
    resolution_m: float = 20.0,
    **cfar_params,
) -> list[Vessel]:
    """Detect vessels in Sentinel-1 GRD sigma0 (VV, optionally VH).

    See the module docstring for the method (Crisp 2004, DSTO-RR-0272;
    ESA SNAP Ocean Tools *Adaptive Thresholding* + *Object Discrimination*).

    Parameters
    ----------
    vv : (H, W) ndarray
        Co-polarised sigma0 (VV, or HH for HH/HV products), linear (not dB).
        Non-finite or non-positive pixels are no-data.
    vh : (H, W) ndarray, optional
        Cross-polarised sigma0 (VH or HV), linear, same grid; None for
        single-pol products (1SSV, 1SSH).
    transform : affine.Affine, optional
        Pixel-to-CRS transform in metres (e.g. the AOI's UTM grid). Default: a
        north-up grid of ``pixel_size`` with its origin at the top-left corner.
    pixel_size : float
        Pixel spacing in metres (sets the CFAR windows).
    land_mask : (H, W) bool ndarray, optional
        True on land; land is excluded from detection and clutter statistics.
    land_buffer_m : float
        Land is grown by this distance first (coastline misregistration).
        Default 0: berthed ships lie against the quay.
    min_length_m, max_length_m : float
        Objects outside this length range are discarded.
    extent_db : float
        Pixels fainter than the object's peak by more than this (dB) are left
        out of the outline (side lobes).
    resolution_m : float
        System resolution removed from the measured length and width.
    **cfar_params
        Passed to :func:`.cfar.cfar_two_parameter` (``pfa``, ``guard_m``,
        ``background_m``, ``target_m``, ...). ``pfa`` is the total for the
        VV/VH union.

    Returns
    -------
    list of Vessel
        ``sensor="sentinel-1-grd"``; ``attributes`` hold ``peak_vv_db``,
        ``mean_vv_db``, ``peak_vh_db``, ``mean_vh_db`` (sigma0 dB over the
        outline), ``scr_db`` (peak signal-to-clutter ratio, best channel),
        ``raw_length_m``, ``raw_width_m`` (footprint length and area / length
        before the resolution correction) and ``channels`` (which channels detected it).
    """
    vv = np.asarray(vv, dtype=np.float32)
    bands = {"vv": vv}
    if vh is not None:
        bands["vh"] = np.asarray(vh, dtype=np.float32)
        if bands["vh"].shape != vv.shape:
            raise ValueError("vv and vh must have the same shape")
    if transform is None:
        transform = Affine(pixel_size, 0.0, 0.0, 0.0, -pixel_size, 0.0)

    valid = sar_valid(bands, land_mask, land_buffer_m, pixel_size)
    pfa = cfar_params.pop("pfa", 10**-6.5) / len(bands)
    masks, backgrounds = {}, {}
    for name, band in bands.items():
        masks[name], backgrounds[name] = cfar_two_parameter(
            band, pixel_size=pixel_size, pfa=pfa, valid=valid, return_background=True, **cfar_params
        )
    detected = np.zeros(vv.shape, dtype=bool)
    for m in masks.values():
        detected |= m
    labels, origin = cluster_detections(detected, valid)
    if labels is None:
        return []
    found = vessels_from_clusters(labels, origin, bands, masks, backgrounds, transform, pixel_size,
                                  min_length_m=min_length_m, max_length_m=max_length_m, extent_db=extent_db,
                                  resolution_m=resolution_m)
    return [v for _, v in found]


def sar_valid(bands: dict, land_mask=None, land_buffer_m: float = 0.0, pixel_size: float = 10.0) -> np.ndarray:
    """Pixels :func:`detect_vessels_sar` works on: finite and positive in every band, off the buffered land.

    Parameters
    ----------
    bands : dict of (H, W) ndarrays
        Linear sigma0 by channel name.
    land_mask : (H, W) bool ndarray, optional
        True on land.
    land_buffer_m : float
        Land is grown by this distance (a window needs this much halo).
    pixel_size : float
        Pixel spacing in metres.
    """
    valid, scratch = None, None
    for band in bands.values():  # in place: a whole scene's window is ~17 Mpx, fresh arrays cost page faults
        if valid is None:
            valid = np.isfinite(band)
            scratch = np.empty_like(valid)
        else:
            valid &= np.isfinite(band, out=scratch)
        valid &= np.greater(band, 0, out=scratch)
    if land_mask is not None:
        valid &= np.logical_not(_buffered(np.asarray(land_mask, dtype=bool), land_buffer_m, pixel_size), out=scratch)
    return valid


def cluster_detections(detected, valid):
    """Detections grouped into objects: a one-pixel closing, then 8-connected labels.

    Detections are sparse: the closing and labelling run on their bounding
    box plus two pixels (the closing reaches one pixel out, and the margin
    keeps the erosion's ``border_value=1`` to the true image edge), which
    gives the full-image result. A pixel's object therefore depends on the
    detections within two pixels of it only; labels are numbered in
    row-major order of each object's first pixel.

    Returns
    -------
    labels : (h, w) int ndarray or None
        Labels on the box (None when nothing is detected).
    origin : (int, int)
        Row and column of the box in ``detected``.
    """
    rows = np.flatnonzero(detected.any(axis=1))
    if rows.size == 0:
        return None, (0, 0)
    cols = np.flatnonzero(detected.any(axis=0))
    shape = detected.shape
    r0, r1 = max(int(rows[0]) - 2, 0), min(int(rows[-1]) + 3, shape[0])
    c0, c1 = max(int(cols[0]) - 2, 0), min(int(cols[-1]) + 3, shape[1])
    window = np.s_[r0:r1, c0:c1]
    square = np.ones((3, 3), dtype=bool)
    closed = ndimage.binary_erosion(
        ndimage.binary_dilation(detected[window], square), square, border_value=1
    ) & valid[window]
    labels, n = ndimage.label(closed, structure=square)
    if n == 0:
        return None, (0, 0)
    return labels, (r0, c0)


def vessels_from_clusters(labels, origin, bands: dict, masks: dict, backgrounds: dict, transform,
                          pixel_size: float = 10.0, *, keep=None, offset: tuple[int, int] = (0, 0),
                          min_length_m: float = 20.0, max_length_m: float = 600.0, extent_db: float = 15.0,
                          resolution_m: float = 20.0) -> list:
    """Outline, measure and discriminate the objects of :func:`cluster_detections`.

    Parameters
    ----------
    labels, origin
        From :func:`cluster_detections` on this frame (the image, or a window of it).
    bands, masks, backgrounds : dicts by channel
        The frame's sigma0, CFAR detections and :class:`.cfar.CfarBackground`
        (in frame pixel coordinates).
    transform : affine.Affine
        Pixel-to-CRS transform of the whole grid.
    pixel_size : float
        Pixel spacing in metres.
    keep : (n_labels,) bool ndarray, optional
        Which objects to process (label ``k`` is ``keep[k - 1]``); default all.
    offset : (int, int)
        Row and column of the frame on the whole grid.
    min_length_m, max_length_m, extent_db, resolution_m
        As in :func:`detect_vessels_sar`.

    Returns
    -------
    list of (int, Vessel)
        Label and vessel, in label order.
    """
    r0, c0 = origin
    frame_shape = next(iter(bands.values())).shape
    refined = np.zeros(frame_shape, dtype=np.int32)
    info = {}
    for lab, box in enumerate(ndimage.find_objects(labels), start=1):
        if box is None or (keep is not None and not keep[lab - 1]):
            continue
        obj = labels[box] == lab
        rows0, cols0 = box[0].start + r0, box[1].start + c0
        sl = np.s_[rows0 : rows0 + obj.shape[0], cols0 : cols0 + obj.shape[1]]
        kept = np.zeros(obj.shape, dtype=bool)
        stats = {}
        best_scr = -np.inf
        for name, band in bands.items():
            patch = band[sl]
            vals = np.where(obj, patch, 0.0)
            peak_idx = np.unravel_index(np.argmax(vals), vals.shape)
            peak = float(vals[peak_idx])
            clutter_mean, _ = backgrounds[name].at(peak_idx[0] + rows0, peak_idx[1] + cols0)
            scr = float(_db(peak / clutter_mean)) if clutter_mean > 0 else float("nan")
            in_cfar = masks[name][sl] & obj
            if in_cfar.any():
                kept |= in_cfar & (patch >= peak * 10 ** (-extent_db / 10.0))
                if np.isfinite(scr):
                    best_scr = max(best_scr, scr)
            stats[name] = (peak, float(vals[obj].mean()), scr, bool(in_cfar.any()))
        if not kept.any():
            continue
        refined[sl][kept] = lab
        info[lab] = (stats, best_scr)

    vessels = []
    for obj in measure_objects(refined, transform, offset):
        stats, best_scr = info[obj["label"]]
        raw_len = obj["length_m"]
        raw_wid = obj["area_m2"] / raw_len if raw_len > 0 else 0.0
        length = max(raw_len - resolution_m, pixel_size)
        width = min(max(raw_wid - resolution_m, pixel_size), length)
        if not (min_length_m <= length <= max_length_m):
            continue
        attributes = {
            "scr_db": best_scr,
            "raw_length_m": raw_len,
            "raw_width_m": raw_wid,
            "n_pixels": obj["n_pixels"],
            "channels": [k for k, v in stats.items() if v[3]],
        }
        for name, (peak, mean, scr, _) in stats.items():
            attributes[f"peak_{name}_db"] = float(_db(peak))
            attributes[f"mean_{name}_db"] = float(_db(mean))
            attributes[f"scr_{name}_db"] = scr
        vessels.append((obj["label"], Vessel(
            outline=obj["outline"],
            x=obj["x"],
            y=obj["y"],
            length_m=float(length),
            width_m=float(width),
            heading_deg=obj["heading_deg"],
            area_m2=obj["area_m2"],
            score=_score(best_scr),
            sensor=SENSOR,
            attributes=attributes,
        )))
    return vessels
