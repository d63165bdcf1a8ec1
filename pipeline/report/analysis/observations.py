"""What the detect stage reported per AOI and date, and how well the dates cover a window."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Iterable, Sequence

import numpy as np

from ...core import observed
from ...core.contracts import S2
from .params import AnalysisParams


def iso_or_none(d: dt.date | None) -> str | None:
    return d.isoformat() if d else None


# ---------------------------------------------------------------- records
@dataclass(frozen=True)
class VesselSighting:
    """A detected vessel on one date (position in lon/lat, compared locally in metres)."""

    aoi: str
    date: dt.date
    lon: float
    lat: float
    length_m: float
    width_m: float
    score: float
    at_berth: bool
    sensor: str


@dataclass
class Observation:
    """What the detect stage reported for one AOI on one date."""

    aoi: str
    date: dt.date
    sensors: tuple[str, ...]
    clear: dict[str, float]
    vessels: list[VesselSighting] = field(default_factory=list)
    stack_area_m2: float | None = None
    teu: tuple[float, float, float] | None = None  # estimate, low, high
    simulated: bool = False
    source: str = ""
    #: ``{sensor: {zone: clear fraction}}`` (AOI, berths, yards; :mod:`...core.observed`).
    zones: dict[str, dict] = field(default_factory=dict)

    @property
    def clear_fraction(self) -> float:
        return max(self.clear.values(), default=0.0)

    def sensor_zones(self, sensor: str) -> dict:
        return self.zones.get(sensor) or ({"aoi": self.clear[sensor]} if sensor in self.clear else {})

    def sensor_usable(self, sensor: str, p: AnalysisParams) -> bool:
        """The rule of :func:`...core.observed.usable_for_vessels` for one sensor."""
        return observed.usable_for_vessels(self.sensor_zones(sensor), p.min_clear)

    def usable(self, p: AnalysisParams) -> bool:
        """Whether a vessel missing on this date means the vessel was absent (AOI and berths clear)."""
        return any(self.sensor_usable(s, p) for s in self.clear)

    def stack_usable(self, p: AnalysisParams) -> bool:
        """Container stacks are measured on Sentinel-2 only (AOI and yards clear)."""
        return observed.usable_for_stacks(self.sensor_zones(S2), p.min_clear) and self.stack_area_m2 is not None

    def large_at_berth(self, p: AnalysisParams) -> list[VesselSighting]:
        return [v for v in self.vessels if v.at_berth and v.length_m >= p.large_vessel_m]


def by_aoi(observations: Iterable[Observation]) -> dict[str, list[Observation]]:
    out: dict[str, list[Observation]] = {}
    for o in sorted(observations, key=lambda o: (o.aoi, o.date)):
        out.setdefault(o.aoi, []).append(o)
    return out


def in_window(d: dt.date, window: tuple[dt.date, dt.date]) -> bool:
    return window[0] <= d <= window[1]


# ---------------------------------------------------------------- 1. coverage
def coverage(observations: Sequence[Observation], window: tuple[dt.date, dt.date],
             p: AnalysisParams) -> dict[str, dict[str, dict]]:
    """Observations per AOI and sensor: inside the window, before and after it.

    Returns ``{aoi: {sensor: {in_window, usable_in_window, before, usable_before,
    after, usable_after, baseline, usable_baseline, dates: [(date, clear)]}}}``,
    where *baseline* = before + after. A date is usable for a sensor when that
    sensor saw at least ``min_clear`` of the AOI and of its berths clearly.
    """
    out: dict[str, dict[str, dict]] = {}
    for aoi, obs in by_aoi(observations).items():
        sensors = sorted({s for o in obs for s in o.clear})
        out[aoi] = {}
        for s in sensors:
            row = {k: 0 for k in ("in_window", "usable_in_window", "before", "usable_before",
                                  "after", "usable_after")}
            row["dates"] = []
            for o in obs:
                if s not in o.clear:
                    continue
                part = "in_window" if in_window(o.date, window) else ("before" if o.date < window[0] else "after")
                ok = o.sensor_usable(s, p)
                row[part] += 1
                row[f"usable_{part}"] += ok
                row["dates"].append((o.date, o.clear[s]))
            row["baseline"] = row["before"] + row["after"]
            row["usable_baseline"] = row["usable_before"] + row["usable_after"]
            out[aoi][s] = row
    return out


def observation_gaps(dates: Sequence[dt.date], window: tuple[dt.date, dt.date],
                     min_days: int = 1) -> list[tuple[dt.date, dt.date, int]]:
    """Spans of at least ``min_days`` days of the window without a usable observation, as (first, last, days)."""
    days = sorted(d for d in set(dates) if in_window(d, window))
    edges = [window[0] - dt.timedelta(days=1), *days, window[1] + dt.timedelta(days=1)]
    gaps = []
    for a, b in zip(edges[:-1], edges[1:]):
        if (b - a).days - 1 >= max(min_days, 1):
            gaps.append((a + dt.timedelta(days=1), b - dt.timedelta(days=1), (b - a).days - 1))
    return gaps


def call_detection_probability(dates: Sequence[dt.date], window: tuple[dt.date, dt.date],
                               call_days: float) -> float:
    """Probability that a call of ``call_days`` starting in the window is seen.

    The start is uniform over the window (continuous days, an observation at
    the start of its date); the call is seen when a usable observation falls in
    ``[start, start + call_days]``. This turns "how many images, how spread" into
    one number: with a 5-day revisit a 2-day call is seen with probability 0.4.
    """
    t0 = window[0].toordinal()
    t1 = window[1].toordinal() + 1
    if t1 <= t0:
        return 0.0
    obs = np.array(sorted({d.toordinal() for d in dates}), dtype=float)
    if obs.size == 0:
        return 0.0
    starts = np.linspace(t0, t1, 2000, endpoint=False)
    idx = np.searchsorted(obs, starts)  # first observation at or after the start
    nxt = np.where(idx < obs.size, obs[np.minimum(idx, obs.size - 1)], np.inf)
    return float(np.mean(nxt - starts <= call_days))
