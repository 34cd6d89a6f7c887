"""One self-contained HTML page about a run: its options, accuracy, layers, sizes and plots.

Everything is in the one file (the PNGs embedded as base64, the style inline): it opens
offline, can be mailed, and shows the same thing in ten years. It is built from what the run
wrote into its folder (result.json, results.json, *.png) and nothing else, so any run's folder
can be turned into a page later: `python -m tinyprune.report RUN_DIR`.
"""

from __future__ import annotations

import base64
import html
import json
from pathlib import Path

from tinyprune.data.datasets import DATASETS
from tinyprune.files import write_text

PAGE = "report.html"
# Known pictures, in the order of the page, with their captions; any other PNG follows.
CAPTIONS = {
    "curves.png": "Loss and accuracy per epoch, training then fine-tuning; dotted lines mark "
    "where pruning happens.",
    "conv1_filters.png": "conv1's filters before and after pruning; a cross marks a pruned tap.",
    "fc1_mask.png": "fc1's mask: which of its weights are kept (black).",
    "feature_maps.png": "One test image through the network: the feature maps and the "
    "predicted probabilities.",
    "weights.png": "Weight histograms before pruning and the weights kept after it.",
}
STYLE = """
body { font-family: system-ui, sans-serif; max-width: 1100px; margin: 2em auto; padding: 0 1em;
       color: #222; }
h1 { font-size: 1.6em; } h2 { margin-top: 1.6em; border-bottom: 1px solid #ccc; }
table { border-collapse: collapse; margin: 0.5em 0; }
td, th { border: 1px solid #ccc; padding: 0.25em 0.6em; text-align: right; }
td:first-child, th:first-child { text-align: left; white-space: nowrap; }
table.files td:last-child, table.files th:last-child { text-align: left; }
.summary { font-size: 1.2em; } figure { margin: 1.2em 0; }
img { max-width: 100%; border: 1px solid #eee; } figcaption { color: #555; }
#broken-pictures { color: #a00; }
"""
# A picture the browser cannot decode is named to the reader; the count of pictures decoded
# goes into an attribute of <body>, out of sight, where the browser test reads it.
IMAGE_CHECK = """
window.addEventListener("load", () => {
  const images = Array.from(document.images);
  const broken = images.filter((img) => !(img.complete && img.naturalWidth > 0));
  document.body.dataset.picturesDecoded = `${images.length - broken.length} of ${images.length}`;
  if (broken.length > 0) {
    document.getElementById("broken-pictures").textContent =
      "These pictures could not be shown: " + broken.map((img) => img.alt).join(", ");
  }
});
"""


class ReportError(ValueError):
    """The folder holds no run to report on; the message says what is missing."""


def read_run(run_dir: Path) -> tuple[dict, dict]:
    """-> (result.json: the dense training, results.json: pruning; {} if not there yet)."""
    run_dir = Path(run_dir)
    if not (run_dir / "result.json").is_file():
        raise ReportError(
            f"{run_dir} holds no run (no result.json); give the --out folder of "
            f"`python -m tinyprune.run`"
        )
    results = run_dir / "results.json"
    return (
        json.loads((run_dir / "result.json").read_text()),
        json.loads(results.read_text()) if results.is_file() else {},
    )


def table(header: list[str], rows: list[list], css_class: str = "") -> str:
    """An HTML table; each cell escaped."""
    cells = ["<tr>" + "".join(f"<th>{html.escape(str(h))}</th>" for h in header) + "</tr>"]
    cells += [
        "<tr>" + "".join(f"<td>{html.escape(str(c))}</td>" for c in row) + "</tr>" for row in rows
    ]
    opening = f"<table class='{css_class}'>" if css_class else "<table>"
    return opening + "\n".join(cells) + "</table>"


def percent(x) -> str:
    return "n/a" if x is None else f"{100 * x:.2f}%"


def summary(dense: dict, pruned: dict) -> str:
    """The headline: data set, model, accuracy dense / just pruned / fine-tuned / int8."""
    parts = [f"dense {percent(dense['test_accuracy'])}"]
    if pruned:
        after = (pruned.get("after_prune") or {}).get("test_accuracy")
        parts += [f"just pruned {percent(after)}", f"fine-tuned {percent(pruned['test_accuracy'])}"]
        if "int8_test_accuracy" in pruned:
            parts.append(f"int8 {percent(pruned['int8_test_accuracy'])}")
        parts.append(f"sparsity {percent(pruned.get('sparsity'))}")
    limit = dense.get("test_limit")
    where = f"test accuracy on the first {limit:,} test images only" if limit else "test accuracy"
    return f"<p class='summary'>{html.escape(where)}: {html.escape('; '.join(parts))}</p>"


def options_table(dense: dict, pruned: dict) -> str:
    """Every scalar setting the two JSON files record (lists and tables are shown elsewhere)."""
    rows, seen = [], set()
    for source in (dense, pruned):
        for key, value in source.items():
            if key not in seen and (value is None or isinstance(value, (str, int, float, bool))):
                seen.add(key)
                rows.append([key, value])
    return table(["setting", "value"], rows)


def layers_table(pruned: dict) -> str:
    rows = [
        [
            r["name"],
            f"{r['weights']:,}",
            f"{r['nonzero']:,}",
            percent(1 - r["nonzero"] / r["weights"]),
        ]
        for r in pruned.get("layers", [])
    ]
    return table(["layer", "weights", "non-zero", "sparsity"], rows) if rows else ""


def model_files(pruned: dict) -> list[dict]:
    """The model files a run writes, as results.json records them: {file, what, bytes,
    accuracy (of the model the file decodes to; None if not recorded)} for each one there."""
    sizes, shared = pruned.get("bytes") or {}, pruned.get("shared") or {}
    int8 = sizes.get("compressed_int8")
    files = [
        # pruned.tpz keeps the float32 values as they are: it decodes to the fine-tuned model.
        ("pruned.tpz", "kept weights, float32", sizes.get("compressed"), "test_accuracy"),
        ("pruned-int8.tpz", "kept weights, int8", int8, "int8_test_accuracy"),
    ]
    rows = [
        {"file": f, "what": what, "bytes": size, "accuracy": pruned.get(key)}
        for f, what, size, key in files
        if size is not None
    ]
    if shared.get("file_bytes") is not None:
        rows.append(
            {
                "file": shared.get("file", "shared.tpz"),
                "what": f"weights shared ({shared.get('bits')} bits), entropy-coded",
                "bytes": shared["file_bytes"],
                "accuracy": shared.get("file_accuracy"),
            }
        )
    return rows


def files_table(pruned: dict) -> str:
    """Each model file: its bytes, how much smaller than dense float32, and the accuracy of the
    model decoded from it."""
    rows, dense = model_files(pruned), (pruned.get("bytes") or {}).get("dense_float32")
    if not rows:
        return ""
    note = f"<p>The dense model in float32 would take {dense:,} bytes.</p>" if dense else ""
    return note + table(
        ["file", "bytes", "smaller than dense", "test accuracy", "what it holds"],
        [
            [
                r["file"],
                f"{r['bytes']:,}",
                f"{dense / r['bytes']:.1f}x" if dense and r["bytes"] else "",
                percent(r["accuracy"]),
                r["what"],
            ]
            for r in rows
        ],
        "files",
    )


def figures(run_dir: Path) -> str:
    """Every PNG of the folder, known ones first, embedded as base64 data URLs."""
    pngs = sorted(Path(run_dir).glob("*.png"))
    order = {name: i for i, name in enumerate(CAPTIONS)}
    pngs.sort(key=lambda p: (order.get(p.name, len(order)), p.name))
    parts = []
    for png in pngs:
        data = base64.b64encode(png.read_bytes()).decode("ascii")
        caption = CAPTIONS.get(png.name, png.stem)
        parts.append(
            f"<figure><img alt='{html.escape(png.name)}' "
            f"src='data:image/png;base64,{data}'><figcaption>{html.escape(png.name)}: "
            f"{html.escape(caption)}</figcaption></figure>"
        )
    return "\n".join(parts)


def build_page(run_dir: Path) -> str:
    """The whole page as one string."""
    dense, pruned = read_run(run_dir)
    dataset = DATASETS.get(dense.get("dataset", "mnist"))
    title = (
        f"tinyprune: {dense.get('model', 'model')} on "
        f"{dataset.title if dataset else dense['dataset']}"
    )
    sections = [
        f"<h1>{html.escape(title)}</h1>",
        summary(dense, pruned),
        "<p id='broken-pictures'></p>",
        "<h2>Layers after pruning</h2>",
        layers_table(pruned) or "<p>not pruned yet</p>",
        "<h2>Model files</h2>",
        files_table(pruned) or "<p>none yet</p>",
        "<h2>Pictures</h2>",
        figures(run_dir) or "<p>none (matplotlib missing?)</p>",
        "<h2>Options</h2>",
        options_table(dense, pruned),
    ]
    return (
        f"<!DOCTYPE html>\n<html lang='en'><head><meta charset='utf-8'>"
        f"<title>{html.escape(title)}</title><style>{STYLE}</style>"
        f"<script>{IMAGE_CHECK}</script></head>\n<body>\n"
        + "\n".join(sections)
        + "\n</body></html>\n"
    )


def write_page(run_dir: Path, path: Path | None = None) -> Path:
    """Write run_dir/report.html (or path) atomically; -> its path."""
    path = Path(path) if path is not None else Path(run_dir) / PAGE
    write_text(path, build_page(run_dir))
    return path
