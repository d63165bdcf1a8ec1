"""Helpers of the review notebooks: the pipeline's outputs drawn over the pixels behind them.

The notebooks in ``notebooks/`` call these functions and nothing else of the
pipeline, so what a reviewer sees is read through the stages' own contracts:
tiles with :func:`.contracts.find_tiles` / :func:`.contracts.read_tile` (and
several scenes of a date combined by :func:`.detect.mosaic`, as the detect
stage does), detections with :func:`.geojson_io.read_detections`, the report's
``summary.json`` and ``timeseries.csv``, and the validation datasets with the
readers and matching of :mod:`.validation.sen2ships` and
:mod:`.validation.opensarship`.

Coordinates: tiles are on the AOI's UTM grid; detections are stored in lon/lat
and reprojected to the chip's CRS before they are drawn. Every figure made
from simulated inputs carries :data:`SIMULATED_LABEL`.
"""

from __future__ import annotations

import datetime as dt
import json
import math
import os
import tempfile
from pathlib import Path
from typing import NamedTuple

import geopandas as gpd
import numpy as np
import pandas as pd
from pyproj import CRS

from .aoi import AOI, available_aois
from .contracts import LARGE_VESSEL_M, S1, S2, find_tiles, read_item, read_tile, report_dir, timeseries_path
from .errors import UserError
from .geojson_io import read_detections

SIMULATED_LABEL = "SIMULATED DATA: not Sentinel imagery, not evidence"
SENSOR_NAME = {S2: "Sentinel-2 true colour", S1: "Sentinel-1 VV (dB)"}
#: Display range of Sentinel-1 VV backscatter: calm sea about -20 dB, ships above 0 dB.
S1_DB_RANGE = (-25.0, 5.0)
#: Percentiles of the Sentinel-2 true-colour stretch (shared by the three bands, so colours stay true).
S2_STRETCH_PERCENTILES = (2.0, 99.5)
VESSEL_COLOR = {True: "#ff3b30", False: "#00e5ff"}  # at berth / not at berth
STACK_COLOR = "#ffd60a"
ZONE_COLOR = "#ffffff"
WINDOW_COLOR = "#fde68a"
VESSEL_COLUMNS = ("vessel_id", "sensors", "length_m", "width_m", "heading_deg", "area_m2", "score", "at_berth",
                  "large", "distance_to_land_m", "lon", "lat", "scene")
STACK_COLUMNS = ("stack_id", "area_m2", "teu_estimate", "teu_low", "teu_high", "on_vessel", "scene")


class Chip(NamedTuple):
    """An image ready for ``imshow`` with its georeference.

    Attributes
    ----------
    image : numpy.ndarray
        ``(rows, cols, 3)`` true colour stretched to 0-1 (Sentinel-2) or
        ``(rows, cols)`` VV backscatter in dB (Sentinel-1); NaN = no data.
    extent : tuple of float
        ``(left, right, bottom, top)`` in ``crs`` units, the order ``imshow`` takes.
    crs : pyproj.CRS
        The tile's CRS (the AOI's UTM zone).
    scenes : tuple of str
        Scene ids the image was made from (several when a date is a mosaic).
    simulated : bool
        True when any of the scenes' STAC items says ``berthwatch:simulated``.
    """

    image: np.ndarray
    extent: tuple[float, float, float, float]
    crs: CRS
    scenes: tuple[str, ...] = ()
    simulated: bool = False


def _as_date(date) -> dt.date:
    if isinstance(date, dt.datetime):
        return date.date()
    if isinstance(date, dt.date):
        return date
    return dt.date.fromisoformat(str(date)[:10])


def default_out_dir(default: str | Path = "../demo-out") -> Path:
    """The output folder the notebooks review: ``$BERTHWATCH_OUT_DIR`` or ``default``.

    Parameters
    ----------
    default : str or Path
        Used when the environment variable is unset (the notebooks pass
        ``../demo-out``, where ``make demo`` writes, relative to ``notebooks/``).

    Returns
    -------
    Path
    """
    return Path(os.environ.get("BERTHWATCH_OUT_DIR") or default)


def aoi_by_id(aoi: str) -> AOI:
    """The built-in AOI ``aoi``; :class:`UserError` naming the known ones otherwise."""
    known = available_aois()
    if aoi not in known:
        raise UserError(f"AOI {aoi!r}: unknown; known AOIs: {', '.join(sorted(known))}")
    return known[aoi]


# ---------------------------------------------------------------- detections
def list_aois(out_dir: Path) -> list[str]:
    """AOIs that have a detections folder under ``out_dir``, sorted."""
    root = Path(out_dir) / "detections"
    return sorted(p.name for p in root.iterdir() if p.is_dir()) if root.is_dir() else []


def list_dates(out_dir: Path, aoi: str) -> list[dt.date]:
    """Dates with a detections file of ``aoi`` under ``out_dir``, sorted.

    Parameters
    ----------
    out_dir : Path
        Output folder of the detect stage (holds ``detections/<aoi>/<date>.geojson``).
    aoi : str
        AOI id.

    Returns
    -------
    list of datetime.date
    """
    dates = []
    for f in (Path(out_dir) / "detections" / aoi).glob("*.geojson"):
        try:
            dates.append(dt.date.fromisoformat(f.stem))
        except ValueError:
            continue
    return sorted(dates)


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


def load_detections_gdf(out_dir: Path, aoi: str, date, crs=None) -> gpd.GeoDataFrame:
    """Vessels and container stacks of one AOI and date as a GeoDataFrame.

    Parameters
    ----------
    out_dir : Path
        Output folder of the detect stage.
    aoi : str
        AOI id.
    date : datetime.date or str
        Observation date (ISO string accepted).
    crs : optional
        Reproject to this CRS (e.g. ``chip.crs``); default lon/lat (EPSG:4326).

    Returns
    -------
    geopandas.GeoDataFrame
        One row per feature after the summary, with the feature's properties as
        columns; vessels are numbered 1..n in ``vessel_id`` and stacks in
        ``stack_id`` (the labels drawn by :func:`plot_detections`). The
        ``aoi_summary`` properties are in ``gdf.attrs["summary"]``.

    Raises
    ------
    UserError
        When the file is missing or does not follow the detections contract.
    """
    date = _as_date(date)
    path = Path(out_dir) / "detections" / aoi / f"{date.isoformat()}.geojson"
    summary, feats = read_detections(path)
    if feats:
        gdf = gpd.GeoDataFrame.from_features(feats, crs="EPSG:4326")
    else:
        gdf = gpd.GeoDataFrame({"kind": pd.Series([], dtype=object)}, geometry=[], crs="EPSG:4326")
    for kind, col in (("vessel", "vessel_id"), ("container_stack", "stack_id")):
        is_kind = (gdf["kind"] == kind).to_numpy()
        gdf[col] = pd.Series(pd.NA, index=gdf.index, dtype="Int64")
        gdf.loc[is_kind, col] = np.arange(1, is_kind.sum() + 1)
    gdf.attrs["summary"] = summary
    return gdf.to_crs(crs) if crs is not None else gdf


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


# ---------------------------------------------------------------- imagery
def _stretch_true_colour(bands: dict[str, np.ndarray]) -> np.ndarray:
    rgb = np.dstack([bands["B04"], bands["B03"], bands["B02"]]).astype(np.float32)
    finite = rgb[np.isfinite(rgb)]
    if finite.size == 0:
        return rgb
    lo, hi = np.percentile(finite, S2_STRETCH_PERCENTILES)
    return np.clip((rgb - lo) / max(hi - lo, 1e-6), 0.0, 1.0)


def _vv_db(vv: np.ndarray) -> np.ndarray:
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(vv > 0, 10.0 * np.log10(vv), np.nan).astype(np.float32)


def scene_chips(data_dir: Path, aoi: str, date, sensors=(S2, S1)) -> dict[str, Chip]:
    """The images of one AOI and date, per sensor, ready to draw.

    Parameters
    ----------
    data_dir : Path
        Data folder of the fetch stage (holds ``tiles/``).
    aoi : str
        AOI id.
    date : datetime.date or str
        Observation date.
    sensors : sequence of str
        Sensors to load; a sensor without a tile on the date is left out.

    Returns
    -------
    dict
        ``{sensor: Chip}``. Sentinel-2: B04/B03/B02 with one linear stretch
        between the 2nd and 99.5th percentiles of all three bands (so a
        bright yard does not wash out and colours stay balanced). Sentinel-1:
        VV sigma0 in dB (draw with :data:`S1_DB_RANGE`). Several scenes of a
        sensor on the date are combined with :func:`.detect.mosaic`, exactly as
        the detect stage combines them.
    """
    date = _as_date(date)
    chips = {}
    for sensor in sensors:
        found = _combined_scene(data_dir, aoi, date, sensor)
        if found is None:
            continue
        combined, grid, simulated = found
        image = _stretch_true_colour(combined.bands) if sensor == S2 else _vv_db(combined.bands["VV"])
        chips[sensor] = Chip(image, _extent(grid), CRS.from_user_input(grid.crs), tuple(combined.scene_ids),
                             simulated)
    return chips


def _extent(grid) -> tuple[float, float, float, float]:
    left, bottom, right, top = grid.bounds
    return left, right, bottom, top


def _combined_scene(data_dir: Path, aoi: str, date: dt.date, sensor: str):
    """(mosaic of the sensor's scenes on the date as :func:`.detect.mosaic` makes it, grid, simulated), or None."""
    from .detect import mosaic

    tiles = find_tiles(Path(data_dir), [aoi], [sensor], date, date)
    if not tiles:
        return None
    scenes, simulated, grid = [], False, None
    for t in tiles:
        bands, grid = read_tile(t.path)
        item = read_item(t.path)
        simulated |= bool(item.get("properties", {}).get("berthwatch:simulated", False))
        scenes.append((t.scene_id, bands, item))
    return mosaic(sensor, scenes, np.ones((grid.height, grid.width), bool)), grid, simulated


def plot_chip(ax, chip: Chip, title: str | None = None) -> None:
    """Draw a chip with its georeference (metres of its CRS on the axes)."""
    if chip.image.ndim == 3:
        ax.imshow(np.nan_to_num(chip.image, nan=0.0), extent=chip.extent, interpolation="nearest")
    else:
        im = ax.imshow(chip.image, extent=chip.extent, cmap="gray", vmin=S1_DB_RANGE[0], vmax=S1_DB_RANGE[1],
                       interpolation="nearest")
        ax.figure.colorbar(im, ax=ax, shrink=0.7, pad=0.01, label="VV backscatter (dB)")
    ax.set_xlim(chip.extent[0], chip.extent[1])
    ax.set_ylim(chip.extent[2], chip.extent[3])
    ax.set_xticks([])
    ax.set_yticks([])
    if title:
        ax.set_title(title, fontsize=9, loc="left")


def _outline(ax, geom, **kw) -> None:
    for g in getattr(geom, "geoms", [geom]):
        if g.is_empty or not hasattr(g, "exterior"):
            continue
        xs, ys = g.exterior.xy
        ax.plot(xs, ys, **kw)


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
            _outline(ax, gpd.GeoSeries([zone.geometry], crs="EPSG:4326").to_crs(gdf.crs).iloc[0],
                     color=ZONE_COLOR, lw=0.8, ls="--")
    for _, st in gdf[gdf["kind"] == "container_stack"].iterrows():
        _outline(ax, st.geometry, color=STACK_COLOR, lw=0.9)
    for _, v in gdf[gdf["kind"] == "vessel"].iterrows():
        seen = _sensors_of(v)
        dotted = sensor is not None and sensor not in seen
        large = (v.get("length_m") or 0) >= LARGE_VESSEL_M
        _outline(ax, v.geometry, color=VESSEL_COLOR[bool(v.get("at_berth"))], lw=2.0 if large else 1.1,
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


def mark_simulated(fig, simulated: bool) -> None:
    """Stamp :data:`SIMULATED_LABEL` in red across the top of ``fig`` when ``simulated``."""
    if simulated:
        fig.text(0.5, 1.0 - 0.04 / fig.get_figheight(), SIMULATED_LABEL, ha="center", va="top", color="white",
                 fontsize=10, fontweight="bold", bbox={"facecolor": "#b91c1c", "edgecolor": "none", "pad": 3})


def finish_figure(fig, title: str, simulated: bool) -> None:
    """Title ``fig`` below the SIMULATED stamp (when ``simulated``) and lay it out without overlaps."""
    height = fig.get_figheight()
    stamp = 0.38 if simulated else 0.05  # inches
    lines = title.count("\n") + 1
    fig.suptitle(title, y=1.0 - stamp / height, va="top", fontsize=10.5)
    mark_simulated(fig, simulated)
    fig.tight_layout(rect=(0, 0, 1, 1.0 - (stamp + 0.2 * lines + 0.08) / height))


def show(fig, dpi: int = 100) -> None:
    """Display a figure in a notebook as a PNG and close it (no-op for ``None``).

    Renders the PNG itself instead of relying on ``plt.show()`` or the inline
    backend: the validation modules switch matplotlib to the Agg backend when
    they draw their overlays, after which neither shows anything in a
    notebook. Closing keeps the inline backend from showing the figure twice.
    """
    if fig is None:
        return
    import io

    import matplotlib.pyplot as plt
    from IPython.display import Image, display

    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi, bbox_inches="tight")
    plt.close(fig)
    display(Image(data=buf.getvalue(), format="png"))


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

    date = _as_date(date)
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

    from .detect import detector_params
    from .manifest import MANIFEST_DIR
    from .s2_reference import REFLECTANCE, normalised_stack_bands, reference_paths, unchanged_since_median

    date = _as_date(date)
    ref = Path(out_dir) / MANIFEST_DIR / "reference"
    paths = [*reference_paths(ref, aoi)[:2], ref / f"{aoi}.tif"]  # median, yards, reference water
    found = _combined_scene(data_dir, aoi, date, S2)
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
    extent = _extent(grid)
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
            _outline(axes[1], st.geometry, color=STACK_COLOR, lw=0.9)
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

    dates = [_as_date(d) for d in dates]
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


def load_timeseries(out_dir: Path) -> pd.DataFrame:
    """``timeseries.csv`` with ``date`` as datetime64 and ``simulated`` as bool.

    Raises
    ------
    UserError
        When the file is missing (run ``berthwatch detect`` first).
    """
    path = timeseries_path(Path(out_dir))
    if not path.exists():
        raise UserError(f"{path}: no time series; run `berthwatch detect` (or `make demo`) first")
    ts = pd.read_csv(path, parse_dates=["date"])
    ts["simulated"] = ts["simulated"].astype(str).str.lower().eq("true")
    return ts.sort_values(["aoi", "date"]).reset_index(drop=True)


def claim_window(summary: dict) -> tuple[dt.date, dt.date]:
    """The claim window ``(start, end)`` of a report summary."""
    start, end = summary["window"]
    return _as_date(start), _as_date(end)


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
        Two panels per AOI: vessel counts (hollow markers: less than half the
        AOI clear in every image of the date) with the detected port calls as
        bars, and TEU with its range.
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
        clear = d[["clear_fraction_s2", "clear_fraction_s1"]].max(axis=1).fillna(0.0) >= 0.5
        for ax in (ax_v, ax_t):
            ax.axvspan(pd.Timestamp(start), pd.Timestamp(end) + pd.Timedelta(days=1), color=WINDOW_COLOR,
                       alpha=0.6, lw=0, zorder=0, label="claim window" if ax is ax_v else None)
        for col, marker, color, label in (("vessels_at_berth", "o", "#475569", "vessels at berth"),
                                          ("large_vessels", "D", "#b91c1c",
                                           f"large vessels (>= {LARGE_VESSEL_M:g} m)")):
            ax_v.plot(d["date"][clear], d[col][clear], marker, color=color, ms=5, ls="none", label=label)
            ax_v.plot(d["date"][~clear], d[col][~clear], marker, mfc="white", mec=color, ms=5, ls="none")
        for k, call in enumerate(c for c in summary.get("port_calls", []) if c["aoi"] == aoi):
            seen = [pd.Timestamp(x) for x in call["seen"]]
            if not seen:
                continue
            ax_v.plot([seen[0], seen[-1] + pd.Timedelta(days=1)], [-0.4, -0.4], lw=5, color="#2563eb", solid_capstyle="butt",
                      label="port call (seen at berth)" if k == 0 else None)
        ax_v.set_ylim(bottom=-0.8)
        ax_v.set_ylabel("vessels")
        ax_v.set_title(f"{aoi}: detections per observation date (hollow: mostly cloudy)", loc="left", fontsize=10)
        ax_v.legend(loc="upper left", fontsize=7, ncol=4, frameon=False)
        t = d.dropna(subset=["teu_estimate"])
        if len(t):
            ax_t.errorbar(t["date"], t["teu_estimate"], yerr=[t["teu_estimate"] - t["teu_low"],
                                                              t["teu_high"] - t["teu_estimate"]],
                          fmt="o", ms=4, color="#c2410c", ecolor="#fdba74", capsize=2,
                          label="container stacks (TEU, range)")
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


# ---------------------------------------------------------------- validation
VALIDATORS = ("sen2ships", "opensarship")


def _validation_module(name: str):
    if name == "sen2ships":
        from .validation import sen2ships as mod
    elif name == "opensarship":
        from .validation import opensarship as mod
    else:
        raise UserError(f"validation dataset {name!r}: unknown; known: {', '.join(VALIDATORS)}")
    return mod


def validation_scenes(name: str, dataset_dir: Path) -> list[str]:
    """Scene (port) folders of a validation dataset that its validator reads, sorted."""
    marker = "vessels.json" if name == "sen2ships" else "Patch_Cal"
    root = Path(dataset_dir)
    return sorted(p.name for p in root.iterdir() if (p / marker).exists()) if root.is_dir() else []


def validation_metrics(name: str, dataset_dir: Path, out_dir: Path, scenes=None) -> dict:
    """Metrics of a validator: loaded from ``out_dir/metrics.json`` when present, else computed.

    Parameters
    ----------
    name : str
        ``"sen2ships"`` or ``"opensarship"``.
    dataset_dir : Path
        The dataset folder (``../shared/datasets/<name>``).
    out_dir : Path
        Where ``berthwatch validate`` wrote (or this writes) ``metrics.json`` and overlays.
    scenes : sequence of str, optional
        Restrict to these scenes. An existing ``metrics.json`` that has them all
        is filtered to them; otherwise the validator runs on just these scenes
        (through a temporary folder of links to them, the dataset is not copied)
        and ``metrics.json`` then holds only them.

    Returns
    -------
    dict
        ``{"overall": ..., "scenes": {scene: ...}, ...}`` as written by the
        validator; when filtered, ``overall`` is the file's (all scenes it was
        computed on) and ``scenes`` only the requested ones.
    """
    mod = _validation_module(name)
    out_dir = Path(out_dir)
    metrics_file = out_dir / "metrics.json"
    wanted = list(scenes) if scenes else None
    if metrics_file.exists():
        metrics = json.loads(metrics_file.read_text())
        if wanted is None or set(wanted) <= set(metrics["scenes"]):
            if wanted is not None:
                metrics = {**metrics, "scenes": {s: metrics["scenes"][s] for s in wanted}}
            return metrics
    validate = getattr(mod, f"validate_{name}")
    if wanted is None:
        return validate(Path(dataset_dir), out_dir)
    missing = [s for s in wanted if not (Path(dataset_dir) / s).is_dir()]
    if missing:
        raise UserError(f"{dataset_dir}: no scene(s) {', '.join(missing)}")
    with tempfile.TemporaryDirectory(prefix=f"berthwatch-{name}-") as tmp:
        for s in wanted:
            (Path(tmp) / s).symlink_to((Path(dataset_dir) / s).resolve(), target_is_directory=True)
        return validate(Path(tmp), out_dir)


def worst_scenes(metrics: dict, n: int = 2) -> list[str]:
    """The ``n`` scenes with the lowest recall (ties: lowest F1, then most false positives)."""
    def key(item):
        name, m = item
        return (m.get("recall") if m.get("recall") is not None else 1.0,
                m.get("f1") if m.get("f1") is not None else 1.0, -(m.get("fp") or 0), name)
    return [name for name, _ in sorted(metrics["scenes"].items(), key=key)[:n]]


def metrics_table(metrics: dict) -> pd.DataFrame:
    """Per-scene rows and an ``overall`` row of validation metrics (precision, recall, F1, counts, size errors)."""
    rows = {**metrics["scenes"], "overall": metrics["overall"]}
    cols = ["precision", "recall", "f1", "tp", "fp", "fn", "length_mae_m", "width_mae_m"]
    df = pd.DataFrame.from_dict(rows, orient="index")
    return df[[c for c in cols if c in df] + [c for c in df if c not in cols]].round(3)


class ValidationChip(NamedTuple):
    """A cut-out of a validation scene around one miss or false alarm.

    Attributes
    ----------
    kind : str
        ``"miss"`` (a labelled vessel with no detection), ``"false_alarm"``
        (a detection with no label; sen2ships only) or ``"length_error"``
        (the matched detections with the largest length error against AIS;
        OpenSARShip, where false alarms are not defined).
    scene : str
        Scene (port) name.
    image : numpy.ndarray
        True colour 0-1 (sen2ships) or VV dB (OpenSARShip), in pixel coordinates.
    label_box : tuple or None
        The labelled box ``(col, row, width, height)`` in chip pixels.
    outline : numpy.ndarray or None
        ``(n, 2)`` (col, row) vertices of the detection's outline in chip pixels.
    caption : str
        What the chip shows, with the numbers that ranked it.
    """

    kind: str
    scene: str
    image: np.ndarray
    label_box: tuple | None
    outline: np.ndarray | None
    caption: str


def _crop(image: np.ndarray, col: float, row: float, half: int):
    r0 = int(max(0, round(row) - half))
    c0 = int(max(0, round(col) - half))
    return image[r0:r0 + 2 * half, c0:c0 + 2 * half], c0, r0


def _outline_px(geom, inv) -> np.ndarray:
    ring = geom.exterior if geom.geom_type == "Polygon" else geom.convex_hull.exterior
    xs, ys = np.asarray(ring.coords).T
    cols, rows = inv @ (xs, ys)
    return np.column_stack([cols, rows])


def _sen2ships_chips(scene_dir: Path, n: int, half: int) -> list[ValidationChip]:
    from berthwatch.detectors.optical import detect_vessels_optical

    from .validation import sen2ships as s2v

    bands, transform, pixel_size, annotations, _ = s2v.read_port(scene_dir)
    vessels = detect_vessels_optical(bands, transform, pixel_size=pixel_size)
    boxes = np.array([a["bbox"] for a in annotations], dtype=float).reshape(-1, 4)
    inv = ~transform
    det_rc = np.array([inv @ (v.x, v.y) for v in vessels], dtype=float).reshape(-1, 2)
    matches = s2v.match(det_rc, boxes, s2v.MATCH_MARGIN_M / pixel_size)
    rgb = _stretch_true_colour(bands)
    missed = [j for j in range(len(boxes)) if j not in {j for _, j in matches}]
    false = [i for i in range(len(vessels)) if i not in {i for i, _ in matches}]
    chips = []
    # Worst misses are the longest labelled vessels; worst false alarms the most confident detections.
    for j in sorted(missed, key=lambda j: -max(boxes[j, 2], boxes[j, 3]))[:n]:
        x, y, w, h = boxes[j]
        img, c0, r0 = _crop(rgb, x + w / 2, y + h / 2, max(half, int(max(w, h))))
        size = max(w, h) * pixel_size
        chips.append(ValidationChip("miss", scene_dir.name, img, (x - c0, y - r0, w, h), None,
                                    f"missed: box {size:.0f} m"))
    for i in sorted(false, key=lambda i: -vessels[i].score)[:n]:
        v = vessels[i]
        col, row = det_rc[i]
        img, c0, r0 = _crop(rgb, col, row, max(half, int(v.length_m / pixel_size)))
        outline = _outline_px(v.outline, inv) - (c0, r0)
        chips.append(ValidationChip("false_alarm", scene_dir.name, img, None, outline,
                                    f"false alarm: {v.length_m:.0f} m, score {v.score:.2f}"))
    return chips


def _opensarship_chips(scene_dir: Path, n: int) -> list[ValidationChip]:
    from affine import Affine

    from .validation import opensarship as o

    # _evaluate_chip is the validator's own per-chip detection and matching.
    results = [o._evaluate_chip(chip) for chip in o.load_scene(scene_dir)]
    inv = ~Affine(o.PIXEL_SIZE, 0, 0, 0, -o.PIXEL_SIZE, 0)
    chips = []
    for r in sorted((r for r in results if not r["matched"]), key=lambda r: -(r["ais_length_m"] or 0))[:n]:
        ais = f"AIS {r['ais_length_m']:.0f} m" if r["ais_length_m"] else "AIS length unknown"
        chips.append(ValidationChip("miss", scene_dir.name, _vv_db(r["vv"]), None, None,
                                    f"{r['name']}: missed ({ais})"))
    scored = [r for r in results if r["matched"] and r["ais_length_m"]]
    for r in sorted(scored, key=lambda r: -abs(r["match"]["length_m"] - r["ais_length_m"]))[:n]:
        m = r["match"]
        chips.append(ValidationChip("length_error", scene_dir.name, _vv_db(r["vv"]), None,
                                    _outline_px(m["outline"], inv),
                                    f"{r['name']}: {m['length_m']:.0f} m vs AIS {r['ais_length_m']:.0f} m"))
    return chips


def validation_chips(name: str, dataset_dir: Path, scene: str, n: int = 4, half: int = 24) -> list[ValidationChip]:
    """Image chips of the worst errors of a validator on one scene.

    The detector runs with its defaults and its detections are matched to the
    labels by the validator's own code (:func:`.validation.sen2ships.read_port`
    and :func:`~.validation.sen2ships.match`; the per-chip evaluation of
    :mod:`.validation.opensarship`), so the chips show the errors the metrics count.

    Parameters
    ----------
    name : str
        ``"sen2ships"`` or ``"opensarship"``.
    dataset_dir : Path
        The dataset folder.
    scene : str
        Port (sen2ships) or scene folder name (OpenSARShip).
    n : int
        At most this many chips of each kind.
    half : int
        Half the chip side in pixels (grown to fit a large vessel; sen2ships only,
        OpenSARShip chips are shown whole).

    Returns
    -------
    list of ValidationChip
        sen2ships: the ``n`` longest missed labels, then the ``n`` most
        confident false alarms. OpenSARShip: the ``n`` longest missed AIS
        ships, then the ``n`` matched ships with the largest length error
        (false alarms are not defined on chips cut around AIS ships).
    """
    _validation_module(name)
    scene_dir = Path(dataset_dir) / scene
    if not scene_dir.is_dir():
        raise UserError(f"{scene_dir}: no such scene folder")
    return _sen2ships_chips(scene_dir, n, half) if name == "sen2ships" else _opensarship_chips(scene_dir, n)


def plot_validation_chips(chips: list[ValidationChip], ncols: int = 4, title: str = ""):
    """Grid of :class:`ValidationChip` with labels (dashed red boxes) and detections (magenta outlines).

    Returns
    -------
    matplotlib.figure.Figure or None
        None when ``chips`` is empty (nothing to show).
    """
    import matplotlib.pyplot as plt
    from matplotlib.patches import Rectangle

    if not chips:
        return None
    nrows = math.ceil(len(chips) / ncols)
    fig, axes = plt.subplots(nrows, ncols, figsize=(2.8 * ncols, 3.1 * nrows + 0.4), squeeze=False)
    for ax in axes.ravel():
        ax.set_axis_off()
    for ax, c in zip(axes.ravel(), chips):
        if c.image.ndim == 3:
            ax.imshow(c.image, interpolation="nearest")
        else:
            ax.imshow(c.image, cmap="gray", vmin=S1_DB_RANGE[0], vmax=S1_DB_RANGE[1], interpolation="nearest")
        if c.label_box is not None:
            x, y, w, h = c.label_box
            ax.add_patch(Rectangle((x - 0.5, y - 0.5), w, h, fill=False, ec="red", ls="--", lw=1.2))
        if c.outline is not None:
            ax.plot(c.outline[:, 0] - 0.5, c.outline[:, 1] - 0.5, color="magenta", lw=1.2)
        if c.image.ndim == 2:
            h, w = c.image.shape
            ax.plot([w / 2 - 0.5], [h / 2 - 0.5], "c+", ms=6)
        ax.set_title(c.caption, fontsize=8, color="#b91c1c" if c.kind == "miss" else "#6b21a8")
    finish_figure(fig, title or "worst errors: dashed red = label, magenta = detection", False)
    fig.subplots_adjust(hspace=0.3)  # tight_layout leaves no room for the captions of equal-aspect image rows
    return fig
