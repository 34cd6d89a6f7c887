"""Training checkpoints, the file: all a run needs to continue after Ctrl-C or a crash, exactly
(whether and how to go on from one is train/resume.py's).

One .npz file holds the model's arrays (weights, biases and, once pruned, masks) as
`model.<name>`, the optimizer's velocity as `velocity.<name>`, and `meta`: a JSON text with
the format version, the model's name, every array's shape, the phase ("train" or
"fine-tune"), the epochs of that phase completed, its history so far, the run's options and
what the finished phases produced. Every number is stored exactly (JSON writes floats so
that they read back bit for bit).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from tinyprune.files import write_npz
from tinyprune.nn.model import Sequential, mask_name
from tinyprune.nn.optim import MaskedSGD

FORMAT_VERSION = 1
CHECKPOINT = "checkpoint.npz"  # its file name in a run's --out folder
PHASES = ("train", "fine-tune")
META_KEYS = ("model", "shapes", "phase", "epoch", "history", "options", "results")


class CheckpointError(Exception):
    """A checkpoint is unreadable or belongs to another model, format or set of options."""


@dataclass
class Checkpoint:
    phase: str  # "train" or "fine-tune"
    epoch: int  # epochs of `phase` completed
    history: list[dict]  # `phase`'s history entries so far
    options: dict  # the options the run was started with
    results: dict  # what the finished phases produced
    velocity: dict[str, np.ndarray]  # MaskedSGD.velocity, parameter name -> array


def save_checkpoint(
    path: str | Path,
    model: Sequential,
    optimizer: MaskedSGD,
    phase: str,
    epoch: int,
    history: list[dict],
    options: dict,
    results: dict | None = None,
) -> None:
    """Write a checkpoint atomically: after a crash at any moment, `path` holds the previous
    checkpoint or this one, complete, and no temporary file is left behind."""
    assert phase in PHASES, phase
    pruned = any(p.mask is not None for p in model.prunable().values())
    arrays = {f"model.{k}": v for k, v in model.state(with_masks=pruned).items()}
    arrays.update({f"velocity.{k}": v for k, v in optimizer.velocity.items()})
    meta = {
        "format_version": FORMAT_VERSION,
        "model": model.name,
        "shapes": {k: list(v.shape) for k, v in arrays.items()},
        "phase": phase,
        "epoch": epoch,
        "history": history,
        "options": options,
        "results": results or {},
    }
    arrays["meta"] = np.frombuffer(json.dumps(meta).encode(), np.uint8)
    write_npz(path, arrays, durable=True)


def _read(path: Path) -> tuple[dict, dict[str, np.ndarray]]:
    """-> (meta, arrays) of a checkpoint of this format version; CheckpointError otherwise."""
    try:
        with np.load(path, allow_pickle=False) as npz:
            arrays = {k: npz[k] for k in npz.files}
        meta = json.loads(arrays.pop("meta").tobytes())
        version = meta["format_version"]
        if version == FORMAT_VERSION:
            missing = set(META_KEYS) - set(meta)
            if missing or meta["phase"] not in PHASES:
                raise ValueError(f"meta lacks {sorted(missing)} or has an unknown phase")
    except Exception as error:  # any damage: bad zip, missing meta, bad JSON, ...
        raise CheckpointError(
            f"{path} is not a readable tinyprune checkpoint ({type(error).__name__}: {error}); "
            f"delete it to start the run over"
        ) from None
    if version != FORMAT_VERSION:
        raise CheckpointError(
            f"{path} has checkpoint format {version}, this tinyprune reads format "
            f"{FORMAT_VERSION}; finish the run with the tinyprune that started it, or delete "
            f"the file to start over"
        )
    return meta, arrays


def checkpoint_phase(path: str | Path) -> tuple[str, int] | None:
    """-> (phase, epochs of it completed) of the checkpoint at path, or None if there is
    none or it cannot be read (it is then worth nothing)."""
    try:
        meta, _ = _read(Path(path))
    except CheckpointError:
        return None
    return meta["phase"], meta["epoch"]


def load_checkpoint(path: str | Path, model: Sequential) -> Checkpoint:
    """Check that the checkpoint at path fits this model, copy its weights and masks into the
    model, and return the rest. Refuses any mismatch with a CheckpointError saying what
    differs and what to do. (Whether its options are the run's is resume.py's question.)"""
    path = Path(path)
    if not path.exists():
        raise CheckpointError(
            f"there is no checkpoint {path} to resume; run without --resume "
            f"to start, or point --out at the interrupted run's folder"
        )
    meta, arrays = _read(path)
    if meta["model"] != model.name:
        raise CheckpointError(
            f"{path} holds a {meta['model']}, not a {model.name}; resume it "
            f"with the same model, or start over in another --out"
        )
    expected = _expected_shapes(model, arrays)
    wrong = [
        f"{k} is {arrays[k].shape if k in arrays else 'missing'}, expected {s}"
        for k, s in expected.items()
        if k not in arrays or arrays[k].shape != s
    ]
    wrong += [f"{k} is not one of its arrays" for k in arrays if k not in expected]
    if wrong:
        raise CheckpointError(
            f"{path} does not fit this {model.name}: {'; '.join(wrong)}; "
            f"start over in another --out"
        )
    state = {k[len("model.") :]: v for k, v in arrays.items() if k.startswith("model.")}
    model.load_state(state, source=str(path))
    velocity = {k: arrays[f"velocity.{k}"].astype(p.value.dtype) for k, p in model.params().items()}
    return Checkpoint(
        meta["phase"], meta["epoch"], meta["history"], meta["options"], meta["results"], velocity
    )


def _expected_shapes(model: Sequential, arrays: dict[str, np.ndarray]) -> dict[str, tuple]:
    """The arrays a checkpoint of `model` must hold -> their shapes: model.<param> and
    velocity.<param> for every parameter; the weights' masks if `arrays` has any of them (a
    pruned model has all); and the bias masks `arrays` has (filter pruning makes them)."""
    shapes = {k: p.value.shape for k, p in model.params().items()}
    expected = {f"model.{k}": s for k, s in shapes.items()}
    expected.update({f"velocity.{k}": s for k, s in shapes.items()})
    masks = {f"model.{mask_name(k)}": shapes[k] for k in model.prunable()}
    if any(k in arrays for k in masks):
        expected.update(masks)
    for k, s in shapes.items():
        bias_mask = f"model.{mask_name(k, prunable=False)}"
        if k not in model.prunable() and bias_mask in arrays:
            expected[bias_mask] = s
    return expected
