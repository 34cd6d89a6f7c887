"""Render a page in headless Chromium: a screenshot, and the DOM after its scripts ran.

Chromium is a Debian package (`chromium`) that CI installs; on a machine without it the tests
that need it skip, except under CI=true, where they fail.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from pathlib import Path

import numpy as np
import pytest

FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--hide-scrollbars",
]


def chromium() -> str:
    """The browser's path; skips the test without one (fails it when CI=true)."""
    found = shutil.which("chromium") or shutil.which("chromium-browser")
    if found is None:
        message = "chromium is not installed (apt-get install chromium)"
        if os.environ.get("CI") == "true":
            pytest.fail(message, pytrace=False)
        pytest.skip(message)
    return found


def _chromium(page: Path, *args: str) -> subprocess.CompletedProcess:
    with tempfile.TemporaryDirectory(prefix="tinyprune-chromium-") as profile:
        return subprocess.run(
            [
                chromium(),
                *FLAGS,
                f"--user-data-dir={profile}",
                *args,
                Path(page).resolve().as_uri(),
            ],
            capture_output=True,
            text=True,
            timeout=120,
        )


def screenshot(page: Path, out: Path, width: int = 1200, height: int = 2400) -> np.ndarray:
    """The page rendered at width x height: RGB floats in [0, 1], (height, width, 3)."""
    import matplotlib.image

    done = _chromium(page, f"--screenshot={out}", f"--window-size={width},{height}")
    assert out.is_file(), f"chromium wrote no screenshot:\n{done.stderr[-2000:]}"
    return matplotlib.image.imread(out)[..., :3]


def dom(page: Path) -> str:
    """The page's DOM as HTML after its load handlers ran."""
    done = _chromium(page, "--virtual-time-budget=5000", "--dump-dom")
    assert done.returncode == 0, done.stderr[-2000:]
    return done.stdout
