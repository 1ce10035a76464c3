"""WCAG 2.1 AA checks of a page in the browser: axe-core (vendored from npm, tests/vendor/axe-core) run on
the page as it is drawn. Danish public-sector sites must meet WCAG 2.1 AA (webtilgængelighedsloven)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

AXE = Path(__file__).parent / "vendor" / "axe-core" / "axe.min.js"
TAGS = ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa"]
COUNTS: dict[str, dict[str, int]] = {}
"""Violations found per page checked in this run, by impact (written to build/accessibility.json)."""


def violations(page: Any, name: str) -> list[dict[str, Any]]:
    """axe-core's WCAG 2.1 A/AA violations on ``page`` now; counted under ``name``. Each violation keeps
    its rule, impact, help text and the first nodes' selectors, so a failing test says what to mend."""
    if not page.evaluate("() => typeof window.axe !== 'undefined'"):
        # Through the debugging protocol, not a <script> tag: the pages' Content-Security-Policy (rightly)
        # refuses inline scripts.
        page.evaluate("code => { (0, eval)(code); }", AXE.read_text(encoding="utf-8"))
    found = page.evaluate(
        "async (tags) => (await axe.run(document, {runOnly: {type: 'tag', values: tags}})).violations",
        TAGS,
    )
    out = [
        {
            "rule": v["id"],
            "impact": v.get("impact"),
            "help": v.get("help"),
            "nodes": [n.get("target") for n in v.get("nodes", [])[:3]],
        }
        for v in found
    ]
    counts: dict[str, int] = {}
    for v in out:
        counts[str(v["impact"])] = counts.get(str(v["impact"]), 0) + 1
    COUNTS[name] = counts
    _write()
    return out


def serious(page: Any, name: str) -> list[dict[str, Any]]:
    """The serious and critical violations (the ones the tests allow none of)."""
    return [v for v in violations(page, name) if v["impact"] in ("serious", "critical")]


def _write() -> None:
    out = Path(__file__).parents[1] / "build" / "accessibility.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(COUNTS, indent=2, sort_keys=True), encoding="utf-8")


def check(page: Any, name: str) -> None:
    """No serious or critical WCAG 2.1 A/AA violation on the page; else each one, readably."""
    found = serious(page, name)
    assert not found, f"{name}: " + "; ".join(
        f"{v['rule']} ({v['impact']}): {v['help']} at {v['nodes']}" for v in found
    )
