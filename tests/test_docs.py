"""The documentation site: `mkdocs build --strict` builds it from mkdocs.yml, and headless
Chromium renders its pages with their real content (the index, the walkthrough notebook, an
API page made from the docstrings).

Without MkDocs (`pip install -e '.[docs]'`) or Chromium these tests skip, saying so; with
CI=true they fail instead, since CI must build the site."""

import html as html_module
import importlib.util
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from browser import dom, screenshot

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def site(tmp_path_factory) -> Path:
    """The site built into a temporary folder, once for the module."""
    if importlib.util.find_spec("mkdocs") is None:
        message = "mkdocs is not installed (pip install -e '.[docs]')"
        if os.environ.get("CI") == "true":
            pytest.fail(message, pytrace=False)
        pytest.skip(message)
    out = tmp_path_factory.mktemp("site")
    done = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "--config-file"]
        + [str(ROOT / "mkdocs.yml"), "--site-dir", str(out)],
        cwd=out,  # nothing written beside the sources
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, f"mkdocs build --strict failed:\n{done.stderr[-3000:]}"
    return out


def text(html: str) -> str:
    """What a reader sees of a page: no scripts, no style, no tags, spaces squeezed."""
    html = re.sub(r"<script.*?</script>|<style.*?</style>|<[^>]+>", " ", html, flags=re.S)
    return " ".join(html_module.unescape(html).split())


def test_index_renders_with_its_title_headings_and_picture(site, tmp_path):
    html = dom(site / "index.html")
    assert "<title>tinyprune</title>" in html
    assert re.search(r"<h1[^>]*>tinyprune", html)
    seen = text(html)
    for heading in ("Start here", "The pages"):
        assert heading in seen, heading
    assert "python -m tinyprune.run" in seen
    pixels = screenshot(site / "index.html", tmp_path / "index.png", 1200, 1600)
    ink = (pixels.min(axis=2) < 0.9).mean()  # share of pixels that are not (nearly) white
    assert ink > 0.05, f"blank-looking page: ink {ink:.3f}"
    red, green, blue = pixels[..., 0], pixels[..., 1], pixels[..., 2]
    # matplotlib's orange (#ff7f0e), the test curves of the picture: nothing else is orange
    orange = ((red > 0.9) & (green > 0.35) & (green < 0.65) & (blue < 0.25)).sum()
    assert orange > 200, f"the curves picture is not shown ({orange} orange pixels)"


def test_walkthrough_and_api_pages_hold_their_content(site):
    walkthrough = text(dom(site / "walkthrough" / "index.html"))
    assert "tinyprune, one step at a time" in walkthrough
    assert "from tinyprune.nn.model import lenet5" in walkthrough  # a code cell, shown
    api = text(dom(site / "api" / "nn" / "index.html"))
    for name in ("Conv2d", "MaskedSGD", "SoftmaxCrossEntropy", "lenet5"):
        assert name in api, name
    assert "(N, C, H, W) -> (N, C*H*W)" in api  # Flatten's docstring, its stars kept (hooks.py)
