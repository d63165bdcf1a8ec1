"""Time `berthwatch update`: the first night (backfill) and a rerun with nothing new; processing units per night.

The SIMULATED demo scenario (2 AOIs, Aug-Oct 2023) is rendered as a local static
catalog; `berthwatch update --source local` then runs as a CI job would run it, as
a separate process: once to backfill the whole period, then ``--reruns`` times with
nothing new (the figure the nightly job pays when no satellite passed).

    .venv/bin/python bench/bench_update.py [--scenario path.yaml] [--reruns 3] [--out bench.json]

Target: a rerun with nothing new under 2 s. The processing units per night of the
shipped AOIs come from the fetch's own estimator (``estimate_processing_units``) and
the scenario's revisits (Sentinel-2 every 5 days, Sentinel-1 every 12 days in 2023).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from berthwatch.pipeline.core.aoi import resolve_aois
from berthwatch.pipeline.core.contracts import S1, S2
from berthwatch.pipeline.fetch.sources.sentinelhub import estimate_processing_units
from berthwatch.pipeline.simulation.sample import generate_sample
from berthwatch.pipeline.simulation.scenario import resolve_scenario

#: Revisit of each sensor over one AOI in 2023 (S2A+S2B, S1A alone), days.
REVISIT_DAYS = {S2: 5, S1: 12}


def processing_units() -> dict:
    out = {}
    for aoi in resolve_aois(["rajin", "dunai"]):
        grid = aoi.grid()
        per_tile = {s: estimate_processing_units(s, grid) for s in (S2, S1)}
        out[aoi.id] = {"per_tile": {s: round(v, 3) for s, v in per_tile.items()},
                       "mean_per_night": round(sum(per_tile[s] / REVISIT_DAYS[s] for s in per_tile), 3),
                       "worst_night": round(sum(per_tile.values()), 3)}
    out["total_mean_per_night"] = round(sum(v["mean_per_night"] for v in out.values()), 3)
    out["total_mean_per_30_days"] = round(30 * out["total_mean_per_night"], 1)
    out["total_worst_night"] = round(sum(v["worst_night"] for k, v in out.items() if isinstance(v, dict)), 3)
    return out


def update(workdir: Path, catalog: Path, run_date: str, since: str) -> tuple[float, int]:
    cmd = [sys.executable, "-m", "berthwatch.pipeline.cli", "update", "--source", "local", "--catalog", str(catalog),
           "--data-dir", str(workdir / "data"), "--out-dir", str(workdir / "out"), "--run-date", run_date,
           "--since", since]
    r0, t0 = resource.getrusage(resource.RUSAGE_CHILDREN), time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True)
    elapsed = time.perf_counter() - t0
    r1 = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (r1.ru_utime - r0.ru_utime) + (r1.ru_stime - r0.ru_stime)
    if proc.returncode not in (0, 3):
        sys.stderr.write(proc.stderr[-2000:])
    return elapsed, cpu, proc.returncode


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--scenario", type=Path, help="scenario YAML (default: the demo's)")
    ap.add_argument("--reruns", type=int, default=3)
    ap.add_argument("--out", type=Path, help="write the results as JSON here")
    args = ap.parse_args(argv)
    sc = resolve_scenario(args.scenario)
    with tempfile.TemporaryDirectory(prefix="bench-update-") as tmp:
        work = Path(tmp)
        t0 = time.perf_counter()
        catalog = generate_sample(sc.path, work / "sample")
        sample_s = time.perf_counter() - t0
        night, since = sc.end.isoformat(), sc.start.isoformat()
        first_s, _, first_code = update(work, catalog, night, since)  # its workers' CPU is not counted
        reruns = [update(work, catalog, night, since) for _ in range(args.reruns)]
        n_dates = len(list((work / "out" / "detections").glob("*/*.geojson")))
    rerun_s, rerun_cpu = [r[0] for r in reruns], [r[1] for r in reruns]
    result = {
        "scenario": sc.name, "aoi_dates": n_dates, "cpus": os.cpu_count(),
        "load_average": round(os.getloadavg()[0], 2), "sample_s": round(sample_s, 2),
        "first_night_s": round(first_s, 2), "first_night_exit": first_code,
        "rerun_nothing_new_s": [round(s, 3) for s in rerun_s],
        "rerun_nothing_new_median_s": round(statistics.median(rerun_s), 3),
        # CPU seconds of the whole process (user + system): what the wall time is on an idle machine
        "rerun_nothing_new_cpu_median_s": round(statistics.median(rerun_cpu), 3),
        "rerun_exit_codes": [r[2] for r in reruns], "target_rerun_s": 2.0,
        "processing_units": processing_units(),
    }
    print(f"load average {result['load_average']} on {result['cpus']} CPUs (wall times grow with load; CPU less)")
    print(f"{sc.name}: {n_dates} AOI-dates; first night (backfill) {first_s:.1f} s; rerun with nothing new "
          f"{result['rerun_nothing_new_median_s']:.2f} s wall, {result['rerun_nothing_new_cpu_median_s']:.2f} s CPU "
          f"(median of {args.reruns}; target 2 s)")
    pu = result["processing_units"]
    print("processing units per night: " + ", ".join(f"{a} {pu[a]['mean_per_night']:.2f}" for a in ("rajin", "dunai"))
          + f", total {pu['total_mean_per_night']:.2f} (worst night {pu['total_worst_night']:.1f})")
    if args.out:
        args.out.write_text(json.dumps(result, indent=2) + "\n")
    return 0 if first_code in (0, 3) and all(r[2] == 0 for r in reruns) else 1


if __name__ == "__main__":
    raise SystemExit(main())
