"""Tables printed to the terminal."""

from __future__ import annotations

from tinyprune.experiments.points import Point
from tinyprune.experiments.seeds import format_mean_std


def print_layers(rows: list[dict]) -> None:
    """The sparsity_report rows as a table; mult-adds are per image, of non-zero weights."""
    keys = ("weights", "nonzero", "mult_adds", "mult_adds_kept")
    total = {"name": "total", **{key: sum(r[key] for r in rows) for key in keys}}
    print(f"{'layer':8} {'weights':>8} {'non-zero':>9} {'sparsity':>9} {'mult-adds kept':>20}")
    for r in rows + [total]:
        print(
            f"{r['name']:8} {r['weights']:8d} {r['nonzero']:9d} "
            f"{1 - r['nonzero'] / r['weights']:9.2%} {r['mult_adds_kept']:>10,} "
            f"({r['mult_adds_kept'] / r['mult_adds']:6.1%})"
        )


def _cell(point: dict) -> str:
    """Test accuracy in %, with ± its std over seeds when there are several."""
    text = f"{100 * point['test_accuracy']:.2f}"
    return text if point.get("n", 1) == 1 else f"{text} ± {100 * point['std']:.2f}"


def _dense(result: dict) -> str:
    text = f"dense {result['dense_accuracy']:.2%}"
    if len(result.get("seeds", [])) > 1:
        text += f" ± {result['dense_accuracy_std']:.2%}, mean ± std over seeds {result['seeds']}"
    return text


def print_sweep(result: dict) -> None:
    """sweep.json as a table: a row per sparsity, a column per schedule, test accuracy in %."""
    schedules = list(result["schedules"])
    width = 11 if len(result.get("seeds", [])) < 2 else 16
    print(
        f"\ntest accuracy (%) after {result['finetune_epochs']} fine-tuning epochs, "
        f"{result['method']} pruning; {_dense(result)}"
    )
    print(f"{'sparsity':>8}" + "".join(f"{s:>{width}}" for s in schedules))
    sparsities = sorted({p["sparsity"] for points in result["schedules"].values() for p in points})
    for sparsity in sparsities:
        cells = []
        for schedule in schedules:
            hit = [p for p in result["schedules"][schedule] if p["sparsity"] == sparsity]
            cells.append(f"{_cell(hit[0]) if hit else '':>{width}}")
        print(f"{sparsity:8.0%}" + "".join(cells))


def print_sensitivity(result: dict) -> None:
    """sensitivity.json as a table: a row per layer, a column per sparsity, accuracy in %."""
    sparsities = [p["sparsity"] for p in next(iter(result["layers"].values()))]
    width = 7 if len(result.get("seeds", [])) < 2 else 15
    print(f"\ntest accuracy (%) with one layer pruned, {_dense(result)}")
    print(f"{'layer':8}" + "".join(f"{s:>{width}.0%}" for s in sparsities))
    for layer, points in result["layers"].items():
        print(f"{layer:8}" + "".join(f"{_cell(p):>{width}}" for p in points))


def print_ticket(point: Point, result: dict) -> None:
    """One line for one training of the lottery study, as it finishes."""
    o = point.options
    print(
        f"seed {o['seed']} {o['kind']:6} round {o['round']:2}: "
        f"{result['remaining']['total']:7.2%} remaining, early stop at "
        f"{result['early_stop_iteration']:5}, test accuracy "
        f"{result['early_stop_test_accuracy']:.2%} there, {result['test_accuracy']:.2%} at "
        f"the end ({result['seconds']:.0f}s)",
        flush=True,
    )


def print_lottery(rows: list[dict]) -> None:
    """lottery.summary() as a table: a row per round, rewound and reinit side by side."""
    by_kind = {(r["kind"], r["round"]): r for r in rows}
    print(
        "\nmean ± std over seeds; early stop = iteration of the lowest validation loss; "
        "accuracy at early stop / at the end"
    )
    print(
        f"{'round':>5} {'remaining':>9} | {'rewind: early stop':>19} {'acc. early stop':>16} "
        f"{'acc. end':>14} | {'reinit: early stop':>19} {'acc. early stop':>16} {'acc. end':>14}"
    )
    for round_no in sorted({r["round"] for r in rows}):
        cells = []
        for kind in ("rewind", "reinit"):
            r = by_kind.get((kind, round_no))
            if r is None:
                cells.append(" " * 51)
                continue
            cells.append(
                f"{format_mean_std(r['early_stop_iteration'], digits=0):>19} "
                f"{format_mean_std(r['early_stop_test_accuracy'], 100):>16} "
                f"{format_mean_std(r['test_accuracy'], 100):>14}"
            )
        remaining = next(r["remaining"] for r in rows if r["round"] == round_no)
        print(f"{round_no:5} {remaining:9.2%} | " + " | ".join(cells))
