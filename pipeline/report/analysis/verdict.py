"""The comparison with the claim: activity rates, claimed quantity and the verdicts."""

from __future__ import annotations

import datetime as dt
import math
from dataclasses import dataclass, field
from typing import Sequence

from scipy import stats

from .observations import Observation, by_aoi, call_detection_probability, in_window
from .params import CONSISTENT, INCONSISTENT, INSUFFICIENT, AnalysisParams
from .voyages import Voyage


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
    inference: dict = field(default_factory=dict)

    def to_dict(self) -> dict:
        return {"activity": self.activity, "quantity": self.quantity, "reasons": list(self.reasons)}


def _fmt_days(window) -> str:
    return f"{window[0].isoformat()} to {window[1].isoformat()}"


def decided(posterior: float, bayes_factor: float, min_factor: float) -> int:
    """+1 when the data favour the hypothesis (Bayes factor >= ``min_factor``, posterior > 0.5), -1 when
    they favour its negation as strongly (factor <= 1 / ``min_factor``, posterior < 0.5), else 0."""
    if bayes_factor >= min_factor and posterior > 0.5:
        return 1
    if bayes_factor <= 1.0 / min_factor and posterior < 0.5:
        return -1
    return 0


def activity_call(p_any: float, bayes_factor_any: float, likelihood_ratio_max: float, min_factor: float) -> int:
    """+1 (consistent), -1 (inconsistent) or 0 for the activity claim, from the window's numbers.

    Consistent when "at least one voyage" is favoured by ``min_factor``; inconsistent only when none
    is favoured by that factor over every number of voyages, even one (``likelihood_ratio_max``).
    """
    if decided(p_any, bayes_factor_any, min_factor) == 1:
        return 1
    return -1 if decided(p_any, likelihood_ratio_max, min_factor) == -1 else 0


def _fmt_bf(bf: float) -> str:
    return f"{bf:.3g}" if 1e-3 <= bf <= 1e3 else ("above 1000" if bf > 1e3 else "below 1/1000")


def verdict(claim, observations: Sequence[Observation], voyages: Sequence[Voyage],
            teu_window: dict, p: AnalysisParams, inference: dict | None = None) -> Verdict:
    """Activity and quantity verdicts from the posterior of :mod:`.shuttle`, with their reasons.

    Activity: *consistent* when the images favour at least one
    origin->destination voyage departing in the window over none by a Bayes
    factor of at least ``decide_bayes_factor`` (and its posterior probability
    exceeds 0.5); *inconsistent* when they favour none over every number of
    voyages, even a single one, by that factor
    (``likelihood_ratio_max_vs_none``); else *insufficient_data*.

    Quantity: *consistent* / *inconsistent* when the Bayes factor of "the TEU
    moved in the window meets the claimed quantity" reaches the factor or its
    inverse (:func:`claimed_teu`; "at least N containers"
    needs at least N TEU).

    The tracked voyages (``voyages``, ``teu_window``) are named in the
    reasons: they are the observations the posterior rests on.
    """
    from .shuttle import infer_shuttle

    window = claim.window
    o, d = claim.origin, claim.destination
    groups = by_aoi(observations)
    usable_dates = {aoi: [x.date for x in obs if x.usable(p)] for aoi, obs in groups.items()}
    prob = {aoi: call_detection_probability(usable_dates.get(aoi, []), window, p.call_days) for aoi in (o, d)}
    claimed = claimed_teu(claim, p)
    inf = inference if inference is not None else infer_shuttle(claim, observations, voyages, claimed, p)
    win = inf["window"]
    bf_min = p.decide_bayes_factor
    n_in = inf["usable_looks_in_window"]
    counted = [v for v in voyages if v.origin == o and v.destination == d and v.overlaps(window)
               and v.confidence >= p.min_voyage_confidence]
    reasons: list[str] = []
    for aoi in (o, d):
        if aoi not in groups:
            reasons.append(f"There are no detections at all for {aoi}.")
    vy = win["voyages"]
    p_any = win["p_any_voyage"]
    bf_any = win["bayes_factor_any_voyage"]
    numbers = (f"{o}->{d} voyages departing {_fmt_days(window)}: median {vy['median']}, 90 % interval "
               f"{vy['interval'][0]}-{vy['interval'][1]}; probability of at least one {p_any:.2f} "
               f"(from {n_in[o]} usable images of {o} and {n_in[d]} of {d} in the window, and all others "
               f"before and after, through the hidden Markov model of berth occupancy and yard changes: "
               f"{inf.get('origin_yard_falls', 0)} of {inf.get('origin_yard_intervals', 0)} gaps between clear "
               f"images with the origin yard falling, {inf.get('destination_yard_rises', 0)} of "
               f"{inf.get('destination_yard_intervals', 0)} with the destination yard rising; prior "
               f"{win['prior']['p_any_voyage']:.2f}, Bayes factor {_fmt_bf(bf_any)})")
    call = activity_call(p_any, bf_any, win["likelihood_ratio_max_vs_none"], bf_min)
    if call == 1:
        activity = CONSISTENT
        reasons.append(f"The images show {o}->{d} shipping in the window: {numbers}.")
    elif call == -1:
        activity = INCONSISTENT
        reasons.append(f"The images rule out {o}->{d} shipping in the window: {numbers}; even a single voyage is "
                       f"{1 / max(win['likelihood_ratio_max_vs_none'], 1e-9):.3g} times less likely to give these "
                       f"images than none.")
    else:
        activity = INSUFFICIENT
        reasons.append(f"The images cannot tell whether {o}->{d} shipping happened in the window: {numbers}; "
                       f"a decision needs a Bayes factor of {bf_min:g} either way.")
    if counted:
        reasons.append(f"{len(counted)} voyage(s) tracked ship by ship in the window: " + "; ".join(
            f"a {v.vessel_length_m:.0f} m vessel departed {o} between {v.depart[0]} and {v.depart[1]} and arrived "
            f"at {d} between {v.arrive[0]} and {v.arrive[1]} (confidence {v.confidence:.2f})" for v in counted) + ".")
    if "baseline" in inf:
        b = inf["baseline"]
        reasons.append(f"Baseline {b['days'][0]} to {b['days'][1]} (same length, before the window): median "
                       f"{b['voyages']['median']} voyages (90 % interval {b['voyages']['interval'][0]}-"
                       f"{b['voyages']['interval'][1]}), probability of any {b['p_any_voyage']:.2f}.")

    q = claim.quantity
    if claimed is None:
        quantity = INSUFFICIENT
        reasons.append("The claim states no quantity.")
    else:
        c_lo, c_hi = claimed
        claim_txt = (f"{q.relation.replace('_', ' ')} {q.value:g} {q.unit}"
                     + (f" = {c_lo:g}{'' if math.isinf(c_hi) else f'-{c_hi:g}'}{'+' if math.isinf(c_hi) else ''} TEU "
                        f"at {p.teu_per_container[0]:g}-{p.teu_per_container[1]:g} TEU per container"
                        if q.unit == "containers" else ""))
        met = win["p_claim_quantity_met"]
        bf_q = win["bayes_factor_claim_quantity"]
        teu = win["teu"]
        nums = (f"TEU moved in the window median {teu['median']}, 90 % interval {teu['interval'][0]}-"
                f"{teu['interval'][1]} (voyages x cargo: measured yard changes where a tracked voyage has them, "
                f"otherwise 0 to the capacity of {inf['capacity_teu']} TEU, {inf['capacity_source']}); "
                f"probability that the claimed {claim_txt} was met: {met:.2f} (prior "
                f"{win['prior']['p_claim_quantity_met']:.2f}, Bayes factor {_fmt_bf(bf_q)})")
        if win.get("claimed_voyages_min"):
            nums += f"; the claim needs at least {win['claimed_voyages_min']} full voyage(s)"
        if decided(met, bf_q, bf_min) == 1:
            quantity = CONSISTENT
            reasons.append(f"The observations support the claimed quantity: {nums}.")
        elif decided(met, bf_q, bf_min) == -1:
            quantity = INCONSISTENT
            reasons.append(f"The observations rule out the claimed quantity: {nums}.")
        else:
            quantity = INSUFFICIENT
            reasons.append(f"Cannot tell whether the claimed quantity was moved: {nums}.")
    reasons.append("Imagery shows ships, berths and container stacks; it cannot show what the containers hold.")
    p_voyage = prob[o] * prob[d]
    return Verdict(activity, quantity, reasons, {**prob, "voyage": p_voyage}, inf)
