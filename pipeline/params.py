"""Analysts' parameter files: detector and analysis settings in one YAML.

```yaml
detect:                      # {step: {parameter: value}}, steps of detect.detector_params
  optical: {min_probability: 0.3}
  sar: {pfa: 1.0e-7}
report:                      # fields of analysis.AnalysisParams
  min_voyage_confidence: 0.6
  teu_per_container: [1, 2]
```

Both sections are optional. Unknown sections, steps or names are refused
with one line naming the file, so a typo never silently leaves a default in
place. The values used are recorded with every output (the detect stage's
parameter hash, the report's ``summary.json`` ``params``), and a changed value
recomputes what depends on it.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

from .core.errors import UsageError
from .core.ranges import range_problem
from .core.yaml_file import load_yaml_file

SECTIONS = ("detect", "report")


def load_params_file(path: Path) -> dict:
    """``{"detector_params": {...}, "report_params": {...}}`` for ``RunOptions.extra``.

    Detector steps and names are checked by :func:`pipeline.detect.params.detector_params`
    when the stage runs; analysis names and value shapes are checked here.
    """
    path = Path(path)
    data = load_yaml_file(path, error=UsageError, label="--params: ")
    data = {} if data is None else data
    if not isinstance(data, dict):
        raise UsageError(f"{path}: expected a mapping with sections {' and '.join(SECTIONS)}")
    unknown = set(data) - set(SECTIONS)
    if unknown:
        raise UsageError(f"{path}: unknown section(s) {', '.join(sorted(map(str, unknown)))}; "
                         f"known: {', '.join(SECTIONS)}")
    detect = data.get("detect") or {}
    if not isinstance(detect, dict) or not all(isinstance(v, dict) for v in detect.values()):
        raise UsageError(f"{path}: 'detect' must map steps to {{parameter: value}} mappings")
    report = data.get("report") or {}
    if not isinstance(report, dict):
        raise UsageError(f"{path}: 'report' must map analysis parameters to values")
    from .detect.params import detector_params

    try:  # names, kinds and ranges, now rather than when the stage runs
        detector_params(detect)
    except UsageError as exc:
        raise UsageError(f"{path}: {exc}") from None
    return {"detector_params": detect, "report_params": _analysis_overrides(path, report)}


def _analysis_overrides(path: Path, values: dict) -> dict:
    from .report.analysis import AnalysisParams

    defaults = AnalysisParams()
    fields = {f.name for f in dataclasses.fields(AnalysisParams)}
    unknown = set(values) - fields
    if unknown:
        raise UsageError(f"{path}: unknown report parameter(s) {', '.join(sorted(map(str, unknown)))}; "
                         f"known: {', '.join(sorted(fields))}")
    out = {}
    for name, value in values.items():
        default = getattr(defaults, name)
        if isinstance(default, tuple):
            if not (isinstance(value, list) and len(value) == len(default)
                    and all(_is_number(v) for v in value)):
                raise UsageError(f"{path}: report parameter {name} must be a list of {len(default)} numbers")
            out[name] = tuple(float(v) for v in value)
        elif not _is_number(value):
            raise UsageError(f"{path}: report parameter {name} must be a number, got {value!r}")
        else:
            out[name] = float(value)
        problem = range_problem(name, out[name], default)
        if problem:
            raise UsageError(f"{path}: report parameter {problem}")
    return out


def _is_number(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)
