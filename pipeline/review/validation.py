"""Helpers of ``03_detector_validation``: the vessel detectors' metrics on the labelled datasets, and chips of their errors.

The datasets are read with the readers and matching of
:mod:`..validation.sen2ships` and :mod:`..validation.opensarship`.
"""

from __future__ import annotations

import json
import math
import tempfile
from pathlib import Path
from typing import NamedTuple

import numpy as np
import pandas as pd

from ..core.errors import UserError
from .common import S1_DB_RANGE, finish_figure, show, stretch_true_colour, vv_db

__all__ = [
    "VALIDATORS", "metrics_table", "plot_validation_chips", "show", "validation_chips", "validation_metrics",
    "validation_scenes", "worst_scenes",
]


VALIDATORS = ("sen2ships", "opensarship")


def _validation_module(name: str):
    if name == "sen2ships":
        from ..validation import sen2ships as mod
    elif name == "opensarship":
        from ..validation import opensarship as mod
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

    from ..validation import sen2ships as s2v

    bands, transform, pixel_size, annotations, _ = s2v.read_port(scene_dir)
    vessels = detect_vessels_optical(bands, transform, pixel_size=pixel_size)
    boxes = np.array([a["bbox"] for a in annotations], dtype=float).reshape(-1, 4)
    inv = ~transform
    det_rc = np.array([inv @ (v.x, v.y) for v in vessels], dtype=float).reshape(-1, 2)
    matches = s2v.match(det_rc, boxes, s2v.MATCH_MARGIN_M / pixel_size)
    rgb = stretch_true_colour(bands)
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

    from ..validation import opensarship as o

    # _evaluate_chip is the validator's own per-chip detection and matching.
    results = [o._evaluate_chip(chip) for chip in o.load_scene(scene_dir)]
    inv = ~Affine(o.PIXEL_SIZE, 0, 0, 0, -o.PIXEL_SIZE, 0)
    chips = []
    for r in sorted((r for r in results if not r["matched"]), key=lambda r: -(r["ais_length_m"] or 0))[:n]:
        ais = f"AIS {r['ais_length_m']:.0f} m" if r["ais_length_m"] else "AIS length unknown"
        chips.append(ValidationChip("miss", scene_dir.name, vv_db(r["vv"]), None, None,
                                    f"{r['name']}: missed ({ais})"))
    scored = [r for r in results if r["matched"] and r["ais_length_m"]]
    for r in sorted(scored, key=lambda r: -abs(r["match"]["length_m"] - r["ais_length_m"]))[:n]:
        m = r["match"]
        chips.append(ValidationChip("length_error", scene_dir.name, vv_db(r["vv"]), None,
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
