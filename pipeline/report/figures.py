"""Report figures (matplotlib, Agg backend), returned as PNG bytes.

* per AOI, a time series of berthed vessels, large vessels and container-stack
  TEU (with its range), the claim window shaded and every observation marked
  (filled = usable, hollow = cloudy);
* a voyage timeline between the AOIs (port calls as bars with their arrival and
  departure brackets, voyages as arrows);
* a map of the detections of one date per AOI over the AOI's Sentinel-2
  median composite (the detect stage's reference, :mod:`.basemap`; a blank
  background when there is none), with a scale bar.
"""

from __future__ import annotations

import datetime as dt
import io
import math

import matplotlib

matplotlib.use("Agg")
import matplotlib.dates as mdates  # noqa: E402
import matplotlib.pyplot as plt  # noqa: E402
from matplotlib.patches import Polygon as MplPolygon  # noqa: E402
from shapely.geometry import shape  # noqa: E402

from . import analysis as an  # noqa: E402
from ..core.contracts import S1, S2  # noqa: E402

WINDOW_COLOR = "#fde68a"
USABLE, CLOUDY = "#1d4ed8", "#9ca3af"
SENSOR_MARK = {S2: ("o", "S2"), S1: ("s", "S1")}
plt.rcParams.update({"font.size": 9, "axes.spines.top": False, "axes.spines.right": False})


def _png(fig) -> bytes:
    """The figure as PNG, barely compressed: the report stamps and re-encodes it (:mod:`.stamp`)."""
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110, bbox_inches="tight", metadata={"Software": None},
                pil_kwargs={"compress_level": 1})
    plt.close(fig)
    return buf.getvalue()


def _shade_window(ax, window):
    ax.axvspan(window[0], window[1] + dt.timedelta(days=1), color=WINDOW_COLOR, alpha=0.6, lw=0, zorder=0)


def _date_axis(ax):
    ax.xaxis.set_major_locator(mdates.AutoDateLocator(minticks=4, maxticks=10))
    ax.xaxis.set_major_formatter(mdates.ConciseDateFormatter(ax.xaxis.get_major_locator()))


def timeseries_figure(r, aoi: str) -> bytes:
    """Counts and stack TEU per observation date of one AOI."""
    p, window = r.params, r.claim.window
    obs = [o for o in r.observations if o.aoi == aoi]
    fig, axes = plt.subplots(3, 1, figsize=(9, 5.6), sharex=True, gridspec_kw={"height_ratios": [3, 3, 1.3]})
    ax_v, ax_t, ax_o = axes
    for ax in axes:
        _shade_window(ax, window)
    use = [o for o in obs if o.usable(p)]
    # markers only: a line would suggest values on days nobody observed
    ax_v.plot([o.date for o in use], [sum(v.at_berth for v in o.vessels) for o in use], "o", ms=4,
              color="#64748b", label="vessels at berth")
    ax_v.plot([o.date for o in use], [len(o.large_at_berth(p)) for o in use], "D", ms=5, color="#b91c1c",
              label=f"large vessels at berth (>= {p.large_vessel_m:g} m)")
    ax_v.set_ylabel("vessels")
    ax_v.set_ylim(bottom=0)
    ax_v.yaxis.get_major_locator().set_params(integer=True)
    ax_v.legend(loc="upper left", fontsize=8, frameon=False, ncol=2)
    st = [o for o in obs if o.stack_usable(p) and o.teu]
    if st:
        est = [o.teu[0] for o in st]
        lo = [o.teu[0] - o.teu[1] for o in st]
        hi = [o.teu[2] - o.teu[0] for o in st]
        ax_t.errorbar([o.date for o in st], est, yerr=[lo, hi], fmt="o", ms=4, color="#c2410c", ecolor="#fdba74",
                      capsize=2, label="container stacks, TEU (range: stack height)")
    for s in r.steps:
        if s.aoi == aoi:
            ax_t.axvspan(s.before, s.after, color="#16a34a" if s.delta_area_m2 > 0 else "#7c3aed", alpha=0.18, lw=0)
            ax_t.annotate(f"{s.teu[1]:+.0f}", (s.before + (s.after - s.before) / 2, 0.02),
                          xycoords=("data", "axes fraction"), fontsize=6.5, ha="center", va="bottom",
                          color="#374151", rotation=90)
    ax_t.set_ylabel("TEU")
    ax_t.set_ylim(bottom=0)
    if st:
        ax_t.legend(loc="upper left", fontsize=8, frameon=False)
    else:
        ax_t.text(0.5, 0.5, "no usable Sentinel-2 stack measurement", transform=ax_t.transAxes, ha="center",
                  color="#6b7280")
    sensors = sorted({s for o in obs for s in o.clear}, reverse=True)
    for i, sensor in enumerate(sensors):
        marker, label = SENSOR_MARK.get(sensor, ("^", sensor))
        for o in obs:
            if sensor not in o.clear:
                continue
            ok = o.clear[sensor] >= p.min_clear
            ax_o.plot(o.date, i, marker, ms=5, mfc=USABLE if ok else "white", mec=USABLE if ok else CLOUDY)
    ax_o.set_yticks(range(len(sensors)), [SENSOR_MARK.get(s, ("", s))[1] for s in sensors])
    ax_o.set_ylim(-0.7, len(sensors) - 0.3)
    ax_o.set_ylabel("images")
    ax_o.set_title("images: filled = usable, hollow = cloudy / partial", loc="right", fontsize=7, color="#4b5563")
    _date_axis(ax_o)
    if r.period:
        ax_o.set_xlim(r.period[0] - dt.timedelta(days=1), r.period[1] + dt.timedelta(days=1))
    name = r.aoi_objects[aoi].name if aoi in r.aoi_objects else aoi
    ax_v.set_title(f"{name}: detections per observation date (claim window shaded)", loc="left")
    fig.align_ylabels(axes)
    return _png(fig)


def _pack_rows(calls, period) -> dict[int, int]:
    """Row index per call so calls overlapping in time at one AOI do not hide each other."""
    rows: list[dt.date] = []  # end of the last call in each row
    out = {}
    for c in sorted(calls, key=lambda c: c.arrive[0] or period[0]):
        start, end = c.arrive[0] or period[0], c.depart[1] or period[1]
        for i, last in enumerate(rows):
            if start >= last:
                rows[i], out[id(c)] = end, i
                break
        else:
            rows.append(end)
            out[id(c)] = len(rows) - 1
    return out


def voyages_figure(r) -> bytes:
    """Port calls per AOI lane (calls packed into rows) and inferred voyages between them."""
    p, window = r.params, r.claim.window
    lanes = list(r.aois)
    one = dt.timedelta(days=1)
    rows = {a: _pack_rows([c for c in r.calls if c.aoi == a], r.period) for a in lanes}
    n_rows = {a: max(rows[a].values(), default=0) + 1 for a in lanes}
    row_h, gap = 0.45, 1.6
    base, y0 = {}, 0.0
    for a in reversed(lanes):  # first lane on top
        base[a] = y0
        y0 += n_rows[a] * row_h + gap
    fig, ax = plt.subplots(figsize=(9.5, 1.0 + 0.55 * y0))
    _shade_window(ax, window)
    call_y = {}
    for c in r.calls:
        if c.aoi not in base:
            continue
        yy = base[c.aoi] + rows[c.aoi][id(c)] * row_h
        call_y[id(c)] = yy
        first, last = c.seen[0], c.seen[-1]
        a0 = c.arrive[0] or r.period[0]
        d1 = c.depart[1] or r.period[1]
        h = row_h * 0.6
        ax.barh(yy, (first - a0).days, left=a0, height=h, color="#bfdbfe", edgecolor="none")
        ax.barh(yy, (last - first).days + 0.6, left=first, height=h, color="#1e3a8a")
        ax.barh(yy, (d1 - last).days, left=last + dt.timedelta(days=0.6), height=h, color="#bfdbfe", edgecolor="none")
        ax.text(d1 + one * 0.3, yy, f"{c.length_m:.0f} m", fontsize=6.5, color="#1e3a8a", va="center")
    for i, v in enumerate(r.voyages):
        if id(v.departure) not in call_y or id(v.arrival) not in call_y:
            continue
        x0 = v.depart[0] + (v.depart[1] - v.depart[0]) / 2
        x1 = v.arrive[0] + (v.arrive[1] - v.arrive[0]) / 2
        ya, yb = call_y[id(v.departure)], call_y[id(v.arrival)]
        sgn = 1 if yb > ya else -1
        counted = v.confidence >= p.min_voyage_confidence
        color = "#b91c1c" if counted else "#9ca3af"
        ax.annotate("", xy=(x1, yb - sgn * row_h * 0.35), xytext=(x0, ya + sgn * row_h * 0.35),
                    arrowprops=dict(arrowstyle="-|>", color=color, lw=1.6, ls="-" if counted else "--"))
        label = f"{v.confidence:.2f}" + (f"\n{v.teu[1]:.0f} TEU" if v.teu else "")
        ax.text(x0 + (x1 - x0) * 0.5 + one * 0.4, ya + (yb - ya) * (0.35 + 0.3 * (i % 2)), label, fontsize=6.5,
                color="#7f1d1d" if counted else "#6b7280", va="center")
    for o in r.observations:
        if o.aoi in base:
            ok = o.usable(p)
            ax.plot(o.date, base[o.aoi] - row_h * 0.8, "|", ms=6, color=USABLE if ok else CLOUDY)
    ax.set_yticks([base[a] + (n_rows[a] - 1) * row_h / 2 for a in lanes],
                  [r.aoi_objects[a].name.split(" (")[0] if a in r.aoi_objects else a for a in lanes])
    ax.set_ylim(-row_h * 1.4, y0 - gap + row_h * 0.6)
    ax.set_xlim(r.period[0] - one, r.period[1] + one * 4)
    _date_axis(ax)
    ax.set_title("Port calls of large vessels (dark: seen; light: arrival / departure bracket) and inferred voyages\n"
                 "(red: counted, grey dashed: low confidence; label: confidence, TEU). Ticks: images "
                 "(blue usable, grey cloudy). Claim window shaded.", loc="left", fontsize=8)
    return _png(fig)


def _scale_bar(ax, lat0: float, width_deg: float):
    m_per_deg = an.M_PER_DEG * math.cos(math.radians(lat0))
    target = width_deg * m_per_deg / 4
    nice = [100, 200, 250, 500, 1000, 2000, 2500, 5000]
    length = max([n for n in nice if n <= target] or [nice[0]])
    x0, x1 = ax.get_xlim()
    y0, y1 = ax.get_ylim()
    bx, by = x0 + 0.05 * (x1 - x0), y0 + 0.06 * (y1 - y0)
    ax.plot([bx, bx + length / m_per_deg], [by, by], color="black", lw=3, solid_capstyle="butt")
    ax.text(bx + length / m_per_deg / 2, by + 0.02 * (y1 - y0),
            f"{length / 1000:g} km" if length >= 1000 else f"{length} m", ha="center", va="bottom", fontsize=8)


def _draw_geom(ax, geom, **kw):
    polys = getattr(geom, "geoms", [geom])
    for g in polys:
        if g.geom_type == "Polygon":
            ax.add_patch(MplPolygon(list(g.exterior.coords), closed=True, **kw))


def map_figure(r) -> bytes:
    """One panel per AOI: outline, vessel outlines and stacks of the AOI's map date."""
    p = r.params
    n = len(r.aois)
    fig, axes = plt.subplots(1, n, figsize=(4.6 * n, 4.8), squeeze=False)
    for ax, aoi in zip(axes[0], r.aois):
        obj = r.aoi_objects.get(aoi)
        d = r.map_dates.get(aoi)
        feats = r.features.get((aoi, d), []) if d else []
        basemap = r.basemaps.get(aoi)
        if basemap is not None:
            w, s, e, n = basemap.extent
            ax.imshow(basemap.rgba, extent=(w, e, s, n), origin="upper", interpolation="nearest", zorder=0)
        if obj is not None:
            _draw_geom(ax, obj.geometry, fill=False, ec="white" if basemap is not None else "#111827", lw=1.2,
                       ls="--")
            bounds = obj.geometry.bounds
        else:
            geoms = [shape(f["geometry"]) for f in feats]
            xs = [g.bounds for g in geoms] or [(0, 0, 1, 1)]
            bounds = (min(b[0] for b in xs), min(b[1] for b in xs), max(b[2] for b in xs), max(b[3] for b in xs))
        for f in feats:
            props = f.get("properties") or {}
            g = shape(f["geometry"])
            if props.get("kind") == "container_stack":
                _draw_geom(ax, g, fc="#fb923c", ec="#c2410c", lw=0.6, alpha=0.8)
            elif props.get("kind") == "vessel":
                large = props.get("at_berth") and (props.get("length_m") or 0) >= p.large_vessel_m
                _draw_geom(ax, g, fc="#dc2626" if large else "#60a5fa", ec="#7f1d1d" if large else "#1d4ed8", lw=0.6)
                if large:
                    c = g.centroid
                    ax.annotate(f"{props.get('length_m', 0):.0f} m", (c.x, c.y), xytext=(4, 4),
                                textcoords="offset points", fontsize=7, color="#7f1d1d")
        det = [shape(f["geometry"]) for f in feats]
        if det:
            # ships are ~100 m: zoom to the detections (at least 1.5 km across), not the whole AOI
            from shapely.geometry import MultiPolygon as _MP

            db = _MP([g for x in det for g in getattr(x, "geoms", [x])]).bounds
            cx, cy = (db[0] + db[2]) / 2, (db[1] + db[3]) / 2
            kx = an.M_PER_DEG * math.cos(math.radians(cy))
            half_w = max((db[2] - db[0]) / 2 + 300 / kx, 750 / kx)
            half_h = max((db[3] - db[1]) / 2 + 300 / an.M_PER_DEG, 750 / an.M_PER_DEG)
            half = max(half_w * kx, half_h * an.M_PER_DEG)
            bounds = (cx - half / kx, cy - half / an.M_PER_DEG, cx + half / kx, cy + half / an.M_PER_DEG)
        lat0 = (bounds[1] + bounds[3]) / 2
        pad_x, pad_y = (bounds[2] - bounds[0]) * 0.05, (bounds[3] - bounds[1]) * 0.05
        ax.set_xlim(bounds[0] - pad_x, bounds[2] + pad_x)
        ax.set_ylim(bounds[1] - pad_y, bounds[3] + pad_y)
        ax.set_aspect(1 / math.cos(math.radians(lat0)))
        ax.set_facecolor("#f8fafc")
        ax.tick_params(labelsize=7)
        ax.ticklabel_format(useOffset=False, style="plain")
        ax.xaxis.set_major_locator(plt.MaxNLocator(4))
        ax.set_xlabel("longitude (deg E)", fontsize=7)
        ax.set_ylabel("latitude (deg N)", fontsize=7)
        _scale_bar(ax, lat0, bounds[2] - bounds[0])
        ax.annotate("N", xy=(0.95, 0.95), xytext=(0.95, 0.84), xycoords="axes fraction", ha="center",
                    arrowprops=dict(arrowstyle="-|>", color="black"), fontsize=9)
        name = obj.name if obj is not None else aoi
        ax.set_title(f"{name}\n{d.isoformat() if d else 'no usable date'}", fontsize=9)
    from matplotlib.patches import Patch

    fig.legend(handles=[Patch(fc="#dc2626", ec="#7f1d1d", label=f"large vessel at berth (>= {p.large_vessel_m:g} m)"),
                        Patch(fc="#60a5fa", ec="#1d4ed8", label="other vessel"),
                        Patch(fc="#fb923c", ec="#c2410c", label="container stack"),
                        Patch(fill=False, ec="#111827", ls="--", label="AOI")],
               loc="lower center", ncol=4, fontsize=8, frameon=False, bbox_to_anchor=(0.5, -0.02))
    with_image = [a for a in r.aois if a in r.basemaps]
    background = ("over the AOI's Sentinel-2 median composite (true colour, all dates)" if with_image else
                  "on a blank background (no Sentinel-2 median composite)")
    fig.suptitle(f"Detections of one date {background}. Zoomed to the detections; dashed: AOI outline",
                 fontsize=9, y=1.0)
    fig.tight_layout(rect=(0, 0.05, 1, 0.97))
    return _png(fig)


def all_figures(r) -> dict[str, bytes]:
    """File name -> PNG bytes of every report figure."""
    out = {f"timeseries-{aoi}.png": timeseries_figure(r, aoi) for aoi in r.aois}
    out["voyages.png"] = voyages_figure(r)
    out["map.png"] = map_figure(r)
    return out
