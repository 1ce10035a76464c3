"""The pages' languages: Danish first, English by a remembered switch. The words live in gettext message
catalogues (``locale/LANG/LC_MESSAGES/messages.po``: a translator reviews one file per language, and
``pybabel extract`` finds every word the templates and modules mark), compiled in memory at start; Babel
formats dates the way each language writes them (numbers: naer.indicators.numbers, as the command line).

English is the catalogues' source language (the msgids); Danish is the default language of every page.
"""

from __future__ import annotations

import io
from collections.abc import Callable
from datetime import date, datetime
from functools import lru_cache
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

from babel.dates import format_date, format_datetime
from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po
from babel.support import Translations
from jinja2 import pass_context
from jinja2.runtime import Context
from starlette.requests import Request

from naer.indicators import numbers

LOCALES = Path(__file__).parent / "locale"
LANGUAGES = ("da", "en")
DEFAULT = "da"
BABEL_LOCALE = {"da": "da_DK", "en": "en_GB"}


@lru_cache(maxsize=len(LANGUAGES))
def translations(lang: str) -> Translations:
    """The catalogue of ``lang`` (English: the msgids themselves, with the English catalogue's plurals)."""
    po = LOCALES / lang / "LC_MESSAGES" / "messages.po"
    with po.open("rb") as handle:
        catalogue = read_po(handle, locale=lang)
    buffer = io.BytesIO()
    write_mo(buffer, catalogue)
    buffer.seek(0)
    return Translations(fp=buffer)


def mark(message: str) -> str:
    """Mark a word of a module for the catalogues (import it as ``_``, which ``pybabel extract`` and
    scripts/extract_messages.py look for); it is translated where it is shown."""
    return message


def labelled(label: str, t: Callable[[str], str]) -> str:
    """``Cluster: Aarhus`` with its kind (a word of Nær's) in the page's language, the name as it is; a
    label without a kind is one word of Nær's (``Everyone``)."""
    if not label:
        return label  # (gettext of "" is the catalogue's header)
    kind, sep, name = label.partition(": ")
    return f"{t(kind)}: {name}" if sep else t(label)


def number(value: float | None, digits: int = 1, lang: str = DEFAULT) -> str:
    """A number as the language writes it (1.234,5 in Danish, 1,234.5 in English); – for no value."""
    return numbers.number(value, digits, danish=lang == "da")


def day(value: date | datetime | str | None, lang: str = DEFAULT) -> str:
    """A date in words (3. december 2026 / 3 December 2026)."""
    if value is None or value == "":
        return "–"
    if isinstance(value, str):
        try:
            parsed = date.fromisoformat(value[:10])
        except ValueError:
            return value
        return str(format_date(parsed, "long", locale=BABEL_LOCALE[lang]))
    if isinstance(value, datetime):
        return str(format_datetime(value, "d. MMMM y HH:mm" if lang == "da" else "d MMMM y HH:mm",
                                   locale=BABEL_LOCALE[lang]))  # fmt: skip
    return str(format_date(value, "long", locale=BABEL_LOCALE[lang]))


def month(value: date, lang: str = DEFAULT) -> str:
    """A month in words (december 2026 / December 2026)."""
    return str(format_date(value, "LLLL y", locale=BABEL_LOCALE[lang]))


def switch_query(request: Request | None, lang: str) -> str:
    """The link to the same page in the other language: the page's query (the filters) kept. A fragment's
    request (HTMX, ``/panel``) links to the page it is part of."""
    other = "en" if lang == "da" else "da"
    if request is None:
        return f"?lang={other}"
    path = request.url.path.removesuffix("/panel")
    query = [(k, v) for k, v in request.query_params.multi_items() if k != "lang"] + [("lang", other)]
    return f"{path}?{urlencode(query)}"


def gettext_for(lang: str) -> Callable[[str], str]:
    """The words of ``lang`` for Python code that builds a page's texts (a template gets helpers())."""
    return translations(lang if lang in LANGUAGES else DEFAULT).gettext


def helpers(lang: str, request: Request | None = None) -> dict[str, Any]:
    """What a template needs to speak ``lang``: gettext (``_``), plurals and the number and date filters'
    language, passed into each render (so two requests in two languages never share a translation)."""
    found = translations(lang if lang in LANGUAGES else DEFAULT)
    gettext: Callable[[str], str] = found.gettext
    ngettext: Callable[[str, str, int], str] = found.ngettext
    return {
        "_": gettext,
        "gettext": gettext,
        "ngettext": ngettext,
        "lang": lang,
        "other_lang": "en" if lang == "da" else "da",
        "switch_query": switch_query(request, lang),
    }


@pass_context
def number_filter(context: Context, value: float | None, digits: int = 1) -> str:
    """``|num(digits)`` in a template: the number in the page's language (its ``lang``)."""
    return number(value, digits, context.get("lang", DEFAULT))


@pass_context
def day_filter(context: Context, value: date | datetime | str | None) -> str:
    """``|day`` in a template: the date in words in the page's language."""
    return day(value, context.get("lang", DEFAULT))
