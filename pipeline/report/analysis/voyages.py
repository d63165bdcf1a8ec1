"""Voyages: a departure from one AOI paired with an arrival at another, and the cargo the yards put on them."""

from __future__ import annotations

import datetime as dt
import math
from dataclasses import dataclass, field
from typing import Sequence

import numpy as np

from .observations import iso_or_none
from .params import AnalysisParams
from .port_calls import PortCall
from .stack_steps import StackStep

# ---------------------------------------------------------------- 3. voyages
@dataclass
class Voyage:
    """A departure from one AOI paired with an arrival at another."""

    origin: str
    destination: str
    departure: PortCall
    arrival: PortCall
    timing_probability: float
    length_agreement: float
    competitors: int
    confidence: float
    teu: tuple[float, float, float] | None = None  # low, estimate, high
    flows: list[StackStep] = field(default_factory=list)

    @property
    def depart(self) -> tuple[dt.date, dt.date]:
        return self.departure.depart  # type: ignore[return-value]

    @property
    def arrive(self) -> tuple[dt.date, dt.date]:
        return self.arrival.arrive  # type: ignore[return-value]

    @property
    def vessel_length_m(self) -> float:
        return (self.departure.length_m + self.arrival.length_m) / 2

    def overlaps(self, window: tuple[dt.date, dt.date]) -> bool:
        return self.depart[0] <= window[1] and self.arrive[1] >= window[0]

    def basis(self) -> list[str]:
        """The observations the voyage rests on, in words."""
        d, a = self.departure, self.arrival
        return [
            f"{d.aoi}: {d.length_m:.0f} m vessel at berth on {', '.join(x.isoformat() for x in d.seen)}; "
            f"absent on {d.depart[1].isoformat()}",
            f"{a.aoi}: absent on {a.arrive[0].isoformat()}; {a.length_m:.0f} m vessel at berth on "
            f"{', '.join(x.isoformat() for x in a.seen)}",
        ]

    def to_dict(self) -> dict:
        return {
            "origin": self.origin, "destination": self.destination,
            "depart": [iso_or_none(self.depart[0]), iso_or_none(self.depart[1])],
            "arrive": [iso_or_none(self.arrive[0]), iso_or_none(self.arrive[1])],
            "vessel_length_m": round(self.vessel_length_m),
            "teu": [round(x) for x in self.teu] if self.teu else None,
            "confidence": round(self.confidence, 2),
            "departure_call": self.departure.id, "arrival_call": self.arrival.id,
            "lengths_m": [round(self.departure.length_m), round(self.arrival.length_m)],
            "timing_probability": round(self.timing_probability, 2),
            "basis": self.basis(),
        }


def transit_probability(depart: tuple[dt.date, dt.date], arrive: tuple[dt.date, dt.date],
                        transit_days: tuple[float, float]) -> float:
    """P(transit in ``transit_days`` | departure and arrival days in their brackets, arrival not first).

    The departure day is taken uniform over the days of its bracket (it may be
    the day of either bracketing image) and so is the arrival day; pairs with
    the arrival before the departure are impossible for one ship and excluded.
    """
    d = np.arange(depart[0].toordinal(), depart[1].toordinal() + 1)
    a = np.arange(arrive[0].toordinal(), arrive[1].toordinal() + 1)
    delta = a[None, :] - d[:, None]
    possible = delta >= 0
    if not possible.any():
        return 0.0
    ok = possible & (delta >= transit_days[0]) & (delta <= transit_days[1])
    return float(ok.sum() / possible.sum())


def infer_voyages(calls: Sequence[PortCall], origin: str, destination: str, p: AnalysisParams) -> list[Voyage]:
    """Voyages ``origin -> destination`` from bracketed departures and arrivals.

    Method: every call at ``origin`` with a bracketed departure is a candidate
    against every call at ``destination`` with a bracketed arrival. A pair is
    feasible when the lengths agree within ``max(voyage_length_rel * L,
    voyage_length_abs_m)`` and the transit can lie in ``transit_days``. Its
    weight is w = (a) :func:`transit_probability` x (b) the length agreement
    (1 for equal lengths, 0.5 at the tolerance). Its confidence is w x (c) its
    share of the weights of all feasible pairings of either call (Luce's choice
    rule: 1 when unambiguous) x (d) the square root of the mean detection score. Pairs are then taken greedily by
    confidence so each call makes at most one voyage per direction.
    """
    deps = [c for c in calls if c.aoi == origin and c.depart[1] is not None]
    arrs = [c for c in calls if c.aoi == destination and c.arrive[0] is not None]
    feasible: list[tuple[PortCall, PortCall, float, float]] = []
    for d in deps:
        for a in arrs:
            if a.arrive[1] < d.depart[0]:
                continue
            tol = max(p.voyage_length_rel * max(d.length_m, a.length_m), p.voyage_length_abs_m)
            dl = abs(d.length_m - a.length_m)
            if dl > tol:
                continue
            pt = transit_probability(d.depart, a.arrive, p.transit_days)
            if pt <= 0:
                continue
            feasible.append((d, a, pt, 1.0 - 0.5 * dl / tol))
    w_dep = {id(d): sum(f[2] * f[3] for f in feasible if f[0] is d) for d in deps}
    w_arr = {id(a): sum(f[2] * f[3] for f in feasible if f[1] is a) for a in arrs}
    n_dep = {id(d): sum(1 for f in feasible if f[0] is d) for d in deps}
    n_arr = {id(a): sum(1 for f in feasible if f[1] is a) for a in arrs}
    scored = []
    for d, a, pt, la in feasible:
        w = pt * la
        share = w / max(w_dep[id(d)], w_arr[id(a)])  # Luce choice among the competing pairings
        score = math.sqrt(float(np.clip((d.score + a.score) / 2, 0, 1)))
        comp = max(n_dep[id(d)], n_arr[id(a)])
        scored.append(Voyage(origin, destination, d, a, pt, la, comp, w * share * score))
    taken_d, taken_a, voyages = set(), set(), []
    for v in sorted(scored, key=lambda v: -v.confidence):
        if id(v.departure) in taken_d or id(v.arrival) in taken_a:
            continue
        taken_d.add(id(v.departure))
        taken_a.add(id(v.arrival))
        voyages.append(v)
    return sorted(voyages, key=lambda v: v.depart[0])


# ---------------------------------------------------------------- container flows
def _overlap(a: tuple[dt.date, dt.date], b: tuple[dt.date, dt.date]) -> bool:
    return a[0] <= b[1] and b[0] <= a[1]


def container_flows(voyages: Sequence[Voyage], steps: Sequence[StackStep]) -> None:
    """Attach yard step changes to voyages and set each voyage's TEU (in place).

    A decrease at the origin is the cargo loaded when its bracket overlaps the
    departing call (from its arrival bracket to its departure bracket); an
    increase at the destination is the cargo unloaded when it overlaps the
    arriving call. The voyage's TEU range spans both sides: low = the smaller
    low, high = the larger high, estimate = mean of the estimates. A step is
    used by one voyage only (the most confident).
    """
    used: set[int] = set()
    for v in sorted(voyages, key=lambda v: -v.confidence):
        d, a = v.departure, v.arrival
        d_span = (d.arrive[0] or d.arrive[1], d.depart[1])
        a_span = (a.arrive[0], a.depart[1] or a.depart[0])
        matched = []
        for i, s in enumerate(steps):
            if i in used:
                continue
            if s.aoi == v.origin and s.delta_area_m2 < 0 and _overlap((s.before, s.after), d_span):
                matched.append(i)
            elif s.aoi == v.destination and s.delta_area_m2 > 0 and _overlap((s.before, s.after), a_span):
                matched.append(i)
        # at most one step per side: the largest
        best: dict[str, int] = {}
        for i in matched:
            side = steps[i].aoi
            if side not in best or abs(steps[i].delta_area_m2) > abs(steps[best[side]].delta_area_m2):
                best[side] = i
        v.flows = [steps[i] for i in best.values()]
        used.update(best.values())
        if v.flows:
            mags = np.abs(np.array([s.teu for s in v.flows]))
            v.teu = (float(mags[:, 0].min()), float(mags[:, 1].mean()), float(mags[:, 2].max()))


def teu_in_window(voyages: Sequence[Voyage], window: tuple[dt.date, dt.date],
                  p: AnalysisParams) -> dict:
    """TEU carried by the counted voyages overlapping the window: sums of low/estimate/high."""
    counted = [v for v in voyages if v.overlaps(window) and v.confidence >= p.min_voyage_confidence]
    with_teu = [v for v in counted if v.teu]
    low = sum(v.teu[0] for v in with_teu)
    est = sum(v.teu[1] for v in with_teu)
    high = sum(v.teu[2] for v in with_teu)
    return {"estimate": round(est), "low": round(low), "high": round(high),
            "voyages": len(counted), "voyages_without_teu": len(counted) - len(with_teu)}
