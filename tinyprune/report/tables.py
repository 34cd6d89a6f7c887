"""Tables printed to the terminal."""
from __future__ import annotations


def print_layers(rows: list[dict]) -> None:
    """The sparsity_report rows as a table; mult-adds are per image, of non-zero weights."""
    keys = ("weights", "nonzero", "mult_adds", "mult_adds_kept")
    total = {"name": "total", **{key: sum(r[key] for r in rows) for key in keys}}
    print(f"{'layer':8} {'weights':>8} {'non-zero':>9} {'sparsity':>9} {'mult-adds kept':>20}")
    for r in rows + [total]:
        print(f"{r['name']:8} {r['weights']:8d} {r['nonzero']:9d} "
              f"{1 - r['nonzero'] / r['weights']:9.2%} {r['mult_adds_kept']:>10,} "
              f"({r['mult_adds_kept'] / r['mult_adds']:6.1%})")


def print_sweep(result: dict) -> None:
    """sweep.json as a table: a row per sparsity, a column per schedule, test accuracy in %."""
    schedules = list(result["schedules"])
    print(f"\ntest accuracy (%) after {result['finetune_epochs']} fine-tuning epochs, "
          f"{result['method']} pruning; dense {result['dense_accuracy']:.2%}")
    print(f"{'sparsity':>8}" + "".join(f"{s:>11}" for s in schedules))
    sparsities = sorted({p["sparsity"] for points in result["schedules"].values() for p in points})
    for sparsity in sparsities:
        cells = []
        for schedule in schedules:
            hit = [p for p in result["schedules"][schedule] if p["sparsity"] == sparsity]
            cells.append(f"{100 * hit[0]['test_accuracy']:11.2f}" if hit else f"{'':11}")
        print(f"{sparsity:8.0%}" + "".join(cells))


def print_sensitivity(result: dict) -> None:
    """sensitivity.json as a table: a row per layer, a column per sparsity, accuracy in %."""
    sparsities = [p["sparsity"] for p in next(iter(result["layers"].values()))]
    print(f"\ntest accuracy (%) with one layer pruned, dense {result['dense_accuracy']:.2%}")
    print(f"{'layer':8}" + "".join(f"{s:>7.0%}" for s in sparsities))
    for layer, points in result["layers"].items():
        print(f"{layer:8}" + "".join(f"{100 * p['test_accuracy']:7.2f}" for p in points))
