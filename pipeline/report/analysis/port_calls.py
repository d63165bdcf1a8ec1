"""Large vessels at berth tracked across usable observations into port calls."""

from __future__ import annotations

import datetime as dt
import math
from dataclasses import dataclass, field
from typing import Sequence

import numpy as np
from scipy.optimize import linear_sum_assignment

from .observations import Observation, VesselSighting, iso_or_none, by_aoi
from .params import M_PER_DEG, AnalysisParams


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
                "arrive": [iso_or_none(self.arrive[0]), iso_or_none(self.arrive[1])],
                "depart": [iso_or_none(self.depart[0]), iso_or_none(self.depart[1])],
                "seen": [iso_or_none(d) for d in self.seen], "sensors": sorted({s.sensor for s in self.sightings}),
                "berth_shifts": [iso_or_none(d) for d in self.berth_shifts], "score": round(self.score, 3)}


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
