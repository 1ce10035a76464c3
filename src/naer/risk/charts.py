"""The report's charts as Vega-Lite: the calibration plot (observed against predicted risk, with the
diagonal a perfectly calibrated model lies on) and the decision curve (net benefit of acting on everyone above
a threshold, against acting on everyone or no one)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

SCHEMA = "https://vega.github.io/schema/vega-lite/v6.json"


def _chart(title: str, values: list[dict[str, Any]]) -> dict[str, Any]:
    """A chart of the report's size over ``values``, its marks still to add."""
    return {"$schema": SCHEMA, "title": title, "width": 360, "height": 300, "data": {"values": values}}


def _same(text: str) -> str:
    return text


def calibration(
    points: list[dict[str, float]], title: str, t: Callable[[str], str] = _same
) -> dict[str, Any]:
    """The calibration plot; its words are ``t``'s (the page's language; the report's English without)."""
    top = max([p["high"] for p in points] + [p["predicted"] for p in points] + [0.01])
    axis = {"type": "quantitative", "scale": {"domain": [0, top]}, "axis": {"format": ".0%"}}
    return {
        **_chart(title, points),
        "layer": [
            {
                "data": {"values": [{"x": 0, "y": 0}, {"x": top, "y": top}]},
                "mark": {"type": "line", "color": "#999", "strokeDash": [4, 4]},
                "encoding": {"x": {"field": "x", **axis}, "y": {"field": "y", **axis}},
            },
            {
                "mark": {"type": "rule", "color": "#1f77b4"},
                "encoding": {
                    "x": {"field": "predicted", **axis},
                    "y": {"field": "low", **axis},
                    "y2": {"field": "high"},
                },
            },
            {
                "mark": {"type": "point", "filled": True, "color": "#1f77b4"},
                "encoding": {
                    "x": {"field": "predicted", **axis, "title": t("predicted risk (groups of equal size)")},
                    "y": {"field": "observed", **axis, "title": t("observed share (95 % interval)")},
                    "tooltip": [
                        {"field": "predicted", "format": ".1%", "title": t("predicted risk")},
                        {"field": "observed", "format": ".1%", "title": t("observed share")},
                        {"field": "n", "format": ",.0f", "title": t("citizens")},
                    ],
                },
            },
        ],
    }


def decision_curve(rows: list[dict[str, Any]], title: str, t: Callable[[str], str] = _same) -> dict[str, Any]:
    """The decision curve of the model against the baseline and acting on everyone or no one."""
    best = max([r["net_benefit"] for r in rows] + [0.01])
    names = {
        "model": t("model"),
        "age + Charlson": t("age + Charlson"),
        "everyone": t("everyone"),
        "no one": t("no one"),
    }
    shown = [{**r, "strategy": names.get(str(r["strategy"]), str(r["strategy"]))} for r in rows]
    return {
        **_chart(title, shown),
        "mark": {"type": "line", "clip": True},
        "encoding": {
            "x": {
                "field": "threshold",
                "type": "quantitative",
                "axis": {"format": ".0%"},
                "title": t("threshold risk"),
            },
            "y": {
                "field": "net_benefit",
                "type": "quantitative",
                "scale": {"domain": [-best * 0.1, best * 1.05]},
                "title": t("net benefit (true positives per citizen)"),
            },
            "color": {"field": "strategy", "type": "nominal", "title": None},
            "strokeDash": {
                "field": "strategy",
                "type": "nominal",
                "scale": {
                    "domain": list(names.values()),
                    "range": [[1, 0], [6, 3], [2, 2], [1, 3]],
                },
                "legend": None,
            },
        },
    }
