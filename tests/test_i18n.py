"""The pages' words: every word the templates and modules mark has a Danish translation with the same
placeholders, and numbers are written the Danish way."""

from __future__ import annotations

import importlib.util
import re
from pathlib import Path

from babel.messages.pofile import read_po

from naer.web import i18n

ROOT = Path(__file__).resolve().parents[1]


def _marked() -> dict[str, tuple[str, ...]]:
    script = ROOT / "scripts" / "extract_messages.py"
    spec = importlib.util.spec_from_file_location("extract_messages", script)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.marked()  # type: ignore[no-any-return]


def test_every_marked_word_has_a_danish_translation() -> None:
    with (i18n.LOCALES / "da" / "LC_MESSAGES" / "messages.po").open("rb") as handle:
        danish = read_po(handle, locale="da")
    marked = _marked()
    assert len(marked) > 50
    missing = [m for m in marked if m not in danish or not danish[m].string]
    assert missing == []
    for message in danish:
        if message.id:
            names = sorted(re.findall(r"%\((\w+)\)s", str(message.id)))
            assert sorted(re.findall(r"%\((\w+)\)s", str(message.string))) == names, message.id
            assert str(message.string).count("%%") == str(message.id).count("%%"), message.id


def test_numbers_and_dates_in_each_language() -> None:
    assert i18n.number(1234.56, 1, "da") == "1.234,6"
    assert i18n.number(1234.56, 1, "en") == "1,234.6"
    assert i18n.number(None) == "–" and i18n.number(float("nan")) == "–"
    assert i18n.day("2026-12-03", "da") == "3. december 2026"
    assert i18n.day("2026-12-03", "en") == "3 December 2026"
    assert i18n.helpers("da")["_"]("Municipality") == "Kommune"
    assert i18n.helpers("en")["_"]("Municipality") == "Municipality"
    assert i18n.helpers("xx")["_"]("Municipality") == "Kommune"  # an unknown language: Danish


def test_charts_speak_the_pages_language() -> None:
    """Chart titles and axes are Danish on a Danish page (a word inside an f-string escapes the
    catalogue's extractor: this caught "funnel plot" and "over time" left in English)."""
    from naer.indicators import charts
    from naer.indicators.definition import catalogue

    indicator = catalogue()["preventable-65plus"]
    t = i18n.helpers("da")["_"]
    row = {"period": "2024", "value": 50.0, "ci_low": 40.0, "ci_high": 60.0, "numerator": 30}
    series = charts.time_series(indicator, [row], t=t, lang="da")
    assert series["title"]["text"] == ["Forebyggelige indlæggelser blandt ældre"]
    assert series["title"]["subtitle"] == "over tid"
    unit = {**row, "group_label": "Lægehuset A", "denominator": 600.0, "expected": 25.0, "ratio": 1.2}
    funnel = charts.funnel(indicator, [unit], row, "Lægepraksis", t, "da")
    assert funnel["title"]["subtitle"] == "tragtdiagram, 2024"
    long = charts.time_series(catalogue()["preventable-chronic"], [row], t=t, lang="da")["title"]["text"]
    assert long == ["Forebyggelige indlæggelser for udvalgte kroniske", "sygdomme"]  # lines, never cut
    assert "indirekte aldersstandardiseret" in str(funnel)


def test_a_false_observation_is_shown_as_no() -> None:
    """ "Lives alone: false" is a value (it was shown blank, which read as if the citizen lived alone)."""
    from naer.web.signin import _observation_row

    t = i18n.gettext_for("da")
    alone = {"code": {"text": "Lives alone"}, "effectiveDateTime": "2024-01-01", "valueBoolean": False}
    assert _observation_row(alone, t)[1] == "nej"
    assert _observation_row({**alone, "valueBoolean": True}, i18n.gettext_for("en"))[1] == "yes"
