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
#: Probabilities below this (after each day's renormalisation) are set to 0: they change nothing,
#: and as subnormal floats they would slow every product down a hundredfold.
TINY = 1e-30
#: The two ships are exchangeable (same transitions, same start, observed through counts), so the
#: chain runs on unordered pairs of states: 28 instead of 49, exactly (lumpability, Kemeny & Snell
#: 1960, section 6.3). ``_LUMP`` sums an ordered pair's probability into its unordered pair.
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


@dataclass(frozen=True)
class _PairTransitions:
    """The two ships' daily transitions for a set of rates, in the forms the passes use.

    Arrays are single precision (each day is renormalised, so 7 digits are plenty), contiguous,
    with a leading axis over the rate sets, shaped for the chain's layout (see
    :func:`voyage_count_posterior`). Forward matrices are transposed (destination x source).
    """

    forward_all: np.ndarray           # any day
    forward_none: np.ndarray          # a counted day, no counted departure
    forward_departing: dict           # {1, 2 departures: (..., n, len(sources))}
    sources: dict                     # {1, 2: the source states from which that many can depart}
    backward_all: np.ndarray          # any day, for the backward pass (no counter)

    def forward(self, a: np.ndarray, counted: bool) -> np.ndarray:
        """One day of the ships on ``a`` (..., n, false alarms, counter, others); departures raise the counter."""
        shape = a.shape
        flat = a.reshape(shape[:4] + (-1,))
        if not counted:
            return np.matmul(self.forward_all, flat).reshape(shape)
        out = np.matmul(self.forward_none, flat).reshape(shape)
        k = shape[5]
        for inc in (1, 2):
            part = np.matmul(self.forward_departing[inc], flat[:, :, :, self.sources[inc]]).reshape(shape)
            out[..., inc:, :] += part[..., :k - inc, :]
            for j in range(max(k - inc, 0), k):  # the last bin holds "at least max_count"
                out[..., -1, :] += part[..., j, :]
        return out

    def backward(self, b: np.ndarray) -> np.ndarray:
        """beta_t(s) = sum_s' P(s -> s') beta_t+1(s') over the ships' states."""
        return np.matmul(self.backward_all, b.reshape(b.shape[:4] + (-1,))).reshape(b.shape)


def _pair_transitions(ships: list[dict], arrival_bit: int, departure_bit: int, axis: int) -> _PairTransitions:
    """Transitions of the two ships (and the yard flags) for each set of rates in ``ships``.

    The state is one of 28 unordered ship pairs times the flag combinations. A flag bit
    (``arrival_bit``: a ship arrived at the destination, ``departure_bit``: a ship left the origin,
    since that yard was last observed; 0 when not carried) is set by the event and stays set until
    its yard is observed. ``axis`` (1 or 2) is the chain's axis that the rate sets run along.
    """
    n_b, n_s = len(ships), len(_PAIRS)
    n_f = (arrival_bit | departure_bit) + 1
    groups = {(inc, arr): np.zeros((n_b, n_s, n_s)) for inc in (0, 1, 2) for arr in (0, 1)}
    for (d1, a1), (d2, a2) in itertools.product(ships[0], ships[0]):
        x = np.array([p[d1, a1] for p in ships])
        y = np.array([p[d2, a2] for p in ships])
        ordered = np.einsum("bip,bjq->bijpq", x, y).reshape(n_b, N_STATES ** 2, N_STATES ** 2)
        groups[d1 + d2, a1 | a2] += ordered[:, _PAIR_REP] @ _LUMP
    by_inc = np.zeros((3, n_b, n_f, n_s, n_f, n_s))  # (departures, set, flags, from, flags, to)
    for (inc, arr), g in groups.items():
        event = (arrival_bit if arr else 0) | (departure_bit if inc else 0)
        for f in range(n_f):
            by_inc[inc, :, f, :, f | event, :] += g
    by_inc = by_inc.reshape(3, n_b, n_f * n_s, n_f * n_s)
    lead = (1, n_b, 1) if axis == 1 else (1, 1, n_b)

    def shaped(mats: np.ndarray, transpose: bool) -> np.ndarray:
        mats = mats.transpose(0, 2, 1) if transpose else mats
        return np.ascontiguousarray(mats.reshape(lead + mats.shape[1:]), dtype=np.float32)

    sources = {inc: np.flatnonzero(by_inc[inc].any(axis=(0, 2))) for inc in (1, 2)}
    return _PairTransitions(
        forward_all=shaped(by_inc.sum(0), True), forward_none=shaped(by_inc[0], True),
        forward_departing={inc: shaped(by_inc[inc][:, sources[inc], :], True) for inc in (1, 2)},
        sources=sources, backward_all=shaped(by_inc.sum(0), False))


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
    "weights": model-averaging weights of the hyper-parameter grid, shaped (regimes of other
    traffic at the origin x at the destination, ship rates in the ``regime`` window, outside it,
    false-alarm rates)}``.

    The grid runs as leading axes of the chain's state, so that each day is a few large matrix
    products: the state is ``(regime pair, rates inside, rates outside, ship pair x yard flags,
    false-alarm rate, counter, other ships at both ports)``, and a day's ship transition depends
    only on the rates of the part of the period it falls in.
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
    regime = regime or counted
    r0, r1 = (regime[0] - d0).days, (regime[1] - d0).days
    any_looks = bool(origin or destination)
    regimes = m.other_regimes if any_looks else m.other_regimes[:1]  # no looks: no effect
    fa_values = tuple(np.atleast_1d(obs.false_alarms_per_date).astype(float)) if any_looks else (0.0,)
    inside = list(itertools.product(m.start_in_window, m.leave_in_window))
    outside = list(itertools.product(m.start_outside, m.leave_outside))
    n_o = m.max_other + 1
    other = [_other_matrix(m, r) for r in regimes]
    stationary = [np.linalg.matrix_power(t, 200)[0] for t in other]
    pairs = list(itertools.product(range(len(regimes)), repeat=2))  # (origin, destination) regimes
    # other ships at both ports: x = origin count x (max_other + 1) + destination count
    other_t = np.array([np.kron(other[a], other[b]) for a, b in pairs], dtype=np.float32)
    other_back = np.ascontiguousarray(other_t.transpose(0, 2, 1))
    n_r, n_a, n_z, n_fa = len(pairs), len(inside), len(outside), len(fa_values)
    n_x, n_k, n_s = n_o * n_o, m.max_count + 1, len(_PAIRS)

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
    n = n_f * n_s
    ships_in = _pair_transitions([_ship_matrices(m, s, q) for s, q in inside], arrival_bit, departure_bit, 1)
    ships_out = _pair_transitions([_ship_matrices(m, s, q) for s, q in outside], arrival_bit, departure_bit, 2)

    def ships_on(i: int) -> _PairTransitions:
        """The transition into day ``i`` follows the rates of day ``i - 1``."""
        return ships_in if r0 <= i - 1 <= r1 else ships_out

    # ships at each port per unordered pair state, and the total with the other ships
    at_o = np.isin(np.arange(N_STATES), (O1, O2)).astype(int)
    at_d = np.isin(np.arange(N_STATES), (D1, D2)).astype(int)
    pair = np.array(_PAIRS).T
    x_o, x_d = np.divmod(np.arange(n_x), n_o)
    totals = {0: (at_o[pair].sum(0))[:, None] + x_o[None], 1: (at_d[pair].sum(0))[:, None] + x_d[None]}

    def likelihood(i: int) -> np.ndarray | None:
        """P(the day's looks | state), shaped (n, false-alarm rates, 1, n_x), or None when nothing was looked at."""
        out = None
        for side in (0, 1):
            lk = looks[side].get(i)
            if lk is not None:
                f = np.array([detection_likelihood(totals[side], lk.found, lk.p_detect, fa) for fa in fa_values])
                out = f if out is None else out * f
        flag = np.ones(n_f)
        for bit, ends, _, (p_without, p_with) in channels:
            y = ends.get(i)
            if y is not None:
                has = (np.arange(n_f) & bit) > 0
                flag *= np.where(has, p_with, p_without) if y.changed else np.where(has, 1 - p_with, 1 - p_without)
        if out is None:
            if np.all(flag == 1.0):
                return None
            out = np.ones((n_fa, n_s, n_x))
        full = flag[:, None, None, None] * out.transpose(1, 0, 2)[None]  # (flags, pairs, false alarms, others)
        return full.reshape(n, n_fa, 1, n_x).astype(np.float32)

    def reset(a: np.ndarray, i: int, forward: bool) -> None:
        """Yards observed on day ``i``: their flags start again at 0 after today's evidence (in place)."""
        for bit, ends, starts, _ in channels:
            if i not in ends and i not in starts:
                continue
            v = a.view()
            v.shape = a.shape[:3] + (n_f, n_s) + a.shape[4:]  # raises rather than edit a copy
            for f in range(n_f):
                if f & bit:
                    if forward:
                        v[:, :, :, f & ~bit] += v[:, :, :, f]
                        v[:, :, :, f] = 0.0
                    else:
                        v[:, :, :, f] = v[:, :, :, f & ~bit]

    def normalise(a: np.ndarray, z: np.ndarray) -> np.ndarray:
        """Divide each grid point's state by ``z`` (its sum or max); return log z."""
        z = z.astype(np.float64)
        a *= np.where(z > TINY, 1.0 / np.maximum(z, TINY), 0.0).astype(np.float32)[:, :, :, None, :, None, None]
        a[a < TINY] = 0.0  # subnormal floats would slow every product down a hundredfold
        return np.log(np.maximum(z, 1e-300))

    def other_ships(a: np.ndarray, t: np.ndarray) -> np.ndarray:
        return np.matmul(a.reshape(n_r, -1, n_x), t).reshape(a.shape)

    # Forward (Rabiner 1989, scaled) up to the day after the last counted departure. The counter
    # axis carries only the counts reached so far, plus two for the day's departures: a ship's cycle
    # takes days, so most higher counts stay exactly 0 for most of the window. The days after are
    # summed by a backward pass without the counter.
    init_pair = np.multiply.outer(*[np.array([0.5] + [0.5 / 6] * 6)] * 2).reshape(-1) @ _LUMP
    init_other = np.array([np.kron(stationary[a], stationary[b]) for a, b in pairs])
    alpha = np.zeros((n_r, n_a, n_z, n, n_fa, 1, n_x), dtype=np.float32)
    alpha[:, :, :, :n_s, :, 0, :] = init_pair[:, None, None] * init_other[:, None, None, None, None, :]
    last = min(max(c1 + 1, 0), n_days - 1)
    loglik = np.zeros((n_r, n_a, n_z, n_fa))
    for i in range(last + 1):
        if i > 0:
            counted_day = c0 <= i - 1 <= c1
            if counted_day:
                alpha = _fit_counter(alpha, n_k)
            alpha = ships_on(i).forward(other_ships(alpha, other_t), counted_day)
        like = likelihood(i)
        if like is not None:
            alpha *= like
        reset(alpha, i, True)
        loglik += normalise(alpha, _reduce(alpha, np.add))
    alpha = _grow_counter(alpha, n_k)
    beta = np.ones(alpha.shape[:5] + (1, n_x), dtype=np.float32)
    for i in range(n_days - 1, last, -1):
        reset(beta, i, False)
        like = likelihood(i)
        if like is not None:
            beta *= like
        beta = ships_on(i).backward(other_ships(beta, other_back))
        loglik += normalise(beta, _reduce(beta, np.maximum))
    joint = (alpha * beta).sum(axis=(3, 6), dtype=np.float64)  # (grid..., counter)
    z = np.maximum(joint.sum(-1), 1e-300)
    loglik += np.log(z)
    pmfs = joint / z[..., None]
    w = np.exp(loglik - loglik.max())
    w /= w.sum()
    pmf = (w[..., None] * pmfs).reshape(-1, n_k).sum(0)
    return {"pmf": pmf / pmf.sum(), "log_evidence": float(loglik.max() + math.log(np.exp(loglik - loglik.max()).mean())),
            "weights": w}


def _reduce(a: np.ndarray, ufunc) -> np.ndarray:
    """``ufunc`` reduced over the state (axes 3, 5 and 6) for each grid point: contiguous axes first, fast."""
    return ufunc.reduce(ufunc.reduce(a.reshape(a.shape[:5] + (-1,)), axis=-1), axis=3)


def _fit_counter(a: np.ndarray, n_k: int) -> np.ndarray:
    """``a`` with the counter axis (5) cut after its last non-zero bin, then two empty bins (at most ``n_k``)."""
    k = a.shape[5]
    while k > 1 and not a[:, :, :, :, :, k - 1].any():
        k -= 1
    want = min(n_k, k + 2)
    if want < a.shape[5]:
        return np.ascontiguousarray(a[:, :, :, :, :, :want])
    return _grow_counter(a, want)


def _grow_counter(a: np.ndarray, k: int) -> np.ndarray:
    """``a`` with its counter axis (5) padded with empty bins up to ``k``."""
    if a.shape[5] >= k:
        return a
    return np.concatenate([a, np.zeros(a.shape[:5] + (k - a.shape[5],) + a.shape[6:], dtype=a.dtype)], axis=5)


def summarise_count(pmf: np.ndarray, level: float = 0.9) -> dict:
    """Median, central ``level`` interval and probability of at least one, of a count's posterior."""
    cdf = np.cumsum(pmf)
    lo_q, hi_q = (1 - level) / 2, 1 - (1 - level) / 2
    return {"median": int(np.searchsorted(cdf, 0.5 - 1e-12)),
            "interval": [int(np.searchsorted(cdf, lo_q - 1e-12)), int(np.searchsorted(cdf, hi_q - 1e-12))],
            "p_any": round(float(1 - pmf[0]), 4), "pmf": [round(float(x), 4) for x in pmf]}
