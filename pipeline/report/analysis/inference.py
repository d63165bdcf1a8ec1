"""Voyages in a window as inference: a hidden Markov model of the shuttle over both ports.

What the images show is berth occupancy on the usable dates of each port: a
large vessel at a berth, or none. What the claim is about is voyages from the
origin to the destination in a window. The two are linked by a hidden Markov
model (HMM; Rabiner 1989) of the ships, day by day:

* up to ``max_ships`` shuttle ships, each in one of seven states: out of
  service (``X``), at the origin berth (two phases ``O1``, ``O2``), at sea to
  the destination (``S_OD``), at the destination berth (``D1``, ``D2``), at sea
  back (``S_DO``). Two phases make a call last at least two days with mean
  ``call_days`` (an Erlang duration instead of the memoryless one-state call);
  a ship at sea arrives after one day with probability ``transit_next_day`` and
  afterwards with ``transit_hazard`` a day (the transit bound: Rajin-Dunai is
  about 200 km, under a day at 10 kn, plus waiting at anchor);
* other large ships at each berth zone (0-2, arriving and leaving at random):
  traffic that is not the shuttle, so a busy origin is not mistaken for it;
* a counter of the shuttle's departures from the origin towards the
  destination on the counted days (the window, or the baseline before it).

Observation model (per usable AOI-date, imperfect detection as in occupancy
models, MacKenzie et al. 2002): each large vessel at berth is detected with
probability ``p_detect[sensor] x clear fraction of that sensor`` (clouds placed
at random hide the berth in proportion; two sensors on one date combine as
independent looks), and false alarms are Poisson with mean
``false_alarms_per_date``. Dates that are not usable carry no information;
nothing unobserved is counted as empty.

The yards add evidence that lasts longer than a call: between consecutive
well-observed Sentinel-2 dates the destination yard's stack area rises (cargo
unloaded) more often when a ship arrived than when none did, and the origin
yard's falls (cargo loaded) more often when a ship left. The chain carries one
flag per yard, "such an event since the yard was last observed", set by the
event and cleared when the yard is observed, so these interval observations
are exact too.

The forward algorithm sums exactly over all hidden paths; its value at the end
is the joint probability of the data and each voyage count, so the posterior
of the number of voyages is exact under the model. The transition
probabilities that nothing observes well (how often a shuttle starts or stops)
are averaged over a small grid by their marginal likelihood (Bayesian model
averaging, Kass & Raftery 1995, section 6), so the prior on the number of
voyages is broad rather than fixed by one guess.

All numbers here come from :class:`ShuttleModel` and :class:`ObservationModel`
(defaults documented there, with their sources in :data:`PROVENANCE`).
"""

from __future__ import annotations

import datetime as dt
import itertools
import math
from dataclasses import dataclass, field
from typing import Sequence

import numpy as np
from scipy import stats

from ...core.contracts import S1, S2

#: Ship states, in the order of the transition matrices.
X, O1, O2, S_OD, D1, D2, S_DO = range(7)
N_STATES = 7
#: The two ships are exchangeable (same transitions, same start, observed through counts), so the
#: chain runs on unordered pairs of states: 28 instead of 49, exactly (lumpability, Kemeny & Snell
#: 1960, section 6.3). ``_LUMP`` sums an ordered pair's probability into its unordered pair.
#: Probabilities below this (after each day's renormalisation) are set to 0: they change nothing,
#: and as subnormal floats they would slow every product down a hundredfold.
TINY = 1e-30
_PAIRS = [(a, b) for a in range(N_STATES) for b in range(a, N_STATES)]
_PAIR_REP = np.array([a * N_STATES + b for a, b in _PAIRS])
_LUMP = np.zeros((N_STATES ** 2, len(_PAIRS)))
for _u, (_a, _b) in enumerate(_PAIRS):
    _LUMP[_a * N_STATES + _b, _u] = _LUMP[_b * N_STATES + _a, _u] = 1.0


@dataclass(frozen=True)
class ObservationModel:
    """How a berthed large vessel shows in one usable image.

    Attributes
    ----------
    p_detect : dict
        Probability that a large vessel at berth is detected in a fully clear
        image, per sensor. Sentinel-2 0.75 and Sentinel-1 0.8: see
        :data:`PROVENANCE` for the measurements.
    false_alarms_per_date : float or tuple of float
        Mean number of false large vessels at berth per usable AOI-date; a
        tuple is averaged over (by marginal likelihood, like the hidden
        process's rates): a quiet detector or a port whose quays and moored
        craft keep producing vessel-sized false alarms.
    yard_rise_given_arrival, yard_rise_without_arrival : float
        Probability that the destination's stack area is found to rise
        between two well-observed dates when a ship arrived between them, and
        when none did (see :data:`PROVENANCE`).
    yard_fall_given_departure, yard_fall_without_departure : float
        The same for a fall of the origin's stack area and a ship leaving it.
    """

    p_detect: dict = field(default_factory=lambda: {S2: 0.75, S1: 0.8})
    false_alarms_per_date: tuple = (0.05, 0.4)
    yard_rise_given_arrival: float = 0.4
    yard_rise_without_arrival: float = 0.05
    yard_fall_given_departure: float = 0.4
    yard_fall_without_departure: float = 0.05


@dataclass(frozen=True)
class ShuttleModel:
    """Priors of the hidden process (days, probabilities per day)."""

    #: Shuttle ships followed (fixed: the joint chain is written for two).
    max_ships: int = 2
    call_days: float = 3.0
    transit_next_day: float = 0.6
    transit_hazard: float = 0.5
    #: Rates at which a ship joins the shuttle, per ship-day, inside the claim's window and outside it:
    #: averaged over independently (the claim is precisely that the window differs from the rest).
    start_in_window: tuple = (1 / 200, 1 / 30, 1 / 8)
    start_outside: tuple = (1 / 200, 1 / 30)
    #: Probabilities that a ship leaves the shuttle after a call, inside the window and outside it,
    #: averaged over independently: a shuttle may run on for months or stop when the window ends.
    leave_in_window: tuple = (0.1, 0.5)
    leave_outside: tuple = (0.1, 0.9)
    #: Regimes of other large ships per berth zone, averaged over per port: (arrivals per day, mean
    #: stay in days): long-staying residents (lay-up, repair, a naval ship) or a busy berth of short calls.
    other_regimes: tuple = ((0.01, 30.0), (0.1, 4.0))
    max_other: int = 2
    max_count: int = 14


PROVENANCE = {
    "p_detect": (
        "Sentinel-2 0.75, Sentinel-1 0.8 (a large vessel at berth found as one, >= 80 m, on a usable date): measured "
        "against the simulated truth of calibration seeds 1000-1019 and the demo (S2 14 of 17 on clear dates, S1 27 "
        "of 31). Ships of 90-110 m are often measured under 80 m, and Sentinel-1 misses some hulls alongside a quay. "
        "OpenSARShip (make validate) gives CFAR recall 0.96 on ships at sea, an upper bound."),
    "false_alarms_per_date": (
        "averaged over 0.05 and 0.4: false large vessels at berth per usable AOI-date were 0.1 on calibration "
        "seeds 1000-1019 (Sentinel-1 0.14, Sentinel-2 0.07; none on the demo) but about 0.5 at both ports of seed "
        "1016, where 80-110 m false hulls appeared on most dates; one fixed rate read those as a shuttle."),
    "yard_rise": (
        "0.4 with an arrival, 0.05 without: the destination yard rose in 10 of 18 intervals between well-observed "
        "Sentinel-2 dates with a shuttle arrival and in 1 of 146 without (calibration seeds 1000-1019); rounded "
        "towards less informative because clearance by rail can cancel an unloading within one revisit and on the "
        "demo the yard rose in 1 of 3 intervals without an arrival."),
    "yard_fall": (
        "0.4 with a departure, 0.05 without: the origin yard fell in 7 of 16 intervals with a shuttle departure "
        "and in 5 of 145 without (same seeds), rounded likewise."),
    "call_days": "3: the scenario facts give 2-5 days per call (Angara at Rajin 3-8 Sep, 22-26 Sep).",
    "transit": "next day with 0.6, then 0.5 a day: ~200 km Rajin-Dunai is under a day at 10 kn; waits at anchor.",
}


def _ship_matrices(m: ShuttleModel, start: float, leave: float) -> dict[tuple[int, int], np.ndarray]:
    """Daily transitions of one ship, split by (departs origin->destination, arrives at the destination)."""
    h = min(1.0, 2.0 / m.call_days)  # per-phase hazard of a two-phase call with mean call_days
    a0, s = m.transit_next_day, m.transit_hazard
    t = {k: np.zeros((N_STATES, N_STATES)) for k in ((0, 0), (1, 0), (0, 1), (1, 1))}
    t[0, 0][X, X] = 1 - start
    # ships join the shuttle at the origin; a ship first seen at the destination came from it or is other traffic
    t[0, 0][X, O1] = start
    for b1, b2, sea, far1, outbound in ((O1, O2, S_OD, D1, True), (D1, D2, S_DO, O1, False)):
        t[0, 0][b1, b1], t[0, 0][b1, b2] = 1 - h, h
        t[0, 0][b2, b2] = 1 - h
        t[0, 0][b2, X] = h * leave
        t[(1, 1) if outbound else (0, 0)][b2, far1] += h * (1 - leave) * a0
        t[(1, 0) if outbound else (0, 0)][b2, sea] += h * (1 - leave) * (1 - a0)
        t[0, 0][sea, sea] = 1 - s
        t[(0, 1) if outbound else (0, 0)][sea, far1] = s
    return t


def _pair_matrices(parts: list[dict], arrival_bit: int, departure_bit: int) -> dict:
    """Transitions of the two ships (and the yard flags), by counter increment, batched over ``parts``.

    Returns ``{0, 1, 2: (batch, n, n) for a counted day; "all": for any other day}`` where ``n`` is
    28 unordered ship pairs times the number of flag combinations. A flag bit (``arrival_bit``: a ship arrived
    at the destination, ``departure_bit``: a ship left the origin, since that yard was last observed;
    0 when not carried) is set by the event and stays set until its yard is observed.
    """
    n_b, n_s = len(parts), len(_PAIRS)
    n_f = (arrival_bit | departure_bit) + 1
    groups = {(inc, arr): np.zeros((n_b, n_s, n_s)) for inc in (0, 1, 2) for arr in (0, 1)}
    for (d1, a1), (d2, a2) in itertools.product(parts[0], parts[0]):
        x = np.array([p[d1, a1] for p in parts])
        y = np.array([p[d2, a2] for p in parts])
        ordered = np.einsum("bip,bjq->bijpq", x, y).reshape(n_b, N_STATES ** 2, N_STATES ** 2)
        groups[d1 + d2, a1 | a2] += ordered[:, _PAIR_REP] @ _LUMP
    out = {}
    for inc in (0, 1, 2):
        if n_f == 1:
            out[inc] = groups[inc, 0] + groups[inc, 1]
            continue
        mat = np.zeros((n_b, n_f, n_s, n_f, n_s))
        for arr in (0, 1):
            event = (arrival_bit if arr else 0) | (departure_bit if inc else 0)
            for f in range(n_f):
                mat[:, f, :, f | event, :] += groups[inc, arr]
        out[inc] = mat.reshape(n_b, n_f * n_s, n_f * n_s)
    out["all"] = out[0] + out[1] + out[2]
    # Stored for the passes' batched products in single precision (each day is renormalised, so
    # 7 digits are plenty) and contiguous in the order they are used: transposed for the forward
    # pass ("back": as is, for the backward pass). A transposed view would take BLAS's slow path.
    back = out["all"].astype(np.float32)
    out = {k: np.ascontiguousarray(v.transpose(0, 2, 1), dtype=np.float32) for k, v in out.items()}
    out["back"] = back
    return out


def _other_matrix(m: ShuttleModel, regime: tuple[float, float]) -> np.ndarray:
    """Daily transitions of the count of other large ships at one berth zone (0..max_other)."""
    n = m.max_other + 1
    rate, stay = regime
    q = 1.0 / stay
    t = np.zeros((n, n))
    for k in range(n):
        leave = stats.binom.pmf(np.arange(k + 1), k, q)  # how many of the k leave today
        arrive = rate if k < m.max_other else 0.0
        for j, pj in enumerate(leave):
            t[k, k - j] += pj * (1 - arrive)
            t[k, min(k - j + 1, m.max_other)] += pj * arrive
    return t


def detection_likelihood(counts: np.ndarray, observed: int, p: float, fa: float) -> np.ndarray:
    """P(``observed`` detections | true count) for each true count in ``counts`` (binomial + Poisson)."""
    counts = np.asarray(counts)
    out = np.zeros(counts.shape, dtype=float)
    for j in range(observed + 1):
        out += stats.binom.pmf(j, counts, p) * stats.poisson.pmf(observed - j, fa)
    return out


@dataclass(frozen=True)
class YardLook:
    """A yard between two well-observed dates: did its stack area change the way cargo moves it?

    At the destination ``changed`` is a rise (cargo unloaded), at the origin a fall (cargo loaded).
    """

    start: dt.date
    end: dt.date
    changed: bool


@dataclass(frozen=True)
class PortLook:
    """One usable look at a port: date, detection probability of a berthed large vessel, count found."""

    date: dt.date
    p_detect: float
    found: int


def voyage_count_posterior(origin: Sequence[PortLook], destination: Sequence[PortLook],
                           days: tuple[dt.date, dt.date], counted: tuple[dt.date, dt.date],
                           regime: tuple[dt.date, dt.date] | None = None,
                           obs: ObservationModel = ObservationModel(),
                           m: ShuttleModel = ShuttleModel(),
                           yard: Sequence[YardLook] = (), origin_yard: Sequence[YardLook] = ()) -> dict:
    """Posterior of the number of origin->destination departures on the ``counted`` days.

    ``yard`` holds the destination yard's evidence, one :class:`YardLook` per interval between
    well-observed Sentinel-2 dates: whether the stack area rose there (cargo unloaded), which is
    more likely when a ship arrived in the interval (``ObservationModel.yard_rise_given_arrival``)
    than otherwise (``yard_rise_without_arrival``). ``origin_yard`` holds the origin yard's: whether
    its stack area fell (cargo loaded), more likely when a ship left in the interval
    (``yard_fall_given_departure``, ``yard_fall_without_departure``). A ship's departure is the
    transition into the day after its last day at berth, the day the cargo left the yard, so the
    origin's intervals are shifted by one day onto the chain.

    Returns ``{"pmf": array over 0..max_count (the last bin is "at least"), "log_evidence": float,
    "weights": model-averaging weights of the hyper-parameter grid}``.
    """
    d0, d1 = days
    n_days = (d1 - d0).days + 1
    looks = {0: {}, 1: {}}
    for side, lst in ((0, origin), (1, destination)):
        for lk in lst:
            i = (lk.date - d0).days
            if 0 <= i < n_days:
                looks[side][i] = lk
    c0, c1 = (counted[0] - d0).days, (counted[1] - d0).days
    n_o = m.max_other + 1
    # ships at each port in the joint ship state (7 x 7 for two ships, 7 for one)
    at_o = np.array([1 if s in (O1, O2) else 0 for s in range(N_STATES)])
    at_d = np.array([1 if s in (D1, D2) else 0 for s in range(N_STATES)])
    ships = 2  # the joint chain below is written for two ships
    shape = (N_STATES,) * ships
    grid = np.indices(shape).reshape(ships, -1)
    ships_o = at_o[grid].sum(0)[_PAIR_REP]
    ships_d = at_d[grid].sum(0)[_PAIR_REP]
    others = np.arange(n_o)
    regime = regime or counted
    r0, r1 = (regime[0] - d0).days, (regime[1] - d0).days
    regimes = m.other_regimes if (origin or destination) else m.other_regimes[:1]  # no looks: no effect
    fa_values = tuple(np.atleast_1d(obs.false_alarms_per_date).astype(float)) if (origin or destination) else (0.0,)
    combos = list(itertools.product(m.start_in_window, m.start_outside, m.leave_in_window, m.leave_outside, regimes,
                                    regimes, range(len(fa_values))))
    fa_index = np.array([c[6] for c in combos])
    # all hyper-parameter combinations run at once on a leading batch axis
    other_o = np.array([_other_matrix(m, c[4]) for c in combos])
    other_d = np.array([_other_matrix(m, c[5]) for c in combos])
    init1 = np.array([0.5] + [0.5 / 6] * 6)
    stat_o = np.array([np.linalg.matrix_power(t, 200)[0] for t in other_o])
    stat_d = np.array([np.linalg.matrix_power(t, 200)[0] for t in other_d])
    n_b, n_k = len(combos), m.max_count + 1
    # Yard channels: (flag bit, {chain day: look ending there}, {chain days where an interval starts},
    # (P(change | no event), P(change | event))); the origin's days are shifted by one (see above).
    channels, bits = [], []
    for lst, shift, probs in ((yard, 0, (obs.yard_rise_without_arrival, obs.yard_rise_given_arrival)),
                              (origin_yard, 1, (obs.yard_fall_without_departure, obs.yard_fall_given_departure))):
        ends = {(y.end - d0).days + shift: y for y in lst if 0 <= (y.end - d0).days + shift < n_days}
        bits.append(1 << len(channels) if ends else 0)
        if ends:
            channels.append((bits[-1], ends, {(y.start - d0).days + shift for y in lst}, probs))
    arrival_bit, departure_bit = bits
    n_f = (arrival_bit | departure_bit) + 1
    ship_ts = [_pair_matrices([_ship_matrices(m, c[which], c[2 + which]) for c in combos], arrival_bit,
                                  departure_bit)
               for which in (0, 1)]  # inside the regime window, outside it

    def ship_t_on(i: int) -> dict:
        return ship_ts[0] if r0 <= i - 1 <= r1 else ship_ts[1]
    other_t = np.einsum("bxu,byv->bxyuv", other_o, other_d).reshape(n_b, n_o * n_o, n_o * n_o)
    n_s = len(_PAIRS)
    alpha = np.zeros((n_b, n_f * n_s, n_o * n_o, n_k))
    alpha[:, :n_s, :, 0] = ((np.multiply.outer(init1, init1).reshape(-1) @ _LUMP)[None, :, None]
                            * (stat_o[:, :, None] * stat_d[:, None, :]).reshape(n_b, 1, -1))
    grid_o, grid_d = np.meshgrid(others, others, indexing="ij")  # (origin, destination) other counts
    totals = {0: ships_o.reshape(-1)[:, None, None] + grid_o[None], 1: ships_d.reshape(-1)[:, None, None] + grid_d[None]}

    def likelihood(i: int) -> np.ndarray | None:
        """P(the day's looks | state), shaped (batch, n_f x 28, 9, 1), or None when nothing was looked at."""
        out = _looks_likelihood(i)
        return None if out is None else out[fa_index]

    def _looks_likelihood(i: int) -> np.ndarray | None:
        """Per false-alarm rate: (n_fa, n_f x 28, 9 or 1, 1)."""
        out = None
        for side in (0, 1):
            lk = looks[side].get(i)
            if lk is not None:
                f = np.array([detection_likelihood(totals[side], lk.found, lk.p_detect, fa).reshape(n_s, -1, 1)
                              for fa in fa_values])
                out = f if out is None else out * f
        flag = np.ones(n_f)
        for bit, ends, _, (p_without, p_with) in channels:
            y = ends.get(i)
            if y is not None:
                has = (np.arange(n_f) & bit) > 0
                flag *= np.where(has, p_with, p_without) if y.changed else np.where(has, 1 - p_with, 1 - p_without)
        if n_f == 1:
            return out
        if out is None:
            if np.all(flag == 1.0):
                return None
            out = np.ones((len(fa_values), n_s, 1, 1))
        out = flag[None, :, None, None, None] * out[:, None]
        return out.reshape(len(fa_values), n_f * n_s, out.shape[3], 1)

    def reset(a: np.ndarray, i: int, forward: bool) -> np.ndarray:
        """Yards observed on day ``i``: their flags start again at 0 after today's evidence."""
        for bit, ends, starts, _ in channels:
            if i not in ends and i not in starts:
                continue
            a = a.reshape(a.shape[0], n_f, n_s, *a.shape[2:]).copy()
            for f in range(n_f):
                if f & bit:
                    if forward:
                        a[:, f & ~bit] += a[:, f]
                        a[:, f] = 0
                    else:
                        a[:, f] = a[:, f & ~bit]
            a = a.reshape(a.shape[0], n_f * n_s, *a.shape[3:])
        return a

    # Forward (Rabiner 1989, scaled) up to the day after the last counted departure; the counter axis
    # is a single bin before the counted days. The days after are summed by a backward pass without it.
    last = min(max(c1 + 1, 0), n_days - 1)
    alpha = alpha[..., :1]
    loglik = np.zeros(n_b)
    for i in range(last + 1):
        if i > 0:
            if c0 <= i - 1 <= c1 and alpha.shape[-1] < n_k:
                alpha = np.concatenate([alpha, np.zeros(alpha.shape[:-1] + (n_k - alpha.shape[-1],))], -1)
            alpha = _step(alpha, ship_t_on(i), other_t, c0 <= i - 1 <= c1)
        like = likelihood(i)
        if like is not None:
            alpha = alpha * like
        if channels:
            alpha = reset(alpha, i, True)
        z = np.maximum(alpha.reshape(n_b, -1).sum(1), 1e-300)
        alpha /= z[:, None, None, None]
        alpha[alpha < TINY] = 0.0
        loglik += np.log(z)
    if alpha.shape[-1] < n_k:
        alpha = np.concatenate([alpha, np.zeros(alpha.shape[:-1] + (n_k - alpha.shape[-1],))], -1)
    beta = np.ones(alpha.shape[:-1] + (1,))
    for i in range(n_days - 1, last, -1):
        if channels:
            beta = reset(beta, i, False)
        like = likelihood(i)
        if like is not None:
            beta = beta * like
        beta = _step_back(beta, ship_t_on(i), other_t)
        z = np.maximum(beta.reshape(n_b, -1).max(1), 1e-300)
        beta /= z[:, None, None, None]
        beta[beta < TINY] = 0.0
        loglik += np.log(z)
    joint = (alpha * beta).reshape(n_b, -1, n_k).sum(1)
    z = np.maximum(joint.sum(1), 1e-300)
    loglik += np.log(z)
    alpha = joint / z[:, None]
    pmfs = alpha
    w = np.exp(loglik - loglik.max())
    w /= w.sum()
    pmf = (w[:, None] * pmfs).sum(0)
    return {"pmf": pmf / pmf.sum(), "log_evidence": float(loglik.max() + math.log(np.exp(loglik - loglik.max()).mean())),
            "weights": w}


def _step_back(beta: np.ndarray, ship_t: dict, other_t: np.ndarray) -> np.ndarray:
    """One day of the backward pass (no counter): beta_t(s) = sum_s' P(s -> s') beta_t+1(s')."""
    b = np.matmul(other_t, beta[..., 0].transpose(0, 2, 1)).transpose(0, 2, 1)  # (batch, pairs, 9)
    return np.matmul(ship_t["back"], b.astype(np.float32))[..., None].astype(np.float64)


def _shift(a: np.ndarray, inc: int) -> np.ndarray:
    """Raise the counter (last axis) by ``inc``; the last bin holds "at least max_count"."""
    out = np.zeros_like(a)
    out[..., inc:] = a[..., :-inc]
    out[..., -1] += a[..., -inc:].sum(-1)
    return out


def _step(alpha: np.ndarray, ship_t: dict, other_t: np.ndarray, counted: bool) -> np.ndarray:
    """One day of the joint chain, shaped (batch, 28 unordered ship pairs (times yard flags), 9 other counts, counter).

    ``ship_t`` maps a counter increment (0, 1, 2) to the transposed (batch, n, n) transitions of the pair of
    ships making that many counted departures; ``other_t`` is (batch, 9, 9). Departures from the
    origin on a counted day (the day before) raise the counter.
    """
    n_b, n_s, n_x, n_k = alpha.shape
    a = np.matmul(alpha.transpose(0, 1, 3, 2), other_t[:, None]).transpose(0, 1, 3, 2)
    flat = a.reshape(n_b, n_s, n_x * n_k).astype(np.float32)
    if not counted:
        return np.matmul(ship_t["all"], flat).reshape(alpha.shape).astype(np.float64)
    out = np.matmul(ship_t[0], flat).reshape(alpha.shape).astype(np.float64)
    for inc in (1, 2):
        out += _shift(np.matmul(ship_t[inc], flat).reshape(alpha.shape), inc)
    return out


def summarise_count(pmf: np.ndarray, level: float = 0.9) -> dict:
    """Median, central ``level`` interval and probability of at least one, of a count's posterior."""
    cdf = np.cumsum(pmf)
    lo_q, hi_q = (1 - level) / 2, 1 - (1 - level) / 2
    return {"median": int(np.searchsorted(cdf, 0.5 - 1e-12)),
            "interval": [int(np.searchsorted(cdf, lo_q - 1e-12)), int(np.searchsorted(cdf, hi_q - 1e-12))],
            "p_any": round(float(1 - pmf[0]), 4), "pmf": [round(float(x), 4) for x in pmf]}
