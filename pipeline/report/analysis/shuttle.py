"""From observations to the inference block: voyages and TEU moved in the window, with intervals.

:func:`infer_shuttle` turns each usable AOI-date into a :class:`~.inference.PortLook`
(the count of large vessels at berth and the probability that one would be
detected), runs :func:`~.inference.voyage_count_posterior` for the claim's
window and for a baseline of the same length before it, and turns voyages into
TEU with the cargo model below.

Cargo per voyage (TEU): a voyage whose yard changes were measured (the tracked
voyages of :func:`~.voyages.container_flows`) carries a value uniform within
its measured range; any other voyage carries a value uniform between 0 (a
ballast leg) and the vessel's capacity. Capacity is the named vessel's
deadweight divided by ``tonnes_per_teu`` (default 14 t: the homogeneous
loading at which container-ship capacities are quoted; munitions are dense,
so a full box weighs more and the ship fills by weight before volume), or
``default_capacity_teu`` when no vessel of the claim gives a deadweight. The
TEU posterior is the exact voyage-count posterior mixed with these cargo
draws (Monte Carlo with a fixed seed, so reports are reproducible).
"""

from __future__ import annotations

import datetime as dt
import math
from typing import Sequence

import numpy as np
from threadpoolctl import threadpool_limits

from .inference import ObservationModel, PortLook, ShuttleModel, YardLook, summarise_count, voyage_count_posterior
from .observations import Observation, by_aoi
from .params import AnalysisParams
from .stack_steps import stack_steps

N_DRAWS = 20_000


def port_looks(obs: Sequence[Observation], p: AnalysisParams, om: ObservationModel,
               found: dict | None = None) -> list[PortLook]:
    """One look per usable date: found = large vessels at berth; p_detect from the sensors and clear fractions.

    ``found`` (``{(aoi, date): count}``) replaces the detected counts: the calibration harness passes
    the simulated truth to measure what a perfect vessel detector would give on the same schedule.
    """
    out = []
    for o in obs:
        if not o.usable(p):
            continue
        miss = 1.0
        for sensor in o.clear:
            if not o.sensor_usable(sensor, p):
                continue
            zones = o.sensor_zones(sensor)  # clear fractions of the AOI and its berths (core.observed)
            clear = zones.get("berths") if zones.get("berths") is not None else zones.get("aoi", 0.0)
            miss *= 1.0 - om.p_detect.get(sensor, 0.0) * max(0.0, min(1.0, float(clear)))
        count = found[o.aoi, o.date] if found is not None else len(o.large_at_berth(p))
        out.append(PortLook(o.date, 1.0 - miss, count))
    return out


def observation_model(p: AnalysisParams) -> ObservationModel:
    """The observation model of :mod:`.inference` with the rates of ``p`` (defaults or ``--params``)."""
    return ObservationModel(p_detect=dict(p.p_detect), false_alarms_per_date=p.false_alarms_per_date,
                            yard_rise_given_arrival=p.yard_rise_given_arrival,
                            yard_rise_without_arrival=p.yard_rise_without_arrival,
                            yard_fall_given_departure=p.yard_fall_given_departure,
                            yard_fall_without_departure=p.yard_fall_without_departure)


def yard_looks(obs: Sequence[Observation], steps, p: AnalysisParams, sign: int = 1) -> list[YardLook]:
    """A yard's evidence: consecutive well-observed intervals, each with or without a change of ``sign``.

    ``sign`` +1 looks for rises (cargo unloaded at the destination), -1 for falls (cargo loaded at
    the origin). The intervals run between Sentinel-2 dates whose stacks were measured
    (``stack_usable``); a change found by :func:`~.stack_steps.stack_steps` spans its own bracket,
    whose inner dates then bound no interval of their own.
    """
    changes = [(st.before, st.after) for st in steps if st.delta_area_m2 * sign > 0]
    dates = {o.date for o in obs if o.stack_usable(p)}
    dates = {d for d in dates if not any(b < d < a for b, a in changes)}
    dates |= {x for br in changes for x in br}
    ordered = sorted(dates)
    return [YardLook(a, b, (a, b) in changes) for a, b in zip(ordered, ordered[1:])]


def vessel_capacity_teu(claim, p: AnalysisParams) -> tuple[float, str]:
    """(capacity in TEU, where it comes from) of the claim's vessels: the largest named deadweight."""
    dwts = [(float(v["dwt"]), str(v.get("name", "?"))) for v in (claim.vessels or ()) if v.get("dwt")]
    if dwts:
        dwt, name = max(dwts)
        return dwt / p.tonnes_per_teu, f"{name} {dwt:,.0f} dwt / {p.tonnes_per_teu:g} t per TEU"
    return p.default_capacity_teu, f"default {p.default_capacity_teu:g} TEU (no deadweight named by the claim)"


def _teu_draws(pmf: np.ndarray, measured: list[tuple[float, float]], capacity: float,
               rng: np.random.Generator) -> np.ndarray:
    k = rng.choice(len(pmf), size=N_DRAWS, p=pmf)
    total = np.zeros(N_DRAWS)
    kmax = int(k.max()) if k.size else 0
    for i in range(kmax):
        active = k > i
        if i < len(measured):
            lo, hi = measured[i]
            draw = rng.uniform(lo, max(hi, lo), N_DRAWS)
        else:
            draw = rng.uniform(0.0, capacity, N_DRAWS)
        total += np.where(active, draw, 0.0)
    return total


def _claim_met(draws: np.ndarray, claimed: tuple[float, float] | None, relation: str | None) -> float | None:
    if claimed is None:
        return None
    lo, hi = claimed
    if relation == "at_least":
        return float(np.mean(draws >= lo))
    if relation == "at_most":
        return float(np.mean(draws <= hi))
    return float(np.mean((draws >= lo) & (draws <= hi)))


def _period(claim, observations: Sequence[Observation]) -> tuple[dt.date, dt.date]:
    dates = [o.date for o in observations] or [claim.window[0]]
    return min(min(dates), claim.window[0]), max(max(dates), claim.window[1])


def infer_shuttle(claim, observations: Sequence[Observation], voyages, claimed: tuple[float, float] | None,
                  p: AnalysisParams, om: ObservationModel | None = None, m: ShuttleModel | None = None,
                  found: dict | None = None) -> dict:
    """The ``inference`` block of summary.json: window and baseline voyages, TEU and probabilities.

    ``found``: berth counts to use instead of the detected ones (:func:`port_looks`).
    """
    om = om or observation_model(p)
    m = m or ShuttleModel(call_days=p.call_days + 1.0)
    groups = by_aoi(observations)
    looks_o = port_looks(groups.get(claim.origin, []), p, om, found)
    looks_d = port_looks(groups.get(claim.destination, []), p, om, found)
    steps = stack_steps(observations, p)
    yard = yard_looks(groups.get(claim.destination, []), [st for st in steps if st.aoi == claim.destination], p, +1)
    origin_yard = yard_looks(groups.get(claim.origin, []), [st for st in steps if st.aoi == claim.origin], p, -1)
    # equal probabilities: that yard tells nothing, and leaving it out saves its flag in the chain
    use_yard = om.yard_rise_given_arrival != om.yard_rise_without_arrival
    use_origin_yard = om.yard_fall_given_departure != om.yard_fall_without_departure
    days = _period(claim, observations)
    w0, w1 = claim.window
    length = (w1 - w0).days + 1
    capacity, capacity_source = vessel_capacity_teu(claim, p)
    relation = claim.quantity.relation if claim.quantity is not None else None
    measured = [(float(v.teu[0]), float(v.teu[2])) for v in voyages
                if v.origin == claim.origin and v.destination == claim.destination and v.overlaps(claim.window)
                and v.confidence >= p.min_voyage_confidence and v.teu]
    out = {"method": "hmm-forward/v1", "capacity_teu": round(capacity), "capacity_source": capacity_source,
           "decide_bayes_factor": p.decide_bayes_factor,
           "usable_looks": {claim.origin: len(looks_o), claim.destination: len(looks_d)},
           "destination_yard_intervals": len(yard), "destination_yard_rises": sum(y.changed for y in yard),
           "origin_yard_intervals": len(origin_yard), "origin_yard_falls": sum(y.changed for y in origin_yard),
           "usable_looks_in_window": {claim.origin: sum(w0 <= lk.date <= w1 for lk in looks_o),
                                      claim.destination: sum(w0 <= lk.date <= w1 for lk in looks_d)}}
    periods = {"window": (w0, w1)}
    b0 = max(days[0], w0 - dt.timedelta(days=length))
    if (w0 - b0).days >= 7:
        periods["baseline"] = (b0, w0 - dt.timedelta(days=1))
    with threadpool_limits(limits=1, user_api="blas"):
        # The chain's products are many small matrices: BLAS threads cost more than they save,
        # and on a busy machine (other processes, the engine's workers) they slow it ten-fold.
        for name, counted in periods.items():
            out[name] = _period_block(claim, name, counted, looks_o, looks_d, days, om, m, yard if use_yard else (),
                                      origin_yard if use_origin_yard else (), measured, capacity, claimed, relation)
    return out


def _period_block(claim, name, counted, looks_o, looks_d, days, om, m, yard, origin_yard, measured, capacity,
                  claimed, relation) -> dict:
    """The inference block of one period (the window or the baseline)."""
    post = voyage_count_posterior(looks_o, looks_d, days, counted, claim.window, om, m, yard, origin_yard)
    prior = voyage_count_posterior([], [], days, counted, claim.window, om, m)
    pmf, prior_pmf = post["pmf"], prior["pmf"]
    draws = _teu_draws(pmf, measured if name == "window" else [], capacity, np.random.default_rng(20231013))
    prior_draws = _teu_draws(prior_pmf, [], capacity, np.random.default_rng(20231014))
    q = np.quantile(draws, [0.05, 0.5, 0.95])
    met = _claim_met(draws, claimed, relation)
    met_prior = _claim_met(prior_draws, claimed, relation)
    return {
        "days": [counted[0].isoformat(), counted[1].isoformat()],
        "voyages": summarise_count(pmf),
        "teu": {"median": round(float(q[1])), "interval": [round(float(q[0])), round(float(q[2]))]},
        "p_any_voyage": round(float(1 - pmf[0]), 4),
        "p_claim_quantity_met": None if met is None else round(met, 4),
        "prior": {"p_any_voyage": round(float(1 - prior_pmf[0]), 4),
                  "p_claim_quantity_met": None if met_prior is None else round(met_prior, 4)},
        "bayes_factor_any_voyage": round(bayes_factor(1 - pmf[0], 1 - prior_pmf[0], 1e-6), 3),
        "likelihood_ratio_max_vs_none": round(max_likelihood_ratio(pmf, prior_pmf), 3),
        "bayes_factor_claim_quantity": (None if met is None else
                                        round(bayes_factor(met, met_prior, 1.0 / N_DRAWS), 3)),
        "claimed_voyages_min": (None if claimed is None or relation not in ("at_least", "about", "exactly")
                                else max(1, math.ceil(claimed[0] / capacity))),
    }


def max_likelihood_ratio(post: np.ndarray, prior: np.ndarray) -> float:
    """max over k >= 1 of P(data | k voyages) / P(data | none), from the posterior and prior pmfs.

    ``post[k] / prior[k]`` is P(data | k) / P(data) for the model averaged over its grid. "Any
    voyage" is a composite hypothesis whose Bayes factor depends on how the prior spreads over 1, 2,
    ... voyages; to rule it out, the data must rule out even its most favoured member (usually a
    single voyage, the easiest to miss).
    """
    ok = prior > 1e-9
    ratio = np.where(ok, post / np.where(ok, prior, 1.0), 0.0)
    if ratio[0] <= 0:
        return float("inf")
    return float(ratio[1:].max() / ratio[0])


def bayes_factor(posterior: float, prior: float, eps: float) -> float:
    """Posterior odds over prior odds of a hypothesis (Kass & Raftery 1995): what the data alone say.

    Probabilities are kept within ``[eps, 1 - eps]`` (the resolution of the Monte Carlo or of the
    arithmetic), so the factor is finite: it is then a bound, not an estimate.
    """
    post = min(max(float(posterior), eps), 1 - eps)
    pri = min(max(float(prior), eps), 1 - eps)
    return (post / (1 - post)) / (pri / (1 - pri))
