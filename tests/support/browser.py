"""Headless Chromium from Debian (/usr/bin/chromium), driven by playwright. Never downloads a
browser: ``executable_path`` points at the system one."""
from __future__ import annotations

import contextlib
import shutil
import tempfile
from typing import Iterator

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
ARGS = ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync",
        "--disable-dev-shm-usage"]


@contextlib.contextmanager
def chromium(viewport=(1600, 1000)) -> Iterator["object"]:
    """Yield a fresh browser context (own profile); everything is closed afterwards."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p, tempfile.TemporaryDirectory(prefix="chromium-") as profile:
        ctx = p.chromium.launch_persistent_context(
            profile, executable_path=CHROMIUM, headless=True, args=ARGS,
            viewport={"width": viewport[0], "height": viewport[1]})
        try:
            yield ctx
        finally:
            ctx.close()
