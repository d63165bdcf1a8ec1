"""Time the report stage on 3 months x 2 AOIs, and the voyage inference inside it.

The SIMULATED demo (2 AOIs, Aug-Oct 2023) is run once (`berthwatch demo`, cached in the
output folder), then the report stage alone is timed ``--repeats`` times with ``--force``
(everything re-analysed and re-rendered), and the inference (four hidden-Markov-model
posteriors: window and baseline, each with its prior) on its own. The stage runs the
thumbnails, the inference and the figures at once (two threads besides the main one), so its
CPU time (all threads) is given with its wall time: on a loaded machine the wall time is the
CPU time divided by the cores it got.

    .venv/bin/python bench/bench_report.py [--demo-out demo-out] [--repeats 3] [--out bench.json]

Target (issue 15): the report stage under 5 s.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import time
from pathlib import Path


def _cpu_s() -> float:
    """CPU seconds of this process so far, all threads, user and system."""
    ru = resource.getrusage(resource.RUSAGE_SELF)
    return ru.ru_utime + ru.ru_stime


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--demo-out", type=Path, default=Path("demo-out"))
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--out", type=Path, default=Path("out/bench-report.json"))
    args = ap.parse_args()

    from berthwatch.pipeline.core.aoi import resolve_aois
    from berthwatch.pipeline.core.claims import resolve_claim
    from berthwatch.pipeline.core.options import RunOptions
    from berthwatch.pipeline.demo import DEMO_CLAIM, run_demo
    from berthwatch.pipeline.report import analysis as an
    from berthwatch.pipeline.report import run_report
    from berthwatch.pipeline.report.analysis.shuttle import infer_shuttle
    from berthwatch.pipeline.report.stage import detection_files, load_observations

    run_demo(None, args.demo_out)
    claim = resolve_claim(DEMO_CLAIM)
    opts = RunOptions(aois=resolve_aois(["rajin", "dunai"]), out_dir=args.demo_out, force=True,
                      data_dir=args.demo_out / "data")
    stage, cpu = [], []
    for _ in range(args.repeats):
        t0, c0 = time.perf_counter(), _cpu_s()
        run_report(opts, claim)
        stage.append(time.perf_counter() - t0)
        cpu.append(_cpu_s() - c0)
    obs, _, _ = load_observations(detection_files(args.demo_out, ["rajin", "dunai"], None, None))
    p = an.AnalysisParams()
    inference = []
    for _ in range(args.repeats):
        t0 = time.perf_counter()
        infer_shuttle(claim, obs, [], an.claimed_teu(claim, p), p)
        inference.append(time.perf_counter() - t0)
    result = {"report_stage_s": round(statistics.median(stage), 2), "report_stage_cpu_s": round(statistics.median(cpu), 2),
              "inference_s": round(statistics.median(inference), 2), "observations": len(obs),
              "target_report_stage_s": 5.0, "load": [round(x, 2) for x in os.getloadavg()]}
    print(f"report stage (3 months x 2 AOIs, {len(obs)} AOI-dates): {result['report_stage_s']} s "
          f"(target < 5 s; {result['report_stage_cpu_s']} CPU s in all threads); the voyage inference alone "
          f"{result['inference_s']} s; load {result['load'][0]}")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
