"""Container-stack detection and TEU estimation on Sentinel-2 L2A reflectance.

At 10 m a 20-foot container (6.1 x 2.44 m) is sub-pixel, but a yard of
hundreds of them is a patch of painted steel. Measured on the sen2ships port
scenes (real L2A, hand-outlined container yards), what separates a yard from
the rest of a port city at 10 m is, in order of strength:

* a spectrally flat surface from the visible to the SWIR: the 90 m
  neighbourhood geometric mean of B11 / mean(B02, B03, B04) is 1.1-1.5 in the
  yards (painted steel and asphalt aisles) and mostly 1.5-2.5 on concrete,
  bare soil, sand, tiled roofs and vegetation, whose reflectance rises into
  the SWIR (the physics behind NDBI, Zha et al. 2003, taken against the
  visible mean so that red and orange paint with a high NIR still count as
  flat);
* colour texture: boxes of different colours side by side make neighbouring
  pixels differ in hue, measured with the opponent channels rg = R - G and
  yb = (R + G)/2 - B of Hasler & Suesstrunk (2003) relative to the local
  brightness texture; only the most colourful blocks pass at 10 m, so they
  are used as seeds, not as the yard;
* yards are large contiguous patches at a quay.

A spectrally neutral haze veil (thin cloud, fog: the same additive offset in
every band, seen as water that is not black in NIR and SWIR) is removed
first by dark-object subtraction (Chavez 1988), since it flattens the
spectrum and dilutes the colour texture. Then the detector takes
colour-textured, spectrally flat seed blocks, grows them
over the connected flat surface by at most ``grow_m`` (the yard interior that
is grey-brown at 10 m), and keeps patches above a minimum area that come
within ``max_quay_distance_m`` of water. Inside a patch the stacks are its
textured pixels, less strong grey steps (the edge between the yard floor and
a concrete apron or a roof is textured too, but without hue change); the
patch's last ``edge_m`` is decided by each pixel's own spectrum, and nothing
within ``apron_m`` of the water counts except on a detected vessel's deck.
With a time series, stacks are also accepted at a smaller scale inside the
reference yards (``yard_prior``, :func:`reference_yard_mask`). Every
step is a vectorised array operation (uniform filters, binary morphology,
labelling): O(pixels), the bounded geodesic growth O(pixels x grow_m /
pixel_size).
"""

from __future__ import annotations

import itertools

import numpy as np
import shapely
from affine import Affine
from rasterio import features
from scipy import ndimage
from shapely.geometry import shape
from shapely.ops import unary_union

from .records import ContainerStack
from .water import distance_to_mask, isin_codes

#: Sentinel-2 L2A scene-classification codes that hide the ground: no data (0),
#: saturated/defective (1), cloud shadow (3), cloud medium/high probability
#: (8, 9) and thin cirrus (10).
UNOBSERVED_SCL = (0, 1, 3, 8, 9, 10)

#: Gross yard area per TEU ground slot, m2. A 20-ft slot is 6.1 x 2.44 = 14.9
#: m2; the gaps between rows and the gantry/straddle lanes inside a block add
#: roughly two thirds, hence 25 m2 (400 ground slots per hectare of block).
#: Plain geometric reasoning, not a cited planning figure.
DEFAULT_SLOT_AREA_M2 = 25.0
#: Mean tiers per occupied slot and its range. RTG and straddle-carrier
#: blocks are built for 3-6 tiers but operated below that so that boxes can be
#: dug out; 2.5 (1.5-3.5) is our working assumption. Cross-check: with the
#: defaults a hectare of stack holds 850 TEU (510-1190); Rodrigue & Notteboom
#: (Port Economics, Management and Policy, ch. "stacking density and container
#: yard equipment") give 500-800 TEU per hectare of yard space as the static
#: capacity of RTG/straddle-carrier yards, so the central value is at the
#: high end and fits full, tightly stacked blocks rather than whole yards.
DEFAULT_STACK_HEIGHT = (2.5, 1.5, 3.5)
#: Share of ground slots inside a detected patch that hold containers (an
#: assumption: the detector only marks textured, i.e. filled, ground).
DEFAULT_PACKING = 0.85


def estimate_teu(
    area_m2,
    slot_area_m2: float = DEFAULT_SLOT_AREA_M2,
    stack_height_mean: float = DEFAULT_STACK_HEIGHT[0],
    stack_height_low: float = DEFAULT_STACK_HEIGHT[1],
    stack_height_high: float = DEFAULT_STACK_HEIGHT[2],
    packing: float = DEFAULT_PACKING,
):
    """Twenty-foot-equivalent units held by a stack area.

    ``TEU = area / slot_area * packing * mean_tiers``: the ground area is
    turned into ground slots (gross area per slot incl. the gaps inside a
    block), a share ``packing`` of them is occupied, and each holds
    ``stack_height`` TEU on average. The range only varies the stack height,
    the least known factor from above.

    Parameters
    ----------
    area_m2 : float or array_like
        Stack ground area(s), m2. Negative areas (a decrease) give negative TEU.
    slot_area_m2 : float
        Gross yard area per TEU ground slot, m2 (default 25; net slot 14.9).
    stack_height_mean, stack_height_low, stack_height_high : float
        Mean number of tiers per occupied slot: estimate and range
        (default 2.5, 1.5, 3.5).
    packing : float
        Occupied share of ground slots (default 0.85).

    Returns
    -------
    estimate, low, high : float or ndarray
        Same shape as ``area_m2``. For negative areas ``low`` is still the
        smaller magnitude.

    References
    ----------
    Rodrigue, J.-P., Notteboom, T. Port Economics, Management and Policy,
    "Stacking density and container yard equipment" (500-800 TEU per hectare
    of RTG/straddle-carrier yard): a cross-check of the defaults, which are
    otherwise stated assumptions (see the module constants).
    """
    area = np.asarray(area_m2, dtype=float)
    slots = area / float(slot_area_m2) * float(packing)
    est, low, high = slots * stack_height_mean, slots * stack_height_low, slots * stack_height_high
    if area.ndim == 0:
        return float(est), float(low), float(high)
    return est, low, high


def _local_mean(a: np.ndarray, size: int) -> np.ndarray:
    return ndimage.uniform_filter(a, size=size, mode="nearest")


def _disk(radius_px: int) -> np.ndarray:
    r = max(int(radius_px), 0)
    y, x = np.ogrid[-r : r + 1, -r : r + 1]
    return x * x + y * y <= r * r + 0.5


def _polygon(geom: dict):
    """``shapely.geometry.shape`` of a GeoJSON polygon from ``rasterio.features.shapes``:
    the same rings, built in two vectorised calls instead of one per hole."""
    rings = geom["coordinates"]
    if geom["type"] != "Polygon" or len(rings) < 2:
        return shape(geom)
    shell = shapely.linearrings(np.asarray(rings[0], dtype=float))
    lengths = [len(r) for r in rings[1:]]
    coords = np.asarray(list(itertools.chain.from_iterable(rings[1:])), dtype=float)
    holes = shapely.linearrings(coords, indices=np.repeat(np.arange(len(lengths)), lengths))
    return shapely.polygons(shell, holes=holes)


def _cross_reduce(mask: np.ndarray, op, border_value: bool) -> np.ndarray:
    """``op`` of each pixel and its four neighbours (outside = ``border_value``)."""
    p = np.pad(mask, 1, constant_values=border_value)
    out = op(p[1:-1, 1:-1], p[:-2, 1:-1])
    for part in (p[2:, 1:-1], p[1:-1, :-2], p[1:-1, 2:]):
        op(out, part, out=out)
    return out


def _binary_erosion_disk(mask: np.ndarray, radius_px: int, border_value: bool = False) -> np.ndarray:
    """``ndimage.binary_erosion(mask, _disk(radius_px), border_value=...)``; the
    radius-1 disk (a cross) as shifted ANDs, exact on booleans and much faster."""
    if int(radius_px) == 1:
        return _cross_reduce(mask, np.logical_and, border_value)
    return ndimage.binary_erosion(mask, structure=_disk(radius_px), border_value=int(border_value))


def _binary_opening_disk(mask: np.ndarray, radius_px: int) -> np.ndarray:
    """``ndimage.binary_opening(mask, _disk(radius_px))`` (the disk is symmetric)."""
    if int(radius_px) == 1:
        return _cross_reduce(_cross_reduce(mask, np.logical_and, False), np.logical_or, False)
    return ndimage.binary_opening(mask, structure=_disk(radius_px))


def _label_means(labels: np.ndarray, n: int):
    """``img -> ndimage.mean(img, labels, 1..n)`` that extracts the labelled pixels once.

    The same float64 bincount sums in the same pixel order as ndimage.mean,
    over the labelled pixels only, so the values are identical.
    """
    sel = labels > 0
    lab = labels[sel]
    counts = np.bincount(lab, minlength=n + 1)[1:].astype(np.float64)

    def label_mean(img: np.ndarray) -> np.ndarray:
        return np.bincount(lab, weights=img[sel], minlength=n + 1)[1:] / counts

    return label_mean


def _odd_window(length_m: float, pixel_size: float) -> int:
    n = max(int(round(length_m / pixel_size)), 1)
    return n if n % 2 == 1 else n + 1


def _water_mask(bands: dict, pixel_size: float, water_ndwi: float, min_water_area_m2: float,
                max_vessel_beam_m: float) -> np.ndarray:
    """NDWI water (McFeeters 1996) without small blobs, closed over berthed vessels."""
    green = np.asarray(bands["B03"], dtype=np.float32)
    nir = np.asarray(bands["B08"], dtype=np.float32)
    wet = (green - nir) / (green + nir + np.float32(1e-6)) > water_ndwi
    # Blue paint has NDWI > 0 too: water bodies are far larger than a block of blue boxes.
    labels, n = ndimage.label(wet)
    if n:
        keep = np.bincount(labels.ravel()) * pixel_size**2 >= min_water_area_m2
        keep[0] = False
        wet = keep[labels]
    # Hulls and decks are not water spectrally; closing over the widest beam
    # puts ships back into the water they float on.
    r_beam = max(int(np.ceil(max_vessel_beam_m / 2.0 / pixel_size)), 1)
    return ndimage.binary_closing(wet, structure=_disk(r_beam), border_value=1)


def haze_offsets(bands: list, water: np.ndarray, percentile: float = 0.5,
                 clear_water_reflectance=(0.02, 0.02, 0.01, 0.005, 0.005), min_pixels: int = 500) -> np.ndarray:
    """Additive, spectrally neutral haze offsets by dark-object subtraction over water.

    Dark-object subtraction (Chavez 1988): the ``percentile`` of each band
    over the water pixels, less the reflectance of clear water in that band
    (the dark object is not black; Chavez 1996 assumes about 1 %), is the
    additive path reflectance left in the scene. Water is black in B08 and
    B11 whatever its colour, so the offset found there is haze; in the visible
    the excess of the darkest water over ``clear_water_reflectance`` may as
    well be turbid or algal water. So only the spectrally neutral part is
    removed: each band's offset is capped at the smaller of the B08 and B11
    offsets. That is the veil of thin cloud, fog or smoke with large
    particles, flat from the visible to the SWIR (sen2ships Algiers: the
    darkest water and land are 0.04-0.05 in every band); blue-weighted
    aerosol haze with a clear B11 is left alone (its visible excess cannot be
    told from water colour in one scene).

    Parameters
    ----------
    bands : list of 5 (H, W) arrays or None
        B02, B03, B04, B08, B11 reflectance (None: band missing, offset 0;
        without B11 the cap is the B08 offset).
    water : (H, W) bool array
        Water pixels to take the dark object from.
    percentile : float
        Percentile of the water pixels taken as the dark object (0.5).
    clear_water_reflectance : 5 floats
        Reflectance of clear water per band, subtracted from the dark object
        (default 0.02, 0.02, 0.01, 0.005, 0.005: the darkest water of the
        clear sen2ships scenes is 0.004-0.025, 0.008-0.028, 0-0.015, 0-0.01
        and 0.001-0.012).
    min_pixels : int
        Fewer water pixels give no correction.

    Returns
    -------
    (5,) float32 ndarray
        Offsets, 0-0.2, to subtract from the bands.

    References
    ----------
    Chavez, P. S. (1988). An improved dark-object subtraction technique for
    atmospheric scattering correction of multispectral data. Remote Sens.
    Environ. 24(3). Chavez, P. S. (1996). Image-based atmospheric
    corrections - revisited and improved. Photogramm. Eng. Remote Sens. 62(9).
    """
    out = np.zeros(len(bands), dtype=np.float32)
    if int(water.sum()) < min_pixels:
        return out
    # Every 4th water pixel: the percentile of ~10^5 pixels is as stable and 4 x cheaper.
    idx = np.flatnonzero(water.ravel())[::4]
    for i, band in enumerate(bands):
        if band is None:
            continue
        vals = band.ravel()[idx]
        vals = vals[np.isfinite(vals)]
        if vals.size >= min_pixels // 4:
            out[i] = np.clip(np.percentile(vals, percentile) - clear_water_reflectance[i], 0.0, 0.2)
    veil = out[3] if bands[4] is None else min(out[3], out[4])
    return np.minimum(out, veil)


def reference_yard_mask(stack_masks, min_dates: int = 2) -> np.ndarray:
    """Pixels where container stacks were found on at least ``min_dates`` dates.

    Parameters
    ----------
    stack_masks : iterable of (H, W) bool arrays
        The ``stack_mask`` of :func:`detect_container_stacks` on each date.
    min_dates : int
        Dates a pixel must be stack on: two, so that a single false alarm
        does not become a yard.

    Returns
    -------
    (H, W) bool array. Raises ValueError when there is no mask.
    """
    count = None
    for m in stack_masks:
        m = np.asarray(m, dtype=np.uint16)
        count = m.copy() if count is None else count + m
    if count is None:
        raise ValueError("reference_yard_mask needs at least one stack mask")
    return count >= max(int(min_dates), 1)


def detect_container_stacks(
    bands: dict,
    transform: Affine,
    scl: np.ndarray | None = None,
    water: np.ndarray | None = None,
    vessels: list | None = None,
    pixel_size: float = 10.0,
    *,
    min_brightness: float = 0.07,
    max_brightness: float = 0.30,
    max_swir_visible_ratio: float = 1.5,
    max_nir_visible_ratio: float = 1.8,
    neighbourhood_m: float = 90.0,
    texture_window_m: float = 30.0,
    min_colour_texture: float = 0.10,
    min_colour_share: float = 0.5,
    min_seed_fraction: float = 0.5,
    min_stack_texture: float = 0.05,
    max_grey_edge_texture: float = 0.35,
    seed_window_m: float = 70.0,
    grow_m: float = 150.0,
    opening_radius_m: float = 10.0,
    min_area_m2: float = 20000.0,
    max_quay_distance_m: float = 200.0,
    water_ndwi: float = 0.0,
    min_water_area_m2: float = 10000.0,
    max_vessel_beam_m: float = 60.0,
    haze_correction: bool = True,
    dark_object_percentile: float = 0.5,
    clear_water_reflectance: tuple = (0.02, 0.02, 0.01, 0.005, 0.005),
    min_dark_object_pixels: int = 500,
    edge_m: float = 10.0,
    apron_m: float = 30.0,
    yard_prior: np.ndarray | None = None,
    min_area_in_yard_m2: float = 2000.0,
    seed_window_in_yard_m: float = 50.0,
    reference_stacks: np.ndarray | None = None,
    unchanged: np.ndarray | None = None,
    teu_params: dict | None = None,
) -> tuple[list[ContainerStack], dict]:
    """Detect container stacks on Sentinel-2 L2A reflectance.

    Parameters
    ----------
    bands : dict of (H, W) float arrays
        Reflectance 0-1: 'B02', 'B03', 'B04', 'B08' and 'B11'. Without B11
        the SWIR flatness test is skipped (more false alarms on concrete).
    transform : affine.Affine
        Pixel-to-CRS transform of the bands.
    scl : (H, W) int array, optional
        L2A scene classification; codes in :data:`UNOBSERVED_SCL` are masked
        and counted as unobserved.
    water : (H, W) bool array, optional
        True on water (berthed vessels included). Without it, water is
        ``NDWI > water_ndwi`` in bodies of at least ``min_water_area_m2``,
        closed over ``max_vessel_beam_m``.
    vessels : list of detectors.records.Vessel, optional
        Vessel outlines in CRS units; their decks are searched too and stacks
        there are flagged ``on_vessel=True``.
    pixel_size : float
        Metres per pixel.
    min_brightness, max_brightness : float
        Range of the ``neighbourhood_m`` mean visible reflectance. Yards with
        their aisles are 0.08-0.25 (sen2ships); below are wet or fresh asphalt
        and shadow, above are white roofs, sand and cloud.
    max_swir_visible_ratio : float
        Upper limit of the neighbourhood geometric mean of
        B11 / mean(B02, B03, B04). Yards 1.1-1.5 (10-90 % of yard pixels
        measured on 6 terminals); concrete, soil, tiles and vegetation rise
        into the SWIR and lie above.
    max_nir_visible_ratio : float
        Same for B08: rejects vegetated neighbourhoods (yards <= 1.6).
    neighbourhood_m : float
        Side of the square window of the neighbourhood statistics, m (about
        one yard block with its lanes).
    texture_window_m : float
        Window of the colour and brightness texture, m (30 m = 3 x 3 px: a few
        stack rows).
    min_colour_texture : float
        Local standard deviation of the opponent colours (rg, yb) relative to
        local brightness that marks a multi-coloured pixel.
    min_colour_share : float
        ... and its minimum ratio to the relative brightness texture: stacks
        vary in hue, roofs/streets/shadows mostly in brightness. Also applied
        to the mean over each final patch.
    min_seed_fraction : float
        Share of multi-coloured pixels in the ``seed_window_m`` window that
        makes a seed.
    seed_window_m : float
        Side of the square window of the seed test, m. A block must fill most
        of it, so it is kept below the smallest block to be found (single
        blocks of 80-90 m, e.g. a ~90 m row of boxes): in the 90 m spectral
        neighbourhood such a block, less its rim, barely reaches half the
        window. 70 m raised the yard coverage of all sen2ships ports.
    grow_m : float
        Largest distance a seed grows over the connected flat surface, m
        (the grey-brown yard interior between colourful blocks).
    min_stack_texture : float
        Inside a kept patch, a pixel is stack when its relative brightness
        texture (or its colour texture) exceeds this; smooth lanes, aprons
        and empty slots are not. The texture window spreads a block by half a
        window into the lanes around it, so the textured set is eroded by
        that half window first.
    max_grey_edge_texture : float
        A textured pixel is dropped as the boundary of two plain surfaces
        (asphalt yard floor / concrete apron, roof / shadow) when its relative
        brightness texture exceeds this while its colour texture stays below
        ``min_colour_share`` times it. 0.35 is a contrast above about 2.5:1
        inside 30 m; boxes of different paint that contrast that much also
        differ in hue.
    edge_m : float
        A kept patch is extended by up to this distance over pixels whose own
        NIR/visible and SWIR/visible ratios pass the tests above. The surface
        tests are ``neighbourhood_m`` means, so a stack next to grass or a
        bright apron loses its outer row of boxes without it. Default one
        pixel: on the simulated sample it brings Dunai's 0.6-1.2 ha stacks
        from -20..-7 % to -11..-2 % of their true area (Rajin -3..+1 % to
        +2..+6 %; 20 m gives +8..+14 %); on the sen2ships ports the share
        inside the terminals stays within 0.01, yard coverage gains
        0.01-0.03 and false alarms 6-10 %.
    apron_m : float
        Stack pixels closer than this to water are dropped, except on the
        decks of ``vessels``. A container terminal keeps a quay apron of
        roughly 30-70 m between the quay edge and its stacks for the
        ship-to-shore cranes and their lanes (reasoning, not a cited
        standard); what is closer is mostly the hulls and decks of ships
        alongside that the vessel detector did not outline, and quay-edge
        clutter. Measured on the sen2ships ports: the share of the detected
        area inside the terminals rises by 0.01-0.07 in every port (Gdynia,
        off labelled vessels, 0.45 -> 0.51), false alarms on other land drop
        5-38 %, yard coverage drops by at most 0.03; the simulated sample is
        unchanged. Narrow piers are out of reach anyway (no 70 m seed fits).
    opening_radius_m : float
        Radius of the opening of the flat surface: removes roads and quay
        edges narrower than ``2 * opening_radius_m``.
    min_area_m2 : float
        Smallest patch kept (2 ha, about 800 ground slots).
    max_quay_distance_m : float
        A patch must come this close to water: container yards lie behind a
        quay apron of 30-100 m.
    water_ndwi, min_water_area_m2, max_vessel_beam_m : float
        Water mask used when ``water`` is not given.
    haze_correction : bool
        Subtract the spectrally neutral haze veil found over the water
        (:func:`haze_offsets`) from all bands before any test (default True).
        The thresholds above are those of clear L2A scenes; under a veil the
        yard's relative colour texture and its SWIR/visible contrast to
        concrete shrink (sen2ships Algiers: inside-terminal share 0.09 without,
        0.52 with the correction). Clear scenes get no correction.
    dark_object_percentile, clear_water_reflectance, min_dark_object_pixels
        Passed to :func:`haze_offsets` (0.5 %, clear-water reflectance per
        band B02..B11, at least 500 water pixels).
    yard_prior : (H, W) bool array, optional
        Where container stacks were found on other dates of the time series
        (:func:`reference_yard_mask`). A yard is a fixed place whose stacks
        come and go, so inside it a smaller block is accepted: seeds are also
        tested in a ``seed_window_in_yard_m`` window, and a patch touching the
        prior needs only ``min_area_in_yard_m2``. This is how a few hundred
        TEU (0.3-1 ha) are found at a yard where a larger stack stood before.
    min_area_in_yard_m2 : float
        Smallest patch kept where it touches ``yard_prior`` (0.2 ha, about 80
        ground slots).
    seed_window_in_yard_m : float
        Seed window inside ``yard_prior``, m (a 50 m block of boxes).
    reference_stacks, unchanged : (H, W) bool arrays, optional
        Map updating by change detection (Xian, Homer & Fry 2009): where
        ``unchanged`` (the pixel's spectrum matches a reference image's within
        noise, :func:`detectors.radiometry.unchanged_pixels`) the pixel keeps
        the class it has in ``reference_stacks`` (this detector run on that
        reference, e.g. the median composite of the time series); elsewhere
        this date decides. The rim pixels of a stack that did not move are
        then decided once, not afresh on every date, where noise, haze and
        the sun's shadows flip some of them: on the simulated sample such
        flips moved the area between consecutive dates by up to 13 pixels,
        as much as a 100 TEU event (12 pixels), and with the median's classes
        the area of dates whose stacks did not change scatters 176 m2 instead
        of 376 m2 (1 sigma).
    teu_params : dict, optional
        Keyword arguments for :func:`estimate_teu`.

    Returns
    -------
    stacks : list of ContainerStack
        Outlines in CRS units, area and TEU estimate/range; ``attributes``
        holds mean brightness, SWIR/visible ratio, colour texture and share.
    stats : dict
        ``observed_fraction`` (share of land pixels not hidden by SCL cloud,
        shadow or no-data), ``stack_area_m2``, ``teu_estimate``, ``teu_low``,
        ``teu_high``, ``stack_mask`` (bool array), ``n_stacks`` and
        ``haze_offsets`` (the five reflectance offsets subtracted, B02..B11).

    References
    ----------
    McFeeters, S. K. (1996). The use of the Normalized Difference Water Index
    (NDWI). Int. J. Remote Sens. 17(7).
    Zha, Y., Gao, J., Ni, S. (2003). Use of normalized difference built-up
    index in automatically mapping urban areas from TM imagery. Int. J. Remote
    Sens. 24(3).
    Hasler, D., Suesstrunk, S. (2003). Measuring colourfulness in natural
    images. Proc. SPIE 5007.
    Vincent, L. (1993). Morphological grayscale reconstruction in image
    analysis. IEEE Trans. Image Process. 2(2) (geodesic dilation).
    Chavez, P. S. (1988). An improved dark-object subtraction technique for
    atmospheric scattering correction of multispectral data. Remote Sens.
    Environ. 24(3).
    Xian, G., Homer, C., Fry, J. (2009). Updating the 2001 National Land Cover
    Database land cover classification to 2006 by using Landsat imagery
    change detection methods. Remote Sens. Environ. 113(6).
    """
    teu_params = dict(teu_params or {})
    blue = np.asarray(bands["B02"], dtype=np.float32)
    green = np.asarray(bands["B03"], dtype=np.float32)
    red = np.asarray(bands["B04"], dtype=np.float32)
    nir = np.asarray(bands["B08"], dtype=np.float32)
    swir = np.asarray(bands["B11"], dtype=np.float32) if bands.get("B11") is not None else None
    shape_ = red.shape
    stacked = np.stack([blue, green, red, nir])
    valid = np.all(np.isfinite(stacked), axis=0) & (stacked.sum(axis=0) > 0)
    if swir is not None:
        valid &= np.isfinite(swir)
    if scl is not None:
        valid &= ~isin_codes(scl, UNOBSERVED_SCL)

    if water is None:
        water_mask = _water_mask(bands, pixel_size, water_ndwi, min_water_area_m2, max_vessel_beam_m)
    else:
        water_mask = np.asarray(water, dtype=bool)
    land = ~water_mask

    offsets = np.zeros(5, dtype=np.float32)
    if haze_correction:
        offsets = haze_offsets([blue, green, red, nir, swir], water_mask & valid, dark_object_percentile,
                               clear_water_reflectance, min_dark_object_pixels)
        blue, green, red, nir = (b - o for b, o in zip((blue, green, red, nir), offsets[:4]))
        if swir is not None:
            swir = swir - offsets[4]
    filled = {k: np.where(valid, v, 0.0).astype(np.float32) for k, v in
              (("B02", blue), ("B03", green), ("B04", red), ("B08", nir))}

    deck = np.zeros(shape_, dtype=bool)
    if vessels:
        outlines = [v.outline for v in vessels if v.outline is not None and not v.outline.is_empty]
        if outlines:
            deck = features.rasterize(
                [(g, 1) for g in outlines], out_shape=shape_, transform=transform, all_touched=False
            ).astype(bool)
    searchable = (land | deck) & valid
    weight = searchable.astype(np.float32)
    eps = np.float32(1e-4)

    denominators: dict[int, np.ndarray] = {}

    def masked_mean(a, size):
        # Normalised convolution (Knutsson & Westin 1993): water, cloud and
        # no-data neither darken nor texture the statistics at their edges.
        num = _local_mean(np.where(searchable, a, 0.0).astype(np.float32, copy=False), size)
        if size not in denominators:
            denominators[size] = np.maximum(_local_mean(weight, size), np.float32(1e-3))
        return num / denominators[size]

    n_neigh = _odd_window(neighbourhood_m, pixel_size)
    n_tex = _odd_window(texture_window_m, pixel_size)
    visible = (filled["B02"] + filled["B03"] + filled["B04"]) / np.float32(3.0)
    brightness = masked_mean(visible, n_neigh)
    log_vis = np.log(np.maximum(visible, eps))
    surface = searchable & (brightness > min_brightness) & (brightness < max_brightness)
    nir_ratio = np.exp(masked_mean(np.log(np.maximum(filled["B08"], eps)) - log_vis, n_neigh))
    surface &= nir_ratio < max_nir_visible_ratio
    if swir is not None:
        swir_f = np.where(valid, swir, 0.0).astype(np.float32)
        swir_ratio = np.exp(masked_mean(np.log(np.maximum(swir_f, eps)) - log_vis, n_neigh))
        surface &= swir_ratio < max_swir_visible_ratio
    else:
        swir_ratio = np.full(shape_, np.nan, dtype=np.float32)
    r_open = max(int(round(opening_radius_m / pixel_size)), 1)
    surface = _binary_opening_disk(surface, r_open)

    def masked_var(a, m=None):
        m = masked_mean(a, n_tex) if m is None else m
        return np.maximum(masked_mean(a * a, n_tex) - m * m, 0.0)

    rg = filled["B04"] - filled["B03"]
    yb = np.float32(0.5) * (filled["B04"] + filled["B03"]) - filled["B02"]
    visible_tex_mean = masked_mean(visible, n_tex)
    local_b = visible_tex_mean + np.float32(1e-3)
    colour_tex = np.sqrt(masked_var(rg) + masked_var(yb)) / local_b
    bright_tex = np.sqrt(masked_var(visible, visible_tex_mean)) / local_b
    colourful = searchable & (colour_tex > min_colour_texture) & (colour_tex > min_colour_share * bright_tex)
    n_seed = _odd_window(seed_window_m, pixel_size)
    colourful_f = colourful.astype(np.float32)
    seeds = surface & (masked_mean(colourful_f, n_seed) > min_seed_fraction)
    prior = None
    if yard_prior is not None and np.any(yard_prior):
        prior = np.asarray(yard_prior, dtype=bool)
        n_small = _odd_window(seed_window_in_yard_m, pixel_size)
        seeds |= surface & prior & (masked_mean(colourful_f, n_small) > min_seed_fraction)

    steps = int(round(grow_m / pixel_size))
    mask = seeds
    if steps > 0 and seeds.any():
        # Geodesic dilation: the yard interior between colourful blocks is
        # flat steel/asphalt too; growth is bounded so that it cannot run
        # along every flat quay and road of the port.
        # ``steps`` cross dilations cannot leave the seeds' bounding box grown by
        # ``steps``: computed there (outside it the result is empty anyway).
        rows, cols = np.flatnonzero(seeds.any(axis=1)), np.flatnonzero(seeds.any(axis=0))
        box = np.s_[max(rows[0] - steps, 0):rows[-1] + steps + 1, max(cols[0] - steps, 0):cols[-1] + steps + 1]
        mask = np.zeros_like(seeds)
        mask[box] = ndimage.binary_dilation(seeds[box], structure=_disk(1), iterations=steps, mask=surface[box])

    labels, n = ndimage.label(mask, structure=np.ones((3, 3), dtype=bool))
    pixel_area = abs(transform.a * transform.e - transform.b * transform.d)
    if n:
        index = np.arange(n + 1)
        counts = np.bincount(labels.ravel(), minlength=n + 1)
        if water_mask.any():
            # A patch is near the quay when any of its pixels is. A patch's
            # pixel nearest the water is on its 4-connected rim or is water, so
            # only those pixels are measured (the test of a per-label minimum of
            # the full distance transform, on a fraction of the pixels).
            padded = np.pad(mask, 1)
            interior = (padded[1:-1, 1:-1] & padded[:-2, 1:-1] & padded[2:, 1:-1]
                        & padded[1:-1, :-2] & padded[1:-1, 2:])
            probe = mask & (~interior | water_mask)
            quay_distance = distance_to_mask(water_mask, probe) * pixel_size
            near_quay = np.bincount(labels[probe][quay_distance <= max_quay_distance_m], minlength=n + 1) > 0
        else:
            near_quay = np.ones(n + 1, dtype=bool)
        label_mean = _label_means(labels, n)
        share = np.ones(n + 1, dtype=bool)
        share[1:] = label_mean(colour_tex) >= min_colour_share * label_mean(bright_tex)
        large = counts * pixel_area >= min_area_m2
        if prior is not None:
            in_yard = np.bincount(labels[prior], minlength=n + 1) > 0
            large |= in_yard & (counts * pixel_area >= min_area_in_yard_m2)
        keep = large & near_quay & share
        keep[0] = False
        textured = (bright_tex > min_stack_texture) | (colour_tex > min_colour_texture)
        if n_tex > 1:
            textured = _binary_erosion_disk(textured, n_tex // 2, border_value=True)
        # Applied after the erosion: removing an edge pixel first would let the
        # erosion eat its stack neighbours too.
        grey_edge = (bright_tex > max_grey_edge_texture) & (colour_tex < min_colour_share * bright_tex)
        patch = keep[labels]
        edge_px = int(round(edge_m / pixel_size))
        if edge_px > 0:
            # The surface tests are neighbourhood means, so a patch's edge is
            # uncertain; there each pixel's own spectrum decides.
            flat_px = (filled["B08"] < max_nir_visible_ratio * visible) & searchable
            if swir is not None:
                flat_px &= swir_f < max_swir_visible_ratio * visible
            for _ in range(edge_px):
                patch = patch | (_cross_reduce(patch, np.logical_or, False) & flat_px)
        mask = patch & textured & ~grey_edge
        if apron_m > 0 and water_mask.any() and mask.any():
            probe = mask & ~deck
            near = np.zeros_like(mask)
            near[probe] = distance_to_mask(water_mask, probe) * pixel_size < apron_m
            mask &= ~near
    if reference_stacks is not None and unchanged is not None:
        kept = np.asarray(unchanged, dtype=bool) & valid
        mask = np.where(kept, np.asarray(reference_stacks, dtype=bool), mask)
    labels, n = ndimage.label(mask, structure=np.ones((3, 3), dtype=bool))

    stacks: list[ContainerStack] = []
    if n:
        index = np.arange(1, n + 1)
        counts = np.bincount(labels.ravel(), minlength=n + 1)[1:]
        label_mean = _label_means(labels, n)
        mean_b = label_mean(visible)
        mean_s = label_mean(swir_ratio)
        mean_t = label_mean(colour_tex)
        mean_bt = label_mean(bright_tex)
        on_deck = label_mean(deck.astype(np.float32)) > 0.5
        parts: dict[int, list] = {}
        # Polygonised on the bounding box of the stacks (GDAL walks every pixel it is given).
        rows, cols = np.flatnonzero(mask.any(axis=1)), np.flatnonzero(mask.any(axis=0))
        box = np.s_[rows[0]:rows[-1] + 1, cols[0]:cols[-1] + 1]
        for geom, value in features.shapes(labels[box].astype(np.int32), mask=mask[box],
                                           transform=transform @ Affine.translation(int(cols[0]), int(rows[0]))):
            parts.setdefault(int(value), []).append(_polygon(geom))
        for i, lab in enumerate(index):
            area = float(counts[i] * pixel_area)
            est, low, high = estimate_teu(area, **teu_params)
            stacks.append(
                ContainerStack(
                    outline=unary_union(parts[int(lab)]),
                    area_m2=area,
                    teu_estimate=est,
                    teu_low=low,
                    teu_high=high,
                    on_vessel=bool(on_deck[i]),
                    attributes={
                        "mean_brightness": float(mean_b[i]),
                        "mean_swir_visible_ratio": float(mean_s[i]),
                        "mean_colour_texture": float(mean_t[i]),
                        "mean_colour_share": float(mean_t[i] / max(mean_bt[i], 1e-6)),
                        "n_pixels": int(counts[i]),
                    },
                )
            )

    n_land = int(land.sum())
    observed_fraction = float((land & valid).sum() / n_land) if n_land else 0.0
    total_area = float(mask.sum() * pixel_area)
    est, low, high = estimate_teu(total_area, **teu_params)
    stats = {
        "observed_fraction": observed_fraction,
        "stack_area_m2": total_area,
        "teu_estimate": est,
        "teu_low": low,
        "teu_high": high,
        "stack_mask": mask,
        "n_stacks": len(stacks),
        "haze_offsets": [float(o) for o in offsets],
    }
    return stacks, stats
