"""Helpers of ``01_review_detections``: one AOI-date's images with its detections drawn over them."""

from __future__ import annotations

import datetime as dt
import math
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
from pyproj import CRS

from ..core.aoi import AOI
from ..core.contracts import LARGE_VESSEL_M, S1, S2, find_tiles, timeseries_path
from ..core.errors import UserError
from .common import (
    S2_STRETCH_PERCENTILES, SENSOR_NAME, STACK_COLOR, STACK_COLUMNS, VESSEL_COLOR, VESSEL_COLUMNS, ZONE_COLOR, Chip,
    aoi_by_id, as_date, combined_scene, draw_outline, finish_figure, grid_extent, list_aois, list_dates,
    load_detections_gdf, load_timeseries, plot_chip, scene_chips, show,
)

__all__ = [
    "list_aois", "list_dates", "load_detections_gdf", "plot_date_grid", "plot_detections", "plot_review",
    "plot_stack_reference", "scene_chips", "show", "stack_table", "suggested_date", "tile_dates", "vessel_table",
]


def tile_dates(data_dir: Path, aoi: str, sensor: str) -> list[dt.date]:
    """Dates with at least one tile of ``sensor`` for ``aoi`` under ``data_dir``, sorted."""
    return sorted({t.date for t in find_tiles(Path(data_dir), [aoi], [sensor])})


def suggested_date(out_dir: Path, aoi: str, min_clear: float = 0.8) -> dt.date:
    """A good first date to review: clear, seen by most sensors, most large vessels.

    Ranks the AOI's rows of ``timeseries.csv`` observed at least ``min_clear``
    clear (by the clearest sensor) by number of sensors, then large vessels,
    then vessels at berth, then earliest date; a cloudy date is avoided because
    cloud edges are where false detections gather. Without a time series, the
    first date with detections.

    Raises
    ------
    UserError
        When ``aoi`` has no detections under ``out_dir``.
    """
    dates = list_dates(out_dir, aoi)
    if not dates:
        raise UserError(f"{Path(out_dir) / 'detections' / aoi}: no detections; run `berthwatch detect` "
                        "(or `make demo`) first")
    if timeseries_path(out_dir).exists():
        ts = load_timeseries(out_dir)
        ts = ts[ts["aoi"] == aoi].copy()
        ts["clear"] = ts[["clear_fraction_s2", "clear_fraction_s1"]].max(axis=1).fillna(0.0)
        ts["n_sensors"] = ts["sensors"].fillna("").str.split(";").map(len)
        pool = ts[ts["clear"] >= min_clear]
        pool = pool if len(pool) else ts
        if len(pool):
            order = pool.sort_values(["n_sensors", "large_vessels", "vessels_at_berth", "date"],
                                     ascending=[False, False, False, True])
            return order["date"].iloc[0].date()
    return dates[0]


def _sensors_of(vessel) -> list[str]:
    """Sensors that saw a vessel row (older files name only the one that measured it)."""
    seen = vessel.get("sensors")
    return list(seen) if isinstance(seen, (list, tuple)) and seen else [vessel.get("sensor")]


def vessel_table(gdf: gpd.GeoDataFrame) -> pd.DataFrame:
    """The vessels of :func:`load_detections_gdf` as a table, one row per ``vessel_id``.

    Columns are :data:`VESSEL_COLUMNS`: measurements in metres and degrees,
    ``sensors`` that saw the vessel, ``large`` (length >= ``LARGE_VESSEL_M``),
    centroid ``lon``/``lat`` and the ``scene`` it was measured in. Missing
    attributes are left empty.
    """
    v = gdf[gdf["kind"] == "vessel"]
    if len(v) == 0:
        return pd.DataFrame(columns=list(VESSEL_COLUMNS)).set_index("vessel_id")
    centroids = v.geometry.to_crs("EPSG:4326").representative_point()
    sensors = [_sensors_of(row) for _, row in v.iterrows()]
    out = pd.DataFrame({
        "vessel_id": v["vessel_id"].astype(int).to_numpy(),
        "sensors": [", ".join("S2" if s == S2 else "S1" if s == S1 else str(s) for s in (ss or []))
                    for ss in sensors],
        **{c: v[c].to_numpy() if c in v else None
           for c in ("length_m", "width_m", "heading_deg", "area_m2", "score", "at_berth")},
        "large": (v["length_m"] >= LARGE_VESSEL_M).to_numpy(),
        "distance_to_land_m": v["distance_to_land_m"].to_numpy() if "distance_to_land_m" in v else None,
        "lon": centroids.x.to_numpy(),
        "lat": centroids.y.to_numpy(),
        "scene": v["scene"].to_numpy() if "scene" in v else None,
    })
    out["at_berth"] = out["at_berth"].astype(bool)
    return out.set_index("vessel_id").round({"length_m": 1, "width_m": 1, "heading_deg": 0, "area_m2": 0,
                                              "score": 2, "distance_to_land_m": 0, "lon": 5, "lat": 5})


def stack_table(gdf: gpd.GeoDataFrame) -> pd.DataFrame:
    """The container stacks of :func:`load_detections_gdf`, one row per ``stack_id`` (:data:`STACK_COLUMNS`)."""
    s = gdf[gdf["kind"] == "container_stack"]
    cols = [c for c in STACK_COLUMNS if c in s]
    out = pd.DataFrame(s[cols].to_numpy() if len(s) else [], columns=cols)
    return out.set_index("stack_id") if "stack_id" in out else out


def plot_detections(ax, gdf: gpd.GeoDataFrame, sensor: str | None = None, aoi: AOI | None = None,
                    labels: bool = True, legend: bool = True) -> None:
    """Overlay vessels, berth flags, container stacks and berth zones on an axis.

    Parameters
    ----------
    ax : matplotlib.axes.Axes
        Axis already showing a chip in the same CRS as ``gdf``.
    gdf : geopandas.GeoDataFrame
        From :func:`load_detections_gdf` reprojected to the chip's CRS.
    sensor : str, optional
        The sensor of the image underneath: vessels that sensor did not see
        (found by the other sensor only) are drawn dotted, so a reviewer can
        check whether the image shows them.
    aoi : AOI, optional
        Draws the AOI's berth zones (dashed white) when it has any.
    labels : bool
        Write each vessel's ``vessel_id`` beside it (the index of :func:`vessel_table`).
    legend : bool
        Add a legend of the symbols.
    """
    from matplotlib.lines import Line2D

    if aoi is not None and gdf.crs is not None:
        for zone in aoi.zones_of("berth"):
            draw_outline(ax, gpd.GeoSeries([zone.geometry], crs="EPSG:4326").to_crs(gdf.crs).iloc[0],
                     color=ZONE_COLOR, lw=0.8, ls="--")
    for _, st in gdf[gdf["kind"] == "container_stack"].iterrows():
        draw_outline(ax, st.geometry, color=STACK_COLOR, lw=0.9)
    for _, v in gdf[gdf["kind"] == "vessel"].iterrows():
        seen = _sensors_of(v)
        dotted = sensor is not None and sensor not in seen
        large = (v.get("length_m") or 0) >= LARGE_VESSEL_M
        draw_outline(ax, v.geometry, color=VESSEL_COLOR[bool(v.get("at_berth"))], lw=2.0 if large else 1.1,
                 ls=":" if dotted else "-")
        if labels:
            x0, y0, x1, y1 = v.geometry.bounds
            ax.annotate(str(v["vessel_id"]), (x1, y1), xytext=(2, 2), textcoords="offset points", fontsize=7,
                        color=VESSEL_COLOR[bool(v.get("at_berth"))], fontweight="bold")
    if legend:
        handles = [Line2D([], [], color=VESSEL_COLOR[True], lw=1.5, label="vessel at berth"),
                   Line2D([], [], color=VESSEL_COLOR[False], lw=1.5, label="vessel not at berth"),
                   Line2D([], [], color="#888888", lw=2.5, label=f"thick: large (>= {LARGE_VESSEL_M:g} m)"),
                   Line2D([], [], color=STACK_COLOR, lw=1.2, label="container stack")]
        if sensor is not None:
            handles.append(Line2D([], [], color="#888888", ls=":", label="seen by the other sensor only"))
        if aoi is not None and aoi.zones_of("berth"):
            handles.append(Line2D([], [], color=ZONE_COLOR, ls="--", label="berth zone"))
        ax.legend(handles=handles, loc="lower left", fontsize=7, framealpha=0.75)


def _summary_line(summary: dict) -> str:
    teu = summary.get("teu_estimate")
    teu_text = f"; stacks ~{teu:,.0f} TEU ({summary.get('teu_low', 0):,.0f}-{summary.get('teu_high', 0):,.0f})" \
        if teu is not None else ""
    return (f"{summary.get('vessels', 0)} vessels, {summary.get('vessels_at_berth', 0)} at berth, "
            f"{summary.get('large_vessels', 0)} large{teu_text}")


def plot_review(out_dir: Path, data_dir: Path, aoi: str, date, sensors=(S2, S1)):
    """One figure: each sensor's image of the AOI and date with its detections.

    Parameters
    ----------
    out_dir, data_dir : Path
        Output folder of the detect stage and data folder of the fetch stage.
    aoi : str
        AOI id.
    date : datetime.date or str
        Observation date.
    sensors : sequence of str
        Panels to draw, when the date has a tile of that sensor.

    Returns
    -------
    matplotlib.figure.Figure
        One panel per sensor with an image (a note when there is none), the
        detections overlaid, and the counts of the detections file in the title.
    """
    import matplotlib.pyplot as plt

    date = as_date(date)
    chips = scene_chips(data_dir, aoi, date, sensors)
    aoi_obj = aoi_by_id(aoi)
    has_detections = date in list_dates(out_dir, aoi)
    n = max(1, len(chips))
    fig, axes = plt.subplots(1, n, figsize=(6.2 * n, 6.4), squeeze=False)
    summary = {}
    for ax, (sensor, chip) in zip(axes[0], chips.items()):
        plot_chip(ax, chip, f"{SENSOR_NAME[sensor]}\n{', '.join(chip.scenes)}")
        if has_detections:
            gdf = load_detections_gdf(out_dir, aoi, date, crs=chip.crs)
            summary = gdf.attrs["summary"]
            plot_detections(ax, gdf, sensor=sensor, aoi=aoi_obj)
    if not chips:
        axes[0, 0].text(0.5, 0.5, f"no tile of {aoi} on {date} under {data_dir}", ha="center",
                        transform=axes[0, 0].transAxes)
        axes[0, 0].set_axis_off()
    detections = _summary_line(summary) if has_detections else "no detections file for this date"
    finish_figure(fig, f"{aoi_obj.name}, {date.isoformat()}\n{detections}",
                  any(c.simulated for c in chips.values()) or bool(summary.get("simulated")))
    return fig


def plot_stack_reference(out_dir: Path, data_dir: Path, aoi: str, date):
    """What the container-stack detector saw on a date, beside the AOI's Sentinel-2 reference.

    Three panels on one colour stretch (the median's): the date as fetched,
    the date mapped onto the median composite (as the stack detector sees
    it, with the detected stacks; tinted where the date differs from the
    median, the only pixels this date classifies itself), and the median
    composite with the reference yards (where stacks stood on at least two
    dates) and the stacks found on the median itself. Needs the
    reference files the detect stage writes with Sentinel-2 history
    (``<out>/.berthwatch/reference/``); detector parameters are the defaults.
    """
    import matplotlib.pyplot as plt
    import rasterio

    from ..detect.params import detector_params
    from ..core.manifest import MANIFEST_DIR
    from ..detect.s2_reference import REFLECTANCE, normalised_stack_bands, reference_paths, unchanged_since_median

    date = as_date(date)
    ref = Path(out_dir) / MANIFEST_DIR / "reference"
    paths = [*reference_paths(ref, aoi)[:2], ref / f"{aoi}.tif"]  # median, yards, reference water
    found = combined_scene(data_dir, aoi, date, S2)
    if found is None or not all(p.exists() for p in paths):
        fig, ax = plt.subplots(figsize=(6, 1.5))
        ax.text(0.5, 0.5, f"no Sentinel-2 tile of {aoi} on {date}, or no Sentinel-2 reference under {ref}\n"
                "(single-scene mode: fewer than two dates)", ha="center", va="center", transform=ax.transAxes)
        ax.set_axis_off()
        return fig
    combined, grid, simulated = found
    with rasterio.open(paths[0]) as m, rasterio.open(paths[1]) as y, rasterio.open(paths[2]) as w:
        median, (yards, median_stacks), water = m.read(), y.read().astype(bool), w.read(1).astype(bool)
    reflectance = {b: combined.bands[b] for b in REFLECTANCE}
    params = detector_params()
    seen, fit = normalised_stack_bands(reflectance, combined.clear & ~water, median, params)
    lo, hi = np.nanpercentile(median[[2, 1, 0]], S2_STRETCH_PERCENTILES)

    def rgb(bands):
        img = np.dstack([bands["B04"], bands["B03"], bands["B02"]])
        return np.clip((img - lo) / max(hi - lo, 1e-6), 0.0, 1.0)

    crs = CRS.from_user_input(grid.crs)
    extent = grid_extent(grid)
    gdf = load_detections_gdf(out_dir, aoi, date, crs=crs) if date in list_dates(out_dir, aoi) else None
    fig, axes = plt.subplots(1, 3, figsize=(18, 6.4))
    panels = [(rgb(reflectance), f"{date}: as fetched ({', '.join(combined.scene_ids)})"),
              (rgb(seen), "as the stack detector saw it: mapped onto the median\n"
                          "gain " + "/".join(f"{g:.2f}" for g in fit["gains"]) + " (B02..B11)\n"
                          "offset " + "/".join(f"{o:+.3f}" for o in fit["offsets"]) + "\n"
                          "tinted: differs from the median (classified on this date)"
               if fit["applied"] else "not mapped onto the median (too few unchanged pixels)"),
              (rgb(dict(zip(REFLECTANCE, median))), "median composite: reference yards (solid),\n"
                                                     "stacks found on the median (dashed)")]
    for ax, (img, title) in zip(axes, panels):
        plot_chip(ax, Chip(img, extent, crs), title)
    if gdf is not None:
        for _, st in gdf[gdf["kind"] == "container_stack"].iterrows():
            draw_outline(axes[1], st.geometry, color=STACK_COLOR, lw=0.9)
    if fit["applied"]:
        changed = ~unchanged_since_median(seen, combined.clear & ~water, median, params) & combined.clear & ~water
        axes[1].imshow(np.ma.masked_where(~changed, changed), cmap="cool", vmin=0, vmax=1, alpha=0.35,
                       extent=extent, interpolation="nearest")
    axes[2].contour(yards.astype(float), [0.5], colors=STACK_COLOR, linewidths=0.9, origin="upper",
                    extent=extent)
    if median_stacks.any():
        axes[2].contour(median_stacks.astype(float), [0.5], colors=STACK_COLOR, linewidths=0.9, linestyles="--",
                        origin="upper", extent=extent)
    # Zoom on the yards and today's stacks (300 m around them).
    rows, cols = np.nonzero(yards)
    if rows.size:
        (x0, y0), (x1, y1) = grid.transform * (cols.min(), rows.max() + 1), grid.transform * (cols.max() + 1, rows.min())
        if gdf is not None and (gdf["kind"] == "container_stack").any():
            bx0, by0, bx1, by1 = gdf[gdf["kind"] == "container_stack"].total_bounds
            x0, y0, x1, y1 = min(x0, bx0), min(y0, by0), max(x1, bx1), max(y1, by1)
        for ax in axes:
            ax.set_xlim(max(x0 - 300, extent[0]), min(x1 + 300, extent[1]))
            ax.set_ylim(max(y0 - 300, extent[2]), min(y1 + 300, extent[3]))
    finish_figure(fig, f"{aoi_by_id(aoi).name}: container-stack radiometry, {date.isoformat()}", simulated)
    return fig


def plot_date_grid(out_dir: Path, data_dir: Path, aoi: str, dates, sensor: str = S2, ncols: int = 3):
    """Small multiples: one sensor's image and detections on several dates.

    Parameters
    ----------
    out_dir, data_dir : Path
        Output and data folders.
    aoi : str
        AOI id.
    dates : sequence of datetime.date or str
        Dates to show; dates without a tile of ``sensor`` get an empty panel saying so.
    sensor : str
        Sensor of the images.
    ncols : int
        Panels per row.

    Returns
    -------
    matplotlib.figure.Figure
    """
    import matplotlib.pyplot as plt

    dates = [as_date(d) for d in dates]
    aoi_obj = aoi_by_id(aoi)
    nrows = max(1, math.ceil(len(dates) / ncols))
    fig, axes = plt.subplots(nrows, ncols, figsize=(4.2 * ncols, 4.4 * nrows), squeeze=False)
    simulated = False
    for ax in axes.ravel():
        ax.set_axis_off()
    for ax, date in zip(axes.ravel(), dates):
        chip = scene_chips(data_dir, aoi, date, (sensor,)).get(sensor)
        if chip is None:
            ax.set_title(f"{date}: no {sensor} tile", fontsize=9, loc="left")
            continue
        ax.set_axis_on()
        simulated |= chip.simulated
        title = date.isoformat()
        if date in list_dates(out_dir, aoi):
            gdf = load_detections_gdf(out_dir, aoi, date, crs=chip.crs)
            plot_detections(ax, gdf, sensor=sensor, labels=False, legend=False)
            sm = gdf.attrs["summary"]
            title += (f": {sm.get('vessels', 0)} vessels ({sm.get('vessels_at_berth', 0)} at berth, "
                      f"{sm.get('large_vessels', 0)} large)")
            if sm.get("teu_estimate") is not None:
                title += f"\nstacks ~{sm['teu_estimate']:,.0f} TEU"
        plot_chip(ax, chip, title)
    finish_figure(fig, f"{aoi_obj.name}: {SENSOR_NAME[sensor]} by date\n(red: vessel at berth, cyan: not at berth, "
                       "thick: large, dotted: other sensor only, yellow: container stack)", simulated)
    return fig
