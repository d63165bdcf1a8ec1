"""Runtime of the Sentinel-2 container-stack detector per AOI-date.

Run: ``python bench/bench_stacks.py [--repeats 5] [--out bench_stacks.json]``.
Single-threaded on purpose (thread variables are set before numpy loads), so the
numbers compare across machines. Scenes are synthetic S2 L2A reflectance on the
Rajin (378 x 396 px) and Dunai (674 x 633 px) AOI grids and a 1000 x 1000
scene: concrete land with a multi-coloured container yard at a quay, a town of
roofs and streets, trees and sea. The median of ``--repeats`` calls is reported.
"""

from __future__ import annotations

import os

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "NUMEXPR_NUM_THREADS"):
    os.environ[_var] = "1"

import argparse  # noqa: E402
import platform  # noqa: E402
import statistics  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402
from affine import Affine  # noqa: E402

from berthwatch.detectors.stacks import detect_container_stacks  # noqa: E402
from berthwatch.pipeline.core.atomic import write_json_atomic  # noqa: E402
from berthwatch.pipeline.simulation import layout, simulate_s2 as sim  # noqa: E402

BANDS = ("B02", "B03", "B04", "B08", "B11")
#: (name, height, width) of the benchmarked grids.
GRIDS = (("rajin", 378, 396), ("dunai", 674, 633), ("scene_1000", 1000, 1000))
# The simulator's spectra, so the benchmarked scene looks like the demo's ports.
CONTAINERS = sim.CONTAINER_SPECTRA
CONCRETE, ASPHALT, ROOF, FOREST, WATER = (sim.CLASS_SPECTRA[c] for c in (
    layout.CONCRETE, layout.ASPHALT, layout.ROOF_RED, layout.FOREST, layout.WATER))


def synthetic_scene(height: int, width: int, seed: int = 0) -> dict:
    """Reflectance bands of a port: sea on the east third, yard at the quay, town and trees inland."""
    rng = np.random.default_rng(seed)
    img = np.broadcast_to(CONCRETE, (height, width, 5)).copy()
    quay = int(width * 0.65)
    img[:, quay:] = WATER
    # Yard: 10 x 40 px blocks with 4 px asphalt lanes, over the middle half of the quay.
    r0, r1 = height // 4, 3 * height // 4
    c0 = max(quay - 150, 0)
    img[r0:r1, c0:quay - 5] = ASPHALT
    for r in range(r0, r1 - 10, 14):
        for c in range(c0, quay - 45, 44):
            colours = CONTAINERS[rng.integers(0, len(CONTAINERS), (10, 40))]
            img[r:r + 10, c:c + 40] = colours
    # Town and trees inland.
    town = (slice(0, r0), slice(0, c0))
    pattern = rng.integers(0, 3, img[town].shape[:2])
    img[town] = np.choose(pattern[..., None], [ROOF, CONCRETE, ASPHALT])
    img[r1:, : c0 // 2] = FOREST
    img += rng.normal(0, 0.004, img.shape).astype(np.float32)
    img = np.clip(img, 0.001, 1.0)
    return {b: np.ascontiguousarray(img[..., i]) for i, b in enumerate(BANDS)}


def bench(repeats: int) -> list[dict]:
    rows = []
    transform = Affine(10.0, 0, 500000.0, 0, -10.0, 4700000.0)
    for name, h, w in GRIDS:
        bands = synthetic_scene(h, w)
        detect_container_stacks(bands, transform)  # warm-up (imports, caches)
        times = []
        for _ in range(repeats):
            t0 = time.perf_counter()
            _, stats = detect_container_stacks(bands, transform)
            times.append(time.perf_counter() - t0)
        med = statistics.median(times)
        rows.append({"grid": name, "height": h, "width": w, "pixels": h * w, "median_s": med,
                     "min_s": min(times), "mpix_per_s": h * w / med / 1e6,
                     "stack_area_m2": stats["stack_area_m2"], "n_stacks": stats["n_stacks"]})
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5, help="timed calls per grid (median reported)")
    parser.add_argument("--out", type=Path, default=None, help="write the results as JSON here")
    args = parser.parse_args(argv)
    rows = bench(args.repeats)
    print(f"{'grid':12s} {'size':>11s} {'median s':>9s} {'Mpix/s':>7s} {'stacks':>6s} {'area ha':>8s}")
    for r in rows:
        print(f"{r['grid']:12s} {r['height']:>5d}x{r['width']:<5d} {r['median_s']:9.3f} {r['mpix_per_s']:7.2f} "
              f"{r['n_stacks']:6d} {r['stack_area_m2'] / 1e4:8.1f}")
    if args.out:
        write_json_atomic(args.out, {"benchmark": "detect_container_stacks", "repeats": args.repeats,
                                     "threads": 1, "python": platform.python_version(),
                                     "machine": platform.machine(), "results": rows})
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
