"""Range and kind checks of parameter values, from the parameters' names.

The detector and analysis parameters follow naming conventions that say what
a value is, so one rule set checks them all (``--params`` files included):

- every number is finite (NaN and infinity are refused);
- ``pfa``, ``*_pfa``, ``p_*``, ``*probability*``, ``*confidence*`` and the
  conditional rates ``*_given_*`` / ``*_without_*`` are probabilities in the
  open interval (0, 1): 0 or 1 would detect nothing or everything;
- ``*fraction*``, ``*share*`` and ``min_clear`` lie in [0, 1];
- sizes (``*_m``, ``*_m2``, ``*_days``, ``*_rel``, ``*height*``, ``*area*``...) and counts (``min_*``,
  ``max_*``, ``n_*``, ``*_iterations``, ``*_pixels``, ``*_observations``,
  ``*_dates`` of integer default) are positive; ``min_*`` and the sizes whose
  0 switches a step off (:data:`ZERO_DISABLES`) may be 0;
- two-number ranges (``transit_days``, ``teu_per_container``, ``gain_range``)
  are ordered.
"""

from __future__ import annotations

import math

_PROBABILITY = ("probability", "confidence")
_FRACTION = ("fraction", "share", "packing")
_SIZE_SUFFIX = ("_m", "_m2", "_days", "_rel", "_px")
_COUNT_WORDS = ("iterations", "pixels", "observations", "dates", "count")
_SIZE_WORDS = ("height", "area", "length", "width", "distance", "radius", "window")
#: Sizes whose documented 0 switches a step off.
ZERO_DISABLES = frozenset({"berth_shift_distance_m", "land_buffer_m", "cloud_buffer_m", "apron_m", "edge_m"})


def _is_number(v) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def range_problem(name: str, value, default) -> str | None:
    """Why ``value`` is not acceptable for the parameter ``name`` (default ``default``), or None."""
    if isinstance(value, (list, tuple)):
        if not all(_is_number(v) for v in value):
            return None if not all(_is_number(v) for v in (default or ())) else f"{name} must be numbers"
        for v in value:
            if not math.isfinite(v):
                return f"{name} must be finite numbers, got {value!r}"
        if len(value) == 2 and name.endswith(("_days", "_range", "_container")):
            if value[0] > value[1]:
                return f"{name} must be [low, high] with low <= high, got {list(value)}"
            if value[0] < 0 or (name.endswith("_container") and value[0] <= 0):
                return f"{name} must be positive, got {list(value)}"
        return None
    if not _is_number(value):
        return None
    if not math.isfinite(value):
        return f"{name} must be a finite number, got {value!r}"
    low = name.lower()
    if (low == "pfa" or low.endswith("_pfa") or low.startswith("p_") or any(w in low for w in _PROBABILITY)
            or "_given_" in low or "_without_" in low):
        if not 0.0 < value < 1.0:
            return f"{name} is a probability and must lie in (0, 1), got {value!r}"
        return None
    if any(w in low for w in _FRACTION) or low == "min_clear":
        if not 0.0 <= value <= 1.0:
            return f"{name} is a fraction and must lie in [0, 1], got {value!r}"
        return None
    is_size = low.endswith(_SIZE_SUFFIX) or any(w in low for w in _SIZE_WORDS)
    is_count = isinstance(default, int) and not isinstance(default, bool) and (
        low.startswith(("min_", "max_", "n_")) or any(w in low for w in _COUNT_WORDS))
    if is_size or is_count:
        positive = _is_number(default) and default > 0 and not low.startswith("min_") and low not in ZERO_DISABLES
        if positive and value <= 0:
            return f"{name} must be positive, got {value!r}"
        if value < 0:
            return f"{name} must not be negative, got {value!r}"
        if is_count and isinstance(default, int) and value != int(value):
            return f"{name} must be a whole number, got {value!r}"
    return None
