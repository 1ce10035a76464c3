"""The rules of the workflows as data: working days and Danish public holidays, the answer-time
agreements, and the advice workflow's state machine (no database)."""

from __future__ import annotations

from datetime import UTC, date, datetime, time
from pathlib import Path

import pytest

from naer.coordination import agreements
from naer.coordination.calendar import DANISH_TIME, WorkingCalendar, is_public_holiday
from naer.coordination.machine import UnknownTransition, load, workflow
from naer.errors import UserError
from naer.store.errors import Conflict, Forbidden

CAL = WorkingCalendar(time(8, 0), time(15, 30), frozenset({(6, 5), (12, 24), (12, 31)}))


def local(*args: int) -> datetime:
    return datetime(*args, tzinfo=DANISH_TIME)  # type: ignore[misc]


def test_great_prayer_day_is_a_holiday_until_2023_only() -> None:
    # Store bededag was abolished as a public holiday from 2024 (lov nr. 205 af 28/02/2023).
    assert is_public_holiday(date(2023, 5, 5))
    assert not is_public_holiday(date(2024, 4, 26))
    assert is_public_holiday(date(2026, 4, 2))  # skærtorsdag
    assert is_public_holiday(date(2026, 5, 25))  # 2. pinsedag
    assert not is_public_holiday(date(2026, 6, 5))  # grundlovsdag is no public holiday by law ...
    assert not CAL.is_working_day(date(2026, 6, 5))  # ... but the agreement closes on it


def test_three_working_days_skip_easter() -> None:
    # Wednesday 1 April 2026: Maundy Thursday, Good Friday, the weekend and Easter Monday are not working
    # days, so the three working days are Tuesday 7, Wednesday 8 and Thursday 9 April (summer time).
    due = CAL.add_working_days(local(2026, 4, 1, 10, 0), 3)
    assert due == local(2026, 4, 9, 15, 30)
    assert due.utcoffset() is not None and due.astimezone(UTC).hour == 13


def test_working_days_from_after_closing_and_from_a_weekend() -> None:
    assert CAL.add_working_days(local(2026, 12, 7, 16, 0), 1) == local(2026, 12, 9, 15, 30)
    assert CAL.add_working_days(local(2026, 12, 5, 10, 0), 1) == local(2026, 12, 8, 15, 30)
    # Across the change to summer time (29 March 2026): Friday 27 March + 1 working day = Monday 30.
    assert CAL.add_working_days(local(2026, 3, 27, 9, 0), 1).astimezone(UTC) == datetime(
        2026, 3, 30, 13, 30, tzinfo=UTC
    )


def test_same_working_day_with_cutoff_and_christmas() -> None:
    cutoff = time(12, 0)
    assert CAL.same_working_day(local(2026, 12, 7, 11, 59), cutoff) == local(2026, 12, 7, 15, 30)
    assert CAL.same_working_day(local(2026, 12, 7, 12, 0), cutoff) == local(2026, 12, 8, 15, 30)
    # Wednesday 23 December after the cutoff: 24 (closed), 25 and 26 (holidays), 27 (Sunday) -> Monday 28.
    assert CAL.same_working_day(local(2026, 12, 23, 13, 0), cutoff) == local(2026, 12, 28, 15, 30)


def test_the_shipped_agreements_read_and_choose() -> None:
    samsoe = agreements.choose("DK-82", "0741")
    assert samsoe.id == "region-midt-samsoe"
    assert agreements.choose("DK-82", "0751").id == "region-midt"  # the region's standard
    assert agreements.choose("DK-82", None).id == "region-midt"
    with pytest.raises(UserError, match="no answer-time agreement between region DK-84"):
        agreements.choose("DK-84", "0101")
    acute = samsoe.urgency("acute")
    sent = local(2026, 12, 7, 22, 10)  # acute advice runs around the clock
    assert acute.deadline(sent.astimezone(UTC), samsoe.calendar) == local(2026, 12, 7, 22, 40)
    with pytest.raises(UserError, match="has no urgency 'tomorrow'"):
        samsoe.urgency("tomorrow")


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ("within: 30m", None),
        ("within: 30 minutes", "is not a duration"),
        ("within: 30m\n    working_days: 3", "exactly one of"),
        ("working_days: 0", "greater than or equal to 1"),
    ],
)
def test_an_agreement_file_with_a_mistake_is_refused_with_the_field(
    tmp_path: Path, change: str, message: str | None
) -> None:
    text = f"""
id: test
version: 1
title: t
title_da: t
region: DK-82
municipalities: ["0741"]
valid_from: 2026-01-01
working_hours: {{opens: "08:00", closes: "15:30"}}
escalate_to: on-call
urgencies:
  - code: acute
    label: a
    label_da: a
    priority: stat
    {change}
"""
    path = tmp_path / "test.yaml"
    path.write_text(text)
    if message is None:
        assert agreements.load(path).urgency("acute").within == "30m"
        return
    with pytest.raises(UserError, match=message) as caught:
        agreements.load(path)
    assert str(caught.value).startswith("test.yaml: urgencies.0")


def test_month_days_and_municipality_codes_are_checked(tmp_path: Path) -> None:
    base = (Path(agreements.FOLDER) / "region-midt-samsoe.yaml").read_text()
    for bad, message in ((base.replace('"12-31"', '"02-30"'), "day is out of range"),
                         (base.replace('["0741"]', '["741"]'), "four digits")):  # fmt: skip
        (tmp_path / "bad.yaml").write_text(bad)
        with pytest.raises(UserError, match=message):
            agreements.load(tmp_path / "bad.yaml")


def test_the_advice_workflow_is_consistent_and_enforced() -> None:
    flow = workflow("advice")
    assert flow.start == "sent"
    assert flow.step("sent", "receive", {"owner"}).to == "received"
    assert flow.step("received", "answer", {"owner"}).text == "required"
    assert flow.step("answered", "ask-again", {"requester"}).deadline == "restart"
    with pytest.raises(Forbidden, match="only the department asked may answer"):
        flow.step("received", "answer", {"requester"})
    with pytest.raises(Conflict, match="is closed and cannot be moved by 'answer'"):
        flow.step("closed", "answer", {"owner"})
    with pytest.raises(UnknownTransition):
        flow.step("sent", "delete", {"owner", "requester"})
    # Every state but the finished ones can be left; the finished ones cannot.
    leaving = {s for t in flow.transitions.values() for s in t.from_}
    assert set(flow.states) - leaving == {"closed", "withdrawn"}


def test_a_workflow_naming_an_unknown_state_is_refused(tmp_path: Path) -> None:
    text = (Path(__file__).parents[1] / "src/naer/coordination/workflows/advice.yaml").read_text()
    (tmp_path / "advice.yaml").write_text(text.replace("to: closed", "to: shut"))
    with pytest.raises(UserError, match="transition 'close' names the unknown state 'shut'"):
        load(tmp_path / "advice.yaml")
