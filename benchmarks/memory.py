"""Peak memory (maximum resident set size) and wall time of a tinyprune run in a child process.

    python benchmarks/memory.py [--json PATH] [-- RUN ARGUMENTS...]

With no run arguments this is the default `python -m tinyprune.run` (10 epochs, prune, 5
fine-tuning epochs, about a minute or two on 2 cores); its output goes to a temporary folder
unless the arguments include --out. MNIST comes from $TINYPRUNE_DATA_DIR as usual.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import write_json  # noqa: E402


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--json", type=Path, default=None, help="also write the results here")
    parser.add_argument("run_args", nargs="*", help="arguments for tinyprune.run (after --)")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="tinyprune-memory-") as tmp:
        run_args = list(args.run_args)
        if "--out" not in run_args:
            run_args += ["--out", tmp]
        out = Path(run_args[run_args.index("--out") + 1])
        command = [sys.executable, "-m", "tinyprune.run", *run_args]
        print("running:", " ".join(command[1:]), flush=True)
        start = time.perf_counter()
        done = subprocess.run(command)
        wall = time.perf_counter() - start
        if done.returncode != 0:
            print(f"the run failed with exit code {done.returncode}", file=sys.stderr)
            return done.returncode
        # Linux reports ru_maxrss in KiB: the largest resident set of any waited-for child.
        peak_mib = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
        history = []
        for name in ("result.json", "results.json"):
            if (out / name).exists():
                history += [h["seconds"] for h in json.loads((out / name).read_text())["history"]]
    print(
        f"\npeak resident memory: {peak_mib:.0f} MiB; wall time {wall:.1f} s; "
        f"epoch seconds (training, then fine-tuning): {', '.join(f'{s:.2f}' for s in history)}"
    )
    if args.json:
        write_json(
            args.json,
            {
                "command": command[1:],
                "peak_rss_mib": peak_mib,
                "wall_seconds": wall,
                "epoch_seconds": history,
            },
        )
        print(f"wrote {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
