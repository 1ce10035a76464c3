"""FHIR narrative (xhtml) checks and safe XML parsing for messages from outside.

A message is hostile until checked: XML is parsed with entities, DTDs and network access off, and a
document that declares a DOCTYPE is refused outright (no billion laughs, no external entities). The
narrative rules are FHIR's txt-1/txt-2 (R4 Narrative: only basic HTML, no scripts, forms, event
attributes or non-local images).
"""

from __future__ import annotations

import re

from lxml import etree

XHTML = "http://www.w3.org/1999/xhtml"
ALLOWED = frozenset(
    [
        "a",
        "abbr",
        "acronym",
        "b",
        "big",
        "blockquote",
        "br",
        "caption",
        "cite",
        "code",
        "col",
        "colgroup",
        "dd",
        "dfn",
        "div",
        "dl",
        "dt",
        "em",
        "h1",
        "h2",
        "h3",
        "h4",
        "h5",
        "h6",
        "hr",
        "i",
        "img",
        "li",
        "ol",
        "p",
        "pre",
        "q",
        "samp",
        "small",
        "span",
        "strong",
        "sub",
        "sup",
        "table",
        "tbody",
        "td",
        "tfoot",
        "th",
        "thead",
        "tr",
        "tt",
        "ul",
        "var",
    ]
)
MAX_BYTES = 20 * 1024 * 1024
# txt-1's attributes: HTML 4.0's on the allowed elements (chapters 7-11 and 15), <a>'s name and href,
# images' src and alt, and style
ATTRIBUTES = frozenset(
    (
        "abbr",
        "align",
        "alt",
        "axis",
        "border",
        "cellpadding",
        "cellspacing",
        "char",
        "charoff",
        "cite",
        "class",
        "colspan",
        "compact",
        "datetime",
        "dir",
        "frame",
        "headers",
        "height",
        "href",
        "id",
        "lang",
        "name",
        "rowspan",
        "rules",
        "scope",
        "span",
        "src",
        "start",
        "style",
        "summary",
        "title",
        "type",
        "valign",
        "value",
        "width",
    )
)
MAX_ATTRIBUTES = 64  # on one element, namespace declarations included (FHIR's carry one or two)
MAX_NARRATIVE_ELEMENTS = 10_000
_TAG = re.compile(rb"<[^<>]*>")


def parser() -> etree.XMLParser:
    """An XML parser that resolves nothing outside the document and refuses huge trees."""
    return etree.XMLParser(
        resolve_entities=False,
        no_network=True,
        load_dtd=False,
        dtd_validation=False,
        huge_tree=False,
        remove_comments=True,
    )


def parse_xml(text: bytes | str) -> etree._Element:
    """Parse an XML document from outside; ValueError with the reason when it is not acceptable."""
    raw = text.encode("utf-8") if isinstance(text, str) else text
    if len(raw) > MAX_BYTES:
        raise ValueError(f"the document is larger than {MAX_BYTES // (1024 * 1024)} MiB")
    if b"<!DOCTYPE" in raw[:4096].upper() or b"<!ENTITY" in raw.upper():
        raise ValueError("a document type declaration (DOCTYPE or ENTITY) is not allowed")
    # XML parsers check an element's attributes against each other (time that grows with the square of
    # their number): a tag far beyond any FHIR document's is refused before parsing, by one linear scan
    if any(tag.group().count(b"=") > MAX_ATTRIBUTES for tag in _TAG.finditer(raw)):
        raise ValueError(f"an element has more than {MAX_ATTRIBUTES} attributes")
    try:
        root = etree.fromstring(raw, parser=parser())
    except etree.XMLSyntaxError as exc:
        raise ValueError(f"not well-formed XML: {exc}") from None
    if root.getroottree().docinfo.doctype:  # type: ignore[union-attr]
        raise ValueError("a document type declaration is not allowed")
    return root


SAFE_SCHEMES = ("http", "https", "mailto", "tel", "")


def _scheme(value: str) -> str:
    """A link's scheme as a browser reads it: whitespace and control characters inside it ignored."""
    cleaned = "".join(ch for ch in value if ch > " ").lower()
    head, colon, _ = cleaned.partition(":")
    return head if colon and "/" not in head and "#" not in head and "?" not in head else ""


def _unsafe(value: str) -> bool:
    return _scheme(value) not in SAFE_SCHEMES


def narrative_problem(div: str) -> str | None:
    """Why a narrative div breaks FHIR's rules, or None when it is acceptable."""
    if div.count("<") > 2 * MAX_NARRATIVE_ELEMENTS:
        return f"the narrative has more than {MAX_NARRATIVE_ELEMENTS:,} elements"
    try:
        root = parse_xml(div)
    except ValueError as exc:
        return str(exc)
    if root.tag != f"{{{XHTML}}}div":
        return "the narrative must be an xhtml div"
    if not "".join(str(part) for part in root.itertext()).strip() and root.find(f".//{{{XHTML}}}img") is None:
        return "the narrative has no content (txt-2)"
    for node in root.iter():
        if not isinstance(node.tag, str):
            continue
        tag = etree.QName(node).localname
        if etree.QName(node).namespace != XHTML or tag not in ALLOWED:
            return f"element {tag!r} is not allowed in a narrative"
        for name, raw in node.attrib.items():
            value = raw.decode() if isinstance(raw, bytes) else str(raw)
            local = etree.QName(name).localname.lower()
            if local.startswith("on") or local not in ATTRIBUTES:
                return f"attribute {local[:40]!r} is not allowed in a narrative (txt-1)"
            if local in ("href", "src") and _unsafe(value):
                return f"a {local} of scheme {_scheme(value)!r} is not allowed in a narrative"
            if tag == "img" and local == "src" and not value.startswith("#"):
                return "an image in a narrative must be a local reference"
    return None
