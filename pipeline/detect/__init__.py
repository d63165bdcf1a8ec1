"""The detect stage: tiles in, per-date detections GeoJSON and ``timeseries.csv`` out.

:mod:`.stage` runs it (see its docstring for the reference water mask, mosaics
and incremental runs); :mod:`.params` holds the detector parameters,
:mod:`.scenes` reads a date's tiles, :mod:`.water_reference` and
:mod:`.s2_reference` build the AOI's references from its history,
:mod:`.aoi_date` runs the detectors on one AOI-date and :mod:`.timeseries`
writes the table.
"""

from .stage import run_detect

__all__ = ["run_detect"]
