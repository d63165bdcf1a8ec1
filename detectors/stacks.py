"""Container-stack detection and TEU estimation on Sentinel-2 L2A reflectance.

At 10 m a 20-foot container (6.1 x 2.44 m) is sub-pixel, but a yard block of
hundreds of containers is a patch that is, at the same time,

* not vegetated and not water (low NDVI, Rouse et al. 1974; low NDWI,
  McFeeters 1996),
* spectrally flat from NIR to SWIR like painted steel, unlike bare soil, sand
  and weathered concrete whose reflectance rises into the SWIR (the NDBI
  "built-up" signal, Zha et al. 2003, is positive there),
* finely textured: stacks of different heights, colours and gaps between rows
  make neighbouring 10 m pixels differ in brightness *and* in colour. The
  colour part is measured with the opponent channels rg = R - G and
  yb = (R + G)/2 - B of the colourfulness metric of Hasler & Suesstrunk
  (2003); the brightness part with the local coefficient of variation. Local
  variance/edge density is the texture cue of container-yard detectors on
  high-resolution imagery (e.g. Zhang et al., container detection in port
  yards; Haralick et al. 1973 for texture statistics in general),
* a block of a size no single roof, vehicle or ship structure reaches while
  staying textured: a physical minimum area removes the rest.

Every rule is a vectorised array operation (uniform filters and binary
morphology), so the cost is O(pixels).
"""

from __future__ import annotations

import numpy as np
from affine import Affine
from rasterio import features
from scipy import ndimage
from shapely.geometry import shape
from shapely.ops import unary_union

from .records import ContainerStack

#: Sentinel-2 L2A scene-classification codes that hide the ground: no data (0),
#: saturated/defective (1), cloud shadow (3), cloud medium/high probability
#: (8, 9) and thin cirrus (10).
UNOBSERVED_SCL = (0, 1, 3, 8, 9, 10)

#: Gross yard area per TEU ground slot, m2. A slot is 6.1 x 2.44 = 14.9 m2;
#: blocks add the gaps between rows and the crane/straddle lanes inside a
#: block, giving ~25 m2 per slot for the block area that is seen as "stack"
#: at 10 m (terminal totals incl. main driving lanes are ~25-35 m2 per slot,
#: Boese 2011, Handbook of Terminal Planning; PIANC WG 135 (2014)).
DEFAULT_SLOT_AREA_M2 = 25.0
#: Mean tiers per occupied slot. Yards are designed for 4-6 tiers (RTG) or 2-3
#: (straddle carriers) but operated at 60-70 % of the design height so that
#: containers can be dug out; 2.5 is the planning average, 1.5 - 3.5 the range
#: of typical terminals (Boese 2011; Kemme 2013, Design and Operation of
#: Automated Container Storage Systems).
DEFAULT_STACK_HEIGHT = (2.5, 1.5, 3.5)
#: Share of ground slots inside a detected patch that hold containers. The
#: detector only marks textured (filled) ground, so it is high; 0.85 follows
#: the usual 80-90 % peak ground-slot utilisation of planning guides.
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
    Boese, J. W. (ed.) (2011). Handbook of Terminal Planning. Springer.
    PIANC (2014). Masterplans for the development of existing ports, WG 158.
    """
    area = np.asarray(area_m2, dtype=float)
    slots = area / float(slot_area_m2) * float(packing)
    est, low, high = slots * stack_height_mean, slots * stack_height_low, slots * stack_height_high
    if area.ndim == 0:
        return float(est), float(low), float(high)
    return est, low, high


def _local_mean(a: np.ndarray, size: int) -> np.ndarray:
    return ndimage.uniform_filter(a, size=size, mode="nearest")


def _local_var(a: np.ndarray, size: int) -> np.ndarray:
    m = _local_mean(a, size)
    return np.maximum(_local_mean(a * a, size) - m * m, 0.0)


def _disk(radius_px: int) -> np.ndarray:
    r = max(int(radius_px), 0)
    y, x = np.ogrid[-r : r + 1, -r : r + 1]
    return x * x + y * y <= r * r + 0.5


def _odd_window(length_m: float, pixel_size: float) -> int:
    n = max(int(round(length_m / pixel_size)), 1)
    return n if n % 2 == 1 else n + 1


def stack_features(
    bands: dict, pixel_size: float = 10.0, texture_window_m: float = 30.0, support: np.ndarray | None = None
) -> dict:
    """Per-pixel spectral indices and texture used by the stack rules.

    Parameters
    ----------
    bands : dict of (H, W) float arrays
        Reflectance (0-1) 'B02', 'B03', 'B04', 'B08', optionally 'B11'.
    pixel_size : float
        Metres per pixel.
    texture_window_m : float
        Side of the square window of the local statistics, m (30 m = 3x3 at
        10 m: the scale of a few stack rows).
    support : (H, W) bool array, optional
        Pixels the local statistics may use (land and observed). Without it
        every pixel counts; with it the quay edge does not look textured
        because of the water next to it (normalised convolution, Knutsson &
        Westin 1993).

    Returns
    -------
    dict of (H, W) float arrays
        ``brightness`` (mean visible reflectance), ``ndvi``, ``ndwi``,
        ``ndbi`` (NaN when B11 is absent) and ``texture``: the local standard
        deviation of brightness and of the two colour-opponent channels,
        divided by the local brightness (scale free).
    """
    blue = np.asarray(bands["B02"], dtype=np.float32)
    green = np.asarray(bands["B03"], dtype=np.float32)
    red = np.asarray(bands["B04"], dtype=np.float32)
    nir = np.asarray(bands["B08"], dtype=np.float32)
    eps = np.float32(1e-6)
    brightness = (red + green + blue) / 3.0
    ndvi = (nir - red) / (nir + red + eps)
    ndwi = (green - nir) / (green + nir + eps)
    if bands.get("B11") is not None:
        swir = np.asarray(bands["B11"], dtype=np.float32)
        ndbi = (swir - nir) / (swir + nir + eps)
    else:
        ndbi = np.full(red.shape, np.nan, dtype=np.float32)
    w = _odd_window(texture_window_m, pixel_size)
    rg = red - green
    yb = 0.5 * (red + green) - blue
    if support is None:
        weight = np.ones(red.shape, dtype=np.float32)
    else:
        weight = np.asarray(support, dtype=np.float32)
    norm = np.maximum(_local_mean(weight, w), np.float32(1e-6))

    def mean(a):
        return _local_mean(np.where(weight > 0, a, 0.0).astype(np.float32), w) / norm

    def var(a):
        m = mean(a)
        return np.maximum(mean(a * a) - m * m, 0.0)

    local_brightness = mean(brightness) + np.float32(1e-3)
    brightness_texture = np.sqrt(var(brightness)) / local_brightness
    colour_texture = np.sqrt(var(rg) + var(yb)) / local_brightness
    return {
        "brightness": brightness,
        "ndvi": ndvi,
        "ndwi": ndwi,
        "ndbi": ndbi,
        "brightness_texture": brightness_texture,
        "colour_texture": colour_texture,
    }


def detect_container_stacks(
    bands: dict,
    transform: Affine,
    scl: np.ndarray | None = None,
    water: np.ndarray | None = None,
    vessels: list | None = None,
    pixel_size: float = 10.0,
    *,
    min_brightness: float = 0.05,
    max_brightness: float = 0.40,
    max_ndvi: float = 0.15,
    max_ndvi_neighbourhood: float = 0.12,
    neighbourhood_m: float = 50.0,
    max_ndbi: float = 0.12,
    water_ndwi: float = 0.0,
    max_water_nir: float = 0.08,
    max_vessel_beam_m: float = 60.0,
    texture_window_m: float = 30.0,
    min_colour_texture: float = 0.08,
    min_colour_texture_neighbourhood: float = 0.11,
    min_colour_share: float = 0.55,
    opening_radius_m: float = 20.0,
    min_area_m2: float = 5000.0,
    teu_params: dict | None = None,
) -> tuple[list[ContainerStack], dict]:
    """Detect container stacks on Sentinel-2 L2A reflectance.

    Parameters
    ----------
    bands : dict of (H, W) float arrays
        Reflectance 0-1: 'B02', 'B03', 'B04', 'B08' and optionally 'B11'.
    transform : affine.Affine
        Pixel-to-CRS transform of the bands.
    scl : (H, W) int array, optional
        L2A scene classification; codes in :data:`UNOBSERVED_SCL` are masked
        and counted as unobserved.
    water : (H, W) bool array, optional
        True on water. Without it, water is ``NDWI > water_ndwi`` (McFeeters
        1996). Stacks are searched on land only, except inside ``vessels``.
    vessels : list of detectors.records.Vessel, optional
        Vessel outlines in CRS units; their decks are searched too and stacks
        there are flagged ``on_vessel=True``.
    pixel_size : float
        Metres per pixel.
    min_brightness, max_brightness : float
        Mean visible reflectance range. Below 0.05 are water, shadow and fresh
        asphalt; above 0.40 are saturated white roofs and cloud. Containers
        (painted steel, mixed with yard surface at 10 m) lie in 0.06-0.30.
    max_ndvi, max_ndvi_neighbourhood : float
        Vegetation is rejected pixel-wise (NDVI > 0.15) and by its
        ``neighbourhood_m`` mean (> 0.12): a yard has no trees, while the
        texture of towns comes with gardens and street trees.
    neighbourhood_m : float
        Side of the neighbourhood window, m.
    max_ndbi : float
        Upper NDBI = (B11 - B08)/(B11 + B08) limit (Zha et al. 2003). Bare
        soil, sand and concrete rise into the SWIR (NDBI > 0.12); paint,
        steel and asphalt are flat. Ignored when B11 is absent.
    water_ndwi : float
        NDWI above which a pixel is water when ``water`` is not given.
    max_water_nir : float
        ... and NIR reflectance below which (water absorbs NIR; 0.08 leaves
        room for haze). Blue paint can have NDWI > 0 but is brighter in NIR.
    max_vessel_beam_m : float
        Without ``water``, the NDWI water mask is closed with a disk of this
        diameter so that vessels (beam <= 60 m) count as water.
    texture_window_m : float
        Window of the local texture statistics, m.
    min_texture, min_texture_neighbourhood : float
        Minimum relative colour/brightness texture of the pixel and of its
        neighbourhood mean. Uniform roofs, open concrete and water are
        < 0.1; container rows of mixed colours are > 0.15.
    opening_radius_m : float
        Radius of the morphological opening that removes thin textured
        lines (roof edges, roads, quay walls).
    min_area_m2 : float
        Smallest stack patch kept (5000 m2 = about 200 ground slots).
    teu_params : dict, optional
        Keyword arguments for :func:`estimate_teu`.

    Returns
    -------
    stacks : list of ContainerStack
        Outlines in CRS units, area and TEU estimate/range; ``attributes``
        holds mean brightness, texture and NDVI.
    stats : dict
        ``observed_fraction`` (share of land pixels not hidden by SCL cloud,
        shadow or no-data), ``stack_area_m2``, ``teu_estimate``, ``teu_low``,
        ``teu_high``, ``stack_mask`` (bool array) and ``n_stacks``.

    References
    ----------
    Rouse, J. W. et al. (1974). Monitoring vegetation systems in the Great
    Plains with ERTS. NASA SP-351.
    McFeeters, S. K. (1996). The use of the Normalized Difference Water Index
    (NDWI). Int. J. Remote Sens. 17(7).
    Zha, Y., Gao, J., Ni, S. (2003). Use of normalized difference built-up
    index in automatically mapping urban areas from TM imagery. Int. J. Remote
    Sens. 24(3).
    Hasler, D., Suesstrunk, S. (2003). Measuring colourfulness in natural
    images. Proc. SPIE 5007.
    Haralick, R. M., Shanmugam, K., Dinstein, I. (1973). Textural features for
    image classification. IEEE Trans. SMC 3(6).
    """
    teu_params = dict(teu_params or {})
    feats = stack_features(bands, pixel_size=pixel_size, texture_window_m=texture_window_m)
    shape_ = feats["brightness"].shape
    stacked = np.stack([np.asarray(bands[k], dtype=np.float32) for k in ("B02", "B03", "B04", "B08")])
    valid = np.all(np.isfinite(stacked), axis=0) & (stacked.sum(axis=0) > 0)
    if scl is not None:
        valid &= ~np.isin(np.asarray(scl), UNOBSERVED_SCL)

    if water is None:
        # Hulls and decks are not water spectrally; closing the water mask
        # over the widest beam puts ships back into the water they float on.
        r_beam = max(int(np.ceil(max_vessel_beam_m / 2.0 / pixel_size)), 1)
        water_mask = ndimage.binary_closing(
            (feats["ndwi"] > water_ndwi) & (np.asarray(bands["B08"]) < max_water_nir),
            structure=_disk(r_beam),
            border_value=1,
        )
    else:
        water_mask = np.asarray(water, dtype=bool)
    land = ~water_mask

    deck = np.zeros(shape_, dtype=bool)
    if vessels:
        outlines = [v.outline for v in vessels if v.outline is not None and not v.outline.is_empty]
        if outlines:
            deck = features.rasterize(
                [(g, 1) for g in outlines], out_shape=shape_, transform=transform, all_touched=False
            ).astype(bool)
    searchable = (land | deck) & valid
    # Texture over the searchable pixels only (the NDVI/NDWI/NDBI are per pixel).
    feats = stack_features(bands, pixel_size=pixel_size, texture_window_m=texture_window_m, support=searchable)

    n_neigh = _odd_window(neighbourhood_m, pixel_size)
    # Unobserved pixels must not drag neighbourhood means: fill them with
    # neutral values first (NaN would spread through the filters).
    ndvi = np.where(valid, feats["ndvi"], 0.0).astype(np.float32)
    colour_tex = np.where(valid, feats["colour_texture"], 0.0).astype(np.float32)
    bright_tex = np.where(valid, feats["brightness_texture"], 0.0).astype(np.float32)
    ndvi_neigh = _local_mean(ndvi, n_neigh)
    colour_tex_neigh = _local_mean(colour_tex, n_neigh)
    bright_tex_neigh = _local_mean(bright_tex, n_neigh)
    # Multi-coloured stacks vary more in hue than in brightness; towns and
    # industrial roofs vary mostly in brightness (roof/street/shadow).
    colour_share = colour_tex_neigh / (bright_tex_neigh + np.float32(1e-3))

    brightness = feats["brightness"]
    rules = (
        (brightness > min_brightness)
        & (brightness < max_brightness)
        & (feats["ndvi"] < max_ndvi)
        & (ndvi_neigh < max_ndvi_neighbourhood)
        & (colour_tex > min_colour_texture)
        & (colour_tex_neigh > min_colour_texture_neighbourhood)
        & (colour_share > min_colour_share)
    )
    if bands.get("B11") is not None:
        rules &= ~(feats["ndbi"] > max_ndbi)
    candidate = rules & searchable

    # The texture window spreads a textured patch by half a window into the
    # lanes around it: erode that back, close the one-pixel aisles between
    # stack rows, then open to drop lines narrower than a block (roof edges,
    # quay walls, road kerbs).
    half = _odd_window(texture_window_m, pixel_size) // 2
    r_open = max(int(round(opening_radius_m / pixel_size)), 1)
    mask = ndimage.binary_closing(candidate, structure=_disk(1))
    if half:
        mask = ndimage.binary_erosion(mask, structure=_disk(half))
    mask = ndimage.binary_opening(mask, structure=_disk(r_open))
    mask &= searchable

    labels, n = ndimage.label(mask, structure=np.ones((3, 3), dtype=bool))
    pixel_area = abs(transform.a * transform.e - transform.b * transform.d)
    if n:
        counts = np.bincount(labels.ravel(), minlength=n + 1)
        keep = counts * pixel_area >= min_area_m2
        keep[0] = False
        mask = keep[labels]
        labels, n = ndimage.label(mask, structure=np.ones((3, 3), dtype=bool))

    stacks: list[ContainerStack] = []
    if n:
        index = np.arange(1, n + 1)
        counts = np.bincount(labels.ravel(), minlength=n + 1)[1:]
        mean_b = ndimage.mean(brightness, labels, index)
        mean_t = ndimage.mean(colour_tex, labels, index)
        mean_s = ndimage.mean(colour_share, labels, index)
        mean_v = ndimage.mean(feats["ndvi"], labels, index)
        on_deck = ndimage.mean(deck.astype(np.float32), labels, index) > 0.5
        parts: dict[int, list] = {}
        for geom, value in features.shapes(labels.astype(np.int32), mask=mask, transform=transform):
            parts.setdefault(int(value), []).append(shape(geom))
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
                        "mean_colour_texture": float(mean_t[i]),
                        "mean_colour_share": float(mean_s[i]),
                        "mean_ndvi": float(mean_v[i]),
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
    }
    return stacks, stats
