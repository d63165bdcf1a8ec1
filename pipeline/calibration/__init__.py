"""`berthwatch calibrate`: the whole pipeline on random SIMULATED scenarios, scored against their truth.

:mod:`.run` draws scenarios from :mod:`pipeline.simulation.families` and runs
sample -> fetch (local) -> detect -> report on each; :mod:`.score` compares the
report's verdicts and intervals with the truth and writes a table and a
calibration plot.
"""

from .run import run_calibration
from .score import score_results

__all__ = ["run_calibration", "score_results"]
