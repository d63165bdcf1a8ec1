"""Container-stack detector on a synthetic 10 m scene, and TEU arithmetic."""

import numpy as np
import pytest
from affine import Affine

from berthwatch.detectors.records import ContainerStack, Vessel
from berthwatch.detectors.stacks import detect_container_stacks, estimate_teu, haze_offsets

PIX = 10.0
TRANSFORM = Affine(PIX, 0, 500000.0, 0, -PIX, 4700000.0)
BANDS = ("B02", "B03", "B04", "B08", "B11")
# Reflectance (B02, B03, B04, B08, B11) of painted container steel as it
# appears in 10 m pixels (values near those measured in the sen2ships yards).
CONTAINER_COLOURS = np.array(
    [
        [0.06, 0.07, 0.24, 0.27, 0.28],  # red
        [0.16, 0.11, 0.06, 0.10, 0.08],  # blue
        [0.07, 0.14, 0.09, 0.11, 0.10],  # green
        [0.30, 0.31, 0.31, 0.33, 0.30],  # white
        [0.06, 0.13, 0.28, 0.31, 0.31],  # orange
        [0.14, 0.14, 0.14, 0.16, 0.15],  # grey
    ]
)
CONCRETE = np.array([0.17, 0.18, 0.19, 0.21, 0.25])
ROOF_METAL = np.array([0.28, 0.29, 0.30, 0.31, 0.30])
ROOF_TILE = np.array([0.08, 0.10, 0.22, 0.26, 0.30])
SHADOW = np.array([0.04, 0.04, 0.04, 0.05, 0.05])
VEGETATION = np.array([0.03, 0.07, 0.04, 0.40, 0.20])
WATER = np.array([0.05, 0.06, 0.04, 0.02, 0.01])

YARD = (slice(20, 100), slice(20, 130))


def _scene(seed=0):
    """200 x 200 px: container yard on concrete, roofs, town, trees, sea."""
    rng = np.random.default_rng(seed)
    h, w = 200, 200
    img = np.broadcast_to(CONCRETE, (h, w, 5)).copy()
    truth = np.zeros((h, w), dtype=bool)
    # Yard: blocks 10 px (100 m) deep x 50 px long separated by 40 m lanes
    # (truck lane + RTG runway). With 30 m lanes the detected area is ~18 %
    # high: the 30 m texture window half fills such lanes.
    for r0 in range(20, 100, 14):
        for c0 in range(20, 130, 56):
            block = (slice(r0, r0 + 10), slice(c0, c0 + 50))
            truth[block] = True
    ys, xs = np.nonzero(truth)
    img[ys, xs] = CONTAINER_COLOURS[rng.integers(0, len(CONTAINER_COLOURS), ys.size)]
    # Roofs: a large uniform metal shed and a tiled roof.
    img[120:160, 20:70] = ROOF_METAL
    img[120:150, 80:110] = ROOF_TILE
    # Town: roofs, streets and building shadows (brightness texture, grey).
    town = (slice(165, 195), slice(20, 120))
    pattern = rng.integers(0, 3, (30, 100))
    img[town] = np.choose(pattern[..., None], [ROOF_METAL, CONCRETE, SHADOW])
    # Trees with crowns and gaps (textured vegetation).
    trees = (slice(110, 190), slice(130, 160))
    mix = rng.uniform(0.4, 1.0, (80, 30, 1))
    img[trees] = mix * VEGETATION + (1 - mix) * CONCRETE
    # Sea on the right, with waves.
    img[:, 165:] = WATER
    img += rng.normal(0, 0.004, img.shape)
    img = np.clip(img, 0.001, 1)
    bands = {b: img[..., i].astype(np.float32) for i, b in enumerate(BANDS)}
    return bands, truth


def test_teu_arithmetic():
    est, low, high = estimate_teu(10_000.0, slot_area_m2=25.0, stack_height_mean=2.5,
                                  stack_height_low=1.5, stack_height_high=3.5, packing=0.8)
    assert est == pytest.approx(10_000 / 25 * 0.8 * 2.5)
    assert low == pytest.approx(10_000 / 25 * 0.8 * 1.5)
    assert high == pytest.approx(10_000 / 25 * 0.8 * 3.5)
    arr = estimate_teu(np.array([0.0, 1000.0, -1000.0]))
    assert arr[0].shape == (3,)
    assert arr[1][0] == 0 and arr[1][2] < 0 < arr[1][1]
    assert np.all(arr[1][1:2] <= arr[0][1:2]) and np.all(arr[0][1:2] <= arr[2][1:2])


def test_yard_area_within_15_percent_and_clutter_rejected():
    bands, truth = _scene()
    stacks, stats = detect_container_stacks(bands, TRANSFORM)
    mask = stats["stack_mask"]
    truth_area = truth.sum() * PIX**2
    assert stats["stack_area_m2"] == pytest.approx(truth_area, rel=0.15)
    # Stack pixels are the blocks themselves, not the lanes between them.
    assert (mask & truth).sum() >= 0.85 * truth.sum()
    assert (mask & ~truth).sum() <= 0.15 * truth.sum()
    # Detected area lies in the yard, none on roofs, town, trees, sea.
    yard = np.zeros_like(mask)
    yard[YARD] = True
    assert (mask & ~yard).sum() == 0
    assert mask[120:195, 20:120].sum() == 0 and mask[110:190, 130:160].sum() == 0
    assert mask[:, 165:].sum() == 0
    assert all(isinstance(s, ContainerStack) for s in stacks)
    assert sum(s.area_m2 for s in stacks) == pytest.approx(stats["stack_area_m2"])
    est, low, high = estimate_teu(stats["stack_area_m2"])
    assert stats["teu_estimate"] == pytest.approx(est)
    assert low < est < high
    # Outlines are in CRS units at the yard's place.
    minx, miny, maxx, maxy = stacks[0].outline.bounds
    assert 500000 + 20 * PIX - 1 <= minx and maxx <= 500000 + 130 * PIX + 1
    assert stats["observed_fraction"] == pytest.approx(1.0)


def test_cloud_is_unobserved_and_carries_no_stacks():
    bands, truth = _scene()
    scl = np.full(truth.shape, 5, dtype=np.uint8)  # 5 = not vegetated
    scl[20:60, :] = 9  # cloud high probability over the northern half of the yard
    _, clear = detect_container_stacks(bands, TRANSFORM)
    _, cloudy = detect_container_stacks(bands, TRANSFORM, scl=scl)
    assert cloudy["stack_mask"][20:60].sum() == 0
    assert cloudy["stack_area_m2"] < 0.7 * clear["stack_area_m2"]
    land = np.ones(truth.shape, dtype=bool)
    land[:, 165:] = False
    expected = (land & (scl != 9)).sum() / land.sum()
    assert cloudy["observed_fraction"] == pytest.approx(expected, abs=0.02)


def test_water_mask_and_vessel_decks():
    bands, truth = _scene()
    # A loaded container ship in the sea: water mask given, vessel outline given.
    rng = np.random.default_rng(5)
    deck = (slice(40, 45), slice(170, 195))
    colours = CONTAINER_COLOURS[rng.integers(0, len(CONTAINER_COLOURS), (5, 25))]
    for i, b in enumerate(BANDS):
        bands[b][deck] = colours[..., i]
    water = np.zeros(truth.shape, dtype=bool)
    water[:, 165:] = True
    _, no_vessels = detect_container_stacks(bands, TRANSFORM, water=water, min_area_m2=1000)
    assert no_vessels["stack_mask"][:, 165:].sum() == 0
    from shapely.geometry import box

    x0, y0 = TRANSFORM @ (168, 47)
    x1, y1 = TRANSFORM @ (197, 38)
    ship = Vessel(outline=box(x0, y0, x1, y1), x=0, y=0, length_m=290, width_m=90,
                  heading_deg=90, area_m2=0, score=1, sensor="sentinel-2-l2a")
    stacks, with_vessels = detect_container_stacks(bands, TRANSFORM, water=water,
                                                   vessels=[ship], min_area_m2=1000)
    on_deck = [s for s in stacks if s.on_vessel]
    # One block on the deck (box/hull grey steps at its rim may cut off a
    # stray pixel); every flagged stack lies on the vessel, no yard stack is.
    assert max(s.area_m2 for s in on_deck) >= 0.9 * sum(s.area_m2 for s in on_deck)
    assert all(ship.outline.buffer(PIX).contains(s.outline) for s in on_deck)
    assert with_vessels["stack_mask"][deck].mean() > 0.5
    assert all(s.outline.bounds[2] <= 500000 + 165 * PIX for s in stacks if not s.on_vessel)


def test_grey_step_between_yard_floor_and_apron_is_not_stack():
    # A dark asphalt floor strip beside the concrete apron, inside the yard
    # patch: its straight edge (one mixed pixel) has a 3 x 3 brightness
    # texture of ~0.45, above that of the boxes, but no hue change.
    bands, truth = _scene()
    floor = np.array([0.045, 0.05, 0.055, 0.06, 0.065])
    for i, b in enumerate(BANDS):
        bands[b][14:106, 130:137] = floor[i]
        bands[b][14:106, 137] = 0.5 * (floor[i] + bands[b][14:106, 139])
    edge = (slice(14, 106), slice(126, 145))
    _, kept = detect_container_stacks(bands, TRANSFORM, max_grey_edge_texture=np.inf)
    assert kept["stack_mask"][edge].sum() > 50  # without the test the edge line is "stack"
    _, stats = detect_container_stacks(bands, TRANSFORM)
    assert stats["stack_mask"][edge].sum() == 0
    # Multi-coloured boxes are kept: their texture changes hue as well.
    assert (stats["stack_mask"] & truth).sum() >= 0.95 * truth.sum()


def test_neutral_haze_veil_is_measured_over_water_and_removed():
    # Thin cloud/fog: transmission 0.85 and the same path reflectance in every band.
    bands, truth = _scene()
    veil = 0.05
    hazy = {k: 0.85 * v + veil for k, v in bands.items()}
    water = np.zeros(truth.shape, dtype=bool)
    water[:, 165:] = True
    offsets = haze_offsets([hazy[b] for b in BANDS], water)
    # The darkest water is 0.85 * WATER + veil; less the clear-water allowance the
    # offset is the veil within the water's own reflectance, equal in every band
    # (capped by the NIR/SWIR offset).
    assert np.allclose(offsets, offsets[0]) and veil - 0.01 <= offsets[0] <= veil + 0.005
    _, stats = detect_container_stacks(hazy, TRANSFORM)
    assert stats["haze_offsets"] == pytest.approx(list(offsets), abs=1e-4)
    assert stats["stack_area_m2"] == pytest.approx(truth.sum() * PIX**2, rel=0.15)
    assert stats["stack_mask"][120:195, 20:160].sum() == 0


def test_coloured_water_without_a_nir_swir_veil_is_not_haze():
    # Turbid or blue water is bright in the visible only; NIR and SWIR stay black,
    # so nothing is subtracted (the visible excess is water colour, not a veil).
    bands, truth = _scene()
    water = np.zeros(truth.shape, dtype=bool)
    water[:, 165:] = True
    for b, extra in zip(BANDS, (0.06, 0.05, 0.03, 0.0, 0.0)):
        bands[b][water] += extra
    assert np.all(haze_offsets([bands[b] for b in BANDS], water) == 0)
    # Too little water: no estimate at all.
    assert np.all(haze_offsets([bands[b] + 0.1 for b in BANDS], water & (np.arange(200) < 2)[:, None]) == 0)


def _small_stack_scene(seed=3):
    """A 6 x 9 px (0.54 ha) block of boxes on a 1.4 ha concrete pad among trees, by the sea."""
    rng = np.random.default_rng(seed)
    img = np.broadcast_to(VEGETATION, (120, 120, 5)).copy()
    img[34:52, 34:56] = CONCRETE  # the pad: the patch cannot grow to the 2 ha minimum
    truth = np.zeros((120, 120), dtype=bool)
    truth[40:46, 40:49] = True
    ys, xs = np.nonzero(truth)
    img[ys, xs] = CONTAINER_COLOURS[rng.integers(0, len(CONTAINER_COLOURS), ys.size)]
    img[:, 62:] = WATER  # the quay is 60 m from the pad
    img = np.clip(img + rng.normal(0, 0.004, img.shape), 0.001, 1)
    return {b: img[..., i].astype(np.float32) for i, b in enumerate(BANDS)}, truth


def test_small_stack_is_kept_only_inside_a_reference_yard():
    bands, truth = _small_stack_scene()
    _, alone = detect_container_stacks(bands, TRANSFORM)
    assert alone["stack_area_m2"] == 0.0  # a 0.5 ha block anywhere in a port is not enough evidence

    yard = np.zeros_like(truth)
    yard[35:55, 35:60] = True  # where stacks stood on other dates
    stacks, stats = detect_container_stacks(bands, TRANSFORM, yard_prior=yard)
    assert stats["stack_area_m2"] == pytest.approx(truth.sum() * PIX**2, rel=0.25)
    assert (stats["stack_mask"] & ~truth).sum() <= 0.25 * truth.sum()
    assert len(stacks) == 1

    elsewhere = np.zeros_like(truth)
    elsewhere[90:110, 5:30] = True  # another part of the port
    _, stats = detect_container_stacks(bands, TRANSFORM, yard_prior=elsewhere)
    assert stats["stack_area_m2"] == 0.0


def test_reference_yard_needs_stacks_on_min_dates():
    from berthwatch.detectors.stacks import reference_yard_mask

    a = np.zeros((4, 4), bool)
    b = a.copy()
    a[0, :2] = True
    b[0, 1:3] = True
    assert reference_yard_mask([a, b]).tolist()[0] == [False, True, False, False]
    assert reference_yard_mask([a, b], min_dates=1)[0].tolist() == [True, True, True, False]
    with pytest.raises(ValueError):
        reference_yard_mask([])


def test_unchanged_pixels_keep_the_reference_class_and_changed_pixels_are_decided_by_the_date():
    bands, truth = _scene(seed=3)
    _, today = detect_container_stacks(bands, TRANSFORM)
    reference = np.zeros_like(truth)
    reference[YARD] = truth[YARD]
    reference[20:30, 20:70] = False        # a block the reference did not have: it arrived since
    reference[150:155, 20:40] = True       # a stack on the reference where the roof now is
    unchanged = np.ones_like(truth)
    unchanged[20:30, 20:70] = False        # the new block changed the spectrum ...
    unchanged[150:155, 20:40] = False      # ... and so did the roof (the stack left)
    unchanged[100:105, 20:40] = True
    scl = np.full(truth.shape, 4, dtype=np.uint8)
    scl[60:70, 20:130] = 9                 # cloud over a row of blocks: unobserved, never filled in
    _, gated = detect_container_stacks(bands, TRANSFORM, scl=scl, reference_stacks=reference, unchanged=unchanged)
    mask = gated["stack_mask"]
    changed = ~unchanged
    # Unchanged and observed: exactly the reference.
    observed = scl != 9
    assert np.array_equal(mask[unchanged & observed], reference[unchanged & observed])
    # Changed: this date's own result (the new block is found, the departed stack is gone).
    _, today_cloud = detect_container_stacks(bands, TRANSFORM, scl=scl)
    assert np.array_equal(mask[changed], today_cloud["stack_mask"][changed])
    assert mask[20:30, 20:70].mean() > 0.8 and not mask[150:155, 20:40].any()
    assert not mask[~observed].any()
    assert gated["stack_area_m2"] == mask.sum() * PIX**2
    # Without a reference nothing changes.
    _, plain = detect_container_stacks(bands, TRANSFORM, unchanged=unchanged)
    assert np.array_equal(plain["stack_mask"], today["stack_mask"])
