"""Step changes of each AOI's container-stack area over its Sentinel-2 dates."""

from __future__ import annotations

import datetime as dt
import math
from dataclasses import dataclass
from typing import Sequence

import numpy as np

from ...core.contracts import S2
from ....detectors.stacks import estimate_teu
from .observations import Observation, by_aoi
from .params import AnalysisParams


# ---------------------------------------------------------------- 4. container flows
@dataclass(frozen=True)
class StackStep:
    """A step change of an AOI's container-stack area between two observations."""

    aoi: str
    before: dt.date
    after: dt.date
    delta_area_m2: float
    teu: tuple[float, float, float]  # low, estimate, high (magnitudes, signed like the area)

    @property
    def direction(self) -> str:
        return "increase" if self.delta_area_m2 > 0 else "decrease"

    def to_dict(self) -> dict:
        return {"aoi": self.aoi, "before": self.before.isoformat(), "after": self.after.isoformat(),
                "delta_area_m2": round(self.delta_area_m2), "direction": self.direction,
                "teu": [round(x) for x in self.teu]}


def _teu_of_area(area: float) -> tuple[float, float, float]:
    est, low, high = estimate_teu(abs(area))
    sign = 1.0 if area >= 0 else -1.0
    return sign * low, sign * est, sign * high


def _to_date(value) -> dt.date:
    if isinstance(value, dt.datetime):
        return value.date()
    if isinstance(value, dt.date):
        return value
    return dt.date.fromisoformat(str(np.datetime64(value, "D")))


def stack_steps(observations: Sequence[Observation], p: AnalysisParams, **step_params) -> list[StackStep]:
    """Step changes of each AOI's stack area over its Sentinel-2 dates.

    Delegates the change detection to
    :func:`berthwatch.detectors.stack_changes.detect_stack_changes` (binary
    segmentation against a robust noise level plus a test of each gap between
    consecutive dates; it keeps only well-observed dates and steps of at
    least ``min_change_teu``).
    """
    from ....detectors.stack_changes import detect_stack_changes

    steps: list[StackStep] = []
    for aoi, obs in by_aoi(observations).items():
        series = [o for o in obs if o.stack_area_m2 is not None and S2 in o.clear]
        if len(series) < 2:
            continue
        dates = [o.date for o in series]
        area = np.array([o.stack_area_m2 for o in series], dtype=float)
        frac = np.array([o.clear[S2] for o in series], dtype=float)
        for rec in detect_stack_changes(dates, area, frac, **step_params):
            delta = float(rec["delta_area_m2"])
            teu = tuple(float(x) for x in rec["delta_teu"]) if "delta_teu" in rec else _teu_of_area(delta)
            steps.append(StackStep(aoi, _to_date(rec["before_date"]), _to_date(rec["after_date"]), delta, teu))
    return sorted(steps, key=lambda s: (s.aoi, s.after))


def step_detection_limits(**step_params) -> dict:
    """The gap test's noise model and the smallest step it finds, for the report's method text.

    ``area_noise_m2`` and ``relative_noise`` are the 1-sigma area error per
    date; ``min_step_m2`` and ``min_step_teu`` (central estimate) the smallest
    step found on an empty yard, where only the fixed part of the error counts;
    ``min_change_teu`` the smallest change reported.
    """
    import inspect

    from ....detectors.stack_changes import detect_stack_changes

    defaults = {k: v.default for k, v in inspect.signature(detect_stack_changes).parameters.items()
                if v.default is not inspect.Parameter.empty}
    p = {**defaults, **step_params}
    min_step = p["gap_z"] * math.sqrt(2.0) * p["absolute_noise_m2"]
    return {"area_noise_m2": p["absolute_noise_m2"], "relative_noise": p["relative_noise"] or 0.0,
            "min_step_m2": min_step, "min_step_teu": estimate_teu(min_step)[0],
            "min_change_teu": p["min_change_teu"]}
