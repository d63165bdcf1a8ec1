"""The hidden Markov model of the shuttle: exactness checks and behaviour on constructed looks."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pytest

from berthwatch.pipeline.report.analysis.inference import (
    ObservationModel, PortLook, ShuttleModel, YardLook, detection_likelihood, summarise_count,
    voyage_count_posterior,
)
from berthwatch.pipeline.report.analysis.shuttle import bayes_factor

D = dt.date.fromisoformat
DAYS = (D("2023-08-10"), D("2023-10-25"))
WINDOW = (D("2023-09-07"), D("2023-10-01"))
OBS = ObservationModel(p_detect={"sentinel-2-l2a": 0.9}, false_alarms_per_date=0.05)
#: A smaller grid than the default (8 instead of 96 combinations) keeps these tests fast; the
#: default is exercised by the report and calibration tests.
SMALL = ShuttleModel(start_in_window=(1 / 200, 1 / 8), start_outside=(1 / 30,), leave_in_window=(0.1,),
                     leave_outside=(0.1, 0.9))


def looks(every: int, offset: int, occupied, p: float = 0.9) -> list[PortLook]:
    out, d = [], DAYS[0] + dt.timedelta(days=offset)
    while d <= DAYS[1]:
        out.append(PortLook(d, p, int(occupied(d))))
        d += dt.timedelta(days=every)
    return out


def shuttle_at(port: str):
    """One ship: 3 days at the origin, 1 day at sea, 2 days at the destination, 1 day back (7-day cycle)."""
    def occupied(d: dt.date) -> bool:
        if not (WINDOW[0] <= d <= WINDOW[1] + dt.timedelta(days=4)):
            return False
        phase = (d - WINDOW[0]).days % 7
        return phase in (0, 1, 2) if port == "origin" else phase in (4, 5)
    return occupied


def test_detection_likelihood_is_a_distribution_over_counts_found():
    total = sum(detection_likelihood(np.array([0, 1, 2, 3]), k, 0.8, 0.1) for k in range(25))
    assert np.allclose(total, 1.0)
    # nothing there: only false alarms
    assert detection_likelihood(np.array([0]), 0, 0.8, 0.1)[0] == pytest.approx(np.exp(-0.1))


def test_without_looks_the_posterior_is_the_prior_and_the_bayes_factor_one():
    prior = voyage_count_posterior([], [], DAYS, WINDOW, WINDOW, OBS, SMALL)["pmf"]
    assert prior.sum() == pytest.approx(1.0)
    assert 0.2 < prior[0] < 0.8 and prior[3:].sum() > 0.05  # broad: neither none nor many ruled out
    assert bayes_factor(1 - prior[0], 1 - prior[0], 1e-6) == pytest.approx(1.0)


def test_a_shuttle_seen_every_two_days_is_counted():
    post = voyage_count_posterior(looks(2, 0, shuttle_at("origin")), looks(2, 1, shuttle_at("destination")),
                                  DAYS, WINDOW, WINDOW, OBS, SMALL)["pmf"]
    s = summarise_count(post)
    # departures on days 2, 9, 16, 23 of the window
    assert s["interval"][0] <= 4 <= s["interval"][1] and s["p_any"] > 0.99


def test_empty_berths_every_three_days_rule_out_a_shuttle():
    post = voyage_count_posterior(looks(3, 0, lambda d: False), looks(3, 1, lambda d: False),
                                  DAYS, WINDOW, WINDOW, OBS, SMALL)["pmf"]
    assert post[0] > 0.98


def test_a_busy_origin_with_an_empty_destination_is_not_a_shuttle():
    busy = looks(2, 0, lambda d: d.toordinal() % 5 < 3)
    post = voyage_count_posterior(busy, looks(2, 1, lambda d: False), DAYS, WINDOW, WINDOW, OBS, SMALL)["pmf"]
    assert post[0] > 0.9


def test_unobserved_days_after_the_window_change_nothing():
    # the days after the counted period are summed by the backward pass: days without looks add nothing
    o, d = looks(2, 0, shuttle_at("origin")), looks(2, 1, shuttle_at("destination"))
    short = voyage_count_posterior(o, d, (DAYS[0], D("2023-10-10")), WINDOW, WINDOW, OBS, SMALL)["pmf"]
    cut = [lk for lk in o if lk.date <= D("2023-10-10")], [lk for lk in d if lk.date <= D("2023-10-10")]
    longer = voyage_count_posterior(*cut, DAYS, WINDOW, WINDOW, OBS, SMALL)["pmf"]
    assert np.allclose(short, longer, atol=1e-9)


def test_a_window_hidden_by_clouds_is_not_decided_by_the_prior():
    # empty before and after, nothing seen in the window: the Bayes factor of "any voyage" stays near 1
    before_after = lambda lst: [lk for lk in lst if not (WINDOW[0] - dt.timedelta(days=2) <= lk.date
                                                         <= WINDOW[1] + dt.timedelta(days=2))]
    o, d = before_after(looks(3, 0, lambda x: False)), before_after(looks(3, 1, lambda x: False))
    post = voyage_count_posterior(o, d, DAYS, WINDOW, WINDOW, OBS, SMALL)["pmf"]
    prior = voyage_count_posterior([], [], DAYS, WINDOW, WINDOW, OBS, SMALL)["pmf"]
    assert 1 / 10 < bayes_factor(1 - post[0], 1 - prior[0], 1e-6) < 10


def test_yard_rises_at_the_destination_count_as_evidence_when_informative():
    informative = ObservationModel(p_detect={"sentinel-2-l2a": 0.9}, false_alarms_per_date=0.05,
                                   yard_rise_given_arrival=0.8, yard_rise_without_arrival=0.05)
    # berths never seen in the window; the destination yard rose twice inside it
    o = [lk for lk in looks(5, 0, lambda x: False) if not WINDOW[0] <= lk.date <= WINDOW[1]]
    d = [lk for lk in looks(5, 1, lambda x: False) if not WINDOW[0] <= lk.date <= WINDOW[1]]
    yard = [YardLook(D("2023-09-05"), D("2023-09-15"), True), YardLook(D("2023-09-15"), D("2023-09-25"), True)]
    one = ShuttleModel(start_in_window=(1 / 60,), start_outside=(1 / 200,), leave_in_window=(0.1,),
                       leave_outside=(0.9,), other_regimes=((0.01, 30.0),))
    without = voyage_count_posterior(o, d, DAYS, WINDOW, WINDOW, informative, one)["pmf"]
    with_yard = voyage_count_posterior(o, d, DAYS, WINDOW, WINDOW, informative, one, yard)["pmf"]
    assert 1 - with_yard[0] > 1 - without[0] + 0.2


def test_origin_yard_falls_count_as_departures_and_quiet_short_intervals_against_them():
    informative = ObservationModel(p_detect={"sentinel-2-l2a": 0.9}, false_alarms_per_date=0.05,
                                   yard_fall_given_departure=0.8, yard_fall_without_departure=0.05)
    o = [lk for lk in looks(5, 0, lambda x: False) if not WINDOW[0] <= lk.date <= WINDOW[1]]
    d = [lk for lk in looks(5, 1, lambda x: False) if not WINDOW[0] <= lk.date <= WINDOW[1]]
    one = ShuttleModel(start_in_window=(1 / 60,), start_outside=(1 / 200,), leave_in_window=(0.1,),
                       leave_outside=(0.9,), other_regimes=((0.01, 30.0),))
    edges = [WINDOW[0] + dt.timedelta(days=k) for k in range(0, 25, 4)]
    fell = [YardLook(a, b, a == edges[2]) for a, b in zip(edges, edges[1:])]
    quiet = [YardLook(a, b, False) for a, b in zip(edges, edges[1:])]
    p_any = {name: 1 - voyage_count_posterior(o, d, DAYS, WINDOW, WINDOW, informative, one, (), yard)["pmf"][0]
             for name, yard in (("none", ()), ("fell", fell), ("quiet", quiet))}
    # six quiet 4-day intervals rule a departure in the window nearly out; one fall among them brings it back
    assert p_any["quiet"] < p_any["none"] - 0.2
    assert p_any["fell"] > p_any["quiet"] + 0.3


def test_a_fall_on_the_last_day_at_berth_is_that_departure():
    """The cargo leaves the yard on the ship's last day at berth, the day before the chain's departure."""
    informative = ObservationModel(p_detect={"sentinel-2-l2a": 0.95}, false_alarms_per_date=0.02,
                                   yard_fall_given_departure=0.9, yard_fall_without_departure=0.02)
    one = ShuttleModel(start_in_window=(1 / 60,), start_outside=(1 / 200,), leave_in_window=(0.1,),
                       leave_outside=(0.1,), other_regimes=((0.01, 30.0),))
    last = WINDOW[0] + dt.timedelta(days=5)
    o = [PortLook(last - dt.timedelta(days=1), 0.95, 1), PortLook(last, 0.95, 1)]  # seen at berth on both days

    def evidence(fall_on: dt.date) -> float:
        yard = [YardLook(fall_on - dt.timedelta(days=1), fall_on, True)]
        return voyage_count_posterior(o, [], DAYS, WINDOW, WINDOW, informative, one, (), yard)["log_evidence"]
    on_last = evidence(last)
    assert on_last > evidence(last - dt.timedelta(days=1)) + 1.0  # the ship was still at berth the next day
    assert on_last > evidence(last + dt.timedelta(days=3)) + 0.5  # later than the likeliest departure
