"""A pruned model's file that shrinks with its sparsity: a bitmask plus the kept values.

Each prunable weight is stored as

    bits    its mask, 1 bit per weight (np.packbits, row-major), 1 = kept
    values  the kept weights in row-major order: float32, or int8 with `--quantize`

and biases as they are (float32). At 90% sparsity a weight then costs 1 bit + 10% of 32 bits
= 4.2 bits on average instead of 32 (1 + 10% of 8 = 1.8 bits quantised). A bitmask beats CSR's
indices here: a 16-bit column index per kept weight costs more than 1 bit per weight until
sparsity passes 15/16.

Quantisation is per layer and symmetric: q = round(w / scale) in -127..127 with
scale = max |w| / 127, read back as q * scale. The kept pattern is the mask, not q != 0, so
a small weight rounded to 0 stays "kept" and the mask comes back exactly.

The file is an .npz (zip, deflated) whose `meta` record, a JSON string, names the format, its
version, the model and each parameter's shape; loading refuses any other file with a message.
"""

from __future__ import annotations

import copy
import io
import json
import zipfile
from pathlib import Path
from typing import Any

import numpy as np

from tinyprune.files import write_npz
from tinyprune.nn.model import Sequential, mask_name

FORMAT = "tinyprune-compressed"
VERSION = 1


class CompressedFormatError(ValueError):
    """The file is not a compressed model this version can read, or not for this model."""


def dense_float32_bytes(model: Sequential) -> int:
    """Bytes of the model's parameters stored densely as float32: 4 per parameter."""
    return 4 * model.num_params()


def quantize_int8(values: np.ndarray) -> tuple[np.ndarray, np.float32]:
    """values float -> (q int8 in -127..127, scale float32) with values ~ q * scale."""
    largest = float(np.abs(values).max(initial=0.0))
    scale = np.float32(largest / 127 if largest > 0 else 1.0)
    q = np.clip(np.rint(values / scale), -127, 127).astype(np.int8)
    return q, scale


def dequantize_int8(q: np.ndarray, scale: np.float32) -> np.ndarray:
    """The float32 weights that int8 q stands for: q * scale, rounded once to float32."""
    return q.astype(np.float32) * np.float32(scale)


def save_compressed(model: Sequential, path: str | Path, quantize: bool = False) -> int:
    """Write the model to path (conventionally .tpz) atomically; -> the file's size in bytes."""
    path = Path(path)
    write_npz(path, compressed_arrays(model, quantize), compressed=True)
    return path.stat().st_size


def compressed_bytes(model: Sequential, quantize: bool = False) -> int:
    """The size save_compressed's file would have, in bytes, without writing it."""
    buffer = io.BytesIO()
    save: Any = np.savez_compressed  # numpy's stubs mistype **arrays
    save(buffer, **compressed_arrays(model, quantize))
    return buffer.tell()


def compressed_arrays(model: Sequential, quantize: bool = False) -> dict[str, np.ndarray]:
    """The records of the compressed file: bits and values per prunable weight, biases, meta."""
    meta = {
        "format": FORMAT,
        "version": VERSION,
        "model": model.name,
        "quantize": "int8" if quantize else None,
    }
    params: list[dict] = []
    arrays = {}
    for name, p in model.params().items():
        entry = {"name": name, "shape": list(p.value.shape), "sparse": p.prunable}
        if p.prunable:
            # A model never pruned has no mask: keep its non-zeros.
            kept = p.mask if p.mask is not None else p.value != 0
            entry["masked"] = p.mask is not None
            arrays[f"{name}.bits"] = np.packbits(kept.ravel())
            values = p.value[kept].astype(np.float32)
            if quantize:
                values, scale = quantize_int8(values)
                entry["scale"] = float(scale)  # a float32 is exact as a JSON double
            arrays[f"{name}.values"] = values
        else:
            arrays[name] = p.value.astype(np.float32)
        params.append(entry)
    arrays["meta"] = np.array(json.dumps({**meta, "params": params}))
    return arrays


# What to do about a file that is not a compressed model: the end of every such error.
WRITE_ONE = "write one with tinyprune.compress.save_compressed or python -m tinyprune.run"


def read_compressed(path: str | Path) -> tuple[dict, dict[str, np.ndarray]]:
    """-> (meta, state): state maps '<layer>.weight/.bias' (float32, the pruned weights with
    their zeros back) and '<layer>.mask' (uint8, for masked weights) as Sequential.load_state
    takes them. Raises CompressedFormatError for a file that is not one of ours."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path} does not exist; {WRITE_ONE}")
    files = read_npz(path)
    if "meta" not in files:
        raise CompressedFormatError(
            f"{path} is an .npz but not a tinyprune compressed model (no 'meta' record); a "
            f"model.npz or pruned.npz is read with Sequential.load; {WRITE_ONE}"
        )
    meta = json.loads(str(files["meta"]))
    if meta.get("format") != FORMAT:
        raise CompressedFormatError(
            f"{path} is not a tinyprune compressed model (format {meta.get('format')!r}); "
            f"{WRITE_ONE}"
        )
    if meta.get("version") != VERSION:
        raise CompressedFormatError(
            f"{path} has format version {meta.get('version')}, this tinyprune reads version "
            f"{VERSION}; write it again with this version, or use the tinyprune that wrote it"
        )
    return meta, unpack_state(files, meta, path)


def read_npz(path: Path) -> dict[str, np.ndarray]:
    """The arrays of the .npz file at path, by name; CompressedFormatError if it is not an
    .npz (saying so if it is a version 2 file, which is not)."""
    try:
        if not zipfile.is_zipfile(path):
            if path.read_bytes()[:4] == b"TPZ2":
                raise CompressedFormatError(
                    f"{path} is a version 2 file: read it with "
                    f"tinyprune.deploy.compress_v2.read, which reads both versions"
                )
            raise ValueError("it is not an .npz (zip) file")
        with np.load(path, allow_pickle=False) as npz:
            return dict(npz)
    except CompressedFormatError:
        raise
    except (OSError, ValueError, EOFError, zipfile.BadZipFile) as error:
        raise CompressedFormatError(
            f"{path} is not a tinyprune compressed model: {error}; {WRITE_ONE}"
        ) from None


def unpack_state(files: dict[str, np.ndarray], meta: dict, path: Path) -> dict[str, np.ndarray]:
    """The state of read_compressed from the file's arrays: each sparse weight's kept values
    put back at the places its bit mask marks (dequantized if int8), zeros elsewhere."""
    state = {}
    for entry in meta["params"]:
        name, shape = entry["name"], tuple(entry["shape"])
        if not entry["sparse"]:
            state[name] = files[name]
            continue
        size = int(np.prod(shape))
        kept = np.unpackbits(files[f"{name}.bits"], count=size).astype(bool)
        values = files[f"{name}.values"]
        if values.size != kept.sum():
            raise CompressedFormatError(
                f"{path} is damaged: {name} has {kept.sum()} kept "
                f"weights but {values.size} values; {WRITE_ONE}"
            )
        if meta["quantize"] == "int8":
            values = dequantize_int8(values, np.float32(entry["scale"]))
        weight = np.zeros(size, np.float32)
        weight[kept] = values
        state[name] = weight.reshape(shape)
        if entry["masked"]:
            state[mask_name(name)] = kept.reshape(shape).astype(np.uint8)
    return state


def load_compressed(path: str | Path, model: Sequential) -> dict:
    """Fill the model (weights, biases, masks) from a compressed file; -> the file's meta.
    Refuses a file written for another model."""
    meta, state = read_compressed(path)
    if meta["model"] != model.name:
        raise CompressedFormatError(
            f"{path} holds a {meta['model']!r} model, not a "
            f"{model.name!r}; build a {meta['model']} to load it into"
        )
    model.load_state(state, source=str(path))
    return meta


def write_compressed(model: Sequential, folder: str | Path, stem: str = "pruned") -> dict:
    """Write folder/<stem>.tpz (float32 values) and folder/<stem>-int8.tpz; -> their sizes and
    the dense float32 size, in bytes: {"dense_float32", "compressed", "compressed_int8"}."""
    folder = Path(folder)
    return {
        "dense_float32": dense_float32_bytes(model),
        "compressed": save_compressed(model, folder / f"{stem}.tpz"),
        "compressed_int8": save_compressed(model, folder / f"{stem}-int8.tpz", quantize=True),
    }


def load_copy(model: Sequential, path: str | Path) -> Sequential:
    """A copy of the model with the weights of a compressed file (e.g. to evaluate the int8
    one); the model itself is left as it is."""
    twin = copy.deepcopy(model)
    load_compressed(path, twin)
    return twin
