"""Throughput and peak memory of the Sentinel-1 CFAR on a 10,000 x 10,000 scene.

Run: ``python bench/bench_cfar.py [--size 10000] [--out bench_cfar.json]``.
Single-threaded on purpose (thread variables are set before numpy loads), so the
numbers compare across machines. The scene is gamma speckle (ENL 4.4) on a
smooth gradient with a few hundred bright point-like ships.

Memory is reported two ways: the peak of Python-tracked allocations during the
call (tracemalloc, numpy buffers included) and the growth of the process's
maximum resident set size (ru_maxrss, which also sees allocator overhead but
cannot go down, so it is a lower bound on the true peak when the process was
already larger).
"""

from __future__ import annotations

import os

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "NUMEXPR_NUM_THREADS"):
    os.environ[_var] = "1"

import argparse  # noqa: E402
import json  # noqa: E402
import platform  # noqa: E402
import resource  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
import tracemalloc  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402

try:
    from berthwatch.detectors.cfar import cfar_two_parameter
except ImportError:  # running from a source tree without the editable install
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    from detectors.cfar import cfar_two_parameter


def simulated_scene(size: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    scene = np.empty((size, size), dtype=np.float32)
    ramp = np.linspace(0.02, 0.05, size, dtype=np.float32)
    for r0 in range(0, size, 1000):
        rows = scene[r0 : r0 + 1000]
        rows[:] = rng.standard_gamma(4.4, size=rows.shape, dtype=np.float32)
        rows *= ramp[None, :] / np.float32(4.4)
    for _ in range(300):
        r, c = rng.integers(10, size - 10, size=2)
        scene[r : r + 3, c : c + 12] = 3.0
    return scene


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=10_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args(argv)

    scene = simulated_scene(args.size)
    megapixels = scene.size / 1e6
    input_mb = scene.nbytes / 1e6
    cfar_two_parameter(scene[:2000, :2000])  # warm-up (imports, caches)

    times = []
    for _ in range(args.repeat):
        t0 = time.perf_counter()
        mask = cfar_two_parameter(scene)
        times.append(time.perf_counter() - t0)
        detections = int(mask.sum())
        del mask

    rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0
    tracemalloc.start()
    mask = cfar_two_parameter(scene)
    _, traced_peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    rss_after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0
    del mask

    best = min(times)
    result = {
        "shape": list(scene.shape),
        "dtype": str(scene.dtype),
        "input_mb": input_mb,
        "seconds_best": best,
        "seconds_all": times,
        "mpx_per_s": megapixels / best,
        "peak_traced_mb": traced_peak / 1e6,
        "peak_traced_over_input": traced_peak / scene.nbytes,
        "maxrss_growth_mb": rss_after - rss_before,
        "detections": detections,
        "threads": 1,
        "python": platform.python_version(),
        "numpy": np.__version__,
        "machine": platform.machine(),
    }
    rows = [
        ("scene", f"{args.size} x {args.size} float32 ({input_mb:.0f} MB)"),
        ("time (best of %d)" % args.repeat, f"{best:.3f} s"),
        ("throughput", f"{result['mpx_per_s']:.0f} Mpx/s"),
        ("peak traced memory", f"{result['peak_traced_mb']:.0f} MB ({result['peak_traced_over_input']:.2f} x input)"),
        ("max RSS growth", f"{result['maxrss_growth_mb']:.0f} MB"),
        ("detections", f"{detections}"),
    ]
    width = max(len(k) for k, _ in rows)
    for k, v in rows:
        print(f"{k:<{width}}  {v}")
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        tmp = args.out.with_name(f".{args.out.name}.tmp")
        tmp.write_text(json.dumps(result, indent=2) + "\n")
        os.replace(tmp, args.out)
    return result


if __name__ == "__main__":
    main()
