"""The state of a simulated port on one day: which ships are at which berth, what the yards hold.

Everything here follows from the scenario and the layout alone (and the
scenario's seed), so every sensor that looks on the same day sees the same port.
A scenario that cannot happen (a yard below empty or over capacity, two ships
on one berth face) raises :class:`ScenarioConflict`, which the scenario loader
turns into one line naming the field.
"""

from __future__ import annotations

import datetime as dt
import math
import zlib
from dataclasses import dataclass

import numpy as np
from shapely.geometry import Polygon

from .layout import Berth, Layout, hull_polygon, ship_outline


class ScenarioConflict(Exception):
    """A scenario field that the layout cannot accommodate: ``where`` names the field."""

    def __init__(self, where: str, problem: str):
        super().__init__(f"{where}: {problem}")
        self.where, self.problem = where, problem


def yard_inventory(scenario, layout: Layout, aoi: str, date: dt.date) -> dict[str, float]:
    """TEU in each yard of ``aoi`` at the end of ``date``; checks every event on the way."""
    teu = {y.name: scenario.yard_initial_teu.get(aoi, {}).get(y.name, y.baseline_teu) for y in layout.yards}
    indexed = [(i, e) for i, e in enumerate(scenario.yard_events) if e.aoi == aoi]
    for i, e in sorted(indexed, key=lambda ie: (ie[1].date, ie[0])):
        yard = layout.yard(e.yard)
        new = teu[yard.name] + e.teu
        if new < -1e-6:
            raise ScenarioConflict(f"yard_events[{i}].teu",
                                    f"{e.teu:+g} TEU on {e.date} leaves {aoi} {yard.name} below empty "
                                    f"({teu[yard.name]:g} TEU held)")
        if new > yard.capacity_teu:
            raise ScenarioConflict(f"yard_events[{i}].teu",
                                    f"{e.teu:+g} TEU on {e.date} overfills {aoi} {yard.name} "
                                    f"(capacity {yard.capacity_teu:.0f} TEU)")
        if e.date <= date:
            teu[yard.name] = new
    return teu


def assign_berths(scenario, layout: Layout, aoi: str) -> dict[str, list[tuple[dt.date, dt.date, Berth]]]:
    """Berth of every port call at ``aoi`` for each part of its stay (first free face that fits)."""
    berths = layout.berths()
    booked: dict[str, list[tuple[dt.date, dt.date]]] = {b.id: [] for b in berths}
    out: dict[str, list[tuple[dt.date, dt.date, Berth]]] = {}
    calls = [(i, pc) for i, pc in enumerate(scenario.port_calls) if pc.aoi == aoi]
    for i, pc in sorted(calls, key=lambda ic: (ic[1].arrive, ic[0])):
        parts, d0, want = [], pc.arrive, pc.berth
        for m in pc.moves:
            parts.append((d0, m.date - dt.timedelta(days=1), want))
            d0, want = m.date, m.berth
        parts.append((d0, pc.depart, want))
        out[pc.id] = []
        for p0, p1, group in parts:
            options = [b for b in berths if group is None or b.group == group or b.id == group]
            fits = [b for b in options if b.max_length_m >= pc.length_m]
            if not fits:
                raise ScenarioConflict(f"port_calls[{i}].length_m",
                                        f"{pc.length_m:g} m does not fit berth {group or 'any'} at {aoi} "
                                        f"(longest {max(b.max_length_m for b in options):.0f} m)")
            free = [b for b in fits if all(p1 < q0 or q1 < p0 for q0, q1 in booked[b.id])]
            if not free:
                raise ScenarioConflict(f"port_calls[{i}]",
                                        f"no free berth {group or ''} at {aoi} for {pc.vessel} {p0}..{p1}".replace("  ", " "))
            booked[free[0].id].append((p0, p1))
            out[pc.id].append((p0, p1, free[0]))
    return out


def berth_on(assignment: list[tuple[dt.date, dt.date, Berth]], date: dt.date) -> Berth | None:
    for d0, d1, b in assignment:
        if d0 <= date <= d1:
            return b
    return None


# ------------------------------------------------------------------ the state of a port on one day
@dataclass
class SimVessel:
    name: str
    call_id: str | None
    length_m: float
    beam_m: float
    frame: dict            # s, t, u, v, length, beam (coast frame)
    outline: Polygon       # UTM
    at_berth: bool
    berth: str | None
    deck_style: int        # index into the simulator's deck palettes
    deck_teu: float = 0.0  # containers visible on deck (departure day)
    kind: str = "port_call"


@dataclass
class SimStack:
    yard: str
    teu: float
    rects: list[tuple[float, float, float, float]]
    outline: object        # UTM polygon or None when empty


@dataclass
class DayState:
    aoi: str
    date: dt.date
    vessels: list[SimVessel]
    stacks: list[SimStack]


def _stable(*parts) -> int:
    return zlib.crc32("|".join(str(p) for p in parts).encode())


def rng_for(seed: int, *parts) -> np.random.Generator:
    """A generator that depends only on the scenario seed and the given labels."""
    return np.random.default_rng([int(seed), _stable(*parts)])


def day_state(scenario, layout: Layout, aoi: str, date: dt.date, assignments) -> DayState:
    """Vessels and stacks at ``aoi`` on ``date`` (same for every sensor that day)."""
    vessels: list[SimVessel] = []
    for pc in scenario.port_calls:
        if pc.aoi != aoi or not pc.on(date):
            continue
        berth = berth_on(assignments[pc.id], date)
        if berth is None:
            continue
        rng = rng_for(scenario.seed, "vessel", pc.vessel)
        bow_seaward = bool(rng.random() < 0.5)
        deck_style = int(rng.integers(0, 4))
        outline, frame = ship_outline(layout, berth, pc.length_m, pc.beam_m, bow_seaward)
        deck = pc.deck_teu_out if date == pc.depart else 0.0
        vessels.append(SimVessel(pc.vessel, pc.id, pc.length_m, pc.beam_m, frame, outline, True, berth.id,
                                 deck_style, deck))
    vessels += _background_vessels(scenario, layout, aoi, date, vessels)
    inventory = yard_inventory(scenario, layout, aoi, date)
    stacks = []
    for y in layout.yards:
        teu = inventory[y.name]
        stacks.append(SimStack(y.name, teu, y.filled_rects(teu), layout.stack_polygon(y, teu)))
    return DayState(aoi, date, vessels, stacks)


def _background_vessels(scenario, layout: Layout, aoi: str, date: dt.date, taken: list[SimVessel]) -> list[SimVessel]:
    """Small craft (12-35 m) moored along the quay between piers or at anchor, random each day."""
    n = scenario.background_vessels.get(aoi, 0)
    rng = rng_for(scenario.seed, "background", aoi, date.isoformat())
    out: list[SimVessel] = []
    busy = [v.outline.buffer(30.0) for v in taken]
    for k in range(n):
        length = float(rng.uniform(12.0, 35.0))
        beam = float(np.clip(length * rng.uniform(0.22, 0.3), 4.0, 10.0))
        for _ in range(20):
            moored = bool(rng.random() < 0.6) and layout.moorings
            if moored:
                s0, s1 = layout.moorings[int(rng.integers(len(layout.moorings)))]
                s_c = float(rng.uniform(s0 + length / 2, s1 - length / 2))
                outline, frame = hull_polygon(layout, s_c, 2.0 + beam / 2, length, beam, axis="s",
                                              forward=1 if rng.random() < 0.5 else -1)
            else:
                a0, a1, b0, b1 = layout.anchorage
                outline, frame = hull_polygon(layout, float(rng.uniform(a0, a1)), float(rng.uniform(b0, b1)),
                                              length, beam, heading_st=float(rng.uniform(0, 2 * math.pi)))
            if not any(outline.intersects(b) for b in busy):
                break
        else:
            continue
        busy.append(outline.buffer(30.0))
        out.append(SimVessel(f"small craft {k + 1}", None, length, beam, frame, outline, bool(moored), None,
                             int(rng.integers(0, 5)), 0.0, kind="background"))
    return out
