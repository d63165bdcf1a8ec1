"""Overlay PNGs of detected container stacks on the sen2ships port scenes.

For each port folder of the sen2ships dataset the container-stack detector is
run with its default parameters (one set for all ports) and a true-colour
image is written with the detected stacks in cyan and, where drawn, the hand
outlines of the container terminals in yellow
(``tests/data/terminals_sen2ships.geojson``). Stats per port are returned so a
reviewer can read the inside-terminal share next to the picture.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np
import rasterio
from rasterio import features
from shapely.geometry import shape

from ...detectors.stacks import detect_container_stacks
from ..core.atomic import atomic_path

#: The sen2ships export stores reflectance x 65535 (checked: water B08 ~ 0.002-0.05,
#: vegetation B08 ~ 0.3-0.5, bright roofs ~ 0.4 with this factor; x 10000 would give
#: reflectances > 2).
SEN2SHIPS_DN_SCALE = 65535.0
SEN2SHIPS_BANDS = ("B02", "B03", "B04", "B08", "B11")
DEFAULT_TERMINALS = Path(__file__).resolve().parents[2] / "tests" / "data" / "terminals_sen2ships.geojson"


def load_sen2ships_port(port_dir: Path) -> tuple[dict, "rasterio.Affine"]:
    """Bands of one sen2ships port as reflectance float32 arrays, and the grid transform."""
    bands = {}
    transform = None
    for name in SEN2SHIPS_BANDS:
        path = Path(port_dir) / f"{name}.tif"
        if not path.exists():
            continue
        with rasterio.open(path) as src:
            bands[name] = src.read(1).astype(np.float32) / SEN2SHIPS_DN_SCALE
            transform = src.transform
    return bands, transform


def load_terminals(path: Path = DEFAULT_TERMINALS) -> dict[str, list]:
    """Hand-drawn terminal outlines (EPSG:3857) grouped by port name."""
    out: dict[str, list] = {}
    if not Path(path).exists():
        return out
    fc = json.loads(Path(path).read_text())
    for feat in fc["features"]:
        out.setdefault(feat["properties"]["port"], []).append(shape(feat["geometry"]))
    return out


def vessel_box_mask(port_dir: Path, shape_: tuple[int, int]) -> np.ndarray:
    """Boolean raster of the labelled vessel boxes of a sen2ships port (``vessels.json``).

    Boxes are axis-aligned pixel boxes drawn on true-colour images; a container
    ship alongside a quay carries real stacks on deck, which are not false
    alarms of a yard detector, so validation reports them apart.
    """
    mask = np.zeros(shape_, dtype=bool)
    path = Path(port_dir) / "vessels.json"
    if not path.exists():
        return mask
    for ann in json.loads(path.read_text()).get("annotations", []):
        x, y, w, h = ann["bbox"]
        mask[int(y):int(np.ceil(y + h)), int(x):int(np.ceil(x + w))] = True
    return mask


def terminal_mask(polygons: list, shape_: tuple[int, int], transform) -> np.ndarray:
    """Boolean raster of the terminal outlines on the band grid."""
    if not polygons:
        return np.zeros(shape_, dtype=bool)
    return features.rasterize([(g, 1) for g in polygons], out_shape=shape_, transform=transform).astype(bool)


def port_stats(stats: dict, bands: dict, terminals: np.ndarray, pixel_area: float,
               vessels: np.ndarray | None = None) -> dict:
    """Where the detected stack area lies relative to the terminals and land cover.

    With ``vessels`` (labelled vessel boxes), ``on_vessels_m2`` is the detected
    area on them (deck cargo), and the ``*_ashore`` numbers leave it out:
    ``inside_share_ashore`` is the terminal share of the stack area off the
    vessels, ``outside_m2_per_km2_other_land_ashore`` the false-alarm density on
    land that is neither terminal nor vessel.
    """
    mask = stats["stack_mask"]
    if vessels is None:
        vessels = np.zeros_like(mask)
    nir, green = bands["B08"], bands["B03"]
    water = (green - nir) / (green + nir + 1e-6) > 0.0
    land = ~water
    total = float(mask.sum() * pixel_area)
    inside = float((mask & terminals).sum() * pixel_area)
    other_land_km2 = float((land & ~terminals).sum() * pixel_area / 1e6)
    outside = total - inside
    on_vessels = float((mask & vessels & ~terminals).sum() * pixel_area)
    ashore = total - on_vessels
    return {
        "stack_area_m2": total,
        "inside_terminal_m2": inside,
        "outside_terminal_m2": outside,
        "inside_share": inside / total if total else float("nan"),
        "outside_share": outside / total if total else float("nan"),
        "terminal_area_m2": float(terminals.sum() * pixel_area),
        "terminal_coverage": inside / float(terminals.sum() * pixel_area) if terminals.any() else float("nan"),
        "outside_m2_per_km2_other_land": outside / other_land_km2 if other_land_km2 else float("nan"),
        "on_water_m2": float((mask & water).sum() * pixel_area),
        "on_vessels_m2": on_vessels,
        "inside_share_ashore": inside / ashore if ashore else float("nan"),
        "outside_m2_per_km2_other_land_ashore": (outside - on_vessels) / other_land_km2 if other_land_km2
        else float("nan"),
        "teu_estimate": stats["teu_estimate"],
        "teu_low": stats["teu_low"],
        "teu_high": stats["teu_high"],
        "n_stacks": stats["n_stacks"],
        "has_terminal_outline": bool(terminals.any()),
    }


def _render(path: Path, bands: dict, mask: np.ndarray, terminals: list, transform, title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rgb = np.dstack([bands["B04"], bands["B03"], bands["B02"]])
    rgb = np.clip(rgb / 0.3, 0, 1) ** 0.7
    h, w = mask.shape
    fig = plt.figure(figsize=(w / 100, h / 100 + 0.3), dpi=100)
    ax = fig.add_axes([0, 0, 1, h / (h + 30)])
    ax.imshow(rgb, interpolation="nearest")
    overlay = np.zeros((h, w, 4), dtype=np.float32)
    overlay[mask] = (0.0, 1.0, 1.0, 0.45)
    ax.imshow(overlay, interpolation="nearest")
    ax.contour(mask.astype(np.uint8), levels=[0.5], colors="cyan", linewidths=0.6)
    inv = ~transform
    for poly in terminals:
        xs, ys = poly.exterior.xy
        cols, rows = inv @ (np.asarray(xs), np.asarray(ys))
        ax.plot(np.asarray(cols) - 0.5, np.asarray(rows) - 0.5, color="yellow", lw=1.0)
    ax.set_xlim(-0.5, w - 0.5)
    ax.set_ylim(h - 0.5, -0.5)
    ax.axis("off")
    fig.text(0.01, 1 - 0.2 / (h / 100 + 0.3), title, fontsize=9, va="top")
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=100)
    plt.close(fig)


def render_stack_overlays(path: Path, out_dir: Path, terminals_path: Path = DEFAULT_TERMINALS, **params) -> dict:
    """Run the stack detector on every sen2ships port and write overlay PNGs.

    Parameters
    ----------
    path : Path
        The sen2ships folder (one sub-folder per port with B02..B11 GeoTIFFs).
    out_dir : Path
        Where ``<port>_stacks.png`` files are written (atomically).
    terminals_path : Path
        GeoJSON of terminal outlines (EPSG:3857) with a ``port`` property.
    **params
        Passed to :func:`detect_container_stacks` (default: its defaults).

    Returns
    -------
    dict
        Per port: the :func:`port_stats` numbers plus ``seconds`` (detector
        runtime), ``shape`` and ``png`` path.
    """
    path, out_dir = Path(path), Path(out_dir)
    terminals = load_terminals(terminals_path)
    results = {}
    for port_dir in sorted(p for p in path.iterdir() if (p / "B02.tif").exists()):
        port = port_dir.name
        bands, transform = load_sen2ships_port(port_dir)
        t0 = time.perf_counter()
        _, stats = detect_container_stacks(bands, transform, **params)
        seconds = time.perf_counter() - t0
        pixel_area = abs(transform.a * transform.e - transform.b * transform.d)
        polys = terminals.get(port, [])
        tmask = terminal_mask(polys, stats["stack_mask"].shape, transform)
        res = port_stats(stats, bands, tmask, pixel_area, vessel_box_mask(port_dir, tmask.shape))
        png = out_dir / f"{port}_stacks.png"
        title = (
            f"{port}: stacks {res['stack_area_m2'] / 1e4:.1f} ha, TEU {res['teu_estimate']:.0f} "
            f"[{res['teu_low']:.0f}-{res['teu_high']:.0f}]"
        )
        if polys:
            title += (f", inside terminals {100 * res['inside_share']:.0f}% "
                      f"({100 * res['inside_share_ashore']:.0f}% of the area off labelled vessels)")
        _render(png, bands, stats["stack_mask"], polys, transform, title)
        res.update({"seconds": seconds, "shape": list(stats["stack_mask"].shape), "png": str(png)})
        results[port] = res
    return results
