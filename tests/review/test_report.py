"""The review's outputs from the real stacks: the summary, the Markdown, and the page as
headless Chromium renders it (a screenshot is kept in .artifacts/)."""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest

from environments import SYSTEM_ENVIRONMENTS
from tests.support import Synth
from tools.review.model import load_stacks
from tools.review.report import StackReview, review_stacks, write

ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = Path(os.environ.get("ARTIFACTS_DIR", ROOT / ".artifacts"))


@pytest.fixture(scope="module")
def reviews(synth: Synth) -> list[StackReview]:
    return review_stacks(load_stacks(Path(synth.outdir)))


def test_summary_has_one_line_per_stack_starting_with_its_name(
    reviews: list[StackReview],
) -> None:
    lines = {r.stack.name: r.summary_line() for r in reviews}
    assert set(lines) == {"bootstrap", "dev", "test", "stage", "prod", *SYSTEM_ENVIRONMENTS}
    pattern = r"^prod +\d+ resources  1 public entry \(CloudFront\)  \$[\d,]+/month$"
    assert re.match(pattern, lines["prod"]), lines["prod"]
    assert re.match(
        r"^bootstrap +\d+ resources  0 public entries  \$[\d,]+/month$", lines["bootstrap"]
    )


def test_markdown_per_stack_and_a_self_contained_page(
    reviews: list[StackReview], tmp_path: Path
) -> None:
    written = write(tmp_path, reviews)
    assert {p.name for p in written} == {f"{r.stack.name}.md" for r in reviews} | {"index.html"}
    page = (tmp_path / "index.html").read_text()
    assert page.count("<svg") == len(reviews)
    assert not re.search(r"(src|href)=['\"]https?://", page)  # opens from disk, offline
    prod = (tmp_path / "prod.md").read_text()
    for section in (
        "## Public entry points",
        "## Ingress",
        "## IAM",
        "## Data stores",
        "## Monthly cost",
    ):
        assert section in prod
    assert "estimate" in prod.lower()


@pytest.mark.browser
@pytest.mark.skipif(not Path("/usr/bin/chromium").exists(), reason="apt chromium not installed")
def test_chromium_renders_every_diagram_with_the_expected_nodes(
    reviews: list[StackReview], tmp_path: Path
) -> None:
    from tools.review.screenshot import capture

    write(tmp_path, reviews)
    png = ARTIFACTS / "review-index.png"
    seen = capture(tmp_path / "index.html", png)["diagrams"]
    assert [d["stack"] for d in seen] == [r.stack.name for r in reviews]
    assert all(d["visible"] for d in seen)
    by_stack = {d["stack"]: d for d in seen}
    prod = next(r for r in reviews if r.stack.name == "prod")
    for type_ in ("aws_lb", "aws_ecs_service", "aws_db_instance", "aws_nat_gateway"):
        for res in prod.stack.of_type(type_):
            assert any(res.address in node for node in by_stack["prod"]["ids"]), res.address
    assert by_stack["prod"]["size"]["width"] > 300
    assert png.stat().st_size > 10_000
