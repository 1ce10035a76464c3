"""The demo's live workflows (`naer coordination demo`, as `make demo` runs it): on the synthetic Samsø
(the session's quarter-size data set), after `naer users demo` and the acute unit's beds, on the demo's
clock (the data folder's `today`), every workflow has work in hand and the demo's people see it."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import orjson
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from naer import clock


def test_the_demo_has_work_in_hand(samsoe: Path, tmp_path: Path, naer: Callable[..., Any]) -> None:
    url = f"sqlite:///{tmp_path / 'store.sqlite'}"
    assert naer("load", str(samsoe), "--url", url, cwd=tmp_path).returncode == 0
    (tmp_path / "today").write_text("2024-12-31T10:00:00+01:00\n")
    env = {"NAER_DATA_DIR": str(tmp_path), "NAER_DATABASE_URL": url}
    import os

    old = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    try:
        users = naer("users", "demo", cwd=tmp_path)
        if users.returncode != 0 and "no Samsø citizen in home care or admitted" in users.stderr:
            pytest.skip(
                "the quarter-size Samsø has no citizen both in home care and admitted on its last day"
            )
        assert users.returncode == 0, users.stderr
        assert naer("coordination", "beds", "muni-0741-acutebeds", "--beds", "4", "--url", url,
                    cwd=tmp_path).returncode == 0  # fmt: skip
        made = naer("coordination", "demo", "--url", url, cwd=tmp_path)
        assert made.returncode == 0, made.stderr
        assert "3 advice requests" in made.stdout and "1 escalated" in made.stdout
        assert "4 follow-up tasks" in made.stdout and "2 acute-bed stays" in made.stdout

        from naer.access import tokens
        from naer.api.app import create_app

        clock.start_at(clock.parse_today("2024-12-31T10:00:00+01:00"))
        with TestClient(create_app(url, migrate=False)) as api:
            physician = {"Authorization": f"Bearer {tokens.issue('overlaege', 'user/*.cruds')}"}
            inbox = api.get("/workflow/inbox", headers=physician).json()
            assert inbox["lists"]["overdue"]["count"] >= 1 and inbox["lists"]["new"]["count"] >= 2
            oncall = {"Authorization": f"Bearer {tokens.issue('vagtlaege', 'user/*.cruds')}"}
            mine = api.get("/workflow/inbox?whose=person", headers=oncall).json()
            assert mine["lists"]["escalated"]["count"] == 1
            nurse = {"Authorization": f"Bearer {tokens.issue('hjemmesygeplejerske', 'user/*.cruds')}"}
            answered = api.get("/workflow/inbox?whose=person", headers=nurse).json()["lists"]["answered"]
            assert answered["count"] == 1
            from naer.coordination.figures import figures
            from naer.store.db import engine

            found = figures(engine(url))
            advice = {(s.total, s.within, s.open, s.open_overdue) for s in found.advice}
            assert (1, 1, 2, 1) in advice  # answered in time; two open, one of them overdue (escalated)
            months = [m for m in found.advice_by_month if m.total]  # by the month it was answered
            assert len(found.advice_by_month) == 12 and [(m.total, m.within) for m in months] == [(1, 1)]
            assert (round(months[0].low or 0, 4), months[0].high) == (0.2065, 1.0)  # Wilson 95 %, 1 of 1
            assert sum(s.open for s in found.follow_up) == 4 and found.delegations_in_force == 1
            assert found.beds == [
                {"unit": "Samsø Sundheds- og Akuthus, akutpladser", "beds": 4, "occupied": 2}
            ]
            from naer.access import accounts
            from naer.access.context import AccessContext
            from naer.coordination.course import course

            account = accounts.get(engine(url), "laege")
            borger = accounts.get(engine(url), "borger")
            assert account is not None and borger is not None
            gp = AccessContext(accounts.principal(engine(url), account, None, "x"), engine(url), None)
            found_course = course(engine(url), gp, str(borger.patient), 2024)
            team = {r.who for r in found_course.responsible if r.what == "team"}
            assert team == {"Hjemmepleje og sygepleje, Samsø Kommune"}  # who accepted the follow-up
            assert all(i.when <= "2024-12-31T10:05" for i in found_course.items if i.kind == "contact")
            citizen = orjson.loads((tmp_path / "demo-users.json").read_text())
            assert any(u["name"] == "borger" for u in citizen)
        # The demo's MedCom messages: the department's stays told to Samsø's home care, care communications
        told = naer("messages", "demo", "--url", url, cwd=tmp_path)
        assert told.returncode == 0, told.stderr
        assert "3 care communications" in told.stdout and "stay changes" in told.stdout
        from naer.messaging import lists
        from naer.messaging.tables import message
        from naer.store.db import engine as engine_of

        db = engine_of(url)
        with db.connect() as con:
            rows = con.execute(
                select(message.c.direction, message.c.kind, message.c.code, message.c.state)
            ).all()
        codes = {r.code for r in rows if r.kind == "hospital-notification" and r.direction == "out"}
        assert {"STIN", "SLHJ"} <= codes and all(r.state in ("applied", "acknowledged") for r in rows), rows
        nurse_account = accounts.get(db, "hjemmesygeplejerske")
        assert nurse_account is not None
        nurse = AccessContext(accounts.principal(db, nurse_account, None, "x"), db, None)
        shown = lists.listed(db, nurse)
        assert {s.kind for s in shown} == {"hospital-notification", "care-communication"}
        assert lists.admitted(db, nurse), (
            "some of the department's citizens are in hospital on the demo's today"
        )
    finally:
        clock.set_clock(None)
        for k, value in old.items():
            if value is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = value
