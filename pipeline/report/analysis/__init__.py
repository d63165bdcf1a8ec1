"""Port activity analysis for the report: pure functions over observation tables.

The input is one :class:`Observation` per AOI and date (built from a detections
file by :func:`pipeline.report.stage.load_observations`). Each step below is a plain
function of those records and of :class:`AnalysisParams`, so it can be tested on
constructed series and explained in the report:

1. :func:`coverage` - which dates each sensor observed, and which were usable.
2. :func:`track_port_calls` - large vessels at berth tracked across usable
   observations into calls, each with an arrival and a departure interval
   bracketed by the observations around the change.
3. :func:`infer_voyages` - a departure from one AOI paired with an arrival at
   another within the transit window, with the vessel length as a check.
4. :func:`container_flows` - yard step changes matched to the voyages.
5. :func:`rate_ratio`, :func:`call_detection_probability`, :func:`verdict` -
   the comparison with the claim.

One module per step (:mod:`.observations`, :mod:`.port_calls`, :mod:`.voyages`,
:mod:`.stack_steps`, :mod:`.verdict`), parameters in :mod:`.params`; this package
exports them all, so ``from berthwatch.pipeline.report import analysis as an``
reaches every step.

Dates are ``datetime.date``; an interval is a ``(first, last)`` pair of
observation dates, ``None`` at an end when no observation brackets it.
"""

from .observations import (
    Observation, VesselSighting, by_aoi, call_detection_probability, coverage, in_window, iso_or_none,
    observation_gaps,
)
from .params import CONSISTENT, INCONSISTENT, INSUFFICIENT, M_PER_DEG, AnalysisParams
from .port_calls import PortCall, track_port_calls
from .stack_steps import StackStep, stack_steps, step_detection_limits
from .verdict import Verdict, activity_rate_ratio, claimed_teu, rate_ratio, verdict
from .voyages import Voyage, container_flows, infer_voyages, teu_in_window, transit_probability

__all__ = [
    "CONSISTENT", "INCONSISTENT", "INSUFFICIENT", "M_PER_DEG", "AnalysisParams", "Observation", "PortCall",
    "StackStep", "Verdict", "VesselSighting", "Voyage", "activity_rate_ratio", "by_aoi",
    "call_detection_probability", "claimed_teu", "container_flows", "coverage", "in_window", "infer_voyages",
    "iso_or_none", "observation_gaps", "rate_ratio", "stack_steps", "step_detection_limits", "teu_in_window",
    "track_port_calls", "transit_probability", "verdict",
]
