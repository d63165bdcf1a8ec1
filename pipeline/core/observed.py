"""Which dates were observed well enough that a number measured on them means something.

One rule, used by the detect stage (``usable`` in each summary and in
``timeseries.csv``), by the report and by the notebooks, so that a count of
zero is never read from a date that did not see the port.

A sensor's date is **usable for vessels** when at least ``min_clear`` of the
AOI *and* of its berth zone were observed clearly (not cloud, cloud shadow,
no data or outside the swath): an absent vessel then means an empty berth,
not a cloud over it. It is **usable for container stacks** (Sentinel-2 only)
when at least ``min_clear`` of the yards were clear as well. A zone the AOI
does not have (no yards found yet) does not constrain the rule.

The zones are those of the AOI file (``zone: berth`` / ``zone: yard``
features) when it has them; otherwise berths are the water within
:data:`BERTH_BAND_M` of land (where a ship alongside lies) and yards are the
reference yards found from the AOI's Sentinel-2 history.

Unobserved is never 0: :func:`blank_unusable` turns the counts of an unusable
date into missing values for tables, plots and sums.
"""

from __future__ import annotations

import math
from typing import Mapping

import numpy as np
from scipy import ndimage

#: Default share of the AOI (and of each zone) that must be clear; the report's
#: ``AnalysisParams.min_clear`` overrides it there.
MIN_CLEAR = 0.6
#: Width of the water band along the shore counted as berths when the AOI draws none:
#: a ship alongside reaches up to ~60 m from the quay, plus fenders and mixed pixels.
BERTH_BAND_M = 100.0
#: Zones whose clear fraction is recorded, in column order.
ZONES = ("aoi", "berths", "yards")
#: Counts that are missing on a date unusable for vessels / for container stacks.
VESSEL_COUNTS = ("vessels", "vessels_at_berth", "large_vessels")
STACK_COUNTS = ("container_stack_area_m2", "teu_estimate", "teu_low", "teu_high")


def berth_band(water: np.ndarray, land: np.ndarray, pixel_size: float, band_m: float = BERTH_BAND_M) -> np.ndarray:
    """Water pixels within ``band_m`` of land (the berths of an AOI that draws none).

    Parameters
    ----------
    water, land : ndarray of bool
        The AOI's sea domain and land, same shape.
    pixel_size : float
        Metres per pixel.
    band_m : float
        Width of the band, metres.
    """
    if not land.any():
        return np.zeros_like(water, dtype=bool)
    dist = ndimage.distance_transform_edt(~land) * pixel_size
    return water & (dist <= band_m)


def zone_fraction(clear: np.ndarray, zone: np.ndarray | None) -> float | None:
    """Share of ``zone`` that ``clear`` covers; None when there is no such zone."""
    if zone is None:
        return None
    n = int(zone.sum())
    return round(float((clear & zone).sum() / n), 4) if n else None


def _ok(fraction: float | None, min_clear: float) -> bool:
    return fraction is None or (isinstance(fraction, (int, float)) and math.isfinite(fraction)
                                and fraction >= min_clear)


def usable_for_vessels(fractions: Mapping[str, float | None] | None, min_clear: float = MIN_CLEAR) -> bool:
    """Whether one sensor's observation (``{zone: clear fraction}``) can show a berth empty."""
    if not fractions or fractions.get("aoi") is None:
        return False
    return _ok(fractions.get("aoi"), min_clear) and _ok(fractions.get("berths"), min_clear)


def usable_for_stacks(fractions: Mapping[str, float | None] | None, min_clear: float = MIN_CLEAR) -> bool:
    """Whether a Sentinel-2 observation measures the container stacks (AOI and yards clear)."""
    if not fractions or fractions.get("aoi") is None:
        return False
    return _ok(fractions.get("aoi"), min_clear) and _ok(fractions.get("yards"), min_clear)


def summary_fractions(summary: Mapping) -> dict[str, dict[str, float | None]]:
    """``{sensor: {zone: fraction}}`` of a detections summary.

    Summaries written before zones were recorded have only ``clear_fraction``
    (the AOI); that is used for every zone.
    """
    zoned = summary.get("observed_fraction")
    if isinstance(zoned, Mapping) and zoned:
        return {s: dict(v) for s, v in zoned.items()}
    return {s: {"aoi": f} for s, f in (summary.get("clear_fraction") or {}).items()}


def usable(summary: Mapping, min_clear: float = MIN_CLEAR) -> dict[str, bool]:
    """``{"vessels": bool, "stacks": bool, <sensor>: bool}`` of a detections summary.

    Vessels are usable when any sensor is; stacks only from Sentinel-2 with a
    measured stack area.
    """
    from .contracts import S2

    fr = summary_fractions(summary)
    per_sensor = {s: usable_for_vessels(f, min_clear) for s, f in fr.items()}
    stacks = usable_for_stacks(fr.get(S2), min_clear) and summary.get("container_stack_area_m2") is not None
    return {"vessels": any(per_sensor.values()), "stacks": stacks, **per_sensor}


def blank_unusable(row: dict, ok: Mapping[str, bool]) -> dict:
    """The row with counts of an unusable date set to None (missing, never 0)."""
    out = dict(row)
    if not ok.get("vessels"):
        out.update({k: None for k in VESSEL_COUNTS if k in out})
    if not ok.get("stacks"):
        out.update({k: None for k in STACK_COUNTS if k in out})
    return out
