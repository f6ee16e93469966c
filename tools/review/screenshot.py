"""``python -m tools.review.screenshot [review/index.html] [docs/review.png]``: a PNG of the
review page in headless Chromium (Debian's, through playwright). The README's picture is
made this way; a test does the same and checks the diagrams rendered."""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path
from typing import Any

CHROMIUM = "/usr/bin/chromium"
ARGS = ["--no-sandbox", "--headless", "--disable-gpu", "--disable-dev-shm-usage", "--no-first-run"]


def capture(
    index: Path, png: Path, *, stack: str | None = None, width: int = 1280, height: int = 1600
) -> dict[str, Any]:
    """Open ``index`` from disk and save to ``png`` the top of the page, or the section of
    ``stack``; return what rendered: per diagram, its stack, whether it is visible, and the
    ids of its nodes."""
    from playwright.sync_api import sync_playwright

    png.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as profile, sync_playwright() as p:
        ctx = p.chromium.launch_persistent_context(
            profile,
            executable_path=CHROMIUM,
            args=ARGS,
            headless=True,
            viewport={"width": width, "height": height},
        )
        try:
            page = ctx.new_page()
            page.goto(index.resolve().as_uri())
            diagrams = page.locator("div.diagram")
            seen = []
            for i in range(diagrams.count()):
                box = diagrams.nth(i)
                svg = box.locator("svg")
                seen.append(
                    {
                        "stack": box.get_attribute("data-stack"),
                        "visible": svg.count() == 1 and svg.is_visible(),
                        "size": svg.bounding_box() if svg.count() == 1 else None,
                        "ids": svg.locator("g[id]").evaluate_all("els => els.map(e => e.id)")
                        if svg.count() == 1
                        else [],
                    }
                )
            if stack is not None:
                page.locator(f"h2#{stack}").scroll_into_view_if_needed()
                page.evaluate(f"document.getElementById('{stack}').scrollIntoView()")
            page.screenshot(path=str(png), full_page=False)
        finally:
            ctx.close()
    return {"diagrams": seen}


if __name__ == "__main__":
    src = Path(sys.argv[1]) if len(sys.argv) > 1 else Path("review/index.html")
    dst = Path(sys.argv[2]) if len(sys.argv) > 2 else Path("docs/review.png")
    result = capture(src, dst, stack=sys.argv[3] if len(sys.argv) > 3 else "prod")
    print(f"{dst}: {len(result['diagrams'])} diagrams")
