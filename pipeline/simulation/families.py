"""Random scenario families for calibrating the report's inference against a known truth.

:func:`draw_scenario` turns a seed into a scenario (the YAML schema of
:mod:`.scenario`) and its truth: a shuttle of 0-6 origin->destination
voyages by one or two ships, placed inside the claim's window, outside it or
straddling an end; 50-400 TEU per voyage, staged in the origin yard before
loading and cleared from the destination yard by rail after unloading; other
large ships calling at either port; Sentinel-2 every 2-10 days with a cloud
probability of 0-0.8, Sentinel-1 every 6-12 days, either sensor sometimes
absent (radar-only, optical-only). Every draw depends only on the seed.

The truth counts what the claim is about: voyages whose departure from the
origin falls in the window, and the TEU they carried.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import numpy as np

from ..core.contracts import S1, S2

WINDOW = (dt.date(2023, 9, 7), dt.date(2023, 10, 1))
PERIOD = (dt.date(2023, 8, 10), dt.date(2023, 10, 25))
ORIGIN, DESTINATION = "rajin", "dunai"
PLACEMENTS = ("inside", "outside", "straddle")


@dataclass(frozen=True)
class Truth:
    voyages_in_window: int
    teu_in_window: float
    voyages_total: int
    placement: str
    s2_every: int | None
    s1_every: int | None
    cloud_probability: float

    def as_dict(self) -> dict:
        return dict(self.__dict__)


def _d(x: dt.date) -> str:
    return x.isoformat()


def _day(i: int) -> dt.date:
    return PERIOD[0] + dt.timedelta(days=int(i))


def _first_departure_day(rng: np.random.Generator, placement: str, n: int) -> int:
    """Day (from the period start) of the shuttle's first origin arrival for a placement."""
    w0, w1 = (WINDOW[0] - PERIOD[0]).days, (WINDOW[1] - PERIOD[0]).days
    span = 4 * max(n, 1)  # a round trip takes ~6-9 days; two ships halve it
    if placement == "inside":
        return int(rng.integers(w0 - 1, max(w0, w1 - span) + 1))
    if placement == "outside":
        if rng.random() < 0.5 or w0 - span - 6 < 2:
            return int(rng.integers(w1 + 2, w1 + 6))
        return int(rng.integers(2, max(3, w0 - span - 6)))
    if rng.random() < 0.5:  # straddling the start
        return int(rng.integers(max(2, w0 - span), w0 - 1))
    return int(rng.integers(max(w0, w1 - span // 2 - 4), w1 - 1))


def draw_scenario(seed: int) -> tuple[dict, Truth]:
    """(scenario as a YAML-ready mapping, truth) for ``seed``."""
    rng = np.random.default_rng([20231013, int(seed)])
    placement = PLACEMENTS[int(rng.integers(len(PLACEMENTS)))]
    n_voyages = int(rng.integers(0, 7))
    n_ships = 1 if n_voyages <= 3 else 2
    lengths = [float(np.round(rng.uniform(90, 150))) for _ in range(n_ships)]
    sensors = rng.random()
    s2_every = None if sensors < 0.15 else int(rng.integers(2, 11))
    s1_every = None if 0.15 <= sensors < 0.4 else int(rng.integers(6, 13))
    cloud = float(np.round(rng.uniform(0, 0.8), 2))
    n_days = (PERIOD[1] - PERIOD[0]).days

    calls, events = [], []
    start = _first_departure_day(rng, placement, n_voyages) if n_voyages else 0
    starts = [start + k * int(rng.integers(3, 5)) for k in range(n_ships)]
    made = 0
    voyages_in, teu_in = 0, 0.0
    ship_day = list(starts)
    while made < n_voyages:
        k = made % n_ships
        name = f"shuttle-{k + 1}"
        a_o = ship_day[k]
        d_o = a_o + int(rng.integers(2, 5)) - 1  # 2-4 days at the origin berth
        a_d = d_o + int(rng.integers(1, 3))  # transit 1-2 days
        d_d = a_d + int(rng.integers(2, 4)) - 1  # 2-3 days at the destination
        if a_o < 1 or d_d >= n_days - 1:
            break
        teu = float(np.round(rng.uniform(50, 400), -1))
        beam = round(lengths[k] * 0.15)
        calls.append({"vessel": name, "length_m": lengths[k], "beam_m": beam, "aoi": ORIGIN,
                      "arrive": _d(_day(a_o)), "depart": _d(_day(d_o)), "deck_teu_out": teu})
        calls.append({"vessel": name, "length_m": lengths[k], "beam_m": beam, "aoi": DESTINATION,
                      "arrive": _d(_day(a_d)), "depart": _d(_day(d_d))})
        stage = max(1, d_o - int(rng.integers(4, 12)))
        events.append({"aoi": ORIGIN, "yard": "yard-2", "date": _d(_day(stage)), "teu": teu})
        events.append({"aoi": ORIGIN, "yard": "yard-2", "date": _d(_day(d_o)), "teu": -teu})
        events.append({"aoi": DESTINATION, "yard": "yard-1", "date": _d(_day(a_d)), "teu": teu})
        clear = a_d + int(rng.integers(5, 12))
        if clear < n_days:
            events.append({"aoi": DESTINATION, "yard": "yard-1", "date": _d(_day(clear)), "teu": -teu})
        if WINDOW[0] <= _day(d_o) <= WINDOW[1]:
            voyages_in += 1
            teu_in += teu
        made += 1
        ship_day[k] = d_d + int(rng.integers(1, 3))  # ballast leg back
    # other large ships: a busy origin, now and then a call at the destination
    n_other_o = int(rng.integers(0, 5)) if rng.random() < 0.5 else 0
    n_other_d = 1 if rng.random() < 0.2 else 0
    for i, aoi in enumerate([ORIGIN] * n_other_o + [DESTINATION] * n_other_d):
        a = int(rng.integers(1, n_days - 8))
        length = float(np.round(rng.uniform(85, 180)))
        calls.append({"vessel": f"other-{i + 1}", "length_m": length, "beam_m": round(length * 0.15),
                      "aoi": aoi, "arrive": _d(_day(a)), "depart": _d(_day(a + int(rng.integers(1, 7))))})

    acq: dict = {}
    if s2_every:
        acq[S2] = {"first": _d(_day(int(rng.integers(0, s2_every)))), "every_days": s2_every,
                   "cloud_probability": cloud}
    if s1_every:
        acq[S1] = {"first": _d(_day(int(rng.integers(0, s1_every)))), "every_days": s1_every}
    for aoi in (ORIGIN, DESTINATION):  # the two ports lie on different orbits: different first dates
        over = {}
        if s2_every:
            over[S2] = {"first": _d(_day(int(rng.integers(0, s2_every))))}
        if s1_every:
            over[S1] = {"first": _d(_day(int(rng.integers(0, s1_every))))}
        acq[aoi] = over
    scenario = {
        "name": f"calibration-{seed:04d}", "seed": int(seed), "start": _d(PERIOD[0]), "end": _d(PERIOD[1]),
        "aois": [ORIGIN, DESTINATION], "acquisitions": acq, "layout": "default",
        "background_vessels": {ORIGIN: 2, DESTINATION: 1},
        "port_calls": calls, "yard_events": events,
        "description": (f"SIMULATED calibration scenario: {made} shuttle voyage(s) {placement} the window, "
                        f"{n_ships} ship(s), S2 every {s2_every} d (cloud {cloud}), S1 every {s1_every} d"),
    }
    truth = Truth(voyages_in, teu_in, made, placement, s2_every, s1_every, cloud)
    return scenario, truth
