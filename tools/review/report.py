"""The review's outputs: ``review/index.html`` (one self-contained page, diagrams inline as
SVG), ``review/<stack>.md``, ``review/diff.md`` and the terminal summary."""

from __future__ import annotations

import html
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from tools.review.cost import DISCLAIMER, CostReport, estimate
from tools.review.diagram import diagram
from tools.review.diff import StackDiff
from tools.review.model import Stack
from tools.review.posture import Posture, posture


@dataclass(frozen=True)
class StackReview:
    stack: Stack
    posture: Posture
    cost: CostReport
    svg: str

    @property
    def resources(self) -> int:
        return sum(1 for _ in self.stack.managed())

    def summary_line(self, width: int = 9) -> str:
        entries = self.posture.entry_points
        kinds = ", ".join(sorted({e.kind for e in entries}))
        noun = "public entry" if len(entries) == 1 else "public entries"
        entry = f"{len(entries)} {noun}" + (f" ({kinds})" if kinds else "")
        return (
            f"{self.stack.name:<{width}} {self.resources:>3} resources  {entry}  "
            f"{self.cost.total_text}/month"
        )


def review_stacks(stacks: dict[str, Stack]) -> list[StackReview]:
    return [
        StackReview(stack, posture(stack), estimate(stack), diagram(stack))
        for stack in stacks.values()
    ]


def _about(cost: CostReport) -> str:
    """``about $1,234``, or ``at least $1,234`` when the table lacks a price."""
    return cost.total_text if cost.missing else f"about {cost.total_text}"


def money(value: float) -> str:
    sign = "-" if value < 0 else "+"
    return f"{sign}${abs(value):,.0f}/month"


# ------------------------------------------------------------------ markdown


def stack_markdown(review: StackReview) -> str:
    p, c = review.posture, review.cost
    out = [f"# {review.stack.name}", "", review.summary_line(), ""]
    out += ["## Public entry points", ""]
    out += [f"- {e.kind}: `{e.construct}` ({e.detail})" for e in p.entry_points] or ["- none"]
    out += ["", "## Ingress", "", "| to | port | from | description |", "| --- | --- | --- | --- |"]
    out += [f"| `{i.target}` | {i.port} | `{i.source}` | {i.description} |" for i in p.ingress]
    out += [
        "",
        "## IAM (wildcards marked **\\***)",
        "",
        "| principal | actions | resources |",
        "| --- | --- | --- |",
    ]
    for g in p.grants:
        mark = " **\\***" if g.wildcard else ""
        verb = "" if g.effect == "Allow" else f"{g.effect}: "
        out.append(
            f"| `{g.principal}`{mark} | {verb}{', '.join(g.actions)} | "
            f"{', '.join(g.resources) or '-'} |"
        )
    out += [
        "",
        "## Data stores",
        "",
        "| store | what | encryption | multi-AZ | backups | deletion protection | TLS |",
        "| --- | --- | --- | --- | --- | --- | --- |",
    ]
    out += [
        f"| `{d.construct}` | {d.kind} | {d.encryption} | {d.multi_az} | {d.backups} | "
        f"{d.deletion_protection} | {d.tls} |"
        for d in p.data_stores
    ]
    out += [
        "",
        f"## Monthly cost: {_about(c)}",
        "",
        f"_{DISCLAIMER}_",
        "",
        *(f"- **{m}**" for m in c.missing),
        *([""] if c.missing else []),
        "| resource | what | USD/month |",
        "| --- | --- | ---: |",
    ]
    out += [f"| `{line.construct}` | {line.what} | {line.usd_month:,.2f} |" for line in c.lines]
    out += ["", "Not included (usage-priced):", ""] + [f"- {u}" for u in c.usage]
    if c.unpriced:
        out += ["", "Resource types with no price in the table: " + ", ".join(c.unpriced)]
    return "\n".join(out) + "\n"


def diff_markdown(diffs: Sequence[StackDiff], base: str) -> str:
    out = [f"# Changes against {base}", ""]
    for d in diffs:
        out.append(diff_summary_line(d))
    for d in diffs:
        if not d.changes and not d.widening:
            continue
        out += ["", f"## {d.stack}", ""]
        if d.risky:
            out += ["**Risky** (stateful or foundational resources replaced or deleted):", ""]
            out += [f"- {c.kind}: `{c.construct}` (`{c.address}`) {c.note}" for c in d.risky]
            out.append("")
        if d.widening:
            out += ["**Security widening:**", ""] + [f"- {w}" for w in d.widening] + [""]
        for c in d.changes:
            old = f" (was `{c.old_address}`)" if c.old_address else ""
            out.append(
                f"- **{c.kind}** `{c.construct}` `{c.address}`{old}"
                + (f": {c.note}" if c.note else "")
            )
            for a in c.attrs:
                force = " (forces replacement)" if a.forces_new else ""
                out.append(f"  - `{a.path}`: `{a.before!r}` -> `{a.after!r}`{force}")
    return "\n".join(out) + "\n"


def diff_summary_line(d: StackDiff) -> str:
    counts = {k: len(d.of_kind(k)) for k in ("added", "removed", "changed", "replaced", "renamed")}
    parts = [f"{v} {k}" for k, v in counts.items() if v] or ["no change"]
    flags = []
    if d.risky:
        flags.append(f"RISKY x{len(d.risky)}")
    if d.widening:
        flags.append(f"WIDENING x{len(d.widening)}")
    delta = d.cost_delta
    if delta is not None and round(delta) != 0:
        flags.append(money(delta))
    return f"{d.stack:<9} " + ", ".join(parts) + (f"  [{'; '.join(flags)}]" if flags else "")


# ------------------------------------------------------------------ html


_CSS = """
body{font:14px/1.45 system-ui,sans-serif;margin:0 auto;max-width:1200px;padding:1em 2em;color:#222}
h1{font-size:1.6em}h2{border-bottom:1px solid #ccc;margin-top:2em}
table{border-collapse:collapse;margin:.5em 0}
td,th{border:1px solid #ddd;padding:.25em .5em;text-align:left;vertical-align:top}
th{background:#f4f4f4}code{font-size:.9em}.warn{color:#a40000;font-weight:bold}
.diagram{overflow:auto;border:1px solid #ddd;padding:.5em;background:#fff}
.diagram svg{max-width:100%;height:auto}nav a{margin-right:1em}.note{color:#555;font-style:italic}
"""


def page(
    reviews: Sequence[StackReview], diffs: Sequence[StackDiff] | None, base: str | None
) -> str:
    e = html.escape
    body = [
        "<h1>Review of the synthesized stacks</h1>",
        "<p class='note'>Generated offline from cdktf.out (no credentials, no state). "
        f"{e(DISCLAIMER)}</p>",
        "<nav>",
    ]
    body += [f"<a href='#{e(r.stack.name)}'>{e(r.stack.name)}</a>" for r in reviews]
    body += ["</nav>", "<pre>" + e("\n".join(r.summary_line() for r in reviews)) + "</pre>"]
    if diffs is not None:
        body += [
            f"<h2 id='diff'>Changes against {e(base or '')}</h2>",
            "<pre>" + e("\n".join(diff_summary_line(d) for d in diffs)) + "</pre>",
        ]
        for d in diffs:
            for line in [
                *(f"RISKY {c.kind}: {c.construct} ({c.address}) {c.note}" for c in d.risky),
                *(f"WIDENING: {w}" for w in d.widening),
            ]:
                body.append(f"<p class='warn'>{e(d.stack)}: {e(line)}</p>")
    for r in reviews:
        p, c = r.posture, r.cost
        body += [
            f"<h2 id='{e(r.stack.name)}'>{e(r.stack.name)}</h2>",
            f"<p>{e(r.summary_line())}</p>",
            f"<div class='diagram' data-stack='{e(r.stack.name)}'>{_inline(r.svg)}</div>",
            "<h3>Public entry points</h3>",
            _table(
                ["kind", "construct", "detail"],
                [[x.kind, x.construct, x.detail] for x in p.entry_points],
            ),
            "<h3>Ingress</h3>",
            _table(
                ["to", "port", "from", "description"],
                [[i.target, i.port, i.source, i.description] for i in p.ingress],
            ),
            "<h3>IAM</h3>",
            _table(
                ["principal", "effect", "actions", "resources", "wildcard"],
                [
                    [
                        g.principal,
                        g.effect,
                        ", ".join(g.actions),
                        ", ".join(g.resources),
                        "WILDCARD" if g.wildcard else "",
                    ]
                    for g in p.grants
                ],
            ),
            "<h3>Data stores</h3>",
            _table(
                [
                    "store",
                    "what",
                    "encryption",
                    "multi-AZ",
                    "backups",
                    "deletion protection",
                    "TLS",
                ],
                [
                    [
                        d.construct,
                        d.kind,
                        d.encryption,
                        d.multi_az,
                        d.backups,
                        d.deletion_protection,
                        d.tls,
                    ]
                    for d in p.data_stores
                ],
            ),
            f"<h3>Monthly cost: {e(_about(c))} (estimate)</h3>",
            *(f"<p class='warn'>{e(m)}</p>" for m in c.missing),
            _table(
                ["resource", "what", "USD/month"],
                [[x.construct, x.what, f"{x.usd_month:,.2f}"] for x in c.lines],
            ),
            "<p>Not included (usage-priced): " + e("; ".join(c.usage)) + "</p>",
        ]
    return (
        "<!doctype html><html lang='en'><head><meta charset='utf-8'>"
        "<title>Stack review</title><style>"
        + _CSS
        + "</style></head><body>"
        + "\n".join(body)
        + "</body></html>\n"
    )


def _inline(svg: str) -> str:
    """An SVG document without its XML prolog and doctype, to sit inside HTML."""
    start = svg.find("<svg")
    return svg[start:] if start >= 0 else svg


def _table(headers: list[str], rows: list[list[str]]) -> str:
    e = html.escape
    if not rows:
        return "<p>none</p>"
    head = "".join(f"<th>{e(h)}</th>" for h in headers)
    body = "".join("<tr>" + "".join(f"<td>{e(str(v))}</td>" for v in row) + "</tr>" for row in rows)
    return f"<table><tr>{head}</tr>{body}</table>"


def write(
    outdir: Path,
    reviews: Sequence[StackReview],
    diffs: Sequence[StackDiff] | None = None,
    base: str | None = None,
) -> list[Path]:
    outdir.mkdir(parents=True, exist_ok=True)
    written = []
    for r in reviews:
        path = outdir / f"{r.stack.name}.md"
        path.write_text(stack_markdown(r), encoding="utf-8")
        written.append(path)
    if diffs is not None:
        path = outdir / "diff.md"
        path.write_text(diff_markdown(diffs, base or "base"), encoding="utf-8")
        written.append(path)
    index = outdir / "index.html"
    index.write_text(page(reviews, diffs, base), encoding="utf-8")
    written.append(index)
    return written
