"""Reliability and calibration of detector scores (detectors.calibration)."""

import numpy as np
import pytest

from berthwatch.detectors.calibration import (
    expected_calibration_error, isotonic_calibration, reliability_curve, wilson_interval,
)


def test_reliability_of_a_calibrated_score_matches_and_of_an_overconfident_one_does_not():
    rng = np.random.default_rng(3)
    s = rng.uniform(0, 1, 20000)
    calibrated = rng.uniform(0, 1, s.size) < s
    bins = reliability_curve(s, calibrated)
    assert [b["n"] for b in bins] == pytest.approx([4000] * 5, rel=0.1)
    for b in bins:
        assert b["observed_low"] <= b["mean_score"] + 0.02 and b["mean_score"] - 0.02 <= b["observed_high"]
    assert expected_calibration_error(s, calibrated) < 0.02
    overconfident = rng.uniform(0, 1, s.size) < 0.5  # the score says nothing
    assert expected_calibration_error(s, overconfident) > 0.15


def test_isotonic_map_is_monotone_and_recovers_the_probability():
    rng = np.random.default_rng(4)
    s = rng.uniform(0, 1, 5000)
    y = rng.uniform(0, 1, s.size) < s ** 2  # true probability s^2: the raw score overstates it
    xs, ps = isotonic_calibration(s, y)
    assert np.all(np.diff(ps) >= 0) and np.all(np.diff(xs) >= 0)
    for q in (0.3, 0.5, 0.8):
        assert np.interp(q, xs, ps) == pytest.approx(q ** 2, abs=0.08)


def test_wilson_interval_and_empty_bins():
    lo, hi = wilson_interval(0, 10)
    assert lo == 0.0 and 0.25 < hi < 0.35
    assert wilson_interval(0, 0) == (0.0, 1.0)
    bins = reliability_curve([0.1, 0.15], [True, False])
    assert bins[0]["observed"] == 0.5 and bins[3]["n"] == 0 and bins[3]["observed"] is None
