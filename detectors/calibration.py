"""How well a detector's score predicts that a detection is a vessel: reliability and calibration.

Pure functions on arrays of scores and outcomes (1 = the detection matched a
labelled vessel, 0 = a false alarm), as measured on a labelled dataset.

References
----------
DeGroot, M. H., & Fienberg, S. E. (1983). The comparison and evaluation of
forecasters. The Statistician, 32, 12-22 (reliability diagrams).
Zadrozny, B., & Elkan, C. (2002). Transforming classifier scores into accurate
multiclass probability estimates. KDD (isotonic calibration by pool-adjacent-violators).
Wilson, E. B. (1927). Probable inference, the law of succession, and
statistical inference. JASA, 22, 209-212 (the interval of a proportion).
"""

from __future__ import annotations

import math

import numpy as np
from scipy.optimize import isotonic_regression

#: Default score bins of :func:`reliability_curve`.
DEFAULT_EDGES = (0.0, 0.2, 0.4, 0.6, 0.8, 1.0)


def wilson_interval(successes: int, n: int, z: float = 1.96) -> tuple[float, float]:
    """Wilson score interval of a proportion (default 95 %); (0, 1) when ``n`` is 0."""
    if n <= 0:
        return 0.0, 1.0
    p = successes / n
    denom = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denom
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denom
    return max(0.0, centre - half), min(1.0, centre + half)


def reliability_curve(scores, outcomes, edges=DEFAULT_EDGES) -> list[dict]:
    """Observed share of true detections per score bin (a reliability diagram as a table).

    Parameters
    ----------
    scores : array_like of float
        Detector scores in [0, 1].
    outcomes : array_like of bool
        Whether each detection was a labelled vessel.
    edges : sequence of float
        Bin edges; the last bin includes its upper edge.

    Returns
    -------
    list of dict
        Per bin: ``lo``, ``hi``, ``n``, ``mean_score``, ``observed`` (share of
        true detections, None when empty) and its 95 % Wilson interval
        ``observed_low``/``observed_high``.
    """
    s = np.asarray(scores, dtype=float)
    y = np.asarray(outcomes, dtype=bool)
    idx = np.clip(np.searchsorted(edges, s, side="right") - 1, 0, len(edges) - 2)
    out = []
    for b in range(len(edges) - 1):
        sel = idx == b
        n = int(sel.sum())
        k = int(y[sel].sum())
        lo, hi = wilson_interval(k, n)
        out.append({"lo": float(edges[b]), "hi": float(edges[b + 1]), "n": n,
                    "mean_score": round(float(s[sel].mean()), 4) if n else None,
                    "observed": round(k / n, 4) if n else None,
                    "observed_low": round(lo, 4), "observed_high": round(hi, 4)})
    return out


def isotonic_calibration(scores, outcomes) -> tuple[np.ndarray, np.ndarray]:
    """Knots ``(score, probability)`` of the monotone map fitted by pool-adjacent-violators.

    ``np.interp(score, *knots)`` then gives the calibrated probability that a
    detection with that score is a vessel (constant beyond the fitted range).
    """
    s = np.asarray(scores, dtype=float)
    y = np.asarray(outcomes, dtype=float)
    if s.size == 0:
        return np.array([0.0, 1.0]), np.array([np.nan, np.nan])
    order = np.argsort(s, kind="stable")
    fitted = isotonic_regression(y[order], increasing=True).x
    xs, ys = s[order], fitted
    # one knot per distinct level (the ends of each flat step), so interp reproduces the steps
    keep = np.r_[True, np.diff(ys) != 0] | np.r_[np.diff(ys) != 0, True]
    return xs[keep], ys[keep]


def expected_calibration_error(scores, outcomes, edges=DEFAULT_EDGES) -> float:
    """Mean over detections of |score - observed share| in their bin (0 = calibrated)."""
    bins = reliability_curve(scores, outcomes, edges)
    n = sum(b["n"] for b in bins)
    if not n:
        return float("nan")
    return float(sum(b["n"] * abs(b["mean_score"] - b["observed"]) for b in bins if b["n"]) / n)
