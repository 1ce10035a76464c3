"""Attacks on sign-in and the audit log: forged and stale tokens, CSRF, session fixation, a sign-in flood;
the citizen's log; break-the-glass and its review; every kind of tampering with the log; a crash in the
middle of a burst of writes."""

from __future__ import annotations

import base64
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import orjson
import pytest
from fastapi.testclient import TestClient
from joserfc import jwt
from joserfc.jwk import ECKey, OctKey, RSAKey
from sqlalchemy import select, text, update

from naer import clock
from naer.access import accounts, audit, tokens
from naer.access.tables import audit_log
from naer.settings import get_settings
from tests.access_world import NOW, World, build
from tests.conftest import run_naer


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[World, TestClient]]:
    from naer.api.app import create_app
    from naer.store.migrate import upgrade
    from naer.web.gate import SignInGate
    from naer.web.signin import add_access_pages

    url = f"sqlite:///{tmp_path_factory.mktemp('security') / 'store.sqlite'}"
    upgrade(url)
    made = build(url)
    accounts.add(made.db, "admin", "Admin", "admin", "admin-password-1234", organization="region")
    accounts.set_password(made.db, "gp-a", "gp-a-password-1234")
    accounts.set_password(made.db, "citizen", "citizen-password-1234")
    app = create_app(url, migrate=False)
    add_access_pages(app)
    app.add_middleware(SignInGate)
    try:
        with TestClient(app, headers={"Content-Type": "application/fhir+json"}) as api:
            yield made, api
    finally:
        clock.set_clock(None)


def _b64(data: dict[str, Any]) -> str:
    return base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode()


def _claims(**changes: Any) -> dict[str, Any]:
    settings = get_settings()
    now = int(clock.now().timestamp())
    base = {"iss": settings.issuer, "aud": settings.audience, "sub": "gp-a", "iat": now, "nbf": now,
            "exp": now + 600, "scope": "user/*.cruds"}  # fmt: skip
    base.update(changes)
    return {k: v for k, v in base.items() if v is not None}


def _audit_count(w: World, patient: str | None = None) -> int:
    with w.db.connect() as con:
        return len(con.execute(select(audit_log.c.seq)).all())


def _flush(api: TestClient) -> None:
    api.app.state.auth.writer.flush()  # type: ignore[attr-defined]


def attacks() -> dict[str, str]:
    own = tokens.signing_key()
    public = {k: v for k, v in own.as_dict(private=False).items()}
    other = ECKey.generate_key("P-256", private=True)
    rsa = RSAKey.generate_key(2048, private=True)
    good = tokens.issue("gp-a", "user/*.cruds")
    head, body, sig = good.split(".")
    tampered_body = _b64({**json.loads(base64.urlsafe_b64decode(body + "==")), "sub": "system"})
    hmac_key = OctKey.import_key(json.dumps(public, sort_keys=True).encode())
    return {
        "alg none": f"{_b64({'alg': 'none', 'typ': 'JWT'})}.{_b64(_claims())}.",
        "HS256 with the public key": jwt.encode({"alg": "HS256"}, _claims(), hmac_key, algorithms=["HS256"]),
        "wrong key": jwt.encode({"alg": "ES256"}, _claims(), other, algorithms=["ES256"]),
        "RSA key of another": jwt.encode({"alg": "RS256"}, _claims(), rsa, algorithms=["RS256"]),
        "expired": jwt.encode(
            {"alg": "ES256", "kid": own.kid},
            _claims(exp=int(NOW.timestamp()) - 120),
            own,
            algorithms=["ES256"],
        ),
        "not yet valid": jwt.encode(
            {"alg": "ES256", "kid": own.kid},
            _claims(nbf=int(NOW.timestamp()) + 3600),
            own,
            algorithms=["ES256"],
        ),
        "wrong audience": jwt.encode(
            {"alg": "ES256"}, _claims(aud="someone-else"), own, algorithms=["ES256"]
        ),
        "wrong issuer": jwt.encode(
            {"alg": "ES256"}, _claims(iss="https://evil.example"), own, algorithms=["ES256"]
        ),
        "no expiry": jwt.encode({"alg": "ES256"}, _claims(exp=None), own, algorithms=["ES256"]),
        "tampered claims": f"{head}.{tampered_body}.{sig}",
        "unknown subject": jwt.encode({"alg": "ES256"}, _claims(sub="nobody"), own, algorithms=["ES256"]),
        "garbage": "not-a-token",
        "huge": "a." * 20_000 + "b",
    }


def test_every_forged_or_stale_token_is_401_audited_and_tells_nothing(
    world: tuple[World, TestClient],
) -> None:
    w, api = world
    for name, token in attacks().items():
        before = _audit_count(w)
        answer = api.get("/fhir/Patient/c-active", headers={"Authorization": f"Bearer {token}"})
        assert answer.status_code == 401, (name, answer.text)
        assert answer.headers["www-authenticate"].startswith("Bearer"), name
        issue = answer.json()["issue"][0]
        assert issue["code"] == "login" and "refused" not in issue["diagnostics"], name
        _flush(api)
        assert _audit_count(w) == before + 1, name  # the failure is in the log, with its reason
    events, _ = audit.entries(w.db, limit=1)
    assert (
        events[0]["outcome"] == "8"
        and "authentication failed" in events[0]["entity"][0]["detail"][0]["valueString"]
    )
    for header in ("Basic Z3AtYTp4", "Bearer", "Bearer  ", "Token abc"):
        assert api.get("/fhir/Patient", headers={"Authorization": header}).status_code == 401


def test_a_removed_account_stops_at_once(world: tuple[World, TestClient]) -> None:
    w, api = world
    accounts.add(w.db, "leaver", "Leaver", "gp", None, practitioner="doc-gp-a", organization="clinic-a")
    token = tokens.issue("leaver", "user/*.rs")
    assert api.get("/fhir/Patient/c-active", headers={"Authorization": f"Bearer {token}"}).status_code == 200
    accounts.remove(w.db, "leaver")
    assert api.get("/fhir/Patient/c-active", headers={"Authorization": f"Bearer {token}"}).status_code == 401


def test_a_proposed_task_gives_no_access_an_ordered_one_does(world: tuple[World, TestClient]) -> None:
    """A risk worklist's Task (intent proposal) is a suggestion, not treatment: its owner gets no access
    from it. A Task that orders something (intent order) does, while it is open."""
    from naer.store import resources as store
    from naer.store.context import SYSTEM

    w, api = world
    nurse = {"Authorization": f"Bearer {tokens.issue('nurse-b', 'user/*.rs')}"}
    assert api.get("/fhir/Patient/c-none", headers=nurse).status_code == 404
    task = {"resourceType": "Task", "status": "requested", "intent": "proposal",
            "for": {"reference": "Patient/c-none"},
            "owner": {"reference": "Organization/home-b"}}  # fmt: skip
    proposed = store.create(w.db, SYSTEM, "Task", task)
    assert api.get("/fhir/Patient/c-none", headers=nurse).status_code == 404
    ordered = store.create(w.db, SYSTEM, "Task", {**task, "intent": "order"})
    assert api.get("/fhir/Patient/c-none", headers=nurse).status_code == 200
    for made in (proposed, ordered):
        store.delete(w.db, SYSTEM, "Task", made.id)
    assert api.get("/fhir/Patient/c-none", headers=nurse).status_code == 404


def test_scopes_only_narrow(world: tuple[World, TestClient]) -> None:
    _w, api = world
    read_only = {"Authorization": f"Bearer {tokens.issue('gp-a', 'user/Patient.rs')}"}
    assert api.get("/fhir/Patient/c-active", headers=read_only).status_code == 200
    assert api.get("/fhir/Observation/obs-c-active", headers=read_only).status_code == 403
    assert api.get("/fhir/Patient/c-none", headers=read_only).status_code == 404  # no wider than the role
    wide = {"Authorization": f"Bearer {tokens.issue('citizen', 'system/*.cruds')}"}  # asks for more
    assert api.get("/fhir/Patient/c-active", headers=wide).status_code == 403  # not the citizen's to ask
    asked = {"Authorization": f"Bearer {tokens.issue('citizen', 'patient/*.rs user/*.cruds')}"}
    assert api.get("/fhir/Patient/c-none", headers=asked).status_code == 404
    assert api.get("/fhir/Patient/c-active", headers=asked).status_code == 200
    assert api.put("/fhir/Patient/c-active", content=b"{}", headers=asked).status_code == 403
    granular = {
        "Authorization": f"Bearer {tokens.issue('gp-a', 'user/Patient.rs user/Observation.rs?code=1234-5')}"
    }
    found = api.get("/fhir/Observation?patient=c-active", headers=granular).json()
    assert found["total"] == 0  # the heart rate is not code 1234-5


def _login(api: TestClient, name: str, password: str, **cookies: str) -> Any:
    page = api.get("/login")
    csrf = page.cookies.get("naer_csrf") or api.cookies.get("naer_csrf")
    return api.post(
        "/login",
        content=f"csrf={csrf}&username={name}&password={password}&next=/min-log",
        headers={"Content-Type": "application/x-www-form-urlencoded"},
        follow_redirects=False,
    )


def test_sign_in_with_csrf_new_session_and_a_secure_cookie(world: tuple[World, TestClient]) -> None:
    _w, api = world
    api.cookies.clear()
    no_token = api.post("/login", content="username=citizen&password=citizen-password-1234",
                        headers={"Content-Type": "application/x-www-form-urlencoded"})  # fmt: skip
    assert no_token.status_code == 403  # no CSRF token: refused before the password is looked at
    api.cookies.set("naer_session", "planted-by-an-attacker")
    done = _login(api, "citizen", "citizen-password-1234")
    assert done.status_code == 303 and done.headers["location"] == "/min-log"
    cookie = done.headers["set-cookie"]
    assert "HttpOnly" in cookie and "SameSite=lax" in cookie.replace("Lax", "lax")
    session = done.cookies["naer_session"]
    assert session != "planted-by-an-attacker" and len(session) >= 40  # a new session: no fixation
    api.cookies.set("naer_session", session)
    log = api.get("/min-log")
    assert log.status_code == 200 and "Min log" in log.text
    csrf = api.get("/logout").cookies.get("naer_csrf") or api.cookies.get("naer_csrf")
    forged = api.post(
        "/logout", content="csrf=wrong", headers={"Content-Type": "application/x-www-form-urlencoded"}
    )
    assert forged.status_code == 403
    form = {"Content-Type": "application/x-www-form-urlencoded"}
    out = api.post("/logout", content=f"csrf={csrf}", headers=form, follow_redirects=False)
    assert out.status_code == 303
    api.cookies.set("naer_session", session)
    assert api.get("/min-log", follow_redirects=False).status_code == 303  # the ended session is dead
    api.cookies.clear()


def test_failed_sign_ins_are_slowed_and_never_say_which_part_was_wrong(
    world: tuple[World, TestClient],
) -> None:
    _w, api = world
    api.cookies.clear()
    wrong_password = _login(api, "gp-a", "not-the-password")
    no_account = _login(api, "no-such-person", "not-the-password")
    assert wrong_password.status_code == no_account.status_code == 401
    assert wrong_password.text.replace("gp-a", "X") == no_account.text.replace("no-such-person", "X")
    throttle = api.app.state.auth.throttle  # type: ignore[attr-defined]
    for _ in range(6):
        throttle.failed("account:gp-a")
    assert throttle.delay("account:gp-a", "address:testclient") >= 1.0
    assert throttle.delay("account:someone-else", "address:elsewhere") == 0.0
    started = time.monotonic()
    _login(api, "gp-a", "not-the-password")
    assert time.monotonic() - started >= 1.0  # the seventh failure waits
    throttle.succeeded("account:gp-a")
    api.cookies.clear()


def test_the_citizen_sees_the_gps_access_in_min_log(world: tuple[World, TestClient]) -> None:
    w, api = world
    gp = {"Authorization": f"Bearer {w.tokens['gp-a']}"}
    assert api.get("/fhir/Observation/obs-c-active", headers=gp).status_code == 200
    assert api.get("/fhir/Observation?patient=c-active", headers=gp).status_code == 200
    _flush(api)
    mine = {"Authorization": f"Bearer {w.tokens['citizen']}"}
    log = api.get("/fhir/AuditEvent?_count=200", headers=mine).json()
    by_gp = [
        e["resource"]
        for e in log["entry"]
        if e["resource"]["agent"][0]["who"]["reference"] == "PractitionerRole/role-doc-gp-a"
    ]
    assert by_gp, "the GP's reads are in the citizen's log"
    details = [d["valueString"] for e in by_gp for ent in e["entity"] for d in ent.get("detail", [])]
    assert "general-practitioner" in details  # which relation allowed it
    assert all("network" not in e["agent"][0] for e in by_gp)  # not the asker's address
    other = {"Authorization": f"Bearer {w.tokens['other-citizen']}"}
    theirs = api.get("/fhir/AuditEvent?_count=200", headers=other).json()
    assert all(
        e["resource"]["entity"][0]["what"]["reference"] == "Patient/c-none" for e in theirs.get("entry", [])
    )
    assert api.get("/fhir/AuditEvent", headers=gp).status_code == 403
    assert api.post("/fhir/AuditEvent", content=b"{}", headers=mine).status_code == 403
    assert (
        api.get("/fhir/AuditEvent?patient=c-none", headers=mine).json()["total"] == log["total"]
    )  # own only


def test_break_the_glass_is_marked_and_waits_for_review(world: tuple[World, TestClient]) -> None:
    w, api = world
    nurse = {"Authorization": f"Bearer {w.tokens['nurse-b']}"}
    assert api.get("/fhir/Patient/c-none", headers=nurse).status_code == 404
    body = {"resourceType": "Parameters", "parameter": [{"name": "reason", "valueString": "kort"}]}
    short = api.post("/fhir/Patient/c-none/$break-the-glass", content=orjson.dumps(body), headers=nurse)
    assert short.status_code == 400 and "10 characters" in short.text
    body["parameter"][0]["valueString"] = "borgeren fundet forvirret i hjemmet, akut vurdering"
    body["parameter"].append({"name": "purpose", "valueCode": "ETREAT"})
    done = api.post("/fhir/Patient/c-none/$break-the-glass", content=orjson.dumps(body), headers=nurse)
    assert done.status_code == 201, done.text
    assert api.get("/fhir/Patient/c-none", headers=nurse).status_code == 200
    planner = {"Authorization": f"Bearer {w.tokens['planner']}"}
    assert (
        api.post(
            "/fhir/Patient/c-none/$break-the-glass", content=orjson.dumps(body), headers=planner
        ).status_code
        == 403
    )
    clock.set_clock(NOW + timedelta(hours=5))  # the grant has run out
    try:
        fresh = {"Authorization": f"Bearer {tokens.issue('nurse-b', 'user/*.cruds')}"}
        assert api.get("/fhir/Patient/c-none", headers=fresh).status_code == 404
    finally:
        clock.set_clock(NOW)
    _flush(api)
    theirs = {"Authorization": f"Bearer {w.tokens['other-citizen']}"}
    log = api.get("/fhir/AuditEvent?_count=200", headers=theirs).json()
    marked = [e for e in log["entry"] if e["resource"].get("meta", {}).get("security")]
    assert marked and all(m["resource"]["meta"]["security"][0]["code"] == "BTG" for m in marked)
    listed = run_naer("audit", "review", "--url", w.url, cwd=Path(w.url.removeprefix("sqlite:///")).parent)
    assert listed.returncode == 0 and "nurse-b" in listed.stdout, listed.stderr
    from naer.access import glass

    grant = next(g for g in glass.listed(w.db) if g.account == "nurse-b" and g.patient == "c-none")
    decided = run_naer("audit", "review", grant.id, "--accept", "--reviewer", "admin", "--note", "ok, akut",
                       "--url", w.url, cwd=Path("/tmp"))  # fmt: skip
    assert decided.returncode == 0 and "accepted by admin" in decided.stdout, decided.stderr
    again = run_naer(
        "audit", "review", grant.id, "--reject", "--reviewer", "admin", "--url", w.url, cwd=Path("/tmp")
    )
    assert again.returncode == 2 and "reviewed already" in again.stderr


def _copy(w: World, tmp_path: Path) -> tuple[str, Any]:
    import sqlite3

    from naer.store.db import engine

    source = Path(w.url.removeprefix("sqlite:///"))
    target = tmp_path / "copy.sqlite"
    with sqlite3.connect(source) as original, sqlite3.connect(target) as copy:
        original.backup(copy)  # with what is still in the write-ahead log
    url = f"sqlite:///{target}"
    return url, engine(url)


@pytest.mark.parametrize("tamper", ["change", "remove", "insert", "reorder", "truncate"])
def test_audit_verify_finds_each_kind_of_tampering(
    world: tuple[World, TestClient], tmp_path: Path, tamper: str
) -> None:
    w, api = world
    _flush(api)
    url, db = _copy(w, tmp_path)
    whole = run_naer("audit", "verify", "--url", url, cwd=tmp_path)
    assert whole.returncode == 0 and "the audit log is whole" in whole.stdout, whole.stderr
    with db.begin() as con:
        rows = con.execute(select(audit_log).order_by(audit_log.c.seq)).all()
        assert len(rows) > 5
        middle = rows[len(rows) // 2]
        if tamper == "change":
            changed = middle.content.replace('"outcome":"0"', '"outcome":"4"').replace("gp-a", "gp-b")
            con.execute(update(audit_log).where(audit_log.c.seq == middle.seq).values(content=changed + " "))
        elif tamper == "remove":
            con.execute(audit_log.delete().where(audit_log.c.seq == middle.seq))
        elif tamper == "insert":
            later = [r for r in rows if r.seq > middle.seq]
            con.execute(audit_log.delete().where(audit_log.c.seq > middle.seq))
            con.execute(audit_log.insert(), [{**r._mapping, "seq": r.seq + 1} for r in later])
            forged = {**middle._mapping, "seq": middle.seq + 1, "content": "{}", "prev": middle.hash}
            con.execute(audit_log.insert().values(forged))
        elif tamper == "reorder":
            a, b = rows[2], rows[3]
            con.execute(update(audit_log).where(audit_log.c.seq == a.seq).values(seq=-1))
            con.execute(update(audit_log).where(audit_log.c.seq == b.seq).values(seq=a.seq))
            con.execute(update(audit_log).where(audit_log.c.seq == -1).values(seq=b.seq))
        else:
            con.execute(audit_log.delete().where(audit_log.c.seq == rows[-1].seq))
    broken = run_naer("audit", "verify", "--url", url, cwd=tmp_path)
    assert broken.returncode == 2 and "the audit log is broken" in broken.stderr, (tamper, broken.stdout)


WRITES = ("create", "update")
WRITER = """
import sys, time
from naer import clock
from naer.access import accounts
from naer.access.context import AccessContext
from naer.store import resources as store
from naer.store.db import engine
from tests.access_world import observation
db = engine(sys.argv[1])
account = accounts.get(db, "gp-a")
principal = accounts.principal(db, account, None, "127.0.0.1")
n = 0
while True:
    n += 1
    context = AccessContext(principal, db, None)
    store.update(db, context, "Observation", f"burst-{n}", observation(f"burst-{n}", "c-active"))
    print(n, flush=True)
"""


def test_kill_9_in_a_burst_of_writes_loses_no_audit_entry_of_a_committed_write(
    world: tuple[World, TestClient], tmp_path: Path
) -> None:
    w, _ = world
    url, db = _copy(w, tmp_path)
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).parents[1])}
    proc = subprocess.Popen([sys.executable, "-c", WRITER, url], stdout=subprocess.PIPE, text=True, env=env)
    assert proc.stdout is not None
    written = 0
    deadline = time.monotonic() + 60
    while written < 40 and time.monotonic() < deadline:
        line = proc.stdout.readline()
        written = int(line) if line.strip().isdigit() else written
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    with db.connect() as con:
        stored = {r.id for r in con.execute(text("SELECT id FROM resources WHERE id LIKE 'burst-%'"))}
        logged = {
            ref.split("/")[1]
            for (content,) in con.execute(select(audit_log.c.content).where(audit_log.c.action.in_(WRITES)))
            for ent in json.loads(content)["entity"]
            if (ref := ent.get("what", {}).get("reference", "")).startswith("Observation/burst-")
        }
    assert written >= 40 and len(stored) >= written  # every write it reported is stored
    assert stored == logged  # and each committed write has its entry: no more, no fewer
    count, problems = audit.verify(db)
    assert problems == [] and count > 0


def test_reads_are_logged_within_the_stated_bound(world: tuple[World, TestClient]) -> None:
    w, api = world
    before = _audit_count(w)
    gp = {"Authorization": f"Bearer {w.tokens['gp-a']}"}
    assert api.get("/fhir/Patient/c-active", headers=gp).status_code == 200
    deadline = time.monotonic() + audit.FLUSH_SECONDS + 2.0  # the bound, with room for a busy machine
    while _audit_count(w) == before and time.monotonic() < deadline:
        time.sleep(0.02)
    assert _audit_count(w) == before + 1
