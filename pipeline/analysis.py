"""Port activity analysis for the report: pure functions over observation tables.

The input is one :class:`Observation` per AOI and date (built from a detections
file by :func:`pipeline.report.load_observations`). Each step below is a plain
function of those records and of :class:`AnalysisParams`, so it can be tested on
constructed series and explained in the report:

1. :func:`coverage` - which dates each sensor observed, and which were usable.
2. :func:`track_port_calls` - large vessels at berth tracked across usable
   observations into calls, each with an arrival and a departure interval
   bracketed by the observations around the change.
3. :func:`infer_voyages` - a departure from one AOI paired with an arrival at
   another within the transit window, with the vessel length as a check.
4. :func:`container_flows` - yard step changes matched to the voyages.
5. :func:`rate_ratio`, :func:`call_detection_probability`, :func:`verdict` -
   the comparison with the claim.

Dates are ``datetime.date``; an interval is a ``(first, last)`` pair of
observation dates, ``None`` at an end when no observation brackets it.
"""

from __future__ import annotations

import datetime as dt
import math
from dataclasses import dataclass, field
from typing import Iterable, Sequence

import numpy as np
from scipy import stats
from scipy.optimize import linear_sum_assignment

from ..detectors.stacks import estimate_teu
from .contracts import LARGE_VESSEL_M, S2

CONSISTENT, INCONSISTENT, INSUFFICIENT = "consistent", "inconsistent", "insufficient_data"
#: Metres per degree of latitude; positions are compared on a local equirectangular
#: plane, whose error over a port (a few km) is far below the 10 m pixel.
M_PER_DEG = 111_320.0


@dataclass(frozen=True)
class AnalysisParams:
    """Parameters of the analysis, in physical units; all are shown in the report.

    Attributes
    ----------
    large_vessel_m : float
        Minimum length of a vessel that makes a port call (default 80 m: coastal
        Ro-Ro and general-cargo ships such as Angara are 100-140 m; tugs, barges
        and fishing boats are shorter).
    min_clear : float
        Clear (observed) fraction an AOI needs on a date for the date to be
        *usable*: a vessel missing from a mostly cloudy scene is not a departure.
    match_distance_m : float
        Largest centroid shift of the same berthed ship between two dates
        (mooring shifts plus the geolocation differences of S1 and S2).
    match_length_rel : float
        Largest relative length difference of the same ship between two dates.
    berth_shift_distance_m : float
        A large vessel gone from its berth and a vessel of compatible length
        (the ``voyage_length_*`` gate: two berths, two independent
        measurements) newly at another berth of the same AOI, on the same pair
        of consecutive usable observations, are one call that shifted berth
        when the berths are at most this far apart (default 3 km, a port's
        extent). Ships at Rajin unload at one pier, then move to another to
        load (RUSI, October 2023); split, such a call would invent a departure
        and an arrival. A departure and an unrelated arrival of a similar ship
        within one revisit are merged too: that is the price, kept small by
        ``berth_shift_max_gap_days``. 0 disables.
    berth_shift_max_gap_days : float
        Longest interval between the two observations of a berth shift
        (default 3 days). Shifting berth takes hours; over a longer interval
        one ship leaving and another arriving (a call of 2-5 days each) becomes
        as likely, and the pair is left as a departure and an arrival.
    transit_days : (float, float)
        Shortest and longest origin-destination transit, days, as the difference
        of observation dates (Rajin-Dunai is about 200 km by sea, under a day at
        10 knots; up to 5 days allows for waiting at anchor).
    voyage_length_rel, voyage_length_abs_m : float
        A departing and an arriving ship may be the same only if their lengths
        differ by at most ``max(rel * length, abs)``. The two lengths are
        independent measurements, often by different sensors. The detectors'
        relative length error of a 100-150 m ship is about 15 % (1 sigma; 16 %
        for Sentinel-2 and 11 % for Sentinel-1 on the demo scenario, i.e. a few
        10 m pixels at the ends of the outline), so the difference of two has a
        sigma of about 21 % and 0.4 keeps ~95 % of true pairs. A tighter gate
        rejects the right ship and leaves a wrong one unopposed and counted.
    call_days : float
        Typical duration of a port call to load or unload hundreds of containers,
        used to ask how likely the observation schedule was to see a call.
    min_voyage_confidence : float
        Voyages below this confidence are listed but not counted in the verdict.
    min_detect_probability : float
        Probability that the schedule would have revealed a voyage above which the
        absence of voyages counts as evidence against the claim.
    teu_per_container : (float, float)
        TEU of one container: 1 (20-ft box) to 2 (40-ft box).
    """

    large_vessel_m: float = LARGE_VESSEL_M
    min_clear: float = 0.6
    match_distance_m: float = 150.0
    match_length_rel: float = 0.25
    berth_shift_distance_m: float = 3000.0
    berth_shift_max_gap_days: float = 3.0
    transit_days: tuple[float, float] = (1.0, 5.0)
    voyage_length_rel: float = 0.4
    voyage_length_abs_m: float = 15.0
    call_days: float = 2.0
    min_voyage_confidence: float = 0.5
    min_detect_probability: float = 0.8
    teu_per_container: tuple[float, float] = (1.0, 2.0)

    def as_dict(self) -> dict:
        return {k: (list(v) if isinstance(v, tuple) else v) for k, v in self.__dict__.items()}


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

    @property
    def clear_fraction(self) -> float:
        return max(self.clear.values(), default=0.0)

    def usable(self, p: AnalysisParams) -> bool:
        """Whether a vessel missing on this date means the vessel was absent."""
        return self.clear_fraction >= p.min_clear

    def stack_usable(self, p: AnalysisParams) -> bool:
        """Container stacks are measured on Sentinel-2 only."""
        return self.clear.get(S2, 0.0) >= p.min_clear and self.stack_area_m2 is not None

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
    sensor's clear fraction reaches ``min_clear``.
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
                ok = o.clear[s] >= p.min_clear
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


# ---------------------------------------------------------------- 2. port calls
@dataclass
class PortCall:
    """A large vessel at berth over consecutive usable observations of one AOI.

    ``arrive`` is (last usable date without it, first date with it) and
    ``depart`` is (last date with it, first usable date without it); either end
    is ``None`` when no usable observation brackets the change.
    """

    aoi: str
    id: str
    sightings: list[VesselSighting]
    arrive: tuple[dt.date | None, dt.date]
    depart: tuple[dt.date, dt.date | None]
    #: Observation dates on which the vessel was first seen at a new berth.
    berth_shifts: list[dt.date] = field(default_factory=list)

    @property
    def length_m(self) -> float:
        return float(np.median([s.length_m for s in self.sightings]))

    @property
    def berth(self) -> VesselSighting:
        """The sighting nearest the median position: a real berth even when the call shifted berth."""
        lon = np.array([s.lon for s in self.sightings])
        lat = np.array([s.lat for s in self.sightings])
        x, y = _local_xy(lon, lat, float(lat[0]))
        return self.sightings[int(np.argmin(np.hypot(x - np.median(x), y - np.median(y))))]

    @property
    def lon(self) -> float:
        return float(self.berth.lon)

    @property
    def lat(self) -> float:
        return float(self.berth.lat)

    @property
    def score(self) -> float:
        return float(np.mean([s.score for s in self.sightings]))

    @property
    def seen(self) -> list[dt.date]:
        return [s.date for s in self.sightings]

    def to_dict(self) -> dict:
        return {"aoi": self.aoi, "id": self.id, "length_m": round(self.length_m, 1),
                "lon": round(self.lon, 6), "lat": round(self.lat, 6),
                "arrive": [_iso(self.arrive[0]), _iso(self.arrive[1])],
                "depart": [_iso(self.depart[0]), _iso(self.depart[1])],
                "seen": [_iso(d) for d in self.seen], "sensors": sorted({s.sensor for s in self.sightings}),
                "berth_shifts": [_iso(d) for d in self.berth_shifts], "score": round(self.score, 3)}


def _iso(d: dt.date | None) -> str | None:
    return d.isoformat() if d else None


def _local_xy(lon: np.ndarray, lat: np.ndarray, lat0: float) -> tuple[np.ndarray, np.ndarray]:
    return np.asarray(lon) * M_PER_DEG * math.cos(math.radians(lat0)), np.asarray(lat) * M_PER_DEG


def _pair_geometry(tracks: list[VesselSighting], found: list[VesselSighting]):
    """Centroid distances (m) and the two lengths, as (tracks x found) arrays."""
    lat0 = tracks[0].lat
    tx, ty = _local_xy([t.lon for t in tracks], [t.lat for t in tracks], lat0)
    fx, fy = _local_xy([f.lon for f in found], [f.lat for f in found], lat0)
    dist = np.hypot(tx[:, None] - fx[None, :], ty[:, None] - fy[None, :])
    return dist, np.array([t.length_m for t in tracks])[:, None], np.array([f.length_m for f in found])[None, :]


def _assign(ok: np.ndarray, cost: np.ndarray) -> list[tuple[int, int]]:
    rows, cols = linear_sum_assignment(np.where(ok, cost, 1e6))
    return [(r, c) for r, c in zip(rows, cols) if ok[r, c]]


def _match(tracks: list[VesselSighting], found: list[VesselSighting], p: AnalysisParams) -> list[tuple[int, int]]:
    """Pairs (track, detection) of the same ship on consecutive dates (optimal assignment)."""
    if not tracks or not found:
        return []
    dist, tl, fl = _pair_geometry(tracks, found)
    rel = np.abs(tl - fl) / np.maximum(tl, fl)
    ok = (dist <= p.match_distance_m) & (rel <= p.match_length_rel)
    return _assign(ok, dist / p.match_distance_m + rel / p.match_length_rel)


def _match_berth_shifts(tracks: list[VesselSighting], found: list[VesselSighting],
                        p: AnalysisParams) -> list[tuple[int, int]]:
    """Pairs (track, detection) of a ship that moved to another berth of the AOI."""
    if not tracks or not found or p.berth_shift_distance_m <= 0:
        return []
    dist, tl, fl = _pair_geometry(tracks, found)
    diff = np.abs(tl - fl)
    gate = np.maximum(p.voyage_length_rel * np.maximum(tl, fl), p.voyage_length_abs_m)
    ok = (dist <= p.berth_shift_distance_m) & (diff <= gate)
    return _assign(ok, diff / gate)


def track_port_calls(observations: Sequence[Observation], p: AnalysisParams) -> list[PortCall]:
    """Port calls of large berthed vessels at each AOI.

    Method: the usable observations of an AOI are taken in date order; the
    large vessels at berth on each date are assigned to the calls open on the
    previous usable date by an optimal assignment (Hungarian method) on centroid
    distance and relative length, gated by ``match_distance_m`` and
    ``match_length_rel``. An unmatched call ends (the vessel departed between
    its last sighting and this date); an unmatched vessel opens a call (it
    arrived since the previous usable date). Calls left unmatched that were
    seen on the previous usable date are then offered to the unmatched
    vessels once more, without the distance gate of one berth
    (``berth_shift_distance_m``): a ship that moved to another berth keeps
    its call. Unusable (cloudy) dates are skipped: they neither end nor open
    a call.
    """
    calls: list[PortCall] = []
    for aoi, obs in by_aoi(observations).items():
        usable = [o for o in obs if o.usable(p)]
        open_calls: list[PortCall] = []
        prev: dt.date | None = None
        for o in usable:
            found = o.large_at_berth(p)
            pairs = _match([c.sightings[-1] for c in open_calls], found, p)
            shift_possible = prev is not None and (o.date - prev).days <= p.berth_shift_max_gap_days
            rest_calls = [i for i in range(len(open_calls)) if shift_possible
                          and i not in {r for r, _ in pairs} and open_calls[i].sightings[-1].date == prev]
            rest_found = [j for j in range(len(found)) if j not in {c for _, c in pairs}]
            shifts = _match_berth_shifts([open_calls[i].sightings[-1] for i in rest_calls],
                                         [found[j] for j in rest_found], p)
            for r, c in shifts:
                open_calls[rest_calls[r]].berth_shifts.append(o.date)
            pairs += [(rest_calls[r], rest_found[c]) for r, c in shifts]
            matched_calls = {r for r, _ in pairs}
            matched_found = {c for _, c in pairs}
            for r, c in pairs:
                open_calls[r].sightings.append(found[c])
            still_open = []
            for i, call in enumerate(open_calls):
                if i in matched_calls:
                    still_open.append(call)
                else:
                    call.depart = (call.sightings[-1].date, o.date)
                    calls.append(call)
            for j, v in enumerate(found):
                if j not in matched_found:
                    still_open.append(PortCall(aoi, "", [v], (prev, o.date), (o.date, None)))
            for call in still_open:
                call.depart = (call.sightings[-1].date, None)
            open_calls = still_open
            prev = o.date
        calls.extend(open_calls)
    calls.sort(key=lambda c: (c.aoi, c.sightings[0].date, c.lon))
    counters: dict[str, int] = {}
    for c in calls:
        counters[c.aoi] = counters.get(c.aoi, 0) + 1
        c.id = f"{c.aoi}-{counters[c.aoi]}"
    return calls


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
    flows: list["StackStep"] = field(default_factory=list)

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
            "depart": [_iso(self.depart[0]), _iso(self.depart[1])],
            "arrive": [_iso(self.arrive[0]), _iso(self.arrive[1])],
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
    from ..detectors.stack_changes import detect_stack_changes

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

    from ..detectors.stack_changes import detect_stack_changes

    defaults = {k: v.default for k, v in inspect.signature(detect_stack_changes).parameters.items()
                if v.default is not inspect.Parameter.empty}
    p = {**defaults, **step_params}
    min_step = p["gap_z"] * math.sqrt(2.0) * p["absolute_noise_m2"]
    return {"area_noise_m2": p["absolute_noise_m2"], "relative_noise": p["relative_noise"] or 0.0,
            "min_step_m2": min_step, "min_step_teu": estimate_teu(min_step)[0],
            "min_change_teu": p["min_change_teu"]}


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


# ---------------------------------------------------------------- 5. comparison
def rate_ratio(k_in: int, n_in: int, k_out: int, n_out: int) -> dict:
    """Rate ratio of counts per observation inside vs. outside the window.

    Exact conditional test for two Poisson rates (Przyborowski & Wilenski 1940):
    given the total ``k_in + k_out``, ``k_in`` is binomial with probability
    ``n_in / (n_in + n_out)`` under equal rates; the two-sided p-value is
    :func:`scipy.stats.binomtest`'s. Exposures are usable observation dates, so
    unobserved days count for nothing.
    """
    out = {"in_window": k_in, "observations_in_window": n_in, "baseline": k_out,
           "observations_baseline": n_out, "value": None, "p_value": None}
    if n_in == 0 or n_out == 0:
        return out
    rate_in, rate_out = k_in / n_in, k_out / n_out
    out["value"] = round(rate_in / rate_out, 3) if rate_out > 0 else (None if rate_in == 0 else math.inf)
    if k_in + k_out > 0:
        out["p_value"] = round(float(stats.binomtest(k_in, k_in + k_out, n_in / (n_in + n_out)).pvalue), 4)
    else:
        out["p_value"] = 1.0
    if out["value"] == math.inf:
        out["value"] = None  # JSON has no infinity; the counts say it all
        out["note"] = "no activity in the baseline"
    return out


def activity_rate_ratio(observations: Sequence[Observation], aois: Sequence[str],
                        window: tuple[dt.date, dt.date], p: AnalysisParams) -> dict:
    """Large berthed vessels per usable observation, window vs. baseline, pooled over ``aois``."""
    k_in = n_in = k_out = n_out = 0
    for o in observations:
        if o.aoi not in aois or not o.usable(p):
            continue
        k = len(o.large_at_berth(p))
        if in_window(o.date, window):
            k_in, n_in = k_in + k, n_in + 1
        else:
            k_out, n_out = k_out + k, n_out + 1
    return rate_ratio(k_in, n_in, k_out, n_out)


def claimed_teu(claim, p: AnalysisParams) -> tuple[float, float] | None:
    """The claimed quantity as a TEU interval (None when the claim states none).

    'containers' become TEU at ``teu_per_container`` (1-2): "at least N
    containers" is at least N TEU, "at most N" at most 2N TEU, "about/exactly N"
    between N and 2N TEU.
    """
    q = claim.quantity
    if q is None:
        return None
    lo_f, hi_f = p.teu_per_container if q.unit == "containers" else (1.0, 1.0)
    lo, hi = q.value * lo_f, q.value * hi_f
    if q.relation == "at_least":
        return lo, math.inf
    if q.relation == "at_most":
        return 0.0, hi
    return lo, hi


@dataclass
class Verdict:
    activity: str
    quantity: str
    reasons: list[str]
    detect_probability: dict[str, float]

    def to_dict(self) -> dict:
        return {"activity": self.activity, "quantity": self.quantity, "reasons": list(self.reasons)}


def _fmt_days(window) -> str:
    return f"{window[0].isoformat()} to {window[1].isoformat()}"


def verdict(claim, observations: Sequence[Observation], voyages: Sequence[Voyage],
            teu_window: dict, p: AnalysisParams) -> Verdict:
    """Activity and quantity verdicts with their reasons, in plain words.

    Activity: *consistent* when at least one origin->destination voyage with
    confidence >= ``min_voyage_confidence`` overlaps the window. Otherwise the
    question is whether the observation schedule could have revealed one: a
    voyage needs a call seen at both ends, so the probability is the product of
    :func:`call_detection_probability` at origin and destination. At or above
    ``min_detect_probability`` the absence is *inconsistent* with the claim;
    below it the answer is *insufficient_data*.

    Quantity: the TEU observed on the counted voyages is a lower bound of what
    was moved (unobserved voyages add to it). It is compared with
    :func:`claimed_teu`: observing more than a claimed maximum, or, with the
    schedule good enough to have seen the voyages, less than a claimed minimum,
    is *inconsistent*; reaching the claimed interval is *consistent*; otherwise
    *insufficient_data*.
    """
    window = claim.window
    o, d = claim.origin, claim.destination
    groups = by_aoi(observations)
    usable_dates = {aoi: [x.date for x in obs if x.usable(p)] for aoi, obs in groups.items()}
    prob = {aoi: call_detection_probability(usable_dates.get(aoi, []), window, p.call_days) for aoi in (o, d)}
    p_voyage = prob[o] * prob[d]
    n_usable = {aoi: sum(1 for x in usable_dates.get(aoi, []) if in_window(x, window)) for aoi in (o, d)}
    counted = [v for v in voyages if v.origin == o and v.destination == d and v.overlaps(window)
               and v.confidence >= p.min_voyage_confidence]
    weak = [v for v in voyages if v.origin == o and v.destination == d and v.overlaps(window)
            and v.confidence < p.min_voyage_confidence]
    reasons: list[str] = []
    sched = (f"Usable observations in the window {_fmt_days(window)}: {n_usable[o]} at {o}, {n_usable[d]} at {d}; "
             f"a {p.call_days:g}-day port call would have been seen with probability {prob[o]:.2f} at {o} and "
             f"{prob[d]:.2f} at {d}, so a voyage (seen at both ends) with probability about {p_voyage:.2f}.")
    for aoi in (o, d):
        if aoi not in groups:
            reasons.append(f"There are no detections at all for {aoi}.")
    if counted:
        activity = CONSISTENT
        reasons.append(f"{len(counted)} {o}->{d} voyage(s) inferred in the window: " + "; ".join(
            f"a {v.vessel_length_m:.0f} m vessel departed {o} between {v.depart[0]} and {v.depart[1]} and arrived "
            f"at {d} between {v.arrive[0]} and {v.arrive[1]} (confidence {v.confidence:.2f})" for v in counted) + ".")
        reasons.append(sched)
    elif p_voyage >= p.min_detect_probability:
        activity = INCONSISTENT
        reasons.append(f"No {o}->{d} voyage was inferred in the window although the images would likely have "
                       f"shown one. " + sched)
    else:
        activity = INSUFFICIENT
        reasons.append(f"No {o}->{d} voyage was inferred in the window, but too few usable images fell in it to "
                       f"have seen one reliably. " + sched)
    if weak:
        reasons.append(f"{len(weak)} further possible voyage(s) in the window have confidence below "
                       f"{p.min_voyage_confidence:g} and are not counted.")

    claimed = claimed_teu(claim, p)
    q = claim.quantity
    lo_obs, hi_obs = teu_window["low"], teu_window["high"]
    if claimed is None:
        quantity = INSUFFICIENT
        reasons.append("The claim states no quantity.")
    else:
        c_lo, c_hi = claimed
        claim_txt = (f"{q.relation.replace('_', ' ')} {q.value:g} {q.unit}"
                     + (f" = {c_lo:g}{'' if math.isinf(c_hi) else f'-{c_hi:g}'}{'+' if math.isinf(c_hi) else ''} TEU "
                        f"at {p.teu_per_container[0]:g}-{p.teu_per_container[1]:g} TEU per container"
                        if q.unit == "containers" else ""))
        obs_txt = (f"the counted voyages in the window carried {teu_window['estimate']} TEU "
                   f"(range {lo_obs}-{hi_obs})")
        if teu_window["voyages_without_teu"]:
            obs_txt += f"; {teu_window['voyages_without_teu']} voyage(s) had no measurable yard change"
        complete = p_voyage >= p.min_detect_probability and teu_window["voyages_without_teu"] == 0
        if lo_obs > c_hi:
            quantity = INCONSISTENT
            reasons.append(f"Observed more than claimed: {obs_txt}, above the claimed {claim_txt}.")
        elif hi_obs >= c_lo:
            quantity = CONSISTENT
            reasons.append(f"The claimed {claim_txt} is within what was observed: {obs_txt}.")
        elif complete and n_usable[o] > 0:
            quantity = INCONSISTENT
            reasons.append(f"Observed less than claimed although the schedule would likely have shown the voyages: "
                           f"{obs_txt}, below the claimed {claim_txt}.")
        else:
            quantity = INSUFFICIENT
            reasons.append(f"Cannot tell: {obs_txt}; voyages in the gaps between usable images would add to this, "
                           f"so it is a lower bound and cannot rule out the claimed {claim_txt}.")
    reasons.append("Imagery shows ships, berths and container stacks; it cannot show what the containers hold.")
    return Verdict(activity, quantity, reasons, {**prob, "voyage": p_voyage})
