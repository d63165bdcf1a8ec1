"""`make bench`: run every benchmark script in its own process and collect the figures.

Each script prints a table and writes JSON to the path given by ``--out``; this runner
gathers them into one file. Timings are measured here, never asserted in tests.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
BENCHES = ["bench_cfar.py", "bench_detect.py", "bench_stacks.py", "bench_update.py", "bench_scale.py",
           "bench_report.py"]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--out", type=Path, default=Path("out/bench.json"))
    args = ap.parse_args()
    results, failed = {}, []
    env = dict(os.environ, OMP_NUM_THREADS="1", OPENBLAS_NUM_THREADS="1", MKL_NUM_THREADS="1")
    for name in BENCHES:
        script = HERE / name
        if not script.exists():
            print(f"bench: {name} missing, skipped", file=sys.stderr)
            continue
        with tempfile.TemporaryDirectory() as tmp:
            out = Path(tmp) / "result.json"
            print(f"== {name}", flush=True)
            proc = subprocess.run([sys.executable, str(script), "--out", str(out)], env=env)
            if proc.returncode != 0 or not out.exists():
                failed.append(name)
                continue
            results[name.removesuffix(".py")] = json.loads(out.read_text())
    args.out.parent.mkdir(parents=True, exist_ok=True)
    tmp_out = args.out.with_suffix(".json.tmp")
    tmp_out.write_text(json.dumps(results, indent=2) + "\n")
    os.replace(tmp_out, args.out)
    print(f"bench: figures in {args.out}")
    if failed:
        print(f"bench: failed: {', '.join(failed)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
