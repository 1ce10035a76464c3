"""The access matrix: every asker × every citizen (each in one relation state: none, active, ended,
blocked, break-the-glass running or expired; tests/access_world.py) × every read and write path of the
API, on SQLite and PostgreSQL. Each cell asserts what the asker learns of that citizen by that
operation against the oracle written out from the policy by hand. Anonymous askers get 401 everywhere.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest
from fastapi.testclient import TestClient

from naer import clock
from tests.access_world import ASKERS, CITIZENS, DELETES, SEES, WRITES, World, build, observation
from tests.conftest import new_store

ALL_ASKERS = [*ASKERS, "anonymous"]
CELLS: dict[str, int] = {}


def cell(kind: str, n: int = 1) -> None:
    CELLS[kind] = CELLS.get(kind, 0) + n


@pytest.fixture(params=["sqlite", "postgresql"], scope="module")
def world(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[World, TestClient]]:
    from naer.api.app import create_app

    with new_store(request.param, tmp_path_factory.mktemp("access")) as url:
        made = build(url)
        try:
            headers = {"Content-Type": "application/fhir+json"}
            with TestClient(create_app(url, migrate=False), headers=headers) as api:
                yield made, api
        finally:
            clock.set_clock(None)


def _get(api: TestClient, w: World, asker: str, url: str, **headers: str) -> Any:
    return api.get(url, headers={**w.headers(asker), **headers})


def _patients_in(bundle: dict[str, Any]) -> set[str]:
    """The citizens a Bundle names: Patients in it and the subject of everything in it."""
    found: set[str] = set()
    for entry in bundle.get("entry", []):
        r = entry.get("resource", {})
        if r.get("resourceType") == "Patient":
            found.add(r["id"])
        for key in ("subject", "patient"):
            ref = (r.get(key) or {}).get("reference", "") if isinstance(r.get(key), dict) else ""
            if ref.startswith("Patient/"):
                found.add(ref.split("/", 1)[1])
    return found


def _expect_401(answer: Any) -> None:
    assert answer.status_code == 401, answer.text
    assert answer.headers["www-authenticate"].startswith("Bearer")
    assert "sign-in required" in answer.text and "token refused" not in answer.text


def _records_refused(asker: str) -> bool:
    return ASKERS[asker][0] == "planner"


@pytest.mark.parametrize("asker", ALL_ASKERS)
def test_read_vread_everything(world: tuple[World, TestClient], asker: str) -> None:
    w, api = world
    for c in CITIZENS:
        paths = ("Patient/{}", "Observation/obs-{}", "Observation/obs-{}/_history/1")
        paths += ("Patient/{}/$everything",)
        for url in (f"/fhir/{p.format(c)}" for p in paths):
            answer = _get(api, w, asker, url)
            cell("read/vread/$everything")
            if asker == "anonymous":
                _expect_401(answer)
            elif _records_refused(asker):
                assert answer.status_code == 403, (asker, url, answer.text)
            elif c in SEES[asker]:
                assert answer.status_code == 200, (asker, url, answer.text)
                if url.endswith("$everything"):
                    assert _patients_in(answer.json()) == {c}
            else:
                assert answer.status_code == 404, (asker, url, answer.text)
                nobody = _get(api, w, asker, url.replace(c, "c-nobody"))  # as if it did not exist
                assert (nobody.status_code, nobody.text.replace("c-nobody", c)) == (404, answer.text)


SEARCHES = [
    "/fhir/Observation?_count=100",
    "/fhir/Observation?subject.gender=female&_count=100",
    "/fhir/Observation?subject:Patient.birthdate=1940-01-01&_count=100",
    "/fhir/Patient?_has:Observation:subject:code=8867-4&_count=100",
    "/fhir/Observation?_include=Observation:subject&_count=100",
    "/fhir/Patient?_revinclude=Observation:subject&_revinclude=Encounter:subject&_count=100",
    "/fhir/Patient?_count=1",  # paging: the next link and the total must not count the others
    "/fhir/Encounter?_count=100&_total=accurate",
    "/fhir/Consent?_count=100",
    "/fhir/Observation/_history?_count=100",
    "/fhir/Patient/_history?_count=100",
    "/fhir/_history?_count=500",
    "/fhir/Observation?_summary=count",
    "/fhir/Patient?identifier=nothing&_total=accurate",
]


@pytest.mark.parametrize("asker", ALL_ASKERS)
def test_searches_reveal_exactly_the_allowed_citizens(world: tuple[World, TestClient], asker: str) -> None:
    w, api = world
    expected = SEES.get(asker, set())
    for url in SEARCHES:
        answer = _get(api, w, asker, url)
        cell("search/chain/_has/include/revinclude/history/_total", len(CITIZENS))
        if asker == "anonymous":
            _expect_401(answer)
            continue
        if _records_refused(asker):
            assert answer.status_code == 403, (asker, url)
            assert "c-" not in answer.text
            continue
        assert answer.status_code == 200, (asker, url, answer.text)
        bundle = answer.json()
        seen = _patients_in(bundle)
        if url.startswith("/fhir/_history"):  # the system history holds other types too
            seen = {p for p in seen if p in CITIZENS}
        if url.endswith("_count=1"):
            assert bundle["total"] == len(expected), (asker, url)
            assert seen <= expected
            continue
        if "_summary=count" in url:
            assert bundle["total"] == len(expected), (asker, url)
            continue
        if "identifier=nothing" in url:
            assert bundle["total"] == 0
            continue
        if url.startswith("/fhir/Consent"):
            assert seen <= expected
            continue
        if url.startswith("/fhir/Encounter"):
            assert seen <= expected and bundle["total"] == sum(
                1 for e in bundle.get("entry", []) if e["resource"]["resourceType"] == "Encounter"
            )
            continue
        assert seen == expected, (asker, url, seen)
        for link in bundle.get("link", []):
            assert "c-" not in link["url"].split("?")[0]


def _wait_export(api: TestClient, w: World, asker: str, kick: Any) -> dict[str, Any]:
    status = kick.headers["content-location"].split("/fhir", 1)[1]
    for _ in range(300):
        answer = _get(api, w, asker, f"/fhir{status}")
        if answer.status_code != 202:
            assert answer.status_code == 200, answer.text
            return answer.json()  # type: ignore[no-any-return]
        time.sleep(0.05)
    raise AssertionError("the export did not finish")


@pytest.mark.parametrize("asker", ALL_ASKERS)
def test_every_export_holds_only_the_allowed_citizens(world: tuple[World, TestClient], asker: str) -> None:
    w, api = world
    groups = {"/fhir/Group/everyone/$export": set(CITIZENS), "/fhir/Group/active-only/$export": {"c-active"}}
    for url in ("/fhir/$export", "/fhir/Patient/$export", *groups):
        kick = _get(api, w, asker, url, Prefer="respond-async")
        cell("$export", len(CITIZENS))
        if asker == "anonymous":
            _expect_401(kick)
            continue
        role = ASKERS[asker][0]
        if role == "planner":
            assert kick.status_code == 403
            continue
        members = groups.get(url)
        if members is not None and not members <= SEES[asker]:  # a Group of citizens one may not see
            assert kick.status_code == 404, kick.text
            continue
        assert kick.status_code == 202, (asker, url, kick.text)
        manifest = _wait_export(api, w, asker, kick)
        seen: set[str] = set()
        for output in manifest["output"]:
            path = output["url"].split("/fhir", 1)[1]
            body = _get(api, w, asker, f"/fhir{path}").text
            for line in body.splitlines():
                r = orjson.loads(line)
                seen |= _patients_in({"entry": [{"resource": r}]})
        assert seen == (SEES[asker] if members is None else members), (asker, url, seen)


@pytest.mark.parametrize("asker", ALL_ASKERS)
def test_writes_follow_the_relations(world: tuple[World, TestClient], asker: str) -> None:
    w, api = world
    h = w.headers(asker)
    for c in CITIZENS:
        new = observation(f"new-{asker}-{c}", c)
        made = api.post(
            "/fhir/Observation", content=orjson.dumps({k: v for k, v in new.items() if k != "id"}), headers=h
        )
        updated = api.put(
            f"/fhir/Observation/obs-{c}", content=orjson.dumps(observation(f"obs-{c}", c)), headers=h
        )
        conditional = api.put(
            f"/fhir/Observation?identifier=urn:naer:test|obs-{c}",
            content=orjson.dumps(observation(f"obs-{c}", c)),
            headers=h,
        )
        batch = {
            "resourceType": "Bundle",
            "type": "batch",
            "entry": [
                {"request": {"method": "GET", "url": f"Observation/obs-{c}"}},
                {"request": {"method": "GET", "url": f"Observation?identifier=urn:naer:test|obs-{c}"}},
            ],
        }
        batched = api.post("/fhir", content=orjson.dumps(batch), headers=h)
        cell("create/update/conditional update/batch", 5)
        if asker == "anonymous":
            for answer in (made, updated, conditional, batched):
                _expect_401(answer)
            continue
        may_write = asker in WRITES and c in SEES[asker]
        if asker in WRITES or not _records_refused(asker):
            assert made.status_code == (201 if may_write else 403), (asker, c, made.text)
            assert updated.status_code == (200 if may_write else 403), (asker, c, updated.text)
            assert conditional.status_code == (200 if may_write else 403), (asker, c, conditional.text)
        else:
            assert {made.status_code, updated.status_code, conditional.status_code} == {403}
        if _records_refused(asker):
            assert batched.status_code in (200, 403)
            if batched.status_code == 200:
                assert all(e["response"]["status"].startswith("403") for e in batched.json()["entry"])
            continue
        entries = batched.json()["entry"]
        if c in SEES[asker]:
            assert entries[0]["response"]["status"].startswith("200"), entries
            assert entries[1]["resource"]["total"] == 1
        else:
            assert entries[0]["response"]["status"].startswith("404"), entries
            assert entries[1]["resource"]["total"] == 0


@pytest.mark.parametrize("asker", ALL_ASKERS)
def test_deletes(world: tuple[World, TestClient], asker: str) -> None:
    w, api = world
    h = w.headers(asker)
    for c in CITIZENS:
        rid = f"del-{asker}-{c}"
        from naer.store import resources as store
        from naer.store.context import SYSTEM

        store.update(w.db, SYSTEM, "Observation", rid, observation(rid, c))
        answer = api.delete(f"/fhir/Observation/{rid}", headers=h)
        cell("delete")
        if asker == "anonymous":
            _expect_401(answer)
        elif asker in DELETES:
            assert answer.status_code == 204
        else:  # no role but the system client deletes records; the resource is still there
            assert answer.status_code == 403, answer.text
            assert api.get(f"/fhir/Observation/{rid}", headers=_system(w)).status_code == 200


def _system(w: World) -> dict[str, str]:
    return w.headers("system")


def test_the_matrix_has_every_cell(world: tuple[World, TestClient], tmp_path: Path) -> None:
    total = sum(CELLS.values())
    print(f"access matrix: {total} cells: {CELLS}")  # pytest -s shows it; the closing note quotes it
    assert total >= 1000
