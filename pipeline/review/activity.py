"""Helpers of ``02_activity_vs_claim``: the time series and the report's summary against the claim window."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import numpy as np
import pandas as pd

from ..core.contracts import LARGE_VESSEL_M, report_dir
from ..core.errors import UserError
from .common import WINDOW_COLOR, as_date, finish_figure, load_timeseries, show

__all__ = [
    "claim_window", "coverage_table", "load_summary", "load_timeseries", "plot_activity", "plot_voyages",
    "port_call_table", "show", "voyage_table",
]


# ---------------------------------------------------------------- report outputs
def load_summary(out_dir: Path) -> dict:
    """The report's ``summary.json`` (see :func:`.report.summary_dict` for its keys).

    Raises
    ------
    UserError
        When the file is missing (run ``berthwatch report`` first) or not JSON.
    """
    path = report_dir(Path(out_dir)) / "summary.json"
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise UserError(f"{path}: no report summary; run `berthwatch report` (or `make demo`) first") from None
    except json.JSONDecodeError as exc:
        raise UserError(f"{path}: not valid JSON ({exc})") from None


def claim_window(summary: dict) -> tuple[dt.date, dt.date]:
    """The claim window ``(start, end)`` of a report summary."""
    start, end = summary["window"]
    return as_date(start), as_date(end)


def coverage_table(summary: dict) -> pd.DataFrame:
    """Images per AOI and sensor, in the claim window and in the baseline, all and usable (clear enough)."""
    rows = [{"aoi": aoi, "sensor": sensor, **counts}
            for aoi, per in summary.get("coverage", {}).items() for sensor, counts in per.items()]
    cols = ["aoi", "sensor", "in_window", "usable_in_window", "baseline", "usable_baseline"]
    return pd.DataFrame(rows, columns=cols).set_index(["aoi", "sensor"])


def voyage_table(summary: dict) -> pd.DataFrame:
    """The inferred voyages of a report summary, one row each, with departure and arrival brackets."""
    rows = []
    for v in summary.get("voyages", []):
        rows.append({"origin": v["origin"], "destination": v["destination"],
                     "depart_after": v["depart"][0], "depart_before": v["depart"][1],
                     "arrive_after": v["arrive"][0], "arrive_before": v["arrive"][1],
                     "vessel_length_m": v.get("vessel_length_m"), "confidence": v.get("confidence"),
                     "timing_probability": v.get("timing_probability"),
                     "teu": None if not v.get("teu") else "-".join(str(x) for x in v["teu"]),
                     "basis": "; ".join(v.get("basis", []))})
    return pd.DataFrame(rows, columns=["origin", "destination", "depart_after", "depart_before", "arrive_after",
                                       "arrive_before", "vessel_length_m", "confidence", "timing_probability",
                                       "teu", "basis"])


def port_call_table(summary: dict) -> pd.DataFrame:
    """The port calls of a report summary: vessel, first/last sighting, arrival and departure brackets."""
    rows = [{"id": c["id"], "aoi": c["aoi"], "length_m": c["length_m"], "first_seen": (c["seen"] or [None])[0],
             "last_seen": (c["seen"] or [None])[-1], "sightings": len(c["seen"]),
             "arrive": " / ".join(x or "?" for x in c["arrive"]), "depart": " / ".join(x or "?" for x in c["depart"]),
             "sensors": ", ".join(c.get("sensors", [])), "score": c.get("score")}
            for c in summary.get("port_calls", [])]
    return pd.DataFrame(rows, columns=["id", "aoi", "length_m", "first_seen", "last_seen", "sightings", "arrive",
                                       "depart", "sensors", "score"]).set_index("id")


def plot_activity(ts: pd.DataFrame, summary: dict, aois=None):
    """Per AOI, berthed and large vessels and container-stack TEU over time, claim window shaded.

    Parameters
    ----------
    ts : pandas.DataFrame
        From :func:`load_timeseries`.
    summary : dict
        From :func:`load_summary` (claim window, port calls).
    aois : sequence of str, optional
        AOIs to draw (rows of panels), default all in ``ts``.

    Returns
    -------
    matplotlib.figure.Figure
        Two panels per AOI: vessel counts of usable dates
        (:mod:`..core.observed`; unusable dates as hollow markers below zero,
        their counts being unknown) with the detected port calls as bars, and
        TEU with its range.
    """
    import matplotlib.dates as mdates
    import matplotlib.pyplot as plt

    aois = list(aois) if aois is not None else sorted(ts["aoi"].unique())
    start, end = claim_window(summary)
    fig, axes = plt.subplots(2 * len(aois), 1, figsize=(10, 3.6 * len(aois)), sharex=True, squeeze=False,
                             gridspec_kw={"height_ratios": [3, 2] * len(aois)})
    axes = axes[:, 0]
    for i, aoi in enumerate(aois):
        ax_v, ax_t = axes[2 * i], axes[2 * i + 1]
        d = ts[ts["aoi"] == aoi]
        usable = d["usable"] if "usable" in d else \
            d[["clear_fraction_s2", "clear_fraction_s1"]].max(axis=1).fillna(0.0) >= 0.6
        for ax in (ax_v, ax_t):
            ax.axvspan(pd.Timestamp(start), pd.Timestamp(end) + pd.Timedelta(days=1), color=WINDOW_COLOR,
                       alpha=0.6, lw=0, zorder=0, label="claim window" if ax is ax_v else None)
        for col, marker, color, label in (("vessels_at_berth", "o", "#475569", "vessels at berth"),
                                          ("large_vessels", "D", "#b91c1c",
                                           f"large vessels (>= {LARGE_VESSEL_M:g} m)")):
            ax_v.plot(d["date"][usable], d[col][usable], marker, color=color, ms=5, ls="none", label=label)
        # Unusable dates have no count (NaN, never 0): a hollow mark below the axis says "looked, saw too little".
        if (~usable).any():
            ax_v.plot(d["date"][~usable], np.full(int((~usable).sum()), -0.7), "o", mfc="white", mec="#6b7280",
                      ms=5, ls="none", label="date not usable (cloud): count unknown")
        stack_dates = d[d["clear_fraction_s2"].notna()]
        no_stack = stack_dates[~stack_dates["usable_stacks"]] if "usable_stacks" in d else stack_dates.iloc[:0]
        if len(no_stack):
            ax_t.plot(no_stack["date"], np.zeros(len(no_stack)), "o", mfc="white", mec="#c2410c", ms=4, ls="none",
                      clip_on=False, label="Sentinel-2 date not usable for stacks")
        for k, call in enumerate(c for c in summary.get("port_calls", []) if c["aoi"] == aoi):
            seen = [pd.Timestamp(x) for x in call["seen"]]
            if not seen:
                continue
            ax_v.plot([seen[0], seen[-1] + pd.Timedelta(days=1)], [-0.4, -0.4], lw=5, color="#2563eb", solid_capstyle="butt",
                      label="port call (seen at berth)" if k == 0 else None)
        ax_v.set_ylim(bottom=-1.0)
        ax_v.set_ylabel("vessels")
        ax_v.set_title(f"{aoi}: detections per usable observation date (hollow: not usable, count unknown)",
                       loc="left", fontsize=10)
        ax_v.legend(loc="upper left", fontsize=7, ncol=4, frameon=False)
        t = d.dropna(subset=["teu_estimate"])
        if len(t):
            ax_t.errorbar(t["date"], t["teu_estimate"], yerr=[t["teu_estimate"] - t["teu_low"],
                                                              t["teu_high"] - t["teu_estimate"]],
                          fmt="o", ms=4, color="#c2410c", ecolor="#fdba74", capsize=2,
                          label="container stacks (TEU, range)")
        if len(t) or len(no_stack):
            ax_t.legend(loc="upper left", fontsize=7, frameon=False)
        ax_t.set_ylabel("TEU")
        ax_t.set_ylim(bottom=0)
    axes[-1].xaxis.set_major_formatter(mdates.ConciseDateFormatter(axes[-1].xaxis.get_major_locator()))
    finish_figure(fig, f"Observed activity vs claim {summary.get('claim', '')} (window {start} to {end}, shaded)",
                  bool(summary.get("simulated_input")) or bool(ts["simulated"].any()))
    return fig


def plot_voyages(summary: dict):
    """Timeline of port calls per AOI (bars) and the inferred voyages between them (arrows).

    Each port call is drawn from its first to its last sighting, with thin
    whiskers out to the arrival and departure brackets (the neighbouring images
    without the vessel). Voyages join a departure call to an arrival call;
    the label gives the confidence.

    Returns
    -------
    matplotlib.figure.Figure
    """
    import matplotlib.dates as mdates
    import matplotlib.pyplot as plt

    calls = summary.get("port_calls", [])
    aois = sorted({c["aoi"] for c in calls} | {a for a in summary.get("coverage", {})})
    row = {a: i for i, a in enumerate(aois)}
    start, end = claim_window(summary)
    fig, ax = plt.subplots(figsize=(10, 1.8 + 1.0 * max(1, len(aois))))
    ax.axvspan(pd.Timestamp(start), pd.Timestamp(end) + pd.Timedelta(days=1), color=WINDOW_COLOR, alpha=0.6,
               lw=0, zorder=0, label="claim window")
    where = {}
    for k, c in enumerate(calls):
        y = row[c["aoi"]]
        seen = [pd.Timestamp(s) for s in c["seen"]] or [pd.Timestamp(c["arrive"][1] or c["depart"][0])]
        a0 = pd.Timestamp(c["arrive"][0]) if c["arrive"][0] else seen[0]
        d1 = pd.Timestamp(c["depart"][1]) if c["depart"][1] else seen[-1]
        ax.plot([a0, d1], [y, y], color="#93c5fd", lw=1.2)
        ax.plot([seen[0], seen[-1] + pd.Timedelta(days=1)], [y, y], color="#1d4ed8", lw=7,
                solid_capstyle="butt")
        # alternate above/below: calls a few days apart would print over each other
        ax.annotate(f"{c['length_m']:.0f} m", (seen[0], y), xytext=(0, 7 if k % 2 == 0 else -13),
                    textcoords="offset points", fontsize=7, ha="left")
        where[c["id"]] = (seen, y)
    for v in summary.get("voyages", []):
        if v["departure_call"] not in where or v["arrival_call"] not in where:
            continue
        (s0, y0), (s1, y1) = where[v["departure_call"]], where[v["arrival_call"]]
        ax.annotate("", xy=(s1[0], y1), xytext=(s0[-1] + pd.Timedelta(days=1), y0),
                    arrowprops={"arrowstyle": "->", "color": "#16a34a" if v["confidence"] >= 0.5 else "#9ca3af",
                                "lw": 1.4})
        if v["confidence"] >= 0.5:
            mid = s0[-1] + (s1[0] - s0[-1]) / 2
            ax.annotate(f"{v['confidence']:.2f}", (mid, (y0 + y1) / 2), xytext=(4, 0), textcoords="offset points",
                        fontsize=7, color="#166534")
    ax.set_yticks(range(len(aois)), aois)
    ax.set_ylim(-0.6, len(aois) - 0.4)
    ax.xaxis.set_major_formatter(mdates.ConciseDateFormatter(ax.xaxis.get_major_locator()))
    from matplotlib.lines import Line2D

    ax.legend(handles=[Line2D([], [], color="#1d4ed8", lw=6, label="vessel seen at berth"),
                       Line2D([], [], color="#93c5fd", lw=1.2, label="arrival/departure bracket"),
                       Line2D([], [], color="#16a34a", label="voyage, confidence >= 0.5"),
                       Line2D([], [], color="#9ca3af", label="voyage, confidence < 0.5")],
              loc="upper center", bbox_to_anchor=(0.5, -0.12), ncol=4, fontsize=7, frameon=False)
    finish_figure(fig, f"Port calls and inferred voyages (claim window {start} to {end} shaded;\n"
                       "confidence printed for voyages >= 0.5, all in the voyage table)",
                  bool(summary.get("simulated_input")))
    return fig
