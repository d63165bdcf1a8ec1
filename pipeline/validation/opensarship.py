"""Validate the Sentinel-1 vessel detector on OpenSARShip chips.

OpenSARShip (Huang et al., 2018, IEEE JSTARS 11(1), "OpenSARShip: a dataset
dedicated to Sentinel-1 ship interpretation"): Sentinel-1 IW GRDH chips, one per
AIS-matched ship, the ship at the chip centre. Layout per scene folder::

    Patch_Cal/<Type>_x<cx>_y<cy>.tif   float32 sigma0 (linear), band 1 VH, band 2 VV,
                                       10 m pixels, no georeference
    Ship.xml                           one <ship> per chip (Center_x/Center_y in
                                       full-scene pixels; AIS Length / Width in m)

Polarisations: the product id in the scene folder's name says what the chips
hold (``1SDV``: band 1 VH, band 2 VV, as in the dataset; ``1SSV``: VV only;
``1SDH``: band 1 HV, band 2 HH; ``1SSH``: HH only); band descriptions naming
the polarisations take precedence; a folder without a product id is read by its
band count (2: VH, VV; 1: VV). The co-polarised band goes to the detector as
its first channel, the cross-polarised one (if any) as the second, and
``metrics.json`` records each scene's ``polarisations``.

Each chip goes through :func:`berthwatch.detectors.sar.detect_vessels_sar` with
the pipeline's defaults. A chip is a hit when a detection's centroid lies within
``max(30 m, AIS length / 2)`` of the chip centre (nearest one wins); its length
and width are compared with the AIS values. Other detections in a chip are
reported (``other_detections``) but not counted as false positives: chips are
cut around AIS ships, so there is no complete ground truth for other objects.
Consequently ``fp`` is 0 and ``precision`` is ``null`` (not measurable here),
and ``f1`` is ``null`` too.
"""

from __future__ import annotations

import math
import re
import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np

from ..core.atomic import atomic_path, write_json_atomic
from ..core.errors import UserError

__all__ = ["load_scene", "validate_opensarship", "format_metrics_table"]

PIXEL_SIZE = 10.0
CHIP_RE = re.compile(r"^(?P<type>.+)_x(?P<cx>\d+)_y(?P<cy>\d+)\.tif$")
#: Band order of the chips by product polarisation code (cross-pol first, as the dataset stores 1SDV).
PRODUCT_BANDS = {"SDV": ("VH", "VV"), "SSV": ("VV",), "SDH": ("HV", "HH"), "SSH": ("HH",)}
PRODUCT_RE = re.compile(r"_1(?P<code>S[SD][VH])_")


def _float(el, tag):
    node = el.find(tag)
    if node is None or node.text is None:
        return None
    try:
        return float(node.text)
    except ValueError:
        return None


def load_scene(scene_dir: Path) -> list[dict]:
    """Chips of one scene with their AIS record.

    Returns
    -------
    list of dict
        ``path``, ``type``, ``center_x``, ``center_y``, ``ais_length_m``,
        ``ais_width_m``, ``manual_length_m`` (None when the chip has no record).
    """
    scene_dir = Path(scene_dir)
    records = {}
    xml = scene_dir / "Ship.xml"
    if xml.exists():
        # The files are not always well-formed (one ends with ``<\ShipList>``),
        # so each <ship> element is parsed on its own.
        text = xml.read_text(encoding="utf-8", errors="replace")
        for block in re.findall(r"<ship>.*?</ship>", text, flags=re.S):
            try:
                ship = ET.fromstring(block)
            except ET.ParseError:  # one damaged record: its chip is scored without AIS sizes
                continue
            sar = ship.find("SARShipInformation")
            ais = ship.find("AISShipInformation")
            if sar is None:
                continue
            cx, cy = _float(sar, "Center_x"), _float(sar, "Center_y")
            if cx is None or cy is None:
                continue
            records[(int(cx), int(cy))] = {
                "ais_length_m": _float(ais, "Length") if ais is not None else None,
                "ais_width_m": _float(ais, "Width") if ais is not None else None,
                "manual_length_m": _float(sar, "Manual_Length"),
            }
    chips = []
    for tif in sorted((scene_dir / "Patch_Cal").glob("*.tif")):
        m = CHIP_RE.match(tif.name)
        if not m:
            continue
        cx, cy = int(m["cx"]), int(m["cy"])
        rec = records.get((cx, cy), {"ais_length_m": None, "ais_width_m": None, "manual_length_m": None})
        chips.append({"path": tif, "type": m["type"], "center_x": cx, "center_y": cy, **rec})
    return chips


def scene_polarisations(scene_dir: Path) -> tuple[str, ...] | None:
    """Band order the scene folder's product id implies (None without a product id)."""
    m = PRODUCT_RE.search(Path(scene_dir).name)
    return PRODUCT_BANDS[m["code"]] if m else None


def _read_chip(path: Path, expected: tuple[str, ...] | None = None):
    """Co-polarised band, cross-polarised band (or None) and the polarisation label of a chip."""
    import warnings

    import rasterio
    from rasterio.errors import NotGeoreferencedWarning

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", NotGeoreferencedWarning)
            with rasterio.open(path) as src:
                data = src.read().astype(np.float32)
                described = tuple((d or "").upper() for d in src.descriptions)
    except rasterio.errors.RasterioError as exc:
        raise UserError(f"{path}: not a readable GeoTIFF ({str(exc).splitlines()[0]})") from None
    if set(described) <= {"VV", "VH", "HH", "HV"} and len(set(described)) == len(described):
        names = described
    elif expected is not None:
        names = expected
    else:
        names = PRODUCT_BANDS["SDV"] if len(data) == 2 else PRODUCT_BANDS["SSV"]
    if len(names) != len(data):
        raise UserError(f"{path}: {len(data)} band(s), but the product holds {'+'.join(names)} "
                        f"({len(names)} band(s))")
    bands = dict(zip(names, data))
    co = "VV" if "VV" in bands else "HH" if "HH" in bands else None
    if co is None:
        raise UserError(f"{path}: no co-polarised band (VV or HH) among {'+'.join(names)}")
    cross = {"VV": "VH", "HH": "HV"}[co]
    label = co + (f"+{cross}" if cross in bands else "")
    return bands[co], bands.get(cross), label


def _evaluate_chip(chip: dict) -> dict:
    from ...detectors.sar import detect_vessels_sar

    vv, vh, polarisations = _read_chip(chip["path"], chip.get("expected_bands"))
    h, w = vv.shape
    # North-up metric grid with the origin at the top-left corner; the chip
    # centre is the centre of the middle pixel.
    vessels = detect_vessels_sar(vv, vh, pixel_size=PIXEL_SIZE)
    cx, cy = (w / 2.0) * PIXEL_SIZE, -(h / 2.0) * PIXEL_SIZE
    ais_len = chip["ais_length_m"]
    radius = max(30.0, (ais_len or 0.0) / 2.0)
    best, best_d = None, math.inf
    dets = []
    for v in vessels:
        d = math.hypot(v.x - cx, v.y - cy)
        dets.append({"x": v.x, "y": v.y, "length_m": v.length_m, "width_m": v.width_m,
                     "score": v.score, "distance_m": d, "outline": v.outline})
        if d <= radius and d < best_d:
            best, best_d = len(dets) - 1, d
    return {
        "name": chip["path"].name,
        "shape": (h, w),
        "ais_length_m": ais_len,
        "ais_width_m": chip["ais_width_m"],
        "matched": best is not None,
        "match": dets[best] if best is not None else None,
        "detections": dets,
        "vv": vv,
        "polarisations": polarisations,
    }


def _summary(results: list[dict]) -> dict:
    tp = sum(r["matched"] for r in results)
    fn = len(results) - tp
    len_err = [abs(r["match"]["length_m"] - r["ais_length_m"]) for r in results
               if r["matched"] and r["ais_length_m"]]
    wid_err = [abs(r["match"]["width_m"] - r["ais_width_m"]) for r in results
               if r["matched"] and r["ais_width_m"]]
    signed = [r["match"]["length_m"] - r["ais_length_m"] for r in results
              if r["matched"] and r["ais_length_m"]]
    recall = tp / len(results) if results else None
    return {
        "precision": None,
        "recall": recall,
        "f1": None,
        "tp": tp,
        "fp": 0,
        "fn": fn,
        "length_mae_m": float(np.mean(len_err)) if len_err else None,
        "length_rmse_m": float(np.sqrt(np.mean(np.square(signed)))) if signed else None,
        "length_bias_m": float(np.mean(signed)) if signed else None,
        "width_mae_m": float(np.mean(wid_err)) if wid_err else None,
        "chips": len(results),
        "other_detections": sum(len(r["detections"]) - int(r["matched"]) for r in results),
        "polarisations": sorted({r["polarisations"] for r in results}),
    }


def _overlay(results: list[dict], title: str, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    n = len(results)
    cols = min(10, max(1, math.ceil(math.sqrt(n))))
    rows = math.ceil(n / cols)
    fig, axes = plt.subplots(rows, cols, figsize=(2.0 * cols, 2.2 * rows), squeeze=False)
    for ax in axes.ravel():
        ax.axis("off")
    for ax, r in zip(axes.ravel(), results):
        h, w = r["shape"]
        with np.errstate(divide="ignore"):
            img = 10 * np.log10(np.maximum(r["vv"], 1e-6))
        extent = (0, w * PIXEL_SIZE, -h * PIXEL_SIZE, 0)
        ax.imshow(img, cmap="gray", vmin=-25, vmax=5, extent=extent)
        for i, d in enumerate(r["detections"]):
            is_match = r["matched"] and d is r["match"]
            geoms = getattr(d["outline"], "geoms", [d["outline"]])
            for g in geoms:
                xs, ys = g.exterior.xy
                ax.plot(xs, ys, color="lime" if is_match else "orange", lw=0.8)
        ax.plot([w * PIXEL_SIZE / 2], [-h * PIXEL_SIZE / 2], "c+", ms=5)
        est = f"{r['match']['length_m']:.0f}" if r["matched"] else "miss"
        ais = f"{r['ais_length_m']:.0f}" if r["ais_length_m"] else "?"
        ax.set_title(f"AIS {ais} / est {est} m", fontsize=6, color="black" if r["matched"] else "red")
        ax.set_xlim(extent[0], extent[1])
        ax.set_ylim(extent[2], extent[3])
    co = "/".join(sorted({r["polarisations"].split("+")[0] for r in results})) or "VV"
    fig.suptitle(f"{title}\n{co} dB [-25, 5]; green = match, orange = other", fontsize=8)
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=110)
    plt.close(fig)


def validate_opensarship(path: Path, out_dir: Path) -> dict:
    """Run the SAR detector on every OpenSARShip chip and write metrics.

    Parameters
    ----------
    path : Path
        Folder holding one sub-folder per scene (``Patch_Cal/`` + ``Ship.xml``).
    out_dir : Path
        Receives ``metrics.json`` and one ``<scene>.png`` chip mosaic per scene.

    Returns
    -------
    dict
        ``{"overall": {...}, "scenes": {scene: {...}}}`` with ``precision``
        (null: false positives are not defined on chips), ``recall``, ``f1``
        (null), ``tp``, ``fp`` (0), ``fn``, ``length_mae_m``,
        ``width_mae_m`` and extra fields (``length_rmse_m``,
        ``length_bias_m``, ``chips``, ``other_detections``).
    """
    path, out_dir = Path(path), Path(out_dir)
    scenes = sorted(d for d in path.iterdir() if (d / "Patch_Cal").is_dir())
    if not scenes:
        raise UserError(f"{path}: no OpenSARShip scene folders (<scene>/Patch_Cal/*.tif)")
    chips_by_scene = {}
    for scene in scenes:
        chips = load_scene(scene)
        if not chips:
            raise UserError(f"{scene / 'Patch_Cal'}: no chips named <Type>_x<cx>_y<cy>.tif")
        for chip in chips:
            chip["expected_bands"] = scene_polarisations(scene)
        chips_by_scene[scene] = chips
    metrics = {"overall": None, "scenes": {}}
    everything = []
    # Every chip is read before anything is written: a bad chip changes no output.
    results_by_scene = {scene: [_evaluate_chip(chip) for chip in chips] for scene, chips in chips_by_scene.items()}
    out_dir.mkdir(parents=True, exist_ok=True)
    for scene, results in results_by_scene.items():
        everything.extend(results)
        metrics["scenes"][scene.name] = _summary(results)
        _overlay(results, scene.name, out_dir / f"{scene.name}.png")
    metrics["overall"] = _summary(everything)
    write_json_atomic(out_dir / "metrics.json", metrics)
    return metrics


def format_metrics_table(metrics: dict) -> str:
    """Plain-text table of the metrics (one row per scene, then overall)."""

    def fmt(v, spec):
        return "-" if v is None else format(v, spec)

    head = f"{'scene':<40} {'chips':>5} {'tp':>4} {'fn':>4} {'recall':>7} {'len MAE':>8} {'len bias':>8} {'wid MAE':>8}"
    lines = [head, "-" * len(head)]
    rows = list(metrics["scenes"].items()) + [("overall", metrics["overall"])]
    for name, m in rows:
        lines.append(
            f"{name[:40]:<40} {m.get('chips', m['tp'] + m['fn']):>5} {m['tp']:>4} {m['fn']:>4} "
            f"{fmt(m['recall'], '.3f'):>7} {fmt(m['length_mae_m'], '.1f'):>8} "
            f"{fmt(m.get('length_bias_m'), '+.1f'):>8} {fmt(m['width_mae_m'], '.1f'):>8}"
        )
    return "\n".join(lines)
