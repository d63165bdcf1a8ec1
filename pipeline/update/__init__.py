"""``berthwatch update``: the nightly watch (fetch new tiles, detect, report, say what changed)."""

from .stage import EXIT_NOTABLE, UpdateSettings, fetch_windows, run_update

__all__ = ["EXIT_NOTABLE", "UpdateSettings", "fetch_windows", "run_update"]
