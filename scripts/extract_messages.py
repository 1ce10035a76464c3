"""The words the pages mark for translation (``_()``, ``gettext()``, ``ngettext()`` in templates and in the
web and chart modules), and the message catalogues checked against them.

    python scripts/extract_messages.py          # list every msgid that a catalogue lacks (exit 1 if any)
    python scripts/extract_messages.py --write  # add the missing ones, untranslated, to each catalogue

A translator then fills in ``msgstr`` in ``src/naer/web/locale/da/LC_MESSAGES/messages.po``; the test
suite fails while a Danish word is missing (tests/test_i18n.py)."""

from __future__ import annotations

import sys
from pathlib import Path

from babel.messages.catalog import Catalog
from babel.messages.extract import extract_from_dir, extract_from_file
from babel.messages.pofile import read_po, write_po

ROOT = Path(__file__).resolve().parent.parent
SOURCES = [ROOT / "src" / "naer" / "web", ROOT / "src" / "naer" / "indicators"]
METHODS = [("**/templates/**.html", "jinja2"), ("**.py", "python")]
OPTIONS = {"**/templates/**.html": {"extensions": "jinja2.ext.i18n"}}
# Modules that translate through a function they call t (the page's gettext).
T_MODULES = [
    ROOT / "src" / "naer" / "web" / "dashboard.py",
    ROOT / "src" / "naer" / "indicators" / "charts.py",
    ROOT / "src" / "naer" / "risk" / "charts.py",
    ROOT / "src" / "naer" / "web" / "signin.py",
    ROOT / "src" / "naer" / "web" / "coordination.py",
    ROOT / "src" / "naer" / "web" / "teamwork.py",
    ROOT / "src" / "naer" / "web" / "messages.py",
    ROOT / "src" / "naer" / "web" / "initiatives.py",
]
KEYWORDS = {"_": None, "gettext": None, "ngettext": (1, 2)}
LOCALE = ROOT / "src" / "naer" / "web" / "locale"


def marked() -> dict[str, tuple[str, ...]]:
    """Every msgid the sources mark, with plural forms (msgid -> (singular[, plural]))."""
    found: dict[str, tuple[str, ...]] = {}
    messages = [m[2] for source in SOURCES for m in extract_from_dir(source, METHODS, OPTIONS, KEYWORDS)]
    for module in T_MODULES:
        messages += [m[1] for m in extract_from_file("python", module, keywords={"t": None})]
    for message in messages:
        forms = (message,) if isinstance(message, str) else tuple(message)
        if forms[0]:
            found[forms[0]] = forms
    from naer.indicators.definition import catalogue

    for indicator in catalogue().values():  # the units of the indicator definitions
        found.setdefault(indicator.unit, (indicator.unit,))
    return found


def main() -> int:
    words = marked()
    missing_any = False
    for lang in ("da", "en"):
        path = LOCALE / lang / "LC_MESSAGES" / "messages.po"
        with path.open("rb") as handle:
            catalogue: Catalog = read_po(handle, locale=lang)
        missing = [forms for msgid, forms in words.items() if msgid not in catalogue]
        for forms in missing:
            print(f"{lang}: missing {forms[0]!r}")
            missing_any = True
        if "--write" in sys.argv and missing:
            for forms in missing:
                catalogue.add(forms if len(forms) > 1 else forms[0])
            with path.open("wb") as out:
                write_po(out, catalogue, width=110, omit_header=False)
    return 1 if missing_any and "--write" not in sys.argv else 0


if __name__ == "__main__":
    raise SystemExit(main())
