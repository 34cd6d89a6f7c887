"""Test accuracy against file bytes: our runs (each recipe over its seeds) beside the published
points of the field's best compressed LeNets.

    python benchmarks/accuracy_vs_bytes.py RUN_DIR [RUN_DIR ...] [--out docs/accuracy-vs-bytes.png]
        [--json FILE]

Each RUN_DIR is a run's --out (its results.json), or the --out of `python -m tinyprune.run
--seeds ...` (one seed-S folder each). A point is a run's shared.tpz: its bytes and the
accuracy of the model decoded from it (results.json's "shared"), on the test set or, for a run
made with --validation, on the validation split; the table says which, and adds the learned
widths and the int8 model's accuracy; the picture shows the test runs only. Runs are grouped by
RUN_DIR and drawn as their mean with one standard deviation each way, and each seed as a dot;
the anchors are the papers' own numbers (PUBLISHED), which count less than our files do (see
the compression page of the docs).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import write_json  # noqa: E402

from tinyprune.config import VALIDATION_IMAGES  # noqa: E402
from tinyprune.experiments.seeds import format_mean_std, headlines, mean_std  # noqa: E402
from tinyprune.report.plots import pyplot, save_figure  # noqa: E402

# (method, bytes, test accuracy) as published; kB read as 1,000 bytes. GHS gives a range of
# sizes for one accuracy: both ends are drawn.
PUBLISHED = {
    "lenet5-caffe": [
        ("Deep Compression", 44_000, 0.9926),
        ("Soft weight-sharing", 10_600, 0.9903),
        ("Bayesian compr. (GHS)", 2_200, 0.990),
        ("Bayesian compr. (GHS)", 4_100, 0.990),
        ("EPR", 2_840, 0.990),
        ("MIRACLE", 1_520, 0.9904),
        ("MIRACLE", 3_000, 0.9931),
    ],
    "lenet-300-100": [
        ("Deep Compression", 27_000, 0.9842),
        ("Soft weight-sharing", 16_700, 0.9806),
        ("EPR", 8_560, 0.981),
    ],
}
SPLITS = ("test", "validation")  # by whether the run trained on VALIDATION_IMAGES images
TITLES = {"lenet5-caffe": "LeNet-5 (Caffe)", "lenet-300-100": "LeNet-300-100"}


def read_points(run_dir: Path) -> tuple[str, str, list[dict]]:
    """-> (the model, the split measured on: "test" or "validation", one point per seed:
    {"seed", "bytes", "accuracy"}) of a run's folder or of a --seeds folder."""
    folders = sorted(run_dir.glob("seed-*")) or [run_dir]
    points, models, splits = [], set(), set()
    for folder in folders:
        results_path = folder / "results.json"
        if not results_path.is_file():
            raise SystemExit(f"error: {results_path} is missing: is {run_dir} a finished run?")
        results = json.loads(results_path.read_text())
        dense = json.loads((folder / "result.json").read_text())
        seed, splits = dense["seed"], splits | {SPLITS[dense["train_images"] == VALIDATION_IMAGES]}
        models.add(results["model"])
        numbers = headlines(folder)
        points.append(
            {
                "seed": seed,
                "bytes": numbers["shared.tpz bytes"],
                "accuracy": numbers["shared.tpz accuracy"],
                "int8_accuracy": numbers["int8 accuracy"],
                "widths": results.get("structure", {}).get("widths"),
            }
        )
    if len(models) != 1 or len(splits) != 1:
        raise SystemExit(f"error: {run_dir} mixes models or splits ({models | splits})")
    return models.pop(), splits.pop(), points


def summary(run_dir: Path) -> dict:
    model, split, points = read_points(run_dir)
    return {
        "label": run_dir.name,
        "model": model,
        "split": split,
        "points": points,
        "bytes": mean_std([p["bytes"] for p in points]),
        "accuracy": mean_std([p["accuracy"] for p in points]),
        "int8_accuracy": mean_std([p["int8_accuracy"] for p in points]),
    }


def draw(groups: list[dict], out: Path) -> Path | None:
    """One panel a model: the anchors, our seeds as dots, their mean ± std as error bars."""
    plt = pyplot()
    if plt is None:
        return None
    models = [m for m in PUBLISHED if any(g["model"] == m for g in groups)]
    from matplotlib.ticker import LogLocator

    fig, axes = plt.subplots(1, len(models), figsize=(6.5 * len(models), 4.8), squeeze=False)
    for ax, model in zip(axes[0], models):
        for method, size, accuracy in PUBLISHED[model]:
            ax.scatter(size, 100 * accuracy, marker="s", color="0.45", zorder=2)
            ax.annotate(
                method,
                (size, 100 * accuracy),
                fontsize=7,
                rotation=30,
                xytext=(2, 4),
                textcoords="offset points",
            )
        for group in (g for g in groups if g["model"] == model):
            b, a = group["bytes"], group["accuracy"]
            ax.errorbar(
                b["mean"],
                100 * a["mean"],
                xerr=b["std"],
                yerr=100 * a["std"],
                fmt="o",
                capsize=3,
                zorder=3,
                label=f"tinyprune {group['label']} ({a['n']} seeds)",
            )
            ax.scatter(
                [p["bytes"] for p in group["points"]],
                [100 * p["accuracy"] for p in group["points"]],
                s=8,
                color="black",
                zorder=4,
            )
        ax.set_xscale("log")
        ax.xaxis.set_major_locator(LogLocator(subs=(1, 2, 5)))
        ax.xaxis.set_major_formatter(lambda x, _: f"{x / 1000:g} kB")
        ax.xaxis.set_minor_formatter(lambda x, _: "")
        ax.set_xlabel("bytes of the file (log scale)")
        ax.set_ylabel("test accuracy (%)")
        ax.set_title(TITLES[model])
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7, loc="best")
        ax.margins(x=0.12, y=0.12)
    return save_figure(fig, out)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("runs", type=Path, nargs="+", help="run folders or --seeds folders")
    parser.add_argument(
        "--out",
        type=Path,
        default=Path("docs/accuracy-vs-bytes.png"),
        help="the picture (of the runs measured on the test set); 'none': the table only",
    )
    parser.add_argument("--json", type=Path, default=None, help="write the points here too")
    args = parser.parse_args(argv)
    groups = [summary(run_dir) for run_dir in args.runs]
    print(
        f"{'run':>18} {'model':>14} {'split':>10} {'seeds':>5} {'widths':>22} {'bytes':>12} "
        f"{'accuracy':>13} {'int8':>13}"
    )
    for g in groups:
        widths = " / ".join("-".join(map(str, p["widths"] or ["-"])) for p in g["points"])
        print(
            f"{g['label']:>18} {g['model']:>14} {g['split']:>10} {g['accuracy']['n']:>5} "
            f"{widths:>22} {format_mean_std(g['bytes'], digits=0):>12} "
            f"{format_mean_std(g['accuracy'], 100):>13} "
            f"{format_mean_std(g['int8_accuracy'], 100):>13}"
        )
    if args.out.name != "none":
        draw([g for g in groups if g["split"] == "test"], args.out)
    if args.json is not None:
        write_json(args.json, {"published": PUBLISHED, "runs": groups})
    return 0


if __name__ == "__main__":
    sys.exit(main())
