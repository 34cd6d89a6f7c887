"""Writing files so that a crash leaves the old file or the new one, never half of one."""
from __future__ import annotations

import json
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


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


def write_json(path: str | os.PathLike, obj: dict) -> None:
    """Write obj to path as indented JSON, atomically."""
    write_text(path, json.dumps(obj, indent=2) + "\n")
