"""The evidence behind the inference, date by date: berths occupied, empty or unobserved, and yard stock.

One row per port of the claim (origin, destination): every detections date is
marked as *occupied* (a large vessel at berth found; the number is written
above), *empty* (usable and none found) or *unobserved* (not usable: cloud over
the AOI or its berths), the claim window shaded. Below, the yard stock of each
port in TEU on its usable Sentinel-2 dates with the detector's stated range as
an error band, and the gaps between well-observed dates in which the yard moved
the way cargo would (a fall at the origin, a rise at the destination:
:func:`.analysis.shuttle.yard_looks`). These are the inputs of
:mod:`.analysis.inference`; nothing is interpolated.
"""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from . import analysis as an  # noqa: E402
from .analysis.shuttle import yard_looks  # noqa: E402
from .figures import _date_axis, _png, _shade_window  # noqa: E402

OCCUPIED, EMPTY, UNOBSERVED = "#b91c1c", "#1d4ed8", "#9ca3af"


def evidence_figure(r) -> bytes:
    """PNG: occupancy per date at origin and destination, then their yard stock with its range."""
    claim, p = r.claim, r.params
    ports = [claim.origin, claim.destination]
    groups = an.by_aoi(r.observations)
    fig, axes = plt.subplots(2, 1, figsize=(10, 4.6), sharex=True, gridspec_kw={"height_ratios": [1.1, 2]})
    ax = axes[0]
    for row, aoi in enumerate(ports):
        y = len(ports) - 1 - row
        for o in groups.get(aoi, []):
            if not o.usable(p):
                ax.plot(o.date, y, marker="x", color=UNOBSERVED, ms=6, ls="none")
                continue
            n = len(o.large_at_berth(p))
            if n:
                ax.plot(o.date, y, marker="s", color=OCCUPIED, ms=8, ls="none")
                if n > 1:
                    ax.annotate(str(n), (o.date, y), textcoords="offset points", xytext=(0, 6), ha="center",
                                fontsize=7)
            else:
                ax.plot(o.date, y, marker="s", mfc="white", mec=EMPTY, ms=7, ls="none")
    ax.set_yticks(range(len(ports)), [f"{a}\n({'origin' if a == claim.origin else 'destination'})"
                                      for a in reversed(ports)])
    ax.set_ylim(-0.7, len(ports) - 0.3)
    ax.plot([], [], marker="s", color=OCCUPIED, ls="none", label="large vessel at berth")
    ax.plot([], [], marker="s", mfc="white", mec=EMPTY, ls="none", label="berths empty")
    ax.plot([], [], marker="x", color=UNOBSERVED, ls="none", label="unobserved (not usable)")
    if ax.get_legend_handles_labels()[0]:  # no usable Sentinel-2 date: nothing to label
        ax.legend(loc="upper left", bbox_to_anchor=(1.0, 1.0), fontsize=8, frameon=False)
    _shade_window(ax, claim.window)
    ax.set_title("Evidence per date: berth occupancy and yard stock (the inputs of the voyage inference)")

    ax = axes[1]
    for k, aoi in enumerate(ports):
        obs = [o for o in groups.get(aoi, []) if o.stack_usable(p) and o.teu is not None]
        if not obs:
            continue
        dates = [o.date for o in obs]
        est = np.array([o.teu[0] for o in obs])
        lo = np.array([o.teu[1] for o in obs])
        hi = np.array([o.teu[2] for o in obs])
        ax.fill_between(dates, lo, hi, color=f"C{k}", alpha=0.2, lw=0)
        ax.plot(dates, est, marker="o", ms=3, color=f"C{k}", label=f"{aoi} yard stock (range: the detector's)")
        origin = aoi == claim.origin
        used = (p.yard_fall_given_departure != p.yard_fall_without_departure if origin
                else p.yard_rise_given_arrival != p.yard_rise_without_arrival)
        moved = [y for y in yard_looks(groups.get(aoi, []), [st for st in r.steps if st.aoi == aoi], p,
                                       -1 if origin else 1) if y.changed] if used else []
        for i, y in enumerate(moved):
            ax.axvspan(y.start, y.end, color=f"C{k}",
                       alpha=0.12, hatch="//" if origin else "\\\\", lw=0,
                       label=(f"{aoi} yard fell (cargo loaded?)" if origin else f"{aoi} yard rose (cargo unloaded?)")
                       if i == 0 else None)
    ax.set_ylabel("TEU in the yards")
    if ax.get_legend_handles_labels()[0]:  # no usable Sentinel-2 date: nothing to label
        ax.legend(loc="upper left", bbox_to_anchor=(1.0, 1.0), fontsize=8, frameon=False)
    _shade_window(ax, claim.window)
    _date_axis(ax)
    fig.tight_layout()
    return _png(fig)
