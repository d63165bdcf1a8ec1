"""What the review notebooks share: reading the stages' outputs, image chips and figure finishing.

The notebooks in ``notebooks/`` call the per-notebook modules of this package
and nothing else of the pipeline, so what a reviewer sees is read through the
stages' own contracts: tiles with :func:`..core.contracts.find_tiles` /
:func:`..core.contracts.read_tile` (several scenes of a date combined by
:func:`..detect.scenes.mosaic`, as the detect stage does), detections with
:func:`..core.geojson_io.read_detections`, and ``timeseries.csv``.

Coordinates: tiles are on the AOI's UTM grid; detections are stored in lon/lat
and reprojected to the chip's CRS before they are drawn. Every figure made
from simulated inputs carries :data:`SIMULATED_LABEL`.
"""

from __future__ import annotations

import datetime as dt
import os
from pathlib import Path
from typing import NamedTuple

import geopandas as gpd
import numpy as np
import pandas as pd
from pyproj import CRS

from ..core.aoi import AOI, available_aois
from ..core.contracts import S1, S2, find_tiles, polarisation_bands, read_item, read_tile, timeseries_path
from ..core.errors import UserError
from ..core.geojson_io import read_detections

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


def as_date(date) -> dt.date:
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


def notebook_dirs(notebooks_dir: str | Path = ".") -> tuple[Path, Path]:
    """``(OUT_DIR, DATA_DIR)`` the notebooks review, from the environment or the Makefile's layout.

    ``$BERTHWATCH_OUT_DIR`` and ``$BERTHWATCH_DATA_DIR`` when set. Otherwise the
    output folder is ``../out`` (``make run``/``make detect``) when it holds a
    ``timeseries.csv``, else ``../demo-out`` (``make demo``), relative to
    ``notebooks/``; and the tiles are ``<out>/data`` when that exists (the
    demo fetches there), else the ``data`` folder beside the output folder
    (``make fetch`` writes ``data/`` and ``out/`` side by side).
    """
    here = Path(notebooks_dir)
    env_out, env_data = os.environ.get("BERTHWATCH_OUT_DIR"), os.environ.get("BERTHWATCH_DATA_DIR")
    if env_out:
        out = Path(env_out)
    else:
        out = here / "../out" if (here / "../out" / "timeseries.csv").exists() else here / "../demo-out"
    if env_data:
        data = Path(env_data)
    else:
        data = out / "data" if (out / "data" / "tiles").is_dir() else out.parent / "data"
    return out, data


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
    date = as_date(date)
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


def load_timeseries(out_dir: Path) -> pd.DataFrame:
    """``timeseries.csv`` with ``date`` as datetime64 and ``simulated``, ``usable*`` as bool.

    Counts of dates that are not usable are NaN (unobserved, not 0).

    Raises
    ------
    UserError
        When the file is missing (run ``berthwatch detect`` first).
    """
    path = timeseries_path(Path(out_dir))
    if not path.exists():
        raise UserError(f"{path}: no time series; run `berthwatch detect` (or `make demo`) first")
    ts = pd.read_csv(path, parse_dates=["date"])
    for col in ("simulated", "usable", "usable_stacks", "usable_s2", "usable_s1"):
        if col in ts:
            ts[col] = ts[col].astype(str).str.lower().eq("true")
    return ts.sort_values(["aoi", "date"]).reset_index(drop=True)


# ---------------------------------------------------------------- imagery
def stretch_true_colour(bands: dict[str, np.ndarray]) -> np.ndarray:
    rgb = np.dstack([bands["B04"], bands["B03"], bands["B02"]]).astype(np.float32)
    finite = rgb[np.isfinite(rgb)]
    if finite.size == 0:
        return rgb
    lo, hi = np.percentile(finite, S2_STRETCH_PERCENTILES)
    return np.clip((rgb - lo) / max(hi - lo, 1e-6), 0.0, 1.0)


def vv_db(vv: np.ndarray) -> np.ndarray:
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
    date = as_date(date)
    chips = {}
    for sensor in sensors:
        found = combined_scene(data_dir, aoi, date, sensor)
        if found is None:
            continue
        combined, grid, simulated = found
        # Sentinel-1: the co-polarised channel, VV or HH (HH/HV and single-pol products).
        image = stretch_true_colour(combined.bands) if sensor == S2 else \
            vv_db(combined.bands[polarisation_bands(combined.bands)[0]])
        chips[sensor] = Chip(image, grid_extent(grid), CRS.from_user_input(grid.crs), tuple(combined.scene_ids),
                             simulated)
    return chips


def grid_extent(grid) -> tuple[float, float, float, float]:
    left, bottom, right, top = grid.bounds
    return left, right, bottom, top


def combined_scene(data_dir: Path, aoi: str, date: dt.date, sensor: str):
    """(mosaic of the sensor's scenes on the date as :func:`.detect.mosaic` makes it, grid, simulated), or None."""
    from ..detect.scenes import mosaic

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


def draw_outline(ax, geom, **kw) -> None:
    for g in getattr(geom, "geoms", [geom]):
        if g.is_empty or not hasattr(g, "exterior"):
            continue
        xs, ys = g.exterior.xy
        ax.plot(xs, ys, **kw)


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
