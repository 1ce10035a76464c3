"""``naer synth --report DIR``: measure a generated data set and set it beside the published targets.

It reads only the FHIR files (not the generator's internals), so it also checks that what the engine
meant to write is what a reader finds. Rates are shown crude and directly age-standardised to the
national age structure (model/demography.yaml), because Samsø's population is much older than the
country's: the standardised rate is the one to compare with a national figure.
"""

from __future__ import annotations

import gzip
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import IO, Any, cast

import numpy as np
import orjson
from rich.console import Console
from rich.table import Table

from naer.errors import UserError
from naer.synth.model import Model, load_model

ADMISSION_TYPES = {"acute-admission", "planned-admission"}
GP_TYPES = {"gp-consultation", "gp-phone", "gp-email"}


@dataclass(frozen=True)
class Row:
    key: str
    label: str
    target: float
    crude: float
    standardised: float | None
    tolerance: float
    source: str

    @property
    def compared(self) -> float:
        return self.standardised if self.standardised is not None else self.crude

    @property
    def deviation(self) -> float:
        return self.compared / self.target - 1 if self.target else float("nan")

    @property
    def within(self) -> bool:
        return abs(self.deviation) <= self.tolerance


def _open(folder: Path, kind: str) -> IO[bytes] | None:
    for name in (f"{kind}.ndjson", f"{kind}.ndjson.gz"):
        path = folder / name
        if path.exists():
            if name.endswith(".gz"):
                return cast(IO[bytes], gzip.open(path, "rb"))
            return path.open("rb")
    return None


def _lines(folder: Path, kind: str) -> Iterator[dict[str, Any]]:
    fh = _open(folder, kind)
    if fh is None:
        raise UserError(f"{folder} has no {kind}.ndjson(.gz): is it a data set from naer synth?")
    with fh:
        for number, line in enumerate(fh, start=1):
            if line.strip():
                try:
                    yield orjson.loads(line)
                except orjson.JSONDecodeError:
                    raise UserError(f"{folder}/{kind}: line {number} is not JSON") from None


def _day(text: str) -> int:
    return date.fromisoformat(text[:10]).toordinal()


def measure(folder: Path, model: Model | None = None) -> list[Row]:
    """Compute every target's measured value for the data set in ``folder``."""
    model = model or load_model()
    if not folder.is_dir():
        raise UserError(f"--report {folder}: no such folder")
    manifest_path = folder / "manifest.json"
    if not manifest_path.exists():
        raise UserError(f"{folder} has no manifest.json: is it a data set from naer synth?")
    info = orjson.loads(manifest_path.read_bytes())["naer"]
    start, end = _day(info["start"]), _day(info["end"]) + 1
    bands = model.bands
    n_b = len(bands)
    standard = np.asarray(model.demography["age_structure"], dtype=np.float64)

    # --- citizens: birth, time in the area, death
    index: dict[str, int] = {}
    birth: list[int] = []
    entry: list[int] = []
    leave: list[int] = []
    died: list[int] = []
    for p in _lines(folder, "Patient"):
        index[p["id"]] = len(birth)
        birth.append(_day(p["birthDate"]))
        home = p.get("address", [{}])[0].get("period", {})
        entry.append(max(_day(home["start"]) if "start" in home else start, start))
        out = end
        if "end" in home:
            out = _day(home["end"])
        dead = p.get("deceasedDateTime")
        if dead:
            out = min(out, _day(dead))
        leave.append(out)
        died.append(1 if dead and start <= _day(dead) < end else 0)
    b, e, x = np.asarray(birth), np.asarray(entry), np.asarray(leave)
    years = 365.25

    def band_of(age_days: np.ndarray) -> np.ndarray:
        return np.clip(np.searchsorted(bands, age_days / years, side="right") - 1, 0, n_b - 1)

    # Person-time by age band, year by year (age at the middle of each year's segment).
    person_years = np.zeros(n_b)
    first_year, last_year = date.fromordinal(start).year, date.fromordinal(end - 1).year
    for year in range(first_year, last_year + 1):
        y0 = max(date(year, 1, 1).toordinal(), start)
        y1 = min(date(year + 1, 1, 1).toordinal(), end)
        s, t = np.maximum(e, y0), np.minimum(x, y1)
        pt = np.clip(t - s, 0, None) / years
        person_years += np.bincount(band_of((s + t) / 2 - b), weights=pt, minlength=n_b)

    def standardised(events: np.ndarray, mask: np.ndarray | None = None) -> tuple[float, float]:
        w = standard if mask is None else np.where(mask, standard, 0.0)
        pyr = person_years if mask is None else np.where(mask, person_years, 0.0)
        rate = np.divide(events, pyr, out=np.zeros(n_b), where=pyr > 0)
        return float(events.sum() / max(pyr.sum(), 1e-9)), float((rate * w).sum() / w.sum())

    # --- encounter diagnoses (rank 1) and chronic conditions
    dx_code: dict[str, str] = {}
    chronic: list[tuple[int, str, int]] = []
    for c in _lines(folder, "Condition"):
        cat = c.get("category", [{}])[0].get("coding", [{}])[0].get("code")
        code = c.get("code", {}).get("coding", [{}])[0].get("code", "")
        if cat == "encounter-diagnosis":
            dx_code[c["id"]] = code
        elif cat == "problem-list-item":
            who = index.get(c["subject"]["reference"].split("/", 1)[1])
            if who is not None and "onsetDateTime" in c:
                chronic.append((who, code, _day(c["onsetDateTime"])))

    # --- encounters
    gp_who: list[int] = []
    gp_day: list[int] = []
    stays: list[tuple[int, int, int, bool, bool, str, str]] = []  # who, start, end, acute, part_of, disp, dx
    for enc in _lines(folder, "Encounter"):
        kind = enc.get("type", [{}])[0].get("coding", [{}])[0].get("code")
        who = index.get(enc["subject"]["reference"].split("/", 1)[1])
        if who is None:
            continue
        begin = _day(enc["period"]["start"])
        if kind in GP_TYPES and start <= begin < end:
            gp_who.append(who)
            gp_day.append(begin)
        elif kind in ADMISSION_TYPES:
            finish = _day(enc["period"]["end"]) if "end" in enc["period"] else end
            disp = (
                enc.get("hospitalization", {})
                .get("dischargeDisposition", {})
                .get("coding", [{}])[0]
                .get("code", "")
            )
            main = next((d for d in enc.get("diagnosis", []) if d.get("rank") == 1), None)
            code = dx_code.get(main["condition"]["reference"].split("/", 1)[1], "") if main else ""
            stays.append((who, begin, finish, kind == "acute-admission", "partOf" in enc, disp, code))

    gp_at = np.asarray(gp_day, dtype=np.int64) - b[np.asarray(gp_who, dtype=np.int64)]
    gp_band = np.bincount(band_of(gp_at), minlength=n_b).astype(float)
    preventable = {c for g in model.diagnosis_groups if g.preventable_elderly for c in g.codes}
    adm_age: list[int] = []  # age in days at each admission in the period
    adm_acute: list[bool] = []
    adm_preventable: list[bool] = []
    admissions: dict[int, list[tuple[int, int, bool, str]]] = {}
    for who, begin, finish, acute, part_of, disp, code in sorted(stays):
        if part_of:  # the second stay of a transfer continues its admission
            chain = admissions.get(who)
            if chain:
                s0, _, a0, _ = chain[-1]
                chain[-1] = (s0, finish, a0, disp)
            continue
        admissions.setdefault(who, []).append((begin, finish, acute, disp))
        if not start <= begin < end:
            continue
        age_days = begin - int(b[who])
        adm_age.append(age_days)
        adm_acute.append(acute)
        adm_preventable.append(acute and code in preventable and age_days / years >= 65)
    adm_at = band_of(np.asarray(adm_age, dtype=np.int64))
    adm_band = np.bincount(adm_at, minlength=n_b).astype(float)
    acute_band = np.bincount(adm_at, weights=np.asarray(adm_acute, dtype=float), minlength=n_b)
    prev_band = np.bincount(adm_at, weights=np.asarray(adm_preventable, dtype=float), minlength=n_b)
    index_n = readmitted = 0
    for chain in admissions.values():
        for i, (_, finish, _, disp) in enumerate(chain):
            if disp == "exp" or not start <= finish < end - 30:
                continue
            index_n += 1
            nxt = chain[i + 1] if i + 1 < len(chain) else None
            if nxt and nxt[2] and 0 <= nxt[0] - finish <= 30:
                readmitted += 1
    death_band = np.bincount(
        band_of(np.minimum(x, end - 1) - b), weights=np.asarray(died, float), minlength=n_b
    )

    # --- prevalence and age structure on the last day
    last = end - 1
    present = (e <= last) & (x > last)
    age_last = (last - b) / years
    adults, old = present & (age_last >= 18), present & (age_last >= 65)
    code_to_disease = {code: d.key for d in model.diseases for code in d.codes}
    has: dict[str, set[int]] = {}
    for who, code, onset in chronic:
        key = code_to_disease.get(code)
        if key and onset <= last:
            has.setdefault(key, set()).add(who)

    band_last = band_of(last - b)

    def prevalence(key: str, mask: np.ndarray) -> tuple[float, float]:
        """Crude share among ``mask``, and standardised over the bands ``mask`` covers."""
        members = np.zeros(len(b), dtype=bool)
        members[list(has.get(key, ()))] = True
        crude = float((members & mask).sum() / max(mask.sum(), 1))
        cases = np.bincount(band_last[mask], weights=members[mask].astype(float), minlength=n_b)
        people = np.bincount(band_last[mask], minlength=n_b)
        rate = np.divide(cases, people, out=np.zeros(n_b), where=people > 0)
        w = np.where(people > 0, standard, 0.0)
        return crude, float((rate * w).sum() / max(w.sum(), 1e-12))

    is_old = bands >= 65
    values: dict[str, tuple[float, float | None]] = {
        "gp_contacts_per_citizen": standardised(gp_band),
        "admissions_per_1000": tuple(v * 1000 for v in standardised(adm_band)),  # type: ignore[dict-item]
        "acute_admissions_per_1000": tuple(v * 1000 for v in standardised(acute_band)),  # type: ignore[dict-item]
        "readmission_30d_share": (readmitted / max(index_n, 1), None),
        "preventable_65plus_per_1000": tuple(v * 1000 for v in standardised(prev_band, is_old)),  # type: ignore[dict-item]
        "deaths_per_1000": tuple(v * 1000 for v in standardised(death_band)),  # type: ignore[dict-item]
        "share_65plus": (float(old.sum() / max(present.sum(), 1)), None),
        "diabetes_prevalence_adults": prevalence("diabetes", adults),
        "copd_prevalence_adults": prevalence("copd", adults),
        "heart_failure_prevalence_adults": prevalence("heart_failure", adults),
        "dementia_prevalence_65plus": prevalence("dementia", old),
    }
    rows = []
    for key, spec in model.targets.items():
        crude, std = values[key]
        target = float(spec["value"])
        if key == "share_65plus":  # the area's own published share, not the national one
            target = _area_share_65plus(model, info["area"])
        rows.append(Row(key, spec["label"], target, crude, std, float(spec["tolerance"]), spec["source"]))
    return rows


def _area_share_65plus(model: Model, area: str) -> float:
    from naer.synth.areas import resolve_area

    _, municipalities = resolve_area(model, area)
    total = sum(m.population for m in municipalities)
    return sum(m.population * m.share_65plus for m in municipalities) / total


def render_report(console: Console, rows: list[Row], folder: Path) -> None:
    table = Table(title=f"Calibration of {folder} against published Danish figures")
    table.add_column("measure", ratio=1)
    for col in ("target", "crude", "std.", "dev."):
        table.add_column(col, justify="right", no_wrap=True, min_width=6)
    table.add_column("source", overflow="ellipsis", no_wrap=True, max_width=16)
    for r in rows:
        digits = 3 if r.target < 1 else 1

        def fmt(v: float, digits: int = digits) -> str:
            return f"{v:.{digits}f}"

        colour = "green" if r.within else "red"
        table.add_row(
            r.label,
            fmt(r.target),
            fmt(r.crude),
            fmt(r.standardised) if r.standardised is not None else "",
            f"[{colour}]{r.deviation:+.1%}[/]",
            r.source,
        )
    console.print(table)
    console.print(
        "std. = directly age-standardised to the national age structure. dev. = deviation of std. "
        "(else crude) from the target; green is within the target's tolerance. "
        "Sources: docs/synthetic-population.md"
    )
