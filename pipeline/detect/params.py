"""Parameters of the detection chain and the digest that invalidates results.

Defaults are read from the detector functions' signatures, so a changed
default changes the parameter hash and the affected dates are recomputed.
"""

from __future__ import annotations

import hashlib
import inspect
from pathlib import Path

from ... import detectors
from ...detectors import berth as det_berth
from ...detectors import optical as det_optical
from ...detectors import radiometry as det_radiometry
from ...detectors import sar as det_sar
from ...detectors import stacks as det_stacks
from ..core.errors import UsageError
from ..core.ranges import range_problem

#: Version of the detection method written into every summary. Bump it when
#: results change meaning; code edits are caught anyway by the source digest.
DETECTOR_VERSION = getattr(detectors, "__version__", "0.1.0")


def _defaults(fn, skip: tuple[str, ...]) -> dict:
    """Keyword defaults of ``fn`` except its data arguments."""
    out = {}
    for name, p in inspect.signature(fn).parameters.items():
        if name in skip or p.default is inspect.Parameter.empty:
            continue
        if p.kind in (inspect.Parameter.VAR_KEYWORD, inspect.Parameter.VAR_POSITIONAL):
            continue
        out[name] = p.default
    return out


def detector_params(overrides: dict | None = None) -> dict:
    """All parameters of the detection chain, by step, with the detectors' defaults.

    Read from the detector functions' signatures, so a changed default changes
    :func:`params_hash` and the affected dates are recomputed. ``overrides``
    (``{step: {name: value}}``) must name known steps and parameters.
    """
    from ...detectors.cfar import cfar_two_parameter

    params = {
        "reference": {"min_fraction": 0.5, "min_observations": 1, "min_dates": 2,
                      "max_enclosed_area_m2": 40_000.0, "yard_min_dates": 2,
                      "invariant_max_ndvi": 0.3},
        "radiometry": _defaults(det_radiometry.normalise_to_reference, ("image", "reference", "mask")),
        "change": _defaults(det_radiometry.unchanged_pixels, ("image", "reference", "mask")),
        "optical": dict(det_optical.DEFAULTS),
        "water_sar": _defaults(det_sar.water_mask_sar, ("vv", "vh", "pixel_size")),
        "sar": {
            **_defaults(det_sar.detect_vessels_sar, ("vv", "vh", "transform", "pixel_size", "land_mask")),
            **_defaults(cfar_two_parameter, ("image", "pixel_size", "valid", "return_background")),
        },
        "stacks": {
            **_defaults(det_stacks.detect_container_stacks,
                        ("bands", "transform", "scl", "water", "vessels", "pixel_size", "yard_prior",
                         "reference_stacks", "unchanged", "teu_params")),
            "teu_params": _defaults(det_stacks.estimate_teu, ("area_m2",)),
        },
        "berth": _defaults(det_berth.flag_at_berth, ("vessels", "land_mask", "transform", "berth_zones")),
        "merge": _defaults(det_berth.merge_sensor_duplicates, ("primary", "secondary")),
    }
    for step, values in (overrides or {}).items():
        if step not in params:
            raise UsageError(f"detector parameters: unknown step {step!r}; known: {', '.join(params)}")
        unknown = set(values) - set(params[step])
        if unknown:
            raise UsageError(f"detector parameters: unknown {step} parameter(s) {', '.join(sorted(unknown))}")
        for name, value in values.items():
            default = params[step][name]
            if not _same_kind(default, value):
                raise UsageError(f"detector parameters: {step}.{name} must be like its default {default!r}, "
                                 f"got {value!r}")
            problem = _range_problem(step, name, default, value)
            if problem:
                raise UsageError(f"detector parameters: {problem}")
            params[step][name] = {**default, **value} if isinstance(default, dict) else value
    return params


def _range_problem(step: str, name: str, default, value) -> str | None:
    if isinstance(default, dict):
        for k, v in value.items():
            problem = range_problem(k, v, default[k])
            if problem:
                return f"{step}.{name}.{problem}"
        return None
    problem = range_problem(name, value, default)
    return f"{step}.{problem}" if problem else None


def _same_kind(default, value) -> bool:
    """Whether an override has the shape of the default (bool, number, sequence, mapping, text)."""
    if isinstance(default, bool) or isinstance(value, bool):
        return isinstance(default, bool) and isinstance(value, bool)
    if isinstance(default, (int, float)):
        return isinstance(value, (int, float))
    if isinstance(default, (tuple, list)):
        return isinstance(value, (tuple, list)) and len(value) == len(default)
    if isinstance(default, dict):
        return isinstance(value, dict) and set(value) <= set(default) and all(
            _same_kind(default[k], v) for k, v in value.items())
    return isinstance(value, type(default))


def detector_code_digest() -> str:
    """Digest of the detectors' and this stage's source: edits invalidate results."""
    h = hashlib.sha256()
    files = sorted(Path(detectors.__file__).parent.glob("*.py")) + sorted(Path(__file__).parent.glob("*.py"))
    for f in files:
        h.update(f.name.encode())
        h.update(f.read_bytes())
    return h.hexdigest()[:16]
