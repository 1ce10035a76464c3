"""Charts of indicator results as Vega-Lite (Altair): the funnel plot that compares units and the time
series against the area and the national level. The same specifications are shown in the dashboard and
written as SVG/PNG files (vl-convert), so a chart looks the same in a page and in a report."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import altair as alt
import numpy as np

from naer.errors import UserError
from naer.indicators.definition import Indicator
from naer.indicators.numbers import without_nan
from naer.indicators.stats import funnel_limits

WIDTH, HEIGHT = 400, 300
DANISH_LOCALE = {"decimal": ",", "thousands": ".", "grouping": [3], "currency": ["", " kr."]}


def _data(name: str) -> alt.NamedData:
    """Charts name their data and carry it in the top-level ``datasets``: Altair copies and checks inline
    values object by object, which costs more than the page's whole answer time."""
    return alt.NamedData(name=name)


def spec(chart: alt.TopLevelMixin, datasets: dict[str, list[dict[str, Any]]]) -> dict[str, Any]:
    """The Vega-Lite specification of ``chart`` with its named datasets filled in."""
    out: dict[str, Any] = chart.configure_legend(orient="bottom", columns=3).to_dict(validate=False)
    out["datasets"] = {name: without_nan(values) for name, values in datasets.items()}
    return out


def funnel(
    indicator: Indicator, units: list[dict[str, Any]], area: dict[str, Any], unit_name: str
) -> dict[str, Any]:
    """Each unit's indirectly age-standardised value against its precision (expected events for a rate,
    index units for a share), with 95 % and 99.8 % control limits around the whole area's value."""
    centre = float(area["value"])
    points = []
    for r in units:
        if not r["denominator"] or r["ratio"] is None or r["ratio"] != r["ratio"]:
            continue  # no expected events (nothing happened anywhere in the unit's age bands): no point
        precision = r["expected"] if indicator.kind == "rate" else r["denominator"]
        points.append(
            {
                "unit": r["group_label"],
                "precision": precision,
                "value": r["ratio"] * centre,
                "crude": r["value"],
                "events": r["numerator"],
                "denominator": r["denominator"],
            }
        )
    precisions = [p["precision"] for p in points] or [1.0]
    grid = np.geomspace(max(min(precisions) * 0.7, 0.5), max(precisions) * 1.3, 120)
    limits = []
    for coverage, label in ((0.95, "95 %"), (0.998, "99.8 %")):
        lo, hi = funnel_limits(indicator.kind, centre, grid, coverage)
        for x, a, b in zip(grid, lo, hi, strict=True):
            limits.append({"precision": float(x), "y": float(a), "limit": label, "side": f"{label} low"})
            limits.append({"precision": float(x), "y": float(b), "limit": label, "side": f"{label} high"})
    at = np.array([p["precision"] for p in points], dtype=float)
    lo, hi = funnel_limits(indicator.kind, centre, at, 0.998)
    lo95, hi95 = funnel_limits(indicator.kind, centre, at, 0.95)
    for i, p in enumerate(points):
        p["signal"] = (
            "outside 99.8 %"
            if not lo[i] <= p["value"] <= hi[i]
            else "outside 95 %"
            if not lo95[i] <= p["value"] <= hi95[i]
            else "within"
        )
    x_title = "expected events (precision)" if indicator.kind == "rate" else "index units (precision)"
    x = alt.X("precision:Q", scale=alt.Scale(type="log"), title=x_title)
    # The limits fly off at small precision: the y axis is sized to the points, the lines clipped to it.
    top = max([p["value"] for p in points] + [centre]) * 1.3 or 1.0
    y = alt.Y(
        "y:Q", title=f"{indicator.unit} (age-standardised)", scale=alt.Scale(domain=[0, top], nice=False)
    )
    lines = (
        alt.Chart(_data("limits"))
        .mark_line(strokeDash=[4, 3], strokeWidth=1, clip=True)
        .encode(
            x=x,
            y=y,
            detail="side:N",
            color=alt.Color(
                "limit:N",
                scale=alt.Scale(domain=["95 %", "99.8 %"], range=["#888", "#c0392b"]),
                title="limit",
            ),
        )
    )
    rule = alt.Chart(_data("centre")).mark_rule(color="#333").encode(y="centre:Q")
    dots = (
        alt.Chart(_data("units"))
        .mark_circle(size=70, opacity=0.85, stroke="white", strokeWidth=0.5, clip=True)
        .encode(
            x=x,
            y=alt.Y("value:Q", scale=alt.Scale(domain=[0, top], nice=False)),
            color=alt.Color(
                "signal:N",
                scale=alt.Scale(
                    domain=["within", "outside 95 %", "outside 99.8 %"],
                    range=["#2c7fb8", "#f39c12", "#c0392b"],
                ),
                title="against the area",
            ),
            tooltip=[
                alt.Tooltip("unit:N", title=unit_name),
                alt.Tooltip("value:Q", title="age-standardised", format=",.1f"),
                alt.Tooltip("crude:Q", title="crude", format=",.1f"),
                alt.Tooltip("events:Q", format=",.0f"),
                alt.Tooltip("denominator:Q", format=",.1f"),
                alt.Tooltip("signal:N", title="against the area"),
            ],
        )
    )
    layered = alt.layer(lines, rule, dots).properties(
        width=WIDTH, height=HEIGHT, title=f"{indicator.title}: funnel plot, {area['period']}"
    )
    chart = layered.resolve_scale(color="independent")
    return spec(chart, {"limits": limits, "centre": [{"centre": centre}], "units": points})


def time_series(
    indicator: Indicator,
    area: list[dict[str, Any]],
    *more: tuple[str, list[dict[str, Any]]],
) -> dict[str, Any]:
    """The whole area's value per period with its 95 % band, more named series (an area, a followed unit)
    with theirs, and the published national level as a dashed reference."""
    series = [dict(r, series="whole area") for r in area]
    for label, rows in more:
        series += [dict(r, series=label) for r in rows]
    data = _data("series")
    x = alt.X("period:O", title=None, axis=alt.Axis(labelAngle=-45 if len(area) > 12 else 0))
    band = (
        alt.Chart(data)
        .mark_area(opacity=0.18)
        .encode(
            x=x,
            y=alt.Y("ci_low:Q", title=indicator.unit),
            y2="ci_high:Q",
            color=alt.Color("series:N", title=None),
        )
    )
    line = (
        alt.Chart(data)
        .mark_line(point=True)
        .encode(
            x=x,
            y="value:Q",
            color=alt.Color("series:N", title=None),
            tooltip=[
                alt.Tooltip("series:N", title=""),
                "period:O",
                alt.Tooltip("value:Q", format=",.1f"),
                alt.Tooltip("ci_low:Q", title="95 % low", format=",.1f"),
                alt.Tooltip("ci_high:Q", title="95 % high", format=",.1f"),
                alt.Tooltip("numerator:Q", title="events", format=",.0f"),
            ],
        )
    )
    layers: list[alt.Chart] = [band, line]
    if indicator.reference is not None:
        reference = alt.Chart(_data("reference"))
        layers.append(
            reference.mark_rule(strokeDash=[6, 4], color="#555").encode(
                y="value:Q", tooltip=[alt.Tooltip("label:N", title="reference"), "value:Q"]
            )
        )
        layers.append(
            reference.mark_text(align="left", dx=4, dy=-7, color="#555", fontSize=11).encode(
                y="value:Q", x=alt.value(0), text="label:N"
            )
        )
    chart = alt.layer(*layers).properties(
        width=WIDTH, height=HEIGHT - 60, title=f"{indicator.title} over time"
    )
    datasets = {"series": series}
    if indicator.reference is not None:
        datasets["reference"] = [{"value": indicator.reference.value, "label": indicator.reference.label}]
    return spec(chart, datasets)


def save(vega_lite: dict[str, Any], out: Path, danish: bool = False) -> None:
    """Write a chart as .svg, .png or .json (Vega-Lite), without a browser."""
    import vl_convert as vlc

    locale = DANISH_LOCALE if danish else None
    suffix = out.suffix.lower()
    if suffix == ".svg":
        out.write_text(vlc.vegalite_to_svg(vega_lite, format_locale=locale))
    elif suffix == ".png":
        out.write_bytes(vlc.vegalite_to_png(vega_lite, scale=2, format_locale=locale))
    elif suffix == ".json":
        import json

        out.write_text(json.dumps(vega_lite))
    else:
        raise UserError(f"--chart {out}: the suffix must be .svg, .png or .json")
