"""Step changes in a time series of container-stack area.

A terminal's stack area is a piecewise-constant signal (a consignment arrives
or leaves) plus detection noise and partial cloud. Only well-observed dates
are used; a median filter of width 3 removes isolated outliers (a partly
cloudy date that slipped through), then circular binary segmentation (Olshen et al. 2004, extending the
binary segmentation of Scott & Knott 1974; see Truong, Oudre & Vayatis 2020
for a review) splits the series where a step or a pulse differs most in mean, as long as that difference is
significant against a noise level estimated robustly from the median absolute
first difference (Hampel 1974; the MAD of first differences equals
sqrt(2) * sigma for white noise and is hardly affected by a few steps).
"""

from __future__ import annotations

import datetime as _dt

import numpy as np

from .stacks import estimate_teu

#: MAD -> standard deviation of a normal distribution.
_MAD_TO_SIGMA = 1.4826


def _as_datetime64(dates) -> np.ndarray:
    out = []
    for d in dates:
        if isinstance(d, np.datetime64):
            out.append(d.astype("datetime64[s]"))
        elif isinstance(d, (_dt.datetime, _dt.date)):
            out.append(np.datetime64(d, "s") if isinstance(d, _dt.datetime) else np.datetime64(d).astype("datetime64[s]"))
        else:
            out.append(np.datetime64(d, "s"))
    return np.asarray(out, dtype="datetime64[s]")


def _median3(x: np.ndarray) -> np.ndarray:
    if x.size < 3:
        return x.copy()
    padded = np.concatenate([x[:1], x, x[-1:]])
    windows = np.stack([padded[:-2], padded[1:-1], padded[2:]])
    return np.median(windows, axis=0)


def _noise_sigma(x: np.ndarray) -> float:
    if x.size < 3:
        return 0.0
    d = np.diff(x)
    return float(_MAD_TO_SIGMA * np.median(np.abs(d - np.median(d))) / np.sqrt(2.0))


def _segment(x: np.ndarray, lo: int, hi: int, sigma: float, z: float, min_step: float, min_size: int, out: list) -> None:
    """Circular binary segmentation of x[lo:hi]; appends split indices (first index of each new part).

    Each pass looks for the arc [i, j) whose mean differs most from the rest of
    the segment (a single step is the arc that touches an end), so a short
    pulse (a yard filled, then emptied a few days later) is not diluted over a
    long flat series as it is in plain binary segmentation.
    """
    n = hi - lo
    if n < 2 * min_size:
        return
    seg = x[lo:hi]
    csum = np.concatenate([[0.0], np.cumsum(seg)])
    i, j = np.meshgrid(np.arange(n + 1), np.arange(n + 1), indexing="ij")
    inside = j - i
    valid = (inside >= min_size) & (n - inside >= min_size)
    valid &= (i == 0) | (i >= min_size)
    valid &= (j == n) | (n - j >= min_size)
    if not valid.any():
        return
    sum_in = csum[j] - csum[i]
    with np.errstate(invalid="ignore", divide="ignore"):
        diff = sum_in / inside - (csum[-1] - sum_in) / (n - inside)
        stat = np.abs(diff) * np.sqrt(inside * (n - inside) / n)
    stat = np.where(valid, stat, -np.inf)
    best_i, best_j = np.unravel_index(int(np.argmax(stat)), stat.shape)
    if stat[best_i, best_j] < z * max(sigma, 1e-12) or abs(diff[best_i, best_j]) < min_step:
        return
    cuts = [c for c in (int(best_i), int(best_j)) if 0 < c < n]
    out.extend(lo + c for c in cuts)
    edges = [0, *cuts, n]
    for a, b in zip(edges[:-1], edges[1:]):
        _segment(x, lo + a, lo + b, sigma, z, min_step, min_size, out)


def detect_stack_changes(
    dates,
    area_m2,
    observed_fraction,
    min_observed: float = 0.8,
    min_change_teu: float = 100.0,
    *,
    z_threshold: float = 5.0,
    min_segment: int = 2,
    **teu_params,
) -> list[dict]:
    """Step changes of container-stack area in a time series of one AOI.

    Parameters
    ----------
    dates : sequence of numpy.datetime64, datetime.date or ISO strings
        Acquisition dates (any order; they are sorted).
    area_m2 : sequence of float
        Detected stack area per date, m2.
    observed_fraction : sequence of float
        Share of the AOI's land observed (not cloud/shadow) per date.
    min_observed : float
        Dates observed less than this are ignored (default 0.8): cloud over
        the yard removes stack area and would look like a decrease.
    min_change_teu : float
        Smallest reported change, TEU (central estimate), default 100.
    z_threshold : float
        A split is accepted when the two-sample mean difference exceeds
        ``z_threshold`` noise standard deviations (default 5: about one false
        step per 10^6 tests under Gaussian noise, which leaves room for the
        heavier tails of real detection noise).
    min_segment : int
        Minimum number of well-observed dates on each side of a step
        (default 2: a single date is never a new level).
    **teu_params
        Passed to :func:`detectors.stacks.estimate_teu`.

    Returns
    -------
    list of dict
        In time order, one per step: ``kind`` ('increase' or 'decrease'),
        ``before_date`` and ``after_date`` (the well-observed acquisitions that
        bracket the step, numpy.datetime64), ``delta_area_m2`` (median after
        minus median before, each over its segment), ``delta_teu`` as
        [low, estimate, high] (signed), ``level_before_m2``,
        ``level_after_m2``, ``z`` (step over noise).

    References
    ----------
    Olshen, A. B., Venkatraman, E. S., Lucito, R., Wigler, M. (2004). Circular
    binary segmentation for the analysis of array-based DNA copy number data.
    Biostatistics 5(4).
    Scott, A. J., Knott, M. (1974). A cluster analysis method for grouping
    means in the analysis of variance. Biometrics 30(3).
    Truong, C., Oudre, L., Vayatis, N. (2020). Selective review of offline
    change point detection methods. Signal Processing 167.
    Hampel, F. R. (1974). The influence curve and its role in robust
    estimation. JASA 69(346).
    """
    t = _as_datetime64(dates)
    area = np.asarray(area_m2, dtype=float)
    obs = np.asarray(observed_fraction, dtype=float)
    if not (t.size == area.size == obs.size):
        raise ValueError("dates, area_m2 and observed_fraction must have the same length")
    good = (obs >= min_observed) & np.isfinite(area)
    order = np.argsort(t[good], kind="stable")
    t, x = t[good][order], area[good][order]
    if x.size < 2 * min_segment:
        return []
    smooth = _median3(x)
    sigma = _noise_sigma(x)
    # Minimum physical step: the area that holds min_change_teu TEU.
    est_per_m2 = estimate_teu(1.0, **teu_params)[0]
    min_step = min_change_teu / est_per_m2 if est_per_m2 > 0 else 0.0
    splits: list[int] = []
    _segment(smooth, 0, smooth.size, sigma, z_threshold, min_step, min_segment, splits)
    splits.sort()
    bounds = [0, *splits, x.size]
    changes = []
    for i, s in enumerate(splits):
        before = x[bounds[i] : s]
        after = x[s : bounds[i + 2]]
        level_before, level_after = float(np.median(before)), float(np.median(after))
        delta = level_after - level_before
        est, low, high = estimate_teu(delta, **teu_params)
        if abs(est) < min_change_teu:
            continue
        changes.append(
            {
                "kind": "increase" if delta > 0 else "decrease",
                "before_date": t[s - 1],
                "after_date": t[s],
                "delta_area_m2": delta,
                "delta_teu": [low, est, high],
                "level_before_m2": level_before,
                "level_after_m2": level_after,
                "z": abs(delta) / sigma * np.sqrt(len(before) * len(after) / (len(before) + len(after)))
                if sigma > 0
                else float("inf"),
            }
        )
    return changes
