"""The fetch stage: tiles over the AOIs from Sentinel Hub, a STAC API or a local static catalog.

:mod:`.stage` plans and writes the tiles; :mod:`.sources` talks to the providers.
"""

from .stage import FetchSettings, run_fetch

__all__ = ["FetchSettings", "run_fetch"]
