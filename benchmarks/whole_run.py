"""Whole runs as users run them: tinyprune's run command against PyTorch eager and torch.compile
scripts (benchmarks/torch_peer.py), each in its own process, alternated over several rounds.

    python benchmarks/whole_run.py [--rounds 3] [--epochs 3] [--models lenet5 lenet5-caffe]
                                   [--no-compile] [--fused] [--json PATH]

tinyprune: `python -m tinyprune.run --model M --epochs E --finetune-epochs 0 --sparsity 0`,
its epoch seconds read from the result.json it writes (`history[i].seconds`: the training steps
alone, the number the run prints); then inference over the 10,000 test images with the weights
it saved (benchmarks/tinyprune_infer.py, its own process). With --fused, "tinyprune fused"
races too: the same with `--fused` (each convolution, its pooling and ReLU as one layer,
tinyprune/nn/conv_pool.py). PyTorch: benchmarks/torch_peer.py, the same network, batch size,
optimizer and epochs, eager and with torch.compile.

Epoch 1 is left out of the comparison (torch.compile compiles in it); the others are the warm
epochs, compared by their best and their median over all rounds. Inference: the best and median
of each process's timed repeats. CPU s: the median CPU time of a contender's processes
(tinyprune: its run and its inference process; PyTorch: its one process). Each contender
runs in a fresh process with the environment this script has; OPENBLAS_CORETYPE and the load
average (/proc/loadavg, before and after each process) go into the JSON. MNIST comes from
$TINYPRUNE_DATA_DIR.
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

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import write_json  # noqa: E402

HERE = Path(__file__).resolve().parent
CONTENDERS = ["tinyprune", "torch eager", "torch.compile"]


def loadavg() -> list[float]:
    with open("/proc/loadavg") as f:
        return [float(v) for v in f.read().split()[:3]]


def cpu_seconds() -> float:
    """User + system CPU time of the finished child processes so far. On a busy machine the
    wall times of a process stretch with the load; its CPU time, the work done, much less."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def last_json(command: list[str]) -> tuple[dict, str]:
    """Run command; -> (the JSON object on its last line of output, all its output)."""
    done = subprocess.run(command, capture_output=True, text=True)
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(command)} failed:\n{done.stdout}\n{done.stderr}")
    return json.loads(done.stdout.strip().splitlines()[-1]), done.stdout


def run_tinyprune(
    model: str, epochs: int, repeats: int, tmp: Path, limit: list[str], fused: bool
) -> dict:
    out = tmp / f"run-{model}{'-fused' if fused else ''}"
    fused_option = ["--fused"] if fused else []
    command = [
        sys.executable,
        "-m",
        "tinyprune.run",
        "--model",
        model,
        "--epochs",
        str(epochs),
        "--finetune-epochs",
        "0",
        "--sparsity",
        "0",
        "--out",
        str(out),
        *limit,
        *fused_option,
    ]
    done = subprocess.run(command, capture_output=True, text=True)
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(command)} failed:\n{done.stdout}\n{done.stderr}")
    result = json.loads((out / "result.json").read_text())
    infer, _ = last_json(
        [
            sys.executable,
            str(HERE / "tinyprune_infer.py"),
            "--model",
            model,
            "--weights",
            str(out / "model.npz"),
            "--repeats",
            str(repeats),
            *fused_option,
        ]
    )
    ready = [line for line in done.stdout.splitlines() if line.startswith("numba kernels ready")]
    return {
        "epoch_seconds": [h["seconds"] for h in result["history"]],
        "inference_seconds": infer["inference_seconds"],
        "test_accuracy": result["test_accuracy"],
        "warm_up_line": ready[:1],
    }


def run_torch(model: str, epochs: int, repeats: int, compiled: bool, limit: list[str]) -> dict:
    command = [
        sys.executable,
        str(HERE / "torch_peer.py"),
        "--model",
        model,
        "--epochs",
        str(epochs),
        "--infer-repeats",
        str(repeats),
        *limit,
    ]
    command += ["--compile"] if compiled else []
    result, _ = last_json(command)
    return result


def summarise(runs: list[dict]) -> dict:
    """Warm epochs (all but the first of each run) and inference times, pooled over rounds."""
    warm = [s for r in runs for s in r["epoch_seconds"][1:]]
    infer = [s for r in runs for s in r["inference_seconds"]]
    return {
        "warm_epoch_best": min(warm),
        "warm_epoch_median": statistics.median(warm),
        "inference_best": min(infer),
        "inference_median": statistics.median(infer),
        "first_epochs": [r["epoch_seconds"][0] for r in runs],
        "process_cpu_median": statistics.median(r["process_cpu_seconds"] for r in runs),
    }


def print_table(model: str, summary: dict) -> None:
    base = summary["torch eager"]
    print(f"\n{model}: seconds; ratio = this / PyTorch eager")
    print(
        f"{'':15} {'warm epoch best':>15} {'median':>7} {'ratio':>6} {'ratio med':>9}   "
        f"{'inference best':>14} {'median':>7} {'ratio':>6} {'ratio med':>9}   {'CPU s':>6}"
    )
    for name, s in summary.items():
        print(
            f"{name:15} {s['warm_epoch_best']:15.2f} {s['warm_epoch_median']:7.2f} "
            f"{s['warm_epoch_best'] / base['warm_epoch_best']:5.2f}x "
            f"{s['warm_epoch_median'] / base['warm_epoch_median']:8.2f}x   "
            f"{s['inference_best']:14.3f} {s['inference_median']:7.3f} "
            f"{s['inference_best'] / base['inference_best']:5.2f}x "
            f"{s['inference_median'] / base['inference_median']:8.2f}x   "
            f"{s['process_cpu_median']:6.1f}"
        )


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--epochs", type=int, default=3, help="at least 2: epoch 1 is cold")
    parser.add_argument("--infer-repeats", type=int, default=5)
    parser.add_argument(
        "--models",
        nargs="+",
        default=["lenet5", "lenet5-caffe"],
        choices=["lenet5", "lenet5-caffe"],
    )
    parser.add_argument("--no-compile", action="store_true", help="leave torch.compile out")
    parser.add_argument(
        "--fused", action="store_true", help="race tinyprune's fused models (run --fused) too"
    )
    parser.add_argument(
        "--limit",
        type=int,
        default=None,
        help="train on the first N images only (to try the script quickly)",
    )
    parser.add_argument("--json", type=Path, default=None, help="also write the results here")
    args = parser.parse_args(argv)
    if args.epochs < 2:
        parser.error("--epochs must be at least 2: the first epoch is not compared")
    contenders = CONTENDERS[:2] if args.no_compile else CONTENDERS
    contenders = contenders + ["tinyprune fused"] if args.fused else contenders
    limit = [] if args.limit is None else ["--limit", str(args.limit)]
    result: dict = {
        "command": sys.argv,
        "rounds": args.rounds,
        "epochs": args.epochs,
        "limit": args.limit,
        "OPENBLAS_CORETYPE": os.environ.get("OPENBLAS_CORETYPE"),
        "OMP_WAIT_POLICY": os.environ.get("OMP_WAIT_POLICY"),
        "loadavg_start": loadavg(),
        "runs": [],
        "summary": {},
    }
    print(f"load average at start: {result['loadavg_start']}", flush=True)
    with tempfile.TemporaryDirectory(prefix="tinyprune-whole-run-") as tmp:
        for model in args.models:
            runs: dict[str, list[dict]] = {name: [] for name in contenders}
            for round_ in range(1, args.rounds + 1):
                for name in contenders:
                    before, start = loadavg(), time.perf_counter()
                    cpu = cpu_seconds()
                    if name.startswith("tinyprune"):
                        fused = name == "tinyprune fused"
                        r = run_tinyprune(
                            model, args.epochs, args.infer_repeats, Path(tmp), limit, fused
                        )
                    else:
                        r = run_torch(
                            model, args.epochs, args.infer_repeats, name == "torch.compile", limit
                        )
                    r.update(
                        model=model,
                        contender=name,
                        round=round_,
                        loadavg_before=before,
                        loadavg_after=loadavg(),
                        process_seconds=time.perf_counter() - start,
                        process_cpu_seconds=cpu_seconds() - cpu,
                    )
                    runs[name].append(r)
                    result["runs"].append(r)
                    print(
                        f"{model} round {round_} {name:14} epochs "
                        f"{', '.join(f'{s:.2f}' for s in r['epoch_seconds'])} s; inference "
                        f"best {min(r['inference_seconds']):.3f} s; CPU "
                        f"{r['process_cpu_seconds']:.1f} s; load {before[0]:.2f}",
                        flush=True,
                    )
            summary = {name: summarise(runs[name]) for name in contenders}
            result["summary"][model] = summary
            print_table(model, summary)
    result["loadavg_end"] = loadavg()
    print(f"\nload average at end: {result['loadavg_end']}")
    if args.json:
        write_json(args.json, result)
        print(f"wrote {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
