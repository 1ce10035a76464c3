"""The MedCom message pages: an organisation's messages received and sent, one message with its thread,
reply and forward, a refused message sent again, the unit's citizens in hospital now, and writing a
CareCommunication from the citizen's page. Each person sees only their organisation's messages about
citizens they have a care relation with; refusals are shown with the reason and nothing sent; what a
message says is escaped where it lands."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any
from urllib.parse import urlencode

import orjson
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from naer.access import sessions
from naer.api.auth import SESSION_COOKIE
from naer.messaging.receive import receive
from naer.messaging.tables import message
from tests import messaging_world as mw
from tests.coordination_world import NOW, World, build, monday_morning  # noqa: F401 (monday_morning: autouse)

FORM = {"Content-Type": "application/x-www-form-urlencoded"}


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[World, Any]]:
    from naer import clock
    from naer.api.app import create_app
    from naer.store.migrate import upgrade
    from naer.web.coordination import add_course_pages
    from naer.web.gate import SignInGate
    from naer.web.messages import add_message_pages
    from naer.web.signin import add_access_pages

    url = f"sqlite:///{tmp_path_factory.mktemp('message-pages') / 'store.sqlite'}"
    upgrade(url)
    made = build(url)
    mw.prepare(made)
    app = create_app(url, migrate=False)
    add_access_pages(app)
    add_course_pages(app)
    add_message_pages(app)
    app.add_middleware(SignInGate)
    try:
        yield made, app
    finally:
        clock.set_clock(None)


def _as(site: tuple[World, Any], person: str) -> TestClient:
    w, app = site
    return TestClient(app, cookies={SESSION_COOKIE: sessions.start(w.db, person, "testclient", 1)})


def _send(client: TestClient, page: str, action: str, **fields: str) -> Any:
    assert client.get(page).status_code in (200, 400, 404, 409)
    body = urlencode({"csrf": client.cookies.get("naer_csrf") or "", **fields})
    return client.post(action, content=body, headers=FORM, follow_redirects=False)


def _text(html: str) -> str:
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", html))


def _out(w: World) -> int:
    with w.db.connect() as con:
        return int(
            con.execute(
                select(func.count()).select_from(message).where(message.c.direction == "out")
            ).scalar()
            or 0
        )


def test_the_unit_sees_its_messages_and_the_citizens_in_hospital(site: tuple[World, Any]) -> None:
    w, _ = site
    stay = mw.Stay()
    receive(w.db, orjson.dumps(stay.send("STIN", NOW)))
    receive(w.db, orjson.dumps(mw.Stay("p-none").send("STIN", NOW)))  # not served: not shown
    receive(w.db, orjson.dumps(mw.care_message(text="Hvordan går det med <b>fru</b> Hansen?")))
    nurse = _as(site, "nurse")
    page = nurse.get("/messages")
    assert page.status_code == 200 and "Meddelelser" in page.text
    text = _text(page.text)
    assert "STIN: Start sygehusophold - indlagt" in text and "Korrespondancemeddelelse" in text
    assert "Test P-Home" in text and "P-None" not in text
    admitted = _text(nurse.get("/messages/admitted").text)
    assert "Test P-Home" in admitted and "Indlagt" in admitted and "P-None" not in admitted
    english = nurse.get("/messages?lang=en")
    assert "Care communication" in english.text and "Hospital notification" in english.text
    for other in ("nurse-other", "gp", "phys"):  # another unit's people see none of them
        assert "Test P-Home" not in _text(_as(site, other).get("/messages").text), other
    assert _as(site, "citizen").get("/messages").status_code == 403
    assert _as(site, "planner").get("/messages").status_code == 403


def test_a_thread_is_shown_escaped_and_answered(site: tuple[World, Any]) -> None:
    w, _ = site
    found = mw.care_message(text='Se <script>alert("x")</script> og ring')
    answer = receive(w.db, orjson.dumps(found))
    nurse = _as(site, "nurse")
    page = nurse.get(f"/messages/in/{answer.header}")
    assert page.status_code == 200
    assert "<script>alert" not in page.text and "&lt;script&gt;alert" in page.text
    before = _out(w)
    refused = _send(
        nurse, f"/messages/in/{answer.header}", f"/messages/in/{answer.header}/reply", text="Fint", phone=""
    )
    assert refused.status_code == 400 and 'class="error"' in refused.text and _out(w) == before
    done = _send(nurse, f"/messages/in/{answer.header}", f"/messages/in/{answer.header}/reply",
                 text="Tak, vi kigger forbi i dag.", phone="87 65 43 21")  # fmt: skip
    assert done.status_code == 303, done.text
    sent = nurse.get(done.headers["location"])
    text = _text(sent.text)
    assert "Meddelelsen er sendt." in text and "Tak, vi kigger forbi i dag." in text and "Se" in text
    assert _out(w) == before + 1
    # the reply reached the hospital department in this Nær, which acknowledged it
    with w.db.connect() as con:
        state = con.execute(
            select(message.c.state).where(message.c.direction == "out").order_by(message.c.created.desc())
        ).scalar()
    assert state == "acknowledged"


def test_a_care_communication_from_the_citizen_s_page(site: tuple[World, Any]) -> None:
    w, _ = site
    gp = _as(site, "gp")
    form = gp.get("/citizen/p-home/message")
    assert form.status_code == 200 and "Udskrivelse" in form.text  # MedCom's categories in Danish
    before = _out(w)
    for bad, says in [
        ({"category": "other", "topic": ""}, "topic"),
        ({"category": "nursing", "priority": "asap"}, "priority"),
        ({"category": "bogus"}, "category"),
        ({"receiver": mw.SORS["gp-0741"]}, "another organisation"),
        ({"receiver": "999"}, "receiving unit"),
    ]:
        fields = {
            "receiver": mw.SORS["home-0741"],
            "category": "nursing",
            "text": "Hej",
            "phone": "12345678",
            **bad,
        }
        refused = _send(gp, "/citizen/p-home/message", "/citizen/p-home/message", **fields)
        assert refused.status_code in (400, 422) and says in refused.text, (bad, refused.text[-800:])
    assert _out(w) == before
    page = "/citizen/p-home/message"
    note = "Ny dosis af furosemid fra i morgen."
    done = _send(
        gp, page, page, receiver=mw.SORS["home-0741"], category="medicine", text=note, phone="12345678"
    )
    assert done.status_code == 303, done.text
    assert _out(w) == before + 1
    nobody = _send(gp, "/citizen/p-none/message", "/citizen/p-none/message", receiver=mw.SORS["home-0741"],
                   category="medicine", text="x", phone="12345678")  # fmt: skip
    assert nobody.status_code in (403, 404) and _out(w) == before + 1  # no care relation with p-none


def test_an_attachment_from_the_page_and_from_the_api(site: tuple[World, Any]) -> None:
    import base64

    w, app = site
    nurse = _as(site, "nurse")
    pdf = base64.b64encode(b"%PDF-1.4 maalinger").decode()
    page = "/citizen/p-home/message"
    done = _send(nurse, page, page, receiver=mw.SORS["gp-0741"], category="examination-results",
                 text="Målinger vedhæftet.", phone="87654321", attachment_title="Blodtryk uge 49",
                 attachment_type="application/pdf", attachment_data=pdf)  # fmt: skip
    assert done.status_code == 303, done.text
    shown = _text(nurse.get(done.headers["location"]).text)
    assert "Blodtryk uge 49" in shown
    refused = _send(nurse, page, page, receiver=mw.SORS["gp-0741"], category="nursing", text="x", phone="1",
                    attachment_title="Side", attachment_type="text/html", attachment_data=pdf)  # fmt: skip
    assert refused.status_code == 400 and "text/html" in refused.text
    api = TestClient(app)
    headers = w.headers("gp")
    body = {"patient": "p-home", "receiver": mw.SORS["home-0741"], "category": "examination-results",
            "text": "Svar vedhæftet", "phone": "12345678",
            "attachments": [{"title": "Svar", "contentType": "application/pdf", "data": pdf}]}  # fmt: skip
    made = api.post("/workflow/messages", content=orjson.dumps(body), headers=headers)
    assert made.status_code == 201 and made.headers["location"].startswith("/messages/out/"), made.text
    broken = [{"title": "x", "contentType": "application/pdf", "data": "not base64!"}]
    titled = [{"title": "a\uffff", "contentType": "application/pdf", "data": pdf}]
    for bad in ({"attachments": broken}, {"priority": "urgent"}, {"patient": "../etc"}, {"unknown": 1},
                {"receiver": "12"}, {"text": "hej \uffff"}, {"text": "a\x01b"}, {"text": "  "},
                {"attachments": titled}, {"phone": "²²²²"}):  # fmt: skip
        answer = api.post("/workflow/messages", content=orjson.dumps({**body, **bad}), headers=headers)
        assert answer.status_code == 400 and answer.json()["resourceType"] == "OperationOutcome", (
            bad,
            answer.text,
        )
    assert api.post(
        "/workflow/messages", content=orjson.dumps({**body, "patient": "p-none"}), headers=headers
    ).status_code in (403, 404)


def test_the_citizen_s_course_shows_the_stay_the_hospital_told_of(site: tuple[World, Any]) -> None:
    w, _ = site
    stay = mw.Stay(start=NOW - 3 * mw.HOUR)
    receive(w.db, orjson.dumps(stay.send("STIN", NOW - 3 * mw.HOUR)))
    course = _text(_as(site, "nurse").get("/citizen/p-home/course").text)
    assert "På sygehus nu: dept-med · Indlagt" in course
    assert "På sygehus nu" not in _text(_as(site, "gp").get("/citizen/p-home/course").text)  # told the unit


def test_two_senders_with_one_message_id_each_have_their_page_and_their_reply(
    site: tuple[World, Any],
) -> None:
    from naer.messaging import carecommunication as cc
    from naer.messaging import parts

    w, _ = site
    first = mw.care_message(text="Fra medicinsk")
    ident = first["entry"][0]["resource"]["id"]
    author = cc.Author("Geri", "Atri", "overlaege", "11223344")
    geri, home = mw.party("dept-geri"), mw.party("home-0741")
    thread = cc.Thread(identifier=cc.segment_id(), category="carecoordination")
    second, _ = cc.build("new", thread, [cc.text_segment("Fra geriatrisk", author, geri, NOW)], geri, home,
                         mw.citizen("p-home"), NOW)  # fmt: skip
    second["entry"][0]["resource"]["id"] = ident  # the same id from another sender
    for entry in second["entry"]:
        if entry["resource"]["resourceType"] == "Provenance":
            entry["resource"]["target"][0]["reference"] = f"MessageHeader/{ident}"
    for found in (first, second):
        assert receive(w.db, orjson.dumps(found)).outcome == "applied"
    nurse = _as(site, "nurse")
    listed = nurse.get("/messages").text
    keys = {f"{mw.SORS[org]}:{ident}" for org in ("dept-med", "dept-geri")}
    assert all(f"/messages/in/{key}" in listed for key in keys)
    for org, said in (("dept-med", "Fra medicinsk"), ("dept-geri", "Fra geriatrisk")):
        page = nurse.get(f"/messages/in/{mw.SORS[org]}:{ident}")
        assert page.status_code == 200 and said in page.text, org
        here = f"/messages/in/{mw.SORS[org]}:{ident}"
        sent = _send(nurse, here, f"{here}/reply", text="Tak", phone="87654321")
        assert sent.status_code == 303, sent.text
        out = lists_body(w, sent.headers["location"].split("/")[-1].split("?")[0])
        receiver = parts.first(out, "MessageHeader")["destination"][0]["receiver"]["reference"]
        organisation = next(
            e["resource"] for e in out["entry"] if f"Organization/{e['resource']['id']}" == receiver
        )
        assert parts.party_of(organisation).sor == mw.SORS[org]


def lists_body(w: World, header: str) -> dict[str, Any]:
    with w.db.connect() as con:
        body = con.execute(
            select(message.c.body).where(message.c.direction == "out", message.c.header_id == header)
        ).scalar()
    return dict(orjson.loads(body))
