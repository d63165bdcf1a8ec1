"""The comparison with the claim: activity rates, claimed quantity and the verdicts."""

from __future__ import annotations

import datetime as dt
import math
from dataclasses import dataclass
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
