"""Writing files so that a crash leaves the old file or the new one, never half of one."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np


@contextmanager
def atomic_write(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path beside `path` to write; when the block ends well, rename it to
    `path` (a rename within one folder is atomic). If the block fails, Ctrl-C included, the
    temporary file is removed: nothing half-written stays on disk."""
    path = Path(path)
    tmp = path.with_name(path.name + ".tmp")
    try:
        yield tmp
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def write_text(path: str | os.PathLike, text: str) -> None:
    """Write text to path atomically."""
    with atomic_write(path) as tmp:
        tmp.write_text(text)


def write_npz(
    path: str | os.PathLike,
    arrays: dict[str, np.ndarray],
    compressed: bool = False,
    durable: bool = False,
) -> None:
    """Write arrays to path as an .npz (zip-compressed if `compressed`), atomically; `durable`
    also waits until the bytes and the new name are on disk, so a power cut keeps them."""
    save: Any = np.savez_compressed if compressed else np.savez
    path = Path(path)
    with atomic_write(path) as tmp, open(tmp, "wb") as f:
        save(f, **arrays)
        if durable:
            f.flush()
            os.fsync(f.fileno())  # the bytes are on disk before the name points at them
    if durable and hasattr(os, "O_DIRECTORY"):  # POSIX: make the rename itself durable
        fd = os.open(path.parent, os.O_RDONLY | os.O_DIRECTORY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def write_json(path: str | os.PathLike, obj: dict) -> None:
    """Write obj to path as indented JSON, atomically."""
    write_text(path, json.dumps(obj, indent=2) + "\n")
