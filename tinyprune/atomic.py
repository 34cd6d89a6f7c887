"""Writing a file so that a crash leaves the old file or the new one, never half of one."""
from __future__ import annotations

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
