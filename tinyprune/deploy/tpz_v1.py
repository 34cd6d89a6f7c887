"""The reader of version 1 .tpz files, which tinyprune no longer writes (tpz.py writes version 2).

A version 1 file is an .npz (zip, deflated) holding, per prunable weight,

    <name>.bits    its kept pattern, 1 bit per weight (np.packbits, row-major), 1 = kept
    <name>.values  the kept weights in row-major order: float32, or int8 q in -127..127 that
                   stands for q * scale (one scale per layer, in the meta record)

each other parameter (a bias) as a float32 array under its own name, and `meta`: a JSON string
{"format": "tinyprune-compressed", "version": 1, "model", "quantize": null or "int8",
"params": [{"name", "shape", "sparse", "masked"?, "scale"?}, ...]}.
"""

from __future__ import annotations

import json
import zipfile
from pathlib import Path

import numpy as np

from tinyprune.nn.model import mask_name

FORMAT = "tinyprune-compressed"


def read_v1(path: Path) -> tuple[dict, dict[str, np.ndarray]]:
    """A version 1 file -> (meta, state): state as Sequential.load_state takes it (weights with
    their zeros back, '<layer>.mask' for masked weights). ValueError if it is not one, or
    damaged."""
    try:
        with np.load(path, allow_pickle=False) as npz:
            files = dict(npz)
        meta = json.loads(str(files["meta"]))
    except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile) as error:
        raise ValueError(f"{path} is not a tinyprune .tpz file: {error}") from None
    if meta.get("format") != FORMAT or meta.get("version") != 1:
        raise ValueError(
            f"{path} is an .npz but not a version 1 .tpz file (format {meta.get('format')!r}, "
            f"version {meta.get('version')!r})"
        )
    state = {}
    for entry in meta["params"]:
        name, shape = entry["name"], tuple(entry["shape"])
        if not entry["sparse"]:
            state[name] = files[name]
            continue
        kept = np.unpackbits(files[f"{name}.bits"], count=int(np.prod(shape))).astype(bool)
        values = files[f"{name}.values"]
        if values.size != kept.sum():
            raise ValueError(
                f"{path} is damaged: {name} has {kept.sum()} kept weights but {values.size} values"
            )
        if meta["quantize"] == "int8":
            values = values.astype(np.float32) * np.float32(entry["scale"])
        weight = np.zeros(kept.size, np.float32)
        weight[kept] = values
        state[name] = weight.reshape(shape)
        if entry["masked"]:
            state[mask_name(name)] = kept.reshape(shape).astype(np.uint8)
    return meta, state
