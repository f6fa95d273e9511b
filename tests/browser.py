"""Open a page in headless Chromium: its DOM, its console messages and a screenshot."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import tempfile
from pathlib import Path

import pytest

FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--enable-logging=stderr", "--v=0"]


def chromium() -> str:
    """The Chromium binary; skips the test where there is none, except in CI (the Makefile installs it)."""
    binary = shutil.which("chromium") or shutil.which("chromium-browser")
    if binary is None:
        if os.environ.get("CI"):
            pytest.fail("chromium is not installed (make install puts it there)")
        pytest.skip("chromium is not installed")
    return binary


def open_page(path: Path, screenshot: Path | None = None) -> tuple[str, list[str]]:
    """``(dom, console_messages)`` of the page at ``path``; writes ``screenshot`` (PNG) when given."""
    with tempfile.TemporaryDirectory() as profile:
        extra = [f"--screenshot={screenshot}", "--window-size=1200,1600"] if screenshot else ["--dump-dom"]
        result = subprocess.run([chromium(), *FLAGS, f"--user-data-dir={profile}", *extra, path.resolve().as_uri()],
                                capture_output=True, text=True, timeout=120)
    console = [line for line in result.stderr.splitlines() if re.search(r":CONSOLE[:(]", line)]
    return result.stdout, console


def external_references(page: str) -> list[str]:
    """``src``/``href`` values that would make a browser fetch something (the page should be one file)."""
    return [ref for ref in re.findall(r"""(?:src|href)\s*=\s*["']([^"']+)""", page) if not ref.startswith("data:")]
