"""Charts of indicator results as Vega-Lite (Altair): the funnel plot that compares units and the time
series against the area and the national level. The same specifications are shown in the dashboard and
written as SVG/PNG files (vl-convert), so a chart looks the same in a page and in a report."""

from __future__ import annotations

from collections.abc import Callable
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


def _same(message: str) -> str:
    return message


def funnel(
    indicator: Indicator,
    units: list[dict[str, Any]],
    area: dict[str, Any],
    unit_name: str,
    t: Callable[[str], str] = _same,
    lang: str = "en",
) -> dict[str, Any]:
    """Each unit's indirectly age-standardised value against its precision (expected events for a rate,
    index units for a share), with 95 % and 99.8 % control limits around the whole area's value. Each
    point is labelled with its unit's name (shortened), and the words are ``t``'s (the page's language)."""
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
    narrow, wide = "95 %", ("99,8 %" if lang == "da" else "99.8 %")
    for coverage, label in ((0.95, narrow), (0.998, wide)):
        lo, hi = funnel_limits(indicator.kind, centre, grid, coverage)
        for x, a, b in zip(grid, lo, hi, strict=True):
            limits.append({"precision": float(x), "y": float(a), "limit": label, "side": f"{label} low"})
            limits.append({"precision": float(x), "y": float(b), "limit": label, "side": f"{label} high"})
    at = np.array([p["precision"] for p in points], dtype=float)
    lo, hi = funnel_limits(indicator.kind, centre, at, 0.998)
    lo95, hi95 = funnel_limits(indicator.kind, centre, at, 0.95)
    for i, p in enumerate(points):
        p["signal"] = (
            t("outside 99.8 %")
            if not lo[i] <= p["value"] <= hi[i]
            else t("outside 95 %")
            if not lo95[i] <= p["value"] <= hi95[i]
            else t("within")
        )
        p["short"] = _short(str(p["unit"]))
    x_title = t("expected events (precision)") if indicator.kind == "rate" else t("index units (precision)")
    # The limits fly off at small precision: both axes are sized to the points and the lines clipped.
    top = max([p["value"] for p in points] + [centre]) * 1.3 or 1.0
    bottom = min([p["value"] for p in points] + [centre]) * 0.7
    lowest, highest = min(precisions) * 0.7, max(precisions) * 1.3
    x = alt.X("precision:Q", scale=alt.Scale(type="log", domain=[lowest, highest], nice=False), title=x_title)
    standardised = t("indirectly age-standardised")
    y = alt.Y(
        "y:Q",
        title=f"{t(indicator.unit)} ({standardised})",
        scale=alt.Scale(domain=[bottom, top], nice=False),
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
                scale=alt.Scale(domain=[narrow, wide], range=["#888", "#c0392b"]),
                title=t("limit"),
            ),
        )
    )
    rule = alt.Chart(_data("centre")).mark_rule(color="#333").encode(y="centre:Q")
    y_value = alt.Y("value:Q", scale=alt.Scale(domain=[bottom, top], nice=False))
    dots = (
        alt.Chart(_data("units"))
        .mark_circle(size=70, opacity=0.85, stroke="white", strokeWidth=0.5, clip=True)
        .encode(
            x=x,
            y=y_value,
            color=alt.Color(
                "signal:N",
                scale=alt.Scale(
                    domain=[t("within"), t("outside 95 %"), t("outside 99.8 %")],
                    range=["#2c7fb8", "#f39c12", "#c0392b"],
                ),
                title=t("against the area"),
            ),
            tooltip=[
                alt.Tooltip("unit:N", title=unit_name),
                alt.Tooltip("value:Q", title=t("indirectly age-standardised"), format=",.1f"),
                alt.Tooltip("crude:Q", title=t("crude"), format=",.1f"),
                alt.Tooltip("events:Q", title=t("events"), format=",.0f"),
                alt.Tooltip("denominator:Q", title=t("denominator"), format=",.1f"),
                alt.Tooltip("signal:N", title=t("against the area")),
            ],
        )
    )
    # Names beside the points when there are few enough to read (a region's 19 municipalities), else only
    # beside those outside the limits: which dot is which should not need a hover.
    named = (
        alt.Chart(_data("units"))
        .mark_text(
            align="left", dx=6, dy=-4, fontSize=10, color="#333", clip=False
        )  # the chart grows to hold it
        .encode(x=x, y=y_value, text="short:N")
    )
    if len(points) > 25:
        named = named.transform_filter(alt.datum.signal != t("within"))
    title = indicator.title_da if lang == "da" else indicator.title
    kind = t("funnel plot")  # (not inside the f-string: the catalogue's extractor skips those)
    layered = alt.layer(lines, rule, dots, named).properties(
        width=WIDTH, height=HEIGHT, title=_title(title, f"{kind}, {area['period']}")
    )
    chart = layered.resolve_scale(color="independent")
    return spec(chart, {"limits": limits, "centre": [{"centre": centre}], "units": points})


def _title(text: str, subtitle: str, most: int = 48) -> alt.TitleParams:
    """A chart's title in lines of at most ``most`` characters (a long indicator name otherwise runs past
    the chart's edge and is cut), with what the chart is as its subtitle."""
    lines: list[str] = []
    for word in text.split():
        if lines and len(lines[-1]) + 1 + len(word) <= most:
            lines[-1] += " " + word
        else:
            lines.append(word)
    return alt.TitleParams(text=lines, subtitle=subtitle, anchor="start", fontSize=13, subtitleFontSize=11)


def _short(name: str, most: int = 18) -> str:
    """A unit's name short enough to sit beside its point (Kommune, Lægehuset ... shortened)."""
    for long, short in ((" Kommune", ""), ("Lægehuset ", "Lh. "), ("Lægerne ", "L. ")):
        name = name.replace(long, short)
    return name if len(name) <= most else name[: most - 1] + "…"


def time_series(
    indicator: Indicator,
    area: list[dict[str, Any]],
    *more: tuple[str, list[dict[str, Any]]],
    t: Callable[[str], str] = _same,
    lang: str = "en",
) -> dict[str, Any]:
    """The whole area's value per period with its 95 % band, more named series (an area, a followed unit)
    with theirs, and the published national level as a dashed reference. Many periods (months) get a
    label every few ticks, never overlapping."""
    series = [dict(r, series=t("whole area")) for r in area]
    for label, rows in more:
        series += [dict(r, series=label) for r in rows]
    data = _data("series")
    periods = sorted({str(r["period"]) for r in area})
    every = max(1, -(-len(periods) // 12))  # at most about 12 labels
    shown = periods[::every]
    x = alt.X(
        "period:O",
        title=None,
        axis=alt.Axis(labelAngle=-45 if len(shown) > 6 else 0, values=shown, labelOverlap=True),
    )
    band = (
        alt.Chart(data)
        .mark_area(opacity=0.18)
        .encode(
            x=x,
            y=alt.Y("ci_low:Q", title=t(indicator.unit)),
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
                alt.Tooltip("period:O", title=t("period")),
                alt.Tooltip("value:Q", title=t("value"), format=",.1f"),
                alt.Tooltip("ci_low:Q", title=t("95 % low"), format=",.1f"),
                alt.Tooltip("ci_high:Q", title=t("95 % high"), format=",.1f"),
                alt.Tooltip("numerator:Q", title=t("events"), format=",.0f"),
            ],
        )
    )
    layers: list[alt.Chart] = [band, line]
    if indicator.reference is not None:
        reference = alt.Chart(_data("reference"))
        layers.append(
            reference.mark_rule(strokeDash=[6, 4], color="#555").encode(
                y="value:Q", tooltip=[alt.Tooltip("label:N", title=t("reference")), "value:Q"]
            )
        )
        layers.append(
            reference.mark_text(align="left", dx=4, dy=-7, color="#555", fontSize=11).encode(
                y="value:Q", x=alt.value(0), text="label:N"
            )
        )
    title = indicator.title_da if lang == "da" else indicator.title
    over = t("over time")
    chart = alt.layer(*layers).properties(width=WIDTH, height=HEIGHT - 60, title=_title(title, over))
    datasets = {"series": series}
    if indicator.reference is not None:
        label = indicator.reference.label_da if lang == "da" else indicator.reference.label
        datasets["reference"] = [{"value": indicator.reference.value, "label": label}]
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
