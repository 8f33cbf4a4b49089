"""The leaderboard page in a real headless browser: it loads with no console message (no script error, no missing
image or video) and its screenshot is not blank.

Needs Debian's chromium, a system package, so it is skipped where chromium is not installed (the default test
run in CI). Run it with:

    apt-get install -y chromium
    python -m pytest -q tests/test_leaderboard_browser.py
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

REPO_LEADERBOARD = Path(__file__).resolve().parents[1] / "leaderboard"
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")

pytestmark = pytest.mark.skipif(CHROMIUM is None, reason="needs Debian's chromium: apt-get install -y chromium, then "
                                                         "python -m pytest -q tests/test_leaderboard_browser.py")


def load_in_browser(page: Path, screenshot: Path) -> list[str]:
    """Open ``page`` headless, save a screenshot, return the console messages it printed (chromium logs every
    console message, script error and failed resource load as a CONSOLE line on stderr)."""
    result = subprocess.run(
        [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--enable-logging=stderr", "--v=0",
         "--virtual-time-budget=5000", "--window-size=1300,1600", f"--screenshot={screenshot}", page.as_uri()],
        capture_output=True, text=True, timeout=120)
    assert screenshot.is_file(), result.stderr[-2000:]
    return [line for line in result.stderr.splitlines() if ":CONSOLE" in line]


def is_blank(screenshot: Path) -> bool:
    from PIL import Image

    with Image.open(screenshot) as image:
        pixels = np.asarray(image.convert("L"), dtype=float)
    return bool(pixels.std() < 5 or (pixels < 200).mean() < 0.01)


def test_leaderboard_page_loads_cleanly(tmp_path):
    messages = load_in_browser(REPO_LEADERBOARD / "index.html", tmp_path / "page.png")
    assert messages == []
    assert not is_blank(tmp_path / "page.png")


def test_the_browser_check_catches_errors_and_blank_pages(tmp_path):
    broken = tmp_path / "broken.html"
    broken.write_text('<!DOCTYPE html><html><body><img src="missing.png"><script>undefinedFunction();</script>'
                      "</body></html>")
    messages = load_in_browser(broken, tmp_path / "broken.png")
    assert any("undefinedFunction is not defined" in line for line in messages)
    assert is_blank(tmp_path / "broken.png")
