"""The detections files of an output folder, read once for the tables built from all of them.

``timeseries.csv`` and ``detections.gpkg`` are rebuilt from every file at
the end of each detect run; parsing 1,800 files twice was a second of the
run's serial tail.
"""

from __future__ import annotations

import logging
from pathlib import Path

from ..core.errors import UserError
from ..core.geojson_io import read_detections_features

log = logging.getLogger(__name__)


def detection_files(out_dir: Path) -> list[Path]:
    """``<out>/detections/<aoi>/<date>.geojson``, sorted by AOI and date (temporary files left out)."""
    return [p for p in sorted((Path(out_dir) / "detections").glob("*/*.geojson")) if not p.name.startswith(".")]


def read_detection_files(files: list[Path]) -> list[tuple[Path, list[dict]]]:
    """``(path, features)`` of each readable file, the ``aoi_summary`` first; unreadable files are
    left out of the tables with a warning naming them."""
    out = []
    for path in files:
        try:
            out.append((path, read_detections_features(path)))
        except UserError as exc:
            log.warning("timeseries.csv and detections.gpkg leave out %s", exc)
    return out
