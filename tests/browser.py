"""A page as a person sees it: rendered by the real Chromium (headless, driven by Playwright,
the Debian package's browser: no browser download)."""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path

from playwright.sync_api import sync_playwright


@dataclass(frozen=True)
class Rendered:
    scroll_width: int       # the page's full width: wider than the window means sideways scrolling
    text: str               # what is visible, as the browser lays it out


def render(page: Path, screenshot: Path, width: int) -> Rendered:
    """Open `page` in a window `width` pixels wide, every collapsed section opened (long log
    lines must wrap too); keep a full-page screenshot."""
    binary = shutil.which("chromium") or shutil.which("chromium-browser")
    assert binary, "Chromium is not installed (scripts/setup.sh installs the Debian package)"
    screenshot.parent.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=binary, args=["--no-sandbox"])
        try:
            tab = browser.new_page(viewport={"width": width, "height": 900})
            tab.goto(page.resolve().as_uri())
            tab.eval_on_selector_all("details", "all => all.forEach(d => d.open = true)")
            tab.screenshot(path=screenshot, full_page=True)
            return Rendered(tab.evaluate("document.documentElement.scrollWidth"), tab.inner_text("body"))
        finally:
            browser.close()
