"""Hostile messages at the inbox: valid messages with any part replaced by any JSON value (wrong types,
nulls, control characters, deep nesting, huge numbers, extreme dates), and the independent tester's
findings. The inbox must always answer (an acknowledgement, or a refusal when nobody can be answered),
never raise, and never apply a message it refuses.

The number of generated cases scales by NAER_FUZZ_EXAMPLES (small in CI)."""

from __future__ import annotations

import copy
import os
from collections.abc import Iterator
from typing import Any

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import func, select

from naer.messaging import acknowledgement as ack
from naer.messaging import parts
from naer.messaging.receive import receive
from naer.messaging.tables import hospital_stay, message
from naer.messaging.validate import validate
from tests import messaging_world as mw
from tests.coordination_world import NOW, World, monday_morning, worlds  # noqa: F401 - fixture

EXAMPLES = int(os.environ.get("NAER_FUZZ_EXAMPLES", "150"))


@pytest.fixture(scope="module")
def world(request: Any, tmp_path_factory: Any) -> Iterator[World]:
    request.param = "sqlite"
    for made, _api in worlds(request, tmp_path_factory, "hostile", mw.prepare):
        yield made


def _paths(value: Any, here: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    found = [here]
    if isinstance(value, dict):
        for key, inner in value.items():
            found += _paths(inner, (*here, key))
    elif isinstance(value, list):
        for index, inner in enumerate(value):
            found += _paths(inner, (*here, index))
    return found


def _set(value: Any, path: tuple[Any, ...], new: Any) -> Any:
    if not path:
        return new
    node = value
    for step in path[:-1]:
        node = node[step]
    node[path[-1]] = new
    return value


JSON = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=30)
    | st.sampled_from(
        ["\x00", "A\x01B", "9999-12-31T23:59:59-14:00", "0001-01-01T00:00:00+14:00", "true", ""]
    ),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3),
    max_leaves=8,
)


def _stays(w: World) -> int:
    with w.db.connect() as con:
        return int(con.execute(select(func.count()).select_from(hospital_stay)).scalar() or 0)


@pytest.mark.parametrize("kind", ["notification", "care", "acknowledgement"])
def test_any_part_of_a_message_replaced_by_any_json(world: World, kind: str) -> None:
    if kind == "notification":
        base = mw.Stay().send("STIN", NOW)
    elif kind == "care":
        base = mw.care_message()
    else:
        base = ack.build(mw.care_message(), "ok", [], mw.party("home-0741"), mw.party("dept-med"), NOW)
    paths = [
        path for path in _paths(base) if path and path[0] != "id"
    ]  # (the Bundle's id: a new one each time)

    @settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=list(HealthCheck), derandomize=True)
    @given(st.sampled_from(paths), JSON)
    def mutated(path: tuple[Any, ...], new: Any) -> None:
        found = _set(copy.deepcopy(base), path, new)
        found["id"] = parts.new_id()
        head = parts.header_of(found)
        if head is not None and isinstance(head.get("id"), str):
            head["id"] = parts.new_id()  # a new message each time (else it is a duplicate of the last)
        before = _stays(world)
        try:
            raw = orjson.dumps(found)
        except (TypeError, orjson.JSONEncodeError):
            return  # not JSON at all (an integer beyond 64 bits): the gateway cannot even send it
        receipt = receive(world.db, raw)
        assert receipt.outcome, receipt
        if receipt.outcome not in ("applied",):
            assert _stays(world) == before, (path, new, receipt.outcome)

    mutated()


@pytest.mark.parametrize(
    "change",
    [
        {"entry": 5},
        {"entry": True},
        {"entry": [{"resource": {"resourceType": "MessageHeader", "id": "x", "eventCoding": "x"}}]},
    ],
)
def test_shapes_that_crashed_the_first_version(world: World, change: dict[str, Any]) -> None:
    receipt = receive(world.db, orjson.dumps({"resourceType": "Bundle", "id": parts.new_id(), **change}))
    assert receipt.outcome == "unreadable" and receipt.acknowledgement is None


def _stin() -> dict[str, Any]:
    return mw.Stay().send("STIN", NOW)


def _of(found: dict[str, Any], kind: str) -> dict[str, Any]:
    return next(e["resource"] for e in found["entry"] if e["resource"]["resourceType"] == kind)


def test_wrong_types_are_refused_by_the_validator_not_coerced() -> None:
    for change in (
        lambda m: _of(m, "Patient").__setitem__("deceasedBoolean", "true"),
        lambda m: _of(m, "Encounter")["period"].__setitem__("start", 1700000000),
        lambda m: _of(m, "Patient")["name"][0].__setitem__("given", ["A", None]),
        lambda m: _of(m, "Encounter")["period"].__setitem__(
            "end", "2026-12-01T10:00:00+01:00"
        ),  # before start
        lambda m: m.__setitem__("timestamp", 1700000000),
    ):
        found = _stin()
        change(found)
        assert not validate(found).ok


def test_control_characters_and_nulls_are_refused_with_an_answer(world: World) -> None:
    for change in (
        lambda m: _of(m, "Patient")["name"][0].__setitem__("family", "Han\x00sen"),
        lambda m: _of(m, "Patient")["name"][0].__setitem__("family", "A\x01B"),
        lambda m: _of(m, "Encounter")["class"].__setitem__("code", "IM\x00P"),
    ):
        found = _stin()
        change(found)
        receipt = receive(world.db, orjson.dumps(found))
        assert receipt.outcome == "rejected" and receipt.code == "fatal-error", receipt.problems
        assert "control character" in receipt.problems[0]


def test_no_profile_claimed_is_no_way_around_the_profiles(world: World) -> None:
    found = _stin()
    found.pop("meta")
    for entry in found["entry"]:
        entry["resource"].pop("meta", None)
    _of(found, "Encounter").pop("episodeOfCare")
    receipt = receive(world.db, orjson.dumps(found))
    assert receipt.outcome == "rejected", receipt.problems


def test_an_event_dated_in_the_far_future_is_refused(world: World) -> None:
    stay = mw.Stay()
    found = stay.send("STIN", NOW.replace(year=2099))
    receipt = receive(world.db, orjson.dumps(found))
    assert receipt.code == "fatal-error" and "after the receiver's tomorrow" in receipt.problems[0]
    assert receive(world.db, orjson.dumps(mw.Stay().send("STIN", NOW))).outcome == "applied"


def test_another_sender_may_reuse_a_message_id(world: World) -> None:
    first = _stin()
    assert receive(world.db, orjson.dumps(first)).outcome == "applied"
    other = mw.Stay()
    other.sender = mw.party("dept-geri")
    second = other.send("STIN", NOW)
    second["entry"][0]["resource"]["id"] = first["entry"][0]["resource"]["id"]  # the same id, another sender
    ident = second["entry"][0]["resource"]["id"]
    for provenance in second["entry"]:
        if provenance["resource"]["resourceType"] == "Provenance":
            provenance["resource"]["target"][0]["reference"] = f"MessageHeader/{ident}"
    assert receive(world.db, orjson.dumps(second)).outcome == "applied"


def test_an_acknowledgement_counts_only_from_the_receiver(world: World) -> None:
    from naer.messaging import outbox

    found = mw.Stay().send("STIN", NOW)
    with world.db.begin() as con:
        header = outbox.put(con, found, "hospital-notification", "STIN", "dept-med", "p-home", episode="e")
        con.execute(
            message.update()
            .where(message.c.header_id == header)
            .values(state="sent", receiver_sor=mw.OUTSIDE.sor)
        )
    wrong = ack.build(
        found,
        "fatal-error",
        [ack.Issue("no", "invalid", "MSG_BAD_FORMAT")],
        mw.party("gp-0741"),
        mw.party("dept-med"),
        NOW,
    )
    assert receive(world.db, orjson.dumps(wrong)).outcome == "acknowledgement (of nothing waiting)"
    junk = {"resourceType": "Bundle", "id": parts.new_id(), "type": "message", "entry": [{"resource": {
        "resourceType": "MessageHeader", "id": parts.new_id(),
        "eventCoding": {"system": parts.EVENTS, "code": "acknowledgement-message"},
        "response": {"identifier": header, "code": "ok"}}}]}  # fmt: skip
    assert receive(world.db, orjson.dumps(junk)).outcome.startswith("acknowledgement (invalid")
    with world.db.connect() as con:
        state = con.execute(
            select(message.c.state).where(message.c.header_id == header, message.c.direction == "out")
        ).scalar()
    assert state == "sent"
    right = ack.build(found, "ok", [], mw.OUTSIDE, mw.party("dept-med"), NOW)
    assert receive(world.db, orjson.dumps(right)).outcome == "acknowledgement"


def test_narratives_refuse_scripts_hidden_in_links() -> None:
    from naer.messaging.xhtml import narrative_problem

    div = '<div xmlns="http://www.w3.org/1999/xhtml"><a href="{}">x</a></div>'
    for link in ("java&#9;script:alert(1)", "vbscript:x", "data:text/html,x", " JAVASCRIPT:x"):
        assert narrative_problem(div.format(link)) is not None, link
    for link in ("https://medcom.dk", "#top", "mailto:a@b.dk", "page.html"):
        assert narrative_problem(div.format(link)) is None, link
    assert narrative_problem('<div xmlns="http://www.w3.org/1999/xhtml">  </div>') is not None  # txt-2


def test_xml_too_large_to_read_quickly_is_refused_at_once(world: World) -> None:
    import time

    many = (
        b"<Bundle xmlns='http://hl7.org/fhir'><id value='x'/>"
        + b"<link><relation value='a'/></link>" * 20000
        + b"</Bundle>"
    )
    started = time.perf_counter()
    receipt = receive(world.db, many, "application/fhir+xml")
    assert receipt.outcome == "unreadable" and "more than 5,000 elements" in receipt.problems[0]
    assert time.perf_counter() - started < 30  # (a guard against a hang, not a timing test)


# -- the second tester's findings ---------------------------------------------------------------------------


def test_a_narrative_or_an_xml_element_with_thousands_of_attributes_is_refused_before_parsing(
    world: World,
) -> None:
    from naer.messaging.xhtml import narrative_problem

    attributes = " ".join(f'a{i}="x"' for i in range(30_000))
    assert "more than 64 attributes" in (
        narrative_problem(f'<div xmlns="http://www.w3.org/1999/xhtml"><p {attributes}>x</p></div>') or ""
    )
    many_p = "<p>x</p>" * 20_001
    assert "more than 10,000 elements" in (
        narrative_problem(f'<div xmlns="http://www.w3.org/1999/xhtml">{many_p}</div>') or ""
    )
    found = _stin()
    _of(found, "Patient")["text"]["div"] = (
        f'<div xmlns="http://www.w3.org/1999/xhtml"><p {attributes}>x</p></div>'
    )
    receipt = receive(world.db, orjson.dumps(found))
    assert receipt.code == "fatal-error" and any("attributes" in p for p in receipt.problems)
    declarations = " ".join(f"xmlns:n{i}='urn:x:{i}'" for i in range(20_000))
    receipt = receive(
        world.db, f"<Bundle xmlns='http://hl7.org/fhir' {declarations}/>".encode(), "application/fhir+xml"
    )
    assert receipt.outcome == "unreadable" and "attributes" in receipt.problems[0]
    few = " ".join(f"xmlns:n{i}='urn:x:{i}'" for i in range(40))
    receipt = receive(
        world.db,
        f"<Bundle xmlns='http://hl7.org/fhir' {few}><id value='x'/></Bundle>".encode(),
        "application/fhir+xml",
    )
    assert receipt.outcome == "unreadable" and "16 attributes" in receipt.problems[0]


def test_a_sor_code_that_is_not_one_addresses_nothing_and_breaks_nothing(world: World) -> None:
    from naer.messaging import directory

    for odd in ("ABC123", "1234 567", "9" * 40, ""):
        assert parts.party_of({"identifier": [{"system": parts.SOR, "value": odd}]}) is None
        organisation = {
            "resourceType": "Organization",
            "id": "x",
            "identifier": [{"system": parts.SOR, "value": odd}],
        }
        with world.db.connect() as con:
            assert directory.unit(con, odd) is None
        assert parts.synthetic_gln(odd).isdigit() and len(parts.synthetic_gln(odd)) == 13
        del organisation
    found = _stin()
    for entry in found["entry"]:
        if entry["resource"]["resourceType"] == "Organization":
            for ident in entry["resource"]["identifier"]:
                if ident["system"] == parts.SOR:
                    ident["value"] = "ABC123"
    receipt = receive(world.db, orjson.dumps(found))
    assert receipt.outcome == "unreadable" and receipt.acknowledgement is None


def test_a_message_whose_own_provenance_has_no_id_is_answered(world: World) -> None:
    found = _stin()
    _of(found, "Provenance").pop("id")
    receipt = receive(world.db, orjson.dumps(found))
    assert receipt.acknowledgement is not None
    assert all(isinstance(e["resource"].get("id"), str) for e in receipt.acknowledgement["entry"])


def test_a_citizen_with_a_replacement_cpr_is_named_by_it() -> None:
    from naer.messaging import carecommunication as cc

    person = {"resourceType": "Patient", "name": [{"family": "Hansen\x01 ", "given": ["  ", "Ib\x0b"]}],
              "identifier": [{"system": parts.X_ECPR, "value": "0703921VJ6"}]}  # fmt: skip
    citizen = parts.citizen_of(person)
    assert (citizen.system, citizen.cpr, citizen.family, citizen.given) == (
        parts.X_ECPR,
        "0703921VJ6",
        "Hansen",
        ("Ib",),
    )
    assert parts.patient(citizen)["identifier"] == [{"system": parts.X_ECPR, "value": "0703921VJ6"}]
    author = cc.Author("Ida", "Holm", "sygeplejerske", "12345678")
    sender, receiver = mw.party("dept-med"), mw.party("home-0741")
    thread = cc.Thread(identifier=cc.segment_id(), category="carecoordination")
    message, _ = cc.build("new", thread, [cc.text_segment("Hej", author, sender, NOW)], sender, receiver,
                          citizen, NOW)  # fmt: skip
    assert not validate(message).errors, validate(message).errors[:3]
    with pytest.raises(parts.NotSendable, match="takes a CPR number"):  # medcom-hospitalNotification-4
        parts.citizen_of(person, cpr_only=True)
    for bad in ("123", "3213451234", "0703921vj6"):
        system = parts.CPR if bad != "0703921vj6" else parts.X_ECPR
        with pytest.raises(parts.NotSendable):
            parts.citizen_of({"identifier": [{"system": system, "value": bad}]})


def test_a_reply_to_a_thread_that_names_the_earlier_message_by_identifier() -> None:
    from naer.messaging import carecommunication as cc

    found = mw.care_message()
    provenance = _of(found, "Provenance")
    earlier = parts.new_id()
    provenance.setdefault("entity", []).append(
        {"role": "revision", "what": {"identifier": {"value": earlier}}}
    )
    thread = cc.thread_of(found)
    assert thread.history[-1].previous == earlier and thread.history[-1].previous_by_identifier
    author = cc.Author("Ida", "Holm", "sygeplejerske", "12345678")
    reply, _ = cc.build("reply", thread, [cc.text_segment("Godt.", author, mw.party("home-0741"), NOW)],
                        mw.party("home-0741"), mw.party("dept-med"), mw.citizen("p-home"), NOW)  # fmt: skip
    assert not validate(reply).errors, validate(reply).errors[:3]


def test_an_acknowledgement_is_never_answered_whatever_it_holds(world: World) -> None:
    answer = ack.build(_stin(), "ok", [], mw.party("home-0741"), mw.party("dept-med"), NOW)
    _of(answer, "Organization")["name"] = "bad\x01name"
    receipt = receive(world.db, orjson.dumps(answer))
    assert receipt.acknowledgement is None and receipt.outcome.startswith("acknowledgement (invalid")


def test_an_event_time_off_the_calendar_is_refused_not_taken_as_now(world: World) -> None:
    for when in ("2099", "2999-01", "9999-12-31T23:59:59-01:00", "0001-01-01T00:30:00+01:00"):
        found = _stin()
        _of(found, "Provenance")["occurredDateTime"] = when
        receipt = receive(world.db, orjson.dumps(found))
        assert receipt.outcome != "applied", when


def test_a_resource_id_longer_than_64_characters_is_refused() -> None:
    found = _stin()
    _of(found, "Organization")["id"] = "a" * 74
    assert any("id" in p.path for p in validate(found).errors)


def test_text_a_message_may_not_carry_is_cleaned_from_names() -> None:
    for bad in ("\x01", "\x0b", "\ufffe", "\uffff"):
        assert parts.plain(f"Ib{bad}Holm ") == "Ib Holm"
        assert not parts.allowed(bad)
    assert parts.allowed("\n") and parts.allowed("æ")


def test_a_narrative_takes_only_html_s_attributes() -> None:
    from naer.messaging.xhtml import narrative_problem

    div = '<div xmlns="http://www.w3.org/1999/xhtml"><p {}>x</p></div>'
    assert "class0" in (narrative_problem(div.format('class0="1"')) or "")
    for fine in ('class="a"', 'style="color: red"', 'xml:lang="da"', 'title="t"'):
        assert narrative_problem(div.format(fine)) is None, fine
