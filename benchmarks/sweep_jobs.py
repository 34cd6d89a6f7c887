"""Points on 1 worker and on 2: the wall time of the same sweep, and the same numbers.

    python benchmarks/sweep_jobs.py [--jobs 1,2] [--json PATH] [-- sweep options]

Runs `python -m tinyprune.sweep` once per --jobs value, each in a fresh --out and --cache-dir
(so each trains its dense models too), times it, and checks that every sweep.json is the same
as the first one (wall times aside). Default sweep: 2 seeds, oneshot and agp at 50% and 90%, 2
dense epochs and 1 fine-tuning epoch on full MNIST: 2 dense models and 8 points.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import machine_info, write_json  # noqa: E402

SWEEP = [
    "--seeds",
    "0,1",
    "--schedules",
    "oneshot,agp",
    "--sparsities",
    "0.5,0.9",
    "--epochs",
    "2",
    "--finetune-epochs",
    "1",
    "--rounds",
    "1",
]


def without_seconds(obj):
    if isinstance(obj, dict):
        return {k: without_seconds(v) for k, v in obj.items() if k != "seconds"}
    if isinstance(obj, list):
        return [without_seconds(v) for v in obj]
    return obj


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--jobs", default="1,2", help="comma-separated worker counts")
    parser.add_argument("--json", type=Path, default=None, help="also write the results here")
    parser.add_argument("sweep", nargs="*", default=SWEEP, help="options for the sweep")
    args = parser.parse_args()
    machine, rows, first = machine_info(os.cpu_count()), [], None
    print(f"python -m tinyprune.sweep {' '.join(args.sweep)}")
    print(f"{'jobs':>4} {'seconds':>9} {'vs 1 job':>9} {'same JSON':>10}")
    with tempfile.TemporaryDirectory() as tmp:
        for jobs in (int(j) for j in args.jobs.split(",")):
            out = Path(tmp) / f"jobs{jobs}"
            start = time.perf_counter()
            subprocess.run(
                [
                    sys.executable,
                    "-m",
                    "tinyprune.sweep",
                    *args.sweep,
                    "--jobs",
                    str(jobs),
                    "--out",
                    str(out),
                    "--cache-dir",
                    str(out / "cache"),
                ],
                check=True,
                stdout=subprocess.DEVNULL,
            )
            seconds = time.perf_counter() - start
            result = without_seconds(json.loads((out / "sweep.json").read_text()))
            first = first or (result, seconds)
            rows.append(
                {
                    "jobs": jobs,
                    "seconds": seconds,
                    "speedup": first[1] / seconds,
                    "same_json": result == first[0],
                }
            )
            print(
                f"{jobs:4} {seconds:9.1f} {first[1] / seconds:8.2f}x "
                f"{'yes' if result == first[0] else 'NO':>10}",
                flush=True,
            )
    with open("/proc/loadavg") as f:
        machine["load_average_1min_at_end"] = float(f.read().split()[0])
    print(
        f"load average (1 min): {machine.get('load_average_1min_at_start')} at the start, "
        f"{machine['load_average_1min_at_end']} at the end"
    )
    if args.json:
        write_json(args.json, {"machine": machine, "sweep": args.sweep, "rows": rows})
        print(f"written: {args.json}")


if __name__ == "__main__":
    main()
