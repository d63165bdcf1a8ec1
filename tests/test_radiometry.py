"""Relative radiometric normalisation to a reference image."""

import numpy as np
import pytest

from berthwatch.detectors.radiometry import normalise_to_reference, unchanged_pixels


def _pair(seed=0, shape=(120, 150)):
    rng = np.random.default_rng(seed)
    reference = rng.uniform(0.02, 0.4, (3, *shape)).astype(np.float32)
    gains, offsets = np.array([0.9, 1.05, 1.2]), np.array([0.03, 0.015, -0.005])  # blue-weighted haze
    image = gains[:, None, None] * reference + offsets[:, None, None]
    image += rng.normal(0, 0.003, image.shape)
    changed = np.zeros(shape, bool)
    changed[10:60, 20:80] = True  # new stacks, a ship: 17 % of the pixels
    image[:, changed] = rng.uniform(0.05, 0.5, (3, changed.sum()))
    return image.astype(np.float32), reference, gains, offsets, changed


def test_gain_and_offset_recovered_despite_changed_ground():
    image, reference, gains, offsets, changed = _pair()
    out, g, o, applied = normalise_to_reference(image, reference, np.ones(changed.shape, bool))
    assert applied
    np.testing.assert_allclose(g, gains, atol=0.005)
    np.testing.assert_allclose(o, offsets, atol=0.002)
    # Unchanged ground now matches the reference to the noise level; changed ground stays changed.
    assert np.abs(out[:, ~changed] - reference[:, ~changed]).mean() < 0.004
    assert np.abs(out[:, changed] - reference[:, changed]).mean() > 0.05


def test_nan_and_masked_pixels_are_ignored():
    image, reference, gains, _, changed = _pair(seed=1)
    image[:, :5] = np.nan
    mask = ~changed  # e.g. clear land only
    out, g, _, applied = normalise_to_reference(image, reference, mask)
    assert applied and np.isnan(out[:, :5]).all()
    np.testing.assert_allclose(g, gains, atol=0.005)


def test_unchanged_when_the_fit_cannot_be_trusted():
    image, reference, *_ = _pair(seed=2)
    few = np.zeros(image.shape[1:], bool)
    few[:10, :10] = True
    out, g, o, applied = normalise_to_reference(image, reference, few)
    assert not applied and out is not None and np.array_equal(out, image)
    assert g.tolist() == [1.0, 1.0, 1.0] and o.tolist() == [0.0, 0.0, 0.0]
    # A cloud deck the scene classification missed: no plausible linear relation.
    cloud = np.full_like(image, 0.5) + np.random.default_rng(0).normal(0, 0.01, image.shape).astype(np.float32)
    _, _, _, applied = normalise_to_reference(cloud, reference * 0 + 0.2 + reference * 0.01,
                                              np.ones(image.shape[1:], bool))
    assert not applied


def test_shapes_must_match():
    image, reference, *_ = _pair()
    with pytest.raises(ValueError, match="do not match"):
        normalise_to_reference(image[:2], reference, np.ones(image.shape[1:], bool))


def test_unchanged_pixels_flags_the_changed_ground_at_the_stated_false_alarm_rate():
    image, reference, gains, offsets, changed = _pair(seed=3, shape=(300, 300))
    normalised, *_ = normalise_to_reference(image, reference, np.ones(changed.shape, bool))
    unchanged, sigma = unchanged_pixels(normalised, reference, np.ones(changed.shape, bool), pfa=1e-3)
    # The noise of the difference is the image noise (0.003) divided by each band's gain.
    np.testing.assert_allclose(sigma, 0.003 / gains, rtol=0.1)
    false_alarm = 1.0 - unchanged[~changed].mean()
    assert false_alarm < 3e-3  # 1e-3 expected
    assert 1.0 - unchanged[changed].mean() > 0.95  # new stacks: a change of 0.05-0.5 in reflectance
    # A tenfold pfa calls more unchanged ground changed, and no changed ground unchanged.
    loose, _ = unchanged_pixels(normalised, reference, np.ones(changed.shape, bool), pfa=1e-2)
    assert (1.0 - loose[~changed].mean()) > false_alarm and not (loose & ~unchanged).any()


def test_unchanged_pixels_without_enough_known_ground():
    image, reference, *_ = _pair(seed=4)
    image[:, 1:, :] = np.nan
    image[:, :, 50:] = np.nan  # 50 known pixels: too few to estimate the noise on
    unchanged, sigma = unchanged_pixels(image, reference, np.ones(image.shape[1:], bool))
    assert not unchanged.any() and np.isnan(sigma).all()
    with pytest.raises(ValueError, match="do not match"):
        unchanged_pixels(image[:2], reference, np.ones(image.shape[1:], bool))
