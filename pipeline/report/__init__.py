"""The report stage: detections and a claim in, ``<out>/report/`` out.

:mod:`.stage` reads the detections and renders HTML, Markdown and JSON from
:mod:`.analysis` (pure functions over the observations), :mod:`.figures` and
``templates/`` (Leaflet in ``static/``, offline).
"""

from .stage import run_report

__all__ = ["run_report"]
