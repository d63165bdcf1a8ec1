"""Constructed detection series for the report tests (the detect stage's output contract).

A :class:`Scenario` lists observation dates per AOI, cloudy dates and voyages
with their true departure/arrival dates; :func:`write_scenario` writes the
``<out>/detections/<aoi>/<date>.geojson`` files the report reads. Ships sit at
a berth for ``call_days`` before departing and after arriving; the origin yard
fills a week before a departure and empties on it, the destination yard fills
on arrival and empties by rail a week later.
"""

from __future__ import annotations

import datetime as dt
import math
from dataclasses import dataclass, field
from pathlib import Path

from shapely.affinity import rotate
from shapely.geometry import Point, box

from berthwatch.detectors.stacks import estimate_teu
from berthwatch.pipeline.core.contracts import S1, S2, detection_path
from berthwatch.pipeline.core.geojson_io import feature, write_feature_collection

D = dt.date.fromisoformat
BERTHS = {  # lon, lat of two berths per AOI and of the yard
    "rajin": {"berth": [(130.2826, 42.2271), (130.2900, 42.2330), (130.2845, 42.2290)], "yard": (130.2860, 42.2360)},
    "dunai": {"berth": [(132.3400, 42.8800), (132.3300, 42.8750), (132.3420, 42.8815)], "yard": (132.3450, 42.8850)},
}


@dataclass
class Trip:
    ship: str
    origin: str
    destination: str
    depart: dt.date
    arrive: dt.date
    length_m: float
    teu: float  # carried; 0 for a ballast leg
    berth: int = 0


@dataclass
class Scenario:
    start: dt.date
    end: dt.date
    every_days: dict[str, int] = field(default_factory=lambda: {"rajin": 2, "dunai": 2})
    offset_days: dict[str, int] = field(default_factory=lambda: {"rajin": 0, "dunai": 1})
    trips: list[Trip] = field(default_factory=list)
    cloudy: set[tuple[str, dt.date]] = field(default_factory=set)
    cloudy_ranges: list[tuple[str, dt.date, dt.date]] = field(default_factory=list)
    resident_m: float = 95.0  # a ship that never leaves the origin's second berth
    call_days: int = 2  # days a ship is at berth before its first and after its last trip
    yard_days: int = 5  # days cargo waits in the yard before loading / after unloading
    base_yard_m2: float = 20_000.0
    simulated: bool = True

    def dates(self, aoi: str) -> list[dt.date]:
        n = (self.end - self.start).days + 1
        off, step = self.offset_days[aoi], self.every_days[aoi]
        return [self.start + dt.timedelta(days=i) for i in range(off, n, step)]

    def is_cloudy(self, aoi: str, d: dt.date) -> bool:
        return (aoi, d) in self.cloudy or any(a == aoi and s <= d <= e for a, s, e in self.cloudy_ranges)


def _m_to_deg(lat: float) -> tuple[float, float]:
    return 1 / (111_320.0 * math.cos(math.radians(lat))), 1 / 111_320.0


def vessel_polygon(lon: float, lat: float, length: float, width: float, heading: float):
    dx, dy = _m_to_deg(lat)
    rect = box(-width / 2, -length / 2, width / 2, length / 2)
    rect = rotate(rect, -heading, origin=(0, 0))
    from shapely.affinity import affine_transform

    return affine_transform(rect, [dx, 0, 0, dy, lon, lat])


def _yard_area(sc: Scenario, aoi: str, d: dt.date) -> float:
    area = sc.base_yard_m2
    per_teu = 1.0 / estimate_teu(1.0)[0]
    for t in sc.trips:
        if t.teu <= 0:
            continue
        if t.origin == aoi and t.depart - dt.timedelta(days=sc.yard_days) <= d < t.depart:
            area += t.teu * per_teu
        if t.destination == aoi and t.arrive <= d < t.arrive + dt.timedelta(days=sc.yard_days):
            area += t.teu * per_teu
    return area


def ships_at(sc: Scenario, aoi: str, d: dt.date) -> list[tuple[float, int]]:
    """(length, berth) of the ships at berth at ``aoi`` on ``d``, from each ship's itinerary."""
    out = []
    for ship in sorted({t.ship for t in sc.trips}):
        trips = sorted((t for t in sc.trips if t.ship == ship), key=lambda t: t.depart)
        stays = [(trips[0].origin, trips[0].depart - dt.timedelta(days=sc.call_days), trips[0].depart, trips[0])]
        for prev, nxt in zip(trips[:-1], trips[1:]):
            stays.append((prev.destination, prev.arrive, nxt.depart, prev))
        stays.append((trips[-1].destination, trips[-1].arrive, trips[-1].arrive + dt.timedelta(days=sc.call_days),
                      trips[-1]))
        for port, first, until, t in stays:
            if port == aoi and first <= d < until:
                out.append((t.length_m, t.berth))
    return out


def write_scenario(sc: Scenario, out_dir: Path) -> list[Path]:
    """Write the detections files of a scenario; returns their paths."""
    paths = []
    for aoi in ("rajin", "dunai"):
        for d in sc.dates(aoi):
            cloudy = sc.is_cloudy(aoi, d)
            clear = 0.1 if cloudy else 0.95
            feats = []
            ships = []
            if aoi == "rajin" and sc.resident_m:
                ships.append((sc.resident_m, 1))
            ships += ships_at(sc, aoi, d)
            if not cloudy:
                for i, (length, berth) in enumerate(ships):
                    lon, lat = BERTHS[aoi]["berth"][berth]
                    jitter = ((d.toordinal() * 7 + i * 13) % 5 - 2)  # metres-scale, deterministic
                    dxd, dyd = _m_to_deg(lat)
                    geom = vessel_polygon(lon + jitter * 5 * dxd, lat + jitter * 5 * dyd, length + jitter, 18, 30)
                    feats.append(feature(geom, {"kind": "vessel", "length_m": length + jitter, "width_m": 18.0,
                                                "heading_deg": 30.0, "area_m2": (length + jitter) * 18 * 0.8,
                                                "score": 0.9, "at_berth": True, "sensor": S2, "scene": f"S2-{d}"}))
                # a small harbour craft, never a port call
                lon, lat = BERTHS[aoi]["yard"]
                feats.append(feature(vessel_polygon(lon - 0.004, lat - 0.003, 30, 8, 90),
                                     {"kind": "vessel", "length_m": 30.0, "width_m": 8.0, "heading_deg": 90.0,
                                      "area_m2": 200.0, "score": 0.7, "at_berth": True, "sensor": S2,
                                      "scene": f"S2-{d}"}))
                area = _yard_area(sc, aoi, d)
                side = math.sqrt(area)
                lon, lat = BERTHS[aoi]["yard"]
                dxd, dyd = _m_to_deg(lat)
                stack = box(lon, lat, lon + side * dxd, lat + side * dyd)
                est, low, high = estimate_teu(area)
                feats.append(feature(stack, {"kind": "container_stack", "area_m2": area, "teu_estimate": est}))
            else:
                area, est, low, high = None, None, None, None
            large = [f for f in feats if f["properties"]["kind"] == "vessel" and f["properties"]["length_m"] >= 80]
            vessels = [f for f in feats if f["properties"]["kind"] == "vessel"]
            summary = {
                "kind": "aoi_summary", "aoi": aoi, "date": d.isoformat(), "sensors": [S2],
                "scenes": [f"S2-{d}"], "clear_fraction": {S2: clear}, "vessels": len(vessels),
                "vessels_at_berth": len(vessels), "large_vessels": len(large),
                "container_stack_area_m2": area, "teu_estimate": est, "teu_low": low, "teu_high": high,
                "detector_version": "test", "params_hash": "0" * 16, "simulated": sc.simulated,
            }
            lon, lat = BERTHS[aoi]["yard"]
            first = feature(Point(lon, lat).buffer(0.01), summary)
            path = detection_path(out_dir, aoi, d)
            write_feature_collection(path, [first, *feats])
            paths.append(path)
    return paths


def in_window_scenario() -> Scenario:
    """Three loaded Rajin->Dunai voyages in the 7 Sep - 1 Oct 2023 window, ballast legs back."""
    trips = [
        Trip("angara", "rajin", "dunai", D("2023-09-09"), D("2023-09-10"), 118, 420),
        Trip("angara", "dunai", "rajin", D("2023-09-14"), D("2023-09-15"), 118, 0),
        Trip("maria", "rajin", "dunai", D("2023-09-18"), D("2023-09-19"), 105, 400, berth=2),
        Trip("angara", "rajin", "dunai", D("2023-09-27"), D("2023-09-28"), 118, 420),
    ]
    return Scenario(D("2023-08-01"), D("2023-10-31"), trips=trips)


def outside_window_scenario() -> Scenario:
    trips = [
        Trip("angara", "rajin", "dunai", D("2023-08-11"), D("2023-08-12"), 118, 420),
        Trip("angara", "dunai", "rajin", D("2023-08-17"), D("2023-08-18"), 118, 0),
        Trip("maria", "rajin", "dunai", D("2023-10-15"), D("2023-10-16"), 105, 400),
    ]
    return Scenario(D("2023-08-01"), D("2023-10-31"), trips=trips)


def no_shipments_scenario() -> Scenario:
    return Scenario(D("2023-08-01"), D("2023-10-31"))


def cloudy_window_scenario() -> Scenario:
    sc = in_window_scenario()
    sc.cloudy_ranges = [("rajin", D("2023-09-05"), D("2023-10-03")), ("dunai", D("2023-09-05"), D("2023-10-03"))]
    return sc
