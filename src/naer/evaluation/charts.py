"""The evaluation report's charts as Vega-Lite: the treated area against its counterfactuals, the event
study of the difference in differences, and the placebos in space of the synthetic control."""

from __future__ import annotations

from typing import Any

from naer.evaluation.designs import Estimate

SCHEMA = "https://vega.github.io/schema/vega-lite/v6.json"


def _chart(title: str, values: list[dict[str, Any]], width: int = 520) -> dict[str, Any]:
    return {"$schema": SCHEMA, "title": title, "width": width, "height": 240, "data": {"values": values}}


def counterfactual(title: str, months: list[str], start: str, estimates: list[Estimate]) -> dict[str, Any]:
    """The observed monthly value of the treated area, the synthetic control's and the time series'
    counterfactuals, and the start."""
    by = {e.design: e for e in estimates}
    values: list[dict[str, Any]] = []
    sc = by.get("synthetic-control")
    if sc is not None:
        for month, seen, made in zip(months, sc.detail["observed"], sc.detail["synthetic"], strict=False):
            values.append({"month": month, "series": "observeret", "value": seen})
            values.append({"month": month, "series": "syntetisk kontrol", "value": made})
    its = by.get("its")
    if its is not None:
        for month, made in zip(its.detail["months"], its.detail["counterfactual"], strict=False):
            values.append({"month": month, "series": "tidsserie uden initiativet", "value": made})
        if sc is None:
            for month, seen in zip(its.detail["months"], its.detail["observed"], strict=False):
                values.append({"month": month, "series": "observeret", "value": seen})
    values = [v for v in values if v["value"] == v["value"]]  # (no NaN)
    return {
        **_chart(title, values),
        "layer": [
            {
                "mark": {"type": "line", "strokeWidth": 1.5},
                "encoding": {
                    "x": {"field": "month", "type": "temporal", "title": "måned"},
                    "y": {"field": "value", "type": "quantitative", "title": "værdi"},
                    "color": {"field": "series", "type": "nominal", "title": None},
                    "strokeDash": {"field": "series", "type": "nominal", "legend": None},
                },
            },
            {
                "data": {"values": [{"month": start}]},
                "mark": {"type": "rule", "color": "#555"},
                "encoding": {"x": {"field": "month", "type": "temporal"}},
            },
        ],
    }


def event_study(title: str, study: list[dict[str, float]]) -> dict[str, Any]:
    """Each quarter's difference from the comparison, relative to the last quarter before the start."""
    return {
        **_chart(title, study, 420),
        "layer": [
            {"mark": {"type": "rule", "color": "#1f77b4"},
             "encoding": {"x": {"field": "quarter", "type": "quantitative", "title": "kvartal fra start"},
                          "y": {"field": "low", "type": "quantitative", "title": "forskel (95 % interval)"},
                          "y2": {"field": "high"}}},
            {"mark": {"type": "point", "filled": True, "color": "#1f77b4"},
             "encoding": {"x": {"field": "quarter", "type": "quantitative"},
                          "y": {"field": "effect", "type": "quantitative"}}},
            {"data": {"values": [{"y": 0}]}, "mark": {"type": "rule", "color": "#999", "strokeDash": [4, 4]},
             "encoding": {"y": {"field": "y", "type": "quantitative"}}},
        ],
    }  # fmt: skip


def placebos(title: str, effect: float, others: list[float]) -> dict[str, Any]:
    """The synthetic control's estimate for each other municipality put in the treated place, and the
    treated area's own (the line)."""
    values = [{"effect": v} for v in others if v == v]
    return {
        **_chart(title, values, 420),
        "layer": [
            {"mark": {"type": "bar", "color": "#9ecae1"},
             "encoding": {"x": {"field": "effect", "type": "quantitative", "bin": {"maxbins": 15},
                                "title": "placebo-virkning"},
                          "y": {"aggregate": "count", "type": "quantitative", "title": "kommuner"}}},
            {"data": {"values": [{"effect": effect}]},
             "mark": {"type": "rule", "color": "#d62728", "size": 2},
             "encoding": {"x": {"field": "effect", "type": "quantitative"}}},
        ],
    }  # fmt: skip
