"""Time the detect stage per AOI-date on synthetic harbour tiles.

For each AOI grid (default: the shipped rajin and dunai AOIs) a short series of
Sentinel-1 + Sentinel-2 tiles is written with ``tests/tile_factory.py``; then
the whole stage runs once (reference mask + every date, from scratch, with
``--workers`` processes) and once more (everything up to date), and each date
is timed again in this process, step by step, in wall and CPU seconds.

    .venv/bin/python bench/bench_detect.py [--aoi rajin --aoi dunai] [--dates 6] [--out bench.json]

Target: <= 0.5 s per AOI-date (both sensors) on these grids.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import logging
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))

from tile_factory import harbour_series  # noqa: E402

from berthwatch.pipeline.core.geojson_io import write_feature_collection  # noqa: E402
from berthwatch.pipeline.detect.aoi_date import aoi_context, detect_aoi_date  # noqa: E402
from berthwatch.pipeline.detect.params import detector_params  # noqa: E402
from berthwatch.pipeline.detect.stage import default_workers, run_detect  # noqa: E402
from berthwatch.pipeline.detect.water_reference import ReferenceStore  # noqa: E402
from berthwatch.pipeline.core.aoi import resolve_aois  # noqa: E402
from berthwatch.pipeline.core.contracts import S1, S2, find_tiles  # noqa: E402
from berthwatch.pipeline.core.manifest import Manifest  # noqa: E402
from berthwatch.pipeline.core.options import RunOptions  # noqa: E402


def bench_aoi(aoi, n_dates: int, workdir: Path, workers: int) -> dict:
    grid = aoi.grid()
    dates = [dt.date(2023, 9, 1) + dt.timedelta(days=5 * i) for i in range(n_dates)]
    data, out = workdir / aoi.id / "data", workdir / aoi.id / "out"
    harbour_series(data, aoi.id, grid, dates, berthed_on=dates[1::3], sensors=(S1, S2), clouds_on=dates[2::4])
    opts = RunOptions(aois=[aoi], data_dir=data, out_dir=out, extra={"workers": workers})
    t0 = time.perf_counter()
    code = run_detect(opts)
    first = time.perf_counter() - t0
    t0 = time.perf_counter()
    run_detect(opts)
    rerun = time.perf_counter() - t0

    params = detector_params()
    tiles = find_tiles(data, [aoi.id])
    t0 = time.perf_counter()
    ref = ReferenceStore(workdir / "scratch", Manifest(workdir / "scratch", "bench")).build(
        aoi, grid, tiles, params)
    reference_s = time.perf_counter() - t0
    ctx = aoi_context(aoi, ref)
    per_date, cpu, steps = [], [], {}
    for d in dates:
        timings: dict = {}
        t0, c0 = time.perf_counter(), time.process_time()
        feats = detect_aoi_date(ctx, d, [t for t in tiles if t.date == d], params, timings)
        write_feature_collection(workdir / "scratch" / f"{d}.geojson", feats)
        total = time.perf_counter() - t0
        cpu.append(time.process_time() - c0)
        timings["features+write"] = total - sum(timings.values())
        per_date.append(total)
        for k, v in timings.items():
            steps.setdefault(k, []).append(v)
    return {
        "aoi": aoi.id, "grid": f"{grid.width}x{grid.height}", "dates": n_dates, "exit_code": code,
        "workers": workers, "load_average": round(os.getloadavg()[0], 2),
        "first_run_s": round(first, 3), "first_run_per_date_s": round(first / n_dates, 3),
        "rerun_s": round(rerun, 3), "reference_build_s": round(reference_s, 3),
        "per_date_mean_s": round(statistics.mean(per_date), 3), "per_date_max_s": round(max(per_date), 3),
        "per_date_cpu_s": round(statistics.mean(cpu), 3),
        "steps_mean_s": {k: round(statistics.mean(v), 3) for k, v in steps.items()},
    }


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--aoi", action="append", help="AOI id or GeoJSON (default: rajin, dunai)")
    ap.add_argument("--dates", type=int, default=6, help="dates per AOI (S1 + S2 each)")
    ap.add_argument("--workers", type=int, default=default_workers(), help="processes for the stage runs")
    ap.add_argument("--out", type=Path, help="write the results as JSON here")
    args = ap.parse_args(argv)
    logging.getLogger("berthwatch").setLevel(logging.WARNING)
    aois = resolve_aois(args.aoi or ["rajin", "dunai"])
    with tempfile.TemporaryDirectory(prefix="bench-detect-") as tmp:
        rows = [bench_aoi(a, args.dates, Path(tmp), args.workers) for a in aois]
    print(f"load average {os.getloadavg()[0]:.2f} on {os.cpu_count()} CPUs (wall times grow with load; CPU times less)")
    head = (f"{'aoi':8} {'grid':9} {'dates':>5} {'per date':>9} {'cpu':>6} {'max':>6} "
            f"{'1st run/date':>12} {'rerun':>6} {'reference':>9}")
    print(head)
    for r in rows:
        print(f"{r['aoi']:8} {r['grid']:9} {r['dates']:5d} {r['per_date_mean_s']:8.3f}s {r['per_date_cpu_s']:5.3f}s "
              f"{r['per_date_max_s']:5.3f}s {r['first_run_per_date_s']:11.3f}s {r['rerun_s']:5.3f}s "
              f"{r['reference_build_s']:8.3f}s")
        print("         steps: " + ", ".join(f"{k} {v:.3f}s" for k, v in r["steps_mean_s"].items()))
    if args.out:
        args.out.write_text(json.dumps(rows, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
