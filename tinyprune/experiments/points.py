"""A point of an experiment, and the folder that keeps every point once it is done.

A point is a pure function of its options (seeded): the same options give the same result,
bit for bit, in any process on any machine. So a point's result is saved under a name made of
its options as soon as it arrives, and a point found saved is never run again: an interrupted
experiment resumes where it stopped, and one rerun with more seeds runs only the new ones.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from tinyprune.files import atomic_write, write_json


@dataclass(frozen=True)
class Point:
    """name: readable, unique within the experiment ("seed0-rewind-round3"); options: JSON
    values that decide the result; inputs: further arguments computed from earlier points
    (e.g. masks), themselves decided by the options."""

    name: str
    options: dict
    inputs: tuple = field(default=())

    @property
    def key(self) -> str:
        """The file name: the readable name and a digest of the options."""
        text = json.dumps(self.options, sort_keys=True)
        return f"{self.name}-{hashlib.sha256(text.encode()).hexdigest()[:10]}"


class PointStore:
    """One JSON file per finished point in `folder` (and an .npz beside it for the arrays a
    point returns under "arrays"), each written atomically, the JSON last: a JSON file there
    means the point is complete."""

    def __init__(self, folder: str | Path):
        self.folder = Path(folder)
        self.folder.mkdir(parents=True, exist_ok=True)

    def _json(self, point: Point) -> Path:
        return self.folder / f"{point.key}.json"

    def _npz(self, point: Point) -> Path:
        return self.folder / f"{point.key}.npz"

    def save(self, point: Point, result: dict[str, Any]) -> None:
        arrays = result.get("arrays")
        if arrays:
            with atomic_write(self._npz(point)) as tmp, open(tmp, "wb") as f:
                np.savez(f, **arrays)
        record = {k: v for k, v in result.items() if k != "arrays"}
        write_json(
            self._json(point), {"name": point.name, "options": point.options, "result": record}
        )

    def load(self, point: Point) -> dict | None:
        """The saved result of point (its arrays under "arrays"), or None if not done."""
        if not self._json(point).exists():
            return None
        saved = json.loads(self._json(point).read_text())
        if saved.get("options") != point.options:  # a digest clash: run it again
            return None
        result = saved["result"]
        if self._npz(point).exists():
            with np.load(self._npz(point)) as arrays:
                result["arrays"] = dict(arrays)
        return result
