"""Read a message from outside, in FHIR JSON or FHIR XML, into the JSON form Nær works on.

Every input is hostile until read: a size limit first, JSON by orjson (no duplicate-key tricks reach
Python objects other than dicts and lists), XML with entities, DTDs and the network off (``xhtml.py``)
and then by the FHIR library's R4B models, which know which elements repeat and which are primitives.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import orjson
from fhir.resources.R4B.bundle import Bundle
from fhir_core.xml_utils import xml_loads
from lxml import etree

from naer.messaging.xhtml import MAX_BYTES, parse_xml, parser

FHIR = "http://hl7.org/fhir"
XML_ELEMENTS = 5_000  # MedCom's send protocol's largest XML message has 507, narratives included
XML_ATTRIBUTES = 16  # FHIR XML's elements carry one (value) or two (url, value); narratives a few more
# (and as many namespaces in scope: FHIR's and xhtml's; the FHIR library reads each declaration slowly)


@dataclass
class Unreadable(Exception):
    """A message that cannot be read as a FHIR Bundle; ``header`` and ``bundle`` are its MessageHeader
    and Bundle ids where they could still be found (then it can be answered with an acknowledgement)."""

    reason: str
    header: str | None = None
    bundle: str | None = None

    def __str__(self) -> str:
        return self.reason


def is_xml(raw: bytes, content_type: str | None = None) -> bool:
    if content_type and "xml" in content_type.lower():
        return True
    if content_type and "json" in content_type.lower():
        return False
    return raw.lstrip()[:1] == b"<"


def read(raw: bytes, content_type: str | None = None) -> dict[str, Any]:
    """The message as FHIR JSON; Unreadable with the reason when it is not a FHIR Bundle."""
    if len(raw) > MAX_BYTES:
        raise Unreadable(f"the message is larger than {MAX_BYTES // (1024 * 1024)} MiB")
    if not raw.strip():
        raise Unreadable("the message is empty")
    message = _xml(raw) if is_xml(raw, content_type) else _json(raw)
    if message.get("resourceType") != "Bundle":
        raise Unreadable(f"a MedCom message is a Bundle, not a {str(message.get('resourceType'))[:64]}")
    return message


def _json(raw: bytes) -> dict[str, Any]:
    try:
        found = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise Unreadable(f"not JSON: {exc}") from None
    if not isinstance(found, dict):
        raise Unreadable("a FHIR resource in JSON is an object")
    return found


def _xml(raw: bytes) -> dict[str, Any]:
    try:
        root = parse_xml(raw)
    except ValueError as exc:
        raise Unreadable(str(exc)) from None
    if root.tag != f"{{{FHIR}}}Bundle":
        raise Unreadable(f"a MedCom message is a FHIR Bundle, not <{etree.QName(root).localname}>")
    for count, node in enumerate(root.iter(), 1):
        if count > XML_ELEMENTS or len(node.attrib) > XML_ATTRIBUTES or len(node.nsmap) > XML_ATTRIBUTES:
            # The FHIR library reads XML in time that grows with the square of repeated elements (80,000
            # took 44 s): a message is refused before it is read when it is far beyond any MedCom message.
            raise Unreadable(
                f"the message has more than {XML_ELEMENTS:,} elements or {XML_ATTRIBUTES} attributes on one"
            )
    try:
        model = xml_loads(Bundle, raw, xmlparser=parser())
    except Exception as exc:
        header, bundle = _ids(root)
        first = str(exc).splitlines()[0][:300] if str(exc) else type(exc).__name__
        raise Unreadable(f"not a FHIR R4 Bundle in XML: {first}", header, bundle) from None
    found = orjson.loads(model.model_dump_json(by_alias=True, exclude_none=True))
    return found if isinstance(found, dict) else {}


def _ids(root: etree._Element) -> tuple[str | None, str | None]:
    """The MessageHeader and Bundle ids of an XML message the models refused, for its acknowledgement."""
    ns = {"f": FHIR}
    header = root.xpath("string(f:entry[1]/f:resource/f:MessageHeader/f:id/@value)", namespaces=ns)
    bundle = root.xpath("string(f:id/@value)", namespaces=ns)
    return (str(header) or None), (str(bundle) or None)
