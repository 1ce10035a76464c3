"""MedCom's messages against MedCom's own profiles, read from ../shared/fixtures/medcom at test time.

- Every example message of the guides (the packages and the examples folder) and every message of the
  CareCommunication send test protocol (JSON and XML) reads, validates, and round-trips: FHIR JSON to
  FHIR XML and back gives the same content, and a HospitalNotification read and built again says the same.
- Every message Nær builds validates under the same engine.
- Mutated examples are refused with the rule they break named.
"""

from __future__ import annotations

import copy
import json
import os
import tarfile
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson
import pytest
from fhir.resources.R4B.bundle import Bundle
from lxml import etree

from naer.messaging import acknowledgement as ack
from naer.messaging import carecommunication as cc
from naer.messaging import notification as hn
from naer.messaging import parts
from naer.messaging.parse import Unreadable, read
from naer.messaging.validate import Result, validate

FIXTURES = Path(os.environ.get("NAER_FIXTURES", Path(__file__).resolve().parents[2] / "shared" / "fixtures"))
MEDCOM = FIXTURES / "medcom"
pytestmark = pytest.mark.skipif(not MEDCOM.is_dir(), reason=f"MedCom fixtures not at {MEDCOM}")


def _package_examples() -> list[tuple[str, bytes]]:
    found = []
    for path in sorted((MEDCOM / "packages").glob("*.tgz")) if MEDCOM.is_dir() else []:
        with tarfile.open(path) as archive:
            for member in archive.getmembers():
                name = member.name.rsplit("/", 1)[-1]
                if "/example/" in member.name and name.startswith("Bundle-"):
                    handle = archive.extractfile(member)
                    if handle is not None:
                        found.append((f"{path.name}:{name}", handle.read()))
    return found


def _examples() -> list[tuple[str, bytes]]:
    if not MEDCOM.is_dir():
        return []
    folder = sorted((MEDCOM / "examples").glob("*/Bundle-*.json"))
    protocol = sorted((MEDCOM / "carecommunication-test-protocol" / "send").glob("Bundle-*"))
    return [(f"{p.parent.name}/{p.name}", p.read_bytes()) for p in [*folder, *protocol]] + _package_examples()


EXAMPLES = _examples()


def _errors(result: Result) -> list[str]:
    return [str(problem) for problem in result.errors]


@pytest.mark.parametrize(("name", "raw"), EXAMPLES, ids=[name for name, _ in EXAMPLES])
def test_every_example_reads_validates_and_round_trips(name: str, raw: bytes) -> None:
    message = read(raw, "application/fhir+xml" if name.endswith(".xml") else None)
    assert _errors(validate(message)) == []
    # FHIR JSON -> FHIR XML -> FHIR JSON: the same content both ways
    xml = Bundle.model_validate(message).model_dump_xml()
    again = read(xml.encode() if isinstance(xml, str) else xml, "application/fhir+xml")
    assert _canonical(again) == _canonical(read(orjson.dumps(message)))
    assert _errors(validate(again)) == []


def _canonical(value: Any) -> Any:
    """The content with each narrative in canonical XML (XML writes ``<p/>`` where JSON has ``<p></p>``)."""
    if isinstance(value, dict):
        return {k: _div(v) if k == "div" and isinstance(v, str) else _canonical(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_canonical(v) for v in value]
    return value


def _div(text: str) -> bytes:
    return etree.tostring(etree.fromstring(text.encode()), method="c14n")


def test_the_examples_are_all_there() -> None:
    # 50 example Bundles in the packages and the examples folder, 9 test-protocol messages (4 in XML)
    assert len(EXAMPLES) >= 50
    assert sum(name.endswith(".xml") for name, _ in EXAMPLES) == 4


HN_EXAMPLES = [(n, r) for n, r in EXAMPLES if "hospitalnotification" in n]


@pytest.mark.parametrize(("name", "raw"), HN_EXAMPLES, ids=[n for n, _ in HN_EXAMPLES])
def test_a_notification_read_and_built_again_says_the_same(name: str, raw: bytes) -> None:
    message = orjson.loads(raw)
    notice = hn.read(message)
    head = parts.first(message, "MessageHeader") or {}
    sender = parts.party_of(parts.resolve(message, head["sender"]))
    receiver = parts.party_of(parts.resolve(message, head["destination"][0]["receiver"]))
    assert sender is not None and receiver is not None
    person = parts.first(message, "Patient") or {}
    name_ = person["name"][0]
    citizen = parts.Citizen(
        parts.cpr_of(person) or "", name_.get("family", ""), tuple(name_.get("given", []))
    )
    kind = hn.kinds()[notice.code]
    before = next(state for state in kind.after)
    encounter = parts.first(message, "Encounter") or {}
    leave = next((e["valuePeriod"] for e in encounter.get("extension", []) if "valuePeriod" in e), {})
    stay = hn.Stay(
        episode=notice.episode,
        klass=notice.klass,
        start=datetime.fromisoformat(notice.start or ""),
        end=datetime.fromisoformat(notice.end) if notice.end else None,
        leave_start=datetime.fromisoformat(leave["start"]) if "start" in leave else None,
        leave_end=datetime.fromisoformat(leave["end"]) if "end" in leave else None,
        state=before,
    )
    reason = "incorrect-stay-type" if kind.cancels else None
    built = hn.build(
        notice.code, sender, receiver, citizen, stay, datetime.fromisoformat(notice.event_at), reason
    )
    assert _errors(validate(built)) == []
    again = hn.read(built)
    assert (again.code, again.klass, again.status, again.episode, again.start, again.end, again.deceased) == (
        notice.code, notice.klass, notice.status, notice.episode, notice.start, notice.end, notice.deceased
    )  # fmt: skip


# -- what Nær builds ---------------------------------------------------------------------------------------

HOSPITAL = parts.Party("265161000016000", parts.synthetic_gln("265161000016000"), "AUH, Medicinsk afdeling")
MUNICIPALITY = parts.Party("953741000016009", parts.synthetic_gln("953741000016009"), "Samsø, hjemmeplejen")
CITIZEN = parts.Citizen("2509479989", "Elmer", ("Bruno",))
T0 = datetime(2026, 12, 7, 10, 0, tzinfo=UTC)
H = timedelta(hours=1)

# Every code in a sequence the guide allows: (code, class, hours after admission)
SEQUENCES = [
    [("STIN", "IMP", 0), ("RE_STIN", "IMP", 1), ("STOR", "IMP", 20), ("RE_STOR", "IMP", 21),
     ("SLOR", "IMP", 30), ("RE_SLOR", "IMP", 31), ("SLHJ", "IMP", 50),
     ("RE_SLHJ", "IMP", 51), ("AN_SLHJ", "IMP", 52),
     ("MORS", "IMP", 60), ("RE_MORS", "IMP", 61), ("AN_MORS", "IMP", 62)],
    [("STAA", "EMER", 0), ("RE_STAA", "EMER", 1), ("AN_STAA", "EMER", 2)],
    [("STIN", "IMP", 0), ("STOR", "IMP", 5), ("AN_STOR", "IMP", 6), ("AN_STIN", "IMP", 7)],
    [("STIN", "IMP", 0), ("STOR", "IMP", 5), ("SLOR", "IMP", 9), ("AN_SLOR", "IMP", 10)],
    [("STAA", "EMER", 0), ("STIN", "IMP", 3), ("SLHJ", "IMP", 9)],
    [("STAA", "EMER", 0), ("SLHJ", "EMER", 4)],
]  # fmt: skip


@pytest.mark.parametrize("sequence", SEQUENCES, ids=["-".join(c for c, _, _ in s) for s in SEQUENCES])
def test_every_notification_nær_builds_validates(sequence: list[tuple[str, str, int]]) -> None:
    episode = parts.new_id()
    history: tuple[hn.Step, ...] = ()
    state = "none"
    for code, klass, hours in sequence:
        at = T0 + hours * H
        stay = hn.Stay(episode, klass, T0, end=at, leave_start=T0 + 5 * H, leave_end=T0 + 9 * H,
                       history=history, state=state)  # fmt: skip
        kind = hn.kinds()[code]
        message = hn.build(
            code, HOSPITAL, MUNICIPALITY, CITIZEN, stay, at, "incorrect-cpr" if kind.cancels else None
        )
        assert _errors(validate(message)) == [], code
        assert hn.read(message).code == {"AN_MORS": "AN_SLHJ"}.get(code, code)  # the same message
        history = (
            *history,
            hn.Step(message["entry"][0]["resource"]["id"], kind.activities[klass], at, HOSPITAL),
        )
        state = kind.states[klass]


@pytest.mark.parametrize(
    ("code", "klass", "state", "reason", "says"),
    [
        ("TRANSFER", "IMP", "admitted", None, "a transfer sends none"),
        ("STOR", "EMER", "emergency", None, "a change from acute ambulant to admitted is a new STIN"),
        ("SLOR", "IMP", "admitted", None, "cannot follow the stay's state 'admitted'"),
        ("STIN", "IMP", "admitted", None, "cannot follow"),
        ("AN_STIN", "IMP", "admitted", None, "needs the reason: incorrect-cpr or incorrect-stay-type"),
        ("AN_STIN", "IMP", "admitted", "citizen-went-home", "needs the reason"),
        ("RE_STAA", "IMP", "emergency", None, "not sent for a stay of class IMP"),
    ],
)
def test_the_guide_s_rules_refuse_a_notification(
    code: str, klass: str, state: str, reason: str | None, says: str
) -> None:
    with pytest.raises(hn.RuleBroken, match=says.replace("(", r"\(").replace(")", r"\)")):
        hn.build(code, HOSPITAL, MUNICIPALITY, CITIZEN, hn.Stay("e", klass, T0, state=state), T0, reason)


AUTHOR = cc.Author("Hanne", "Hansen", "sygeplejerske", "87654321")
DOCTOR = cc.Author("Lars", "Berg", "overlaege", "12345678")


def _thread() -> tuple[list[dict[str, Any]], cc.Thread]:
    thread = cc.Thread(identifier=cc.segment_id(), category="other", topic="Blodprøver")
    pdf = cc.attachment_segment("Målinger", "application/pdf", b"%PDF-1.4 ...", AUTHOR, MUNICIPALITY, T0)
    first = [cc.text_segment("Hvad viste prøverne?", AUTHOR, MUNICIPALITY, T0), pdf]
    new, thread = cc.build("new", thread, first, MUNICIPALITY, HOSPITAL, CITIZEN, T0)
    reply, thread = cc.build("reply", thread, [cc.text_segment("Fine tal.", DOCTOR, HOSPITAL, T0 + H)],
                             HOSPITAL, MUNICIPALITY, CITIZEN, T0 + H)  # fmt: skip
    gp = parts.Party("123451000016003", parts.synthetic_gln("123451000016003"), "Lægehuset Samsø")
    note = cc.text_segment("Til orientering.", AUTHOR, MUNICIPALITY, T0 + 2 * H)
    forward, after = cc.build("forward", thread, [note], MUNICIPALITY, gp, CITIZEN, T0 + 2 * H)
    return [new, reply, forward], after


def test_care_communications_keep_the_guide_s_identifier_rules() -> None:
    (new, reply, forward), _ = _thread()
    for message in (new, reply, forward):
        assert _errors(validate(message)) == []
    ids = [cc.read(m)[0] for m in (new, reply, forward)]
    assert ids[0] == ids[1] != ids[2]  # kept on reply, new on forward
    said = cc.read(reply)[3]
    assert [s.text or s.title for s in said] == ["Hvad viste prøverne?", "Målinger", "Fine tal."]
    attachment = said[1]
    assert attachment.title == "Målinger" and not attachment.has_data  # sent once, referred to after
    assert cc.read(new)[3][1].has_data
    forwarded = cc.read(forward)[3]
    assert len(forwarded) == 4 and forwarded[-1].text == "Til orientering."
    steps = [parts.activity_of(p) for p in parts.entries(forward) if p["resourceType"] == "Provenance"]
    assert steps == ["new-message", "reply-message", "forward-message"]


@pytest.mark.parametrize(
    ("change", "says"),
    [
        ({"category": "other", "topic": None}, "needs a topic"),
        ({"category": "bogus"}, "is not one of MedCom's"),
        ({"category": "nursing", "priority": "asap"}, "only allowed on a message regarding a referral"),
        ({"category": "regarding-referral", "priority": "routine"}, "only priority"),
    ],
)
def test_care_communication_rules(change: dict[str, Any], says: str) -> None:
    thread = cc.Thread(identifier=cc.segment_id(), **{"category": "nursing", **change})
    with pytest.raises(cc.Refused, match=says):
        cc.build(
            "new",
            thread,
            [cc.text_segment("x", AUTHOR, MUNICIPALITY, T0)],
            MUNICIPALITY,
            HOSPITAL,
            CITIZEN,
            T0,
        )


def test_attachments_within_the_guide_s_types_and_size() -> None:
    with pytest.raises(cc.Refused, match="not 'text/html'"):
        cc.attachment_segment("Side", "text/html", b"<b>", AUTHOR, MUNICIPALITY, T0)
    with pytest.raises(cc.Refused, match="at most 10 MiB"):
        cc.attachment_segment(
            "Stor", "application/pdf", b"x" * (cc.MAX_ATTACHMENT + 1), AUTHOR, MUNICIPALITY, T0
        )
    with pytest.raises(cc.Refused, match="without a file type"):
        cc.attachment_segment("rapport.pdf", "application/pdf", b"%PDF", AUTHOR, MUNICIPALITY, T0)
    with pytest.raises(cc.Refused, match="needs at least one text"):
        only = cc.attachment_segment("Rapport", "application/pdf", b"%PDF", AUTHOR, MUNICIPALITY, T0)
        cc.build("new", cc.Thread(cc.segment_id(), "nursing"), [only], MUNICIPALITY, HOSPITAL, CITIZEN, T0)


def test_acknowledgements_validate_and_quote_the_original() -> None:
    (new, _, _), _ = _thread()
    good = ack.build(new, "ok", [], HOSPITAL, MUNICIPALITY, T0)
    bad = ack.build(
        new, "fatal-error", [ack.Issue("wrong", "invalid", "MSG_BAD_FORMAT")], HOSPITAL, MUNICIPALITY, T0
    )
    busy = [ack.Issue("busy", "transient", "MSG_Mailbox_Out_Of_Operation")]
    transient = ack.build(new, "transient-error", busy, HOSPITAL, MUNICIPALITY, T0)
    for answer in (good, bad, transient):
        assert _errors(validate(answer)) == []
        assert ack.is_acknowledgement(answer)
        assert (ack.answer_of(answer) or ("", ""))[0] == new["entry"][0]["resource"]["id"]
    assert parts.first(bad, "OperationOutcome") is not None and parts.first(good, "OperationOutcome") is None
    with pytest.raises(ValueError, match="names its problem"):
        ack.build(new, "fatal-error", [], HOSPITAL, MUNICIPALITY, T0)


# -- mutations ---------------------------------------------------------------------------------------------


def _example(folder: str, name: str) -> dict[str, Any]:
    return json.loads((MEDCOM / "examples" / folder / name).read_text(encoding="utf-8"))


def _of(message: dict[str, Any], kind: str) -> dict[str, Any]:
    return next(e["resource"] for e in message["entry"] if e["resource"]["resourceType"] == kind)


def _no_header(m: dict[str, Any]) -> None:
    m["entry"] = m["entry"][1:]


def _wrong_activity(m: dict[str, Any]) -> None:
    _of(m, "Provenance")["activity"]["coding"][0]["code"] = "admit-outpatient"


def _no_cpr(m: dict[str, Any]) -> None:
    del _of(m, "Patient")["identifier"]


def _bad_cpr(m: dict[str, Any]) -> None:
    _of(m, "Patient")["identifier"][0]["value"] = "3213451234"


def _dangling(m: dict[str, Any]) -> None:
    _of(m, "MessageHeader")["focus"][0]["reference"] = "Encounter/not-in-the-message"


def _category(m: dict[str, Any]) -> None:
    _of(m, "Communication")["category"][0]["coding"][0]["code"] = "gossip"


def _priority(m: dict[str, Any]) -> None:
    _of(m, "Communication")["priority"] = "asap"


def _two_patients(m: dict[str, Any]) -> None:
    other = copy.deepcopy(_of(m, "Patient"))
    other["id"] = "another"
    m["entry"].append({"fullUrl": "https://example.org/Patient/another", "resource": other})


def _class(m: dict[str, Any]) -> None:
    _of(m, "Encounter")["class"]["code"] = "AMB"


def _script(m: dict[str, Any]) -> None:
    div = '<div xmlns="http://www.w3.org/1999/xhtml"><script>x()</script></div>'
    _of(m, "Patient")["text"] = {"status": "generated", "div": div}


HN = ("hospitalnotification", "Bundle-bfab3e80-9584-11ec-b909-0242ac120002.json")
CC = ("carecommunication", "Bundle-3dcb5618-3055-406a-9034-1b8fc8de0fea.json")
MUTATIONS = [
    ("no MessageHeader", HN, _no_header, "bdl-12"),
    ("wrong activity code", HN, _wrong_activity, "binding"),
    ("patient without CPR", HN, _no_cpr, "medcom-hospitalNotification-4"),
    ("CPR that is no date", HN, _bad_cpr, "cpr"),
    ("a reference to nothing", HN, _dangling, "reference"),
    ("two patients", HN, _two_patients, "medcom-hospitalNotification-2"),
    ("class outside its value set", HN, _class, "binding"),
    ("a script in a narrative", HN, _script, "txt-1"),
    ("category outside its value set", CC, _category, "binding"),
    ("priority without a referral", CC, _priority, "medcom-careCommunication-5"),
]


@pytest.mark.parametrize(("what", "source", "mutate", "rule"), MUTATIONS, ids=[m[0] for m in MUTATIONS])
def test_a_mutated_example_is_refused_with_the_rule_named(
    what: str, source: tuple[str, str], mutate: Any, rule: str
) -> None:
    message = _example(*source)
    assert validate(message).ok
    mutate(message)
    result = validate(message)
    assert not result.ok, what
    assert rule in {problem.rule for problem in result.errors}, [str(p) for p in result.errors]


def test_hostile_xml_is_refused_before_it_is_parsed() -> None:
    bomb = b'<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;">]>' \
           b'<Bundle xmlns="http://hl7.org/fhir"><id value="&lol2;"/></Bundle>'  # fmt: skip
    with pytest.raises(Unreadable, match="DOCTYPE"):
        read(bomb)
    external = b'<?xml version="1.0"?><!DOCTYPE x [<!ENTITY e SYSTEM "file:///etc/passwd">]><Bundle xmlns="http://hl7.org/fhir"/>'
    with pytest.raises(Unreadable, match="DOCTYPE"):
        read(external)
    with pytest.raises(Unreadable, match="not well-formed"):
        read(b"<Bundle xmlns='http://hl7.org/fhir'><id value='x'></Bundle>")
    with pytest.raises(Unreadable, match="not a Patient"):
        read(b'{"resourceType": "Patient"}')
    with pytest.raises(Unreadable, match="not JSON"):
        read(b'{"resourceType": ')


def _findings(message: dict[str, Any]) -> list[tuple[str, str, str]]:
    return sorted((p.severity, p.rule, p.path) for p in validate(message).problems)


def test_the_base_rules_in_python_find_what_their_fhirpath_finds(monkeypatch: pytest.MonkeyPatch) -> None:
    """R4's own invariants are answered in Python for speed (base_rules.py), and resources that refer to
    nothing are remembered by content: every example, every message Nær builds and every mutation gives
    the same findings with both turned off."""
    from naer.messaging import validate as engine

    messages = [read(raw, "application/fhir+xml" if n.endswith(".xml") else None) for n, raw in EXAMPLES]
    messages += _thread()[0]
    for _what, source, mutate, _rule in MUTATIONS:
        changed = _example(*source)
        mutate(changed)
        messages.append(changed)
    fast = [_findings(m) for m in messages]
    monkeypatch.setattr(engine, "FAST", False)
    monkeypatch.setattr(engine, "MEMO", 0)
    engine._alone.clear()
    engine._structures.clear()
    assert [_findings(m) for m in messages] == fast


def test_synthetic_cpr_numbers_pass_only_as_tagged_test_data() -> None:
    """Nær's synthetic CPR numbers (day + 60) are never real dates, so MedCom's `cpr` pattern refuses
    them; a Patient tagged as test data (HTEST) with such a number gets a warning instead (test_data.yaml)."""
    stay = hn.Stay("e-synthetic", "IMP", T0)
    tagged = parts.Citizen("6103320000", "Borger", ("Test",), test=True)
    result = validate(hn.build("STIN", HOSPITAL, MUNICIPALITY, tagged, stay, T0))
    assert result.ok and any(p.rule == "cpr" and p.severity == "warning" for p in result.problems)
    untagged = parts.Citizen("6103320000", "Borger", ("Test",))
    assert "cpr" in {
        p.rule for p in validate(hn.build("STIN", HOSPITAL, MUNICIPALITY, untagged, stay, T0)).errors
    }
    invalid = parts.Citizen(
        "3213451234", "Borger", ("Test",), test=True
    )  # day 32: neither real nor synthetic
    assert "cpr" in {
        p.rule for p in validate(hn.build("STIN", HOSPITAL, MUNICIPALITY, invalid, stay, T0)).errors
    }
