"""The simulation engine: one chunk of citizens of one municipality, month by month.

Every rate comes from the model files. Within an age band, an individual's rate is the band's published
rate times a relative risk built from what the record shows (age, sex, chronic disease, recent
admissions and ED visits, home care, living alone, education, income), an unobserved frailty and a
latent "unstable" state (a deterioration that first shows as more GP contacts), renormalised so that
the band's mean stays at the published rate. So the population reproduces the published totals while
risk stratification has real - but not perfect - signal to find.

Bulk contacts (GP, out-of-hours, ED, outpatient) are drawn as Poisson counts for all citizens at once;
admissions are few and handled one by one, in time order, because each one changes what comes next
(readmission, rehabilitation, home care, acute-bed step-down).
"""

from __future__ import annotations

import heapq
from dataclasses import dataclass, field
from datetime import date
from typing import Any

import numpy as np

from naer.synth.areas import Municipality
from naer.synth.model import Model
from naer.synth.organizations import MunicipalityOrgs
from naer.synth.prevalence import at

BIG = np.int32(2**30)
SHRINK = 400.0  # people: weight of the published prevalence when estimating a band's current one
CONTROL_GAIN = 1.0  # per year: how fast a gap to the published prevalence is closed
YEAR = 365.25
CURVE_STEPS = 20  # prevalence curves are looked up at this many points per year of age

# Stay kinds
ACUTE, PLANNED = 0, 1
# Queue kinds
Q_SPONTANEOUS, Q_READMISSION, Q_PLANNED, Q_TERMINAL = 0, 1, 2, 3
# Dispositions
DISP_HOME, DISP_EXPIRED, DISP_ACUTE_BED, DISP_TRANSFER = "home", "exp", "snf", "other-hcf"


@dataclass
class Stay:
    """One hospital stay (an Encounter); a transfer makes two stays of one admission."""

    person: int
    start: int  # minutes since the start date
    end: int
    kind: int  # ACUTE or PLANNED
    department: str  # Organization id
    main_code: str
    group: str
    disposition: str
    admit_source: str
    part_of: int = -1  # index of the first stay of the same admission
    diseases: tuple[int, ...] = ()


@dataclass
class Episode:
    """A municipal contact with a period: home care, rehabilitation or an acute-bed stay."""

    person: int
    kind: str  # homecare | rehab | acutebed
    start: int  # minutes
    end: int  # minutes, or -1 when still ongoing at the end date
    code: str = ""


@dataclass
class ChunkSpec:
    municipality: Municipality
    orgs: MunicipalityOrgs
    chunk: int  # index within the municipality
    global_index: int  # index over the whole run (CPR uniqueness, seeds)
    n_chunks: int
    size: int
    start: date
    end: date  # inclusive
    seed: int
    other_municipalities: tuple[str, ...]


@dataclass
class ChunkEvents:
    """Everything a chunk produced, as arrays and short lists, ready to be written as FHIR."""

    people: dict[str, np.ndarray]
    onset: np.ndarray  # (n_diseases, n_people) day of onset or BIG
    disease_code: np.ndarray  # (n_diseases, n_people) index into the disease's codes
    social: dict[str, np.ndarray]  # person, day, kind, value
    bulk: dict[str, dict[str, np.ndarray]]  # gp / ooh / ed / outpatient: person, minute (+ extras)
    stays: list[Stay]
    episodes: list[Episode]
    tele: dict[str, np.ndarray]  # person, minute, kind, value, value2
    truth: dict[str, np.ndarray]  # person, year, hazard, frailty, unstable
    end_day: int
    ed_codes: tuple[str, ...] = field(default_factory=tuple)
    outpatient_codes: tuple[str, ...] = field(default_factory=tuple)


def _weighted(rng: np.random.Generator, keys: tuple[str, ...], p: np.ndarray) -> str:
    return keys[int(rng.choice(len(keys), p=p))]


def _renorm(rate: np.ndarray, rel: np.ndarray, band: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """Scale ``rel`` so that its mean over ``mask`` within each age band is 1, times the band rate."""
    n_b = len(rate)
    sums = np.bincount(band[mask], weights=rel[mask], minlength=n_b)
    counts = np.bincount(band[mask], minlength=n_b)
    mean = np.where(counts > 0, sums / np.maximum(counts, 1), 1.0)
    mean = np.where(mean > 0, mean, 1.0)
    return np.asarray(rate[band] * rel / mean[band])


class _People:
    """Column store of the chunk's citizens that grows with births and in-movers."""

    def __init__(self, n_diseases: int, capacity: int) -> None:
        self.n = 0
        self.cols: dict[str, np.ndarray] = {}
        self.n_diseases = n_diseases
        self._spec = {
            "birth": (np.int32, 0),
            "sex": (np.int8, 0),
            "entry": (np.int32, 0),
            "exit": (np.int32, BIG),
            "exit_reason": (np.int8, 0),
            "moved_to": (np.int16, -1),
            "edu": (np.int8, 0),
            "inc": (np.int8, 0),
            "alone": (np.bool_, False),
            "frailty": (np.float64, 1.0),
            "clinic": (np.int16, 0),
            "unstable": (np.bool_, False),
            "last_discharge": (np.int32, -BIG),
            "busy_until": (np.int32, -BIG),
            "homecare": (np.int32, -1),
            "tele_until": (np.int32, -BIG),
            "born_here": (np.bool_, False),
            "address_of": (np.int32, -1),
            "postal": (np.int8, 0),
            "street": (np.int16, 0),
            "house": (np.int16, 1),
            "given": (np.int16, 0),
            "family": (np.int16, 0),
            "weight": (np.float32, 80.0),
        }
        for name, (dtype, fill) in self._spec.items():
            self.cols[name] = np.full(capacity, fill, dtype=dtype)
        self.onset = np.full((n_diseases, capacity), BIG, dtype=np.int32)
        self.code = np.zeros((n_diseases, capacity), dtype=np.int8)
        self.adm_hist = np.zeros((12, capacity), dtype=np.int8)
        self.ed_hist = np.zeros((12, capacity), dtype=np.int8)

    def reserve(self, extra: int) -> None:
        need = self.n + extra
        cap = len(self.cols["birth"])
        if need <= cap:
            return
        new = max(need, int(cap * 1.3) + 16)
        for name, (dtype, fill) in self._spec.items():
            grown: np.ndarray = np.full(new, fill, dtype=dtype)
            grown[:cap] = self.cols[name]
            self.cols[name] = grown
        for attr, fill in (("onset", BIG), ("code", 0), ("adm_hist", 0), ("ed_hist", 0)):
            old = getattr(self, attr)
            grown = np.full((old.shape[0], new), fill, dtype=old.dtype)
            grown[:, :cap] = old
            setattr(self, attr, grown)

    def __getitem__(self, name: str) -> np.ndarray:
        return self.cols[name][: self.n]


class _Engine:
    def __init__(self, model: Model, spec: ChunkSpec) -> None:
        self.m = model
        self.spec = spec
        self.rng = np.random.default_rng([spec.seed, int(spec.municipality.code), spec.chunk, 1])
        self.c = model.contacts
        self.bands = model.bands
        self.n_b = len(self.bands)
        self.band_width = np.diff(np.append(self.bands, model.demography["max_age"]))
        self.diseases = model.diseases
        self.n_d = len(self.diseases)
        self.end_day = (spec.end - spec.start).days + 1
        years = self.end_day / YEAR
        self.people = _People(self.n_d, int(spec.size * (1 + 0.08 * years)) + 64)
        self.edu_groups = model.social["education"]["groups"]
        self.inc_groups = model.social["income_labels"]
        self.names = model.names
        self.clinic_p = np.asarray(spec.orgs.clinic_gps, dtype=np.float64)
        self.clinic_p /= self.clinic_p.sum()
        self.clinic_effect = np.asarray(spec.orgs.clinic_effect)
        self.stays: list[Stay] = []
        self.episodes: list[Episode] = []
        self.bulk: dict[str, dict[str, list[np.ndarray]]] = {k: {} for k in ("gp", "ooh", "ed", "outpatient")}
        self.social: dict[str, list[np.ndarray]] = {
            "person": [],
            "day": [],
            "kind": [],
            "value": [],
        }
        self.tele: dict[str, list[np.ndarray]] = {
            k: [] for k in ("person", "minute", "kind", "value", "value2")
        }
        self.truth: dict[str, list[np.ndarray]] = {
            "person": [],
            "year": [],
            "hazard": [],
            "frailty": [],
            "unstable": [],
        }
        self.pending: dict[int, int] = {}  # person -> day of a scheduled readmission
        self.readmit_sum, self.readmit_n = 100.0, 50
        self.ed_codes, self.ed_p = _codes(model.ed_visit["codes"])
        self.planned_codes, self.planned_p = _codes(model.planned["codes"])
        self.idx = {d.key: i for i, d in enumerate(self.diseases)}
        self.curves = model.prevalence_curves
        # The curves tabulated every 1/CURVE_STEPS year: one gather per month instead of an interpolation.
        grid = np.arange(0.0, float(model.demography["max_age"]) + 1.0, 1.0 / CURVE_STEPS)
        tabulated = [at(*curve, grid) for curve in self.curves]
        self.curve_tab = np.stack([value for value, _ in tabulated])
        self.slope_tab = np.stack([np.maximum(slope, 0.0) for _, slope in tabulated])
        self._names_arrays()

    # ---------------------------------------------------------------- population
    def _names_arrays(self) -> None:
        def arr(table: dict[str, float]) -> np.ndarray:
            p = np.asarray(list(table.values()), dtype=np.float64)
            return np.asarray(p / p.sum())

        self.p_female = arr(self.names["female"])
        self.p_male = arr(self.names["male"])
        self.p_family = arr(self.names["family"])

    def _band(self, age_years: np.ndarray) -> np.ndarray:
        return np.clip(np.searchsorted(self.bands, age_years, side="right") - 1, 0, self.n_b - 1)

    def _ages_in_bands(self, band: np.ndarray) -> np.ndarray:
        low = self.bands[band]
        width = self.band_width[band]
        u = self.rng.random(len(band))
        # The open top band thins out with age (mortality): an exponential tail.
        top = band == self.n_b - 1
        age = low + u * width
        age[top] = low[top] + np.minimum(self.rng.exponential(4.5, top.sum()), width[top] - 0.01)
        return np.asarray(age)

    def _add_people(
        self,
        n: int,
        age_days: np.ndarray,
        day: np.ndarray,
        born_here: bool,
        mothers: np.ndarray | None = None,
    ) -> np.ndarray:
        """Add ``n`` citizens who enter on ``day`` (one day each; their age then given in days)."""
        p = self.people
        p.reserve(n)
        sl = slice(p.n, p.n + n)
        ids = np.arange(p.n, p.n + n)
        p.n += n
        rng = self.rng
        c = p.cols
        c["birth"][sl] = day - age_days
        age_years = age_days / YEAR
        band = self._band(age_years)
        share_f = np.asarray(self.m.demography["share_female"])[band]
        c["sex"][sl] = (rng.random(n) < share_f).astype(np.int8)
        c["entry"][sl] = day
        c["born_here"][sl] = born_here
        # Education (drawn for everyone; children get the 25-44 profile, observed when they turn 25).
        edu_table = self.m.social["education"]["by_band"]
        labels = self.m.demography["band_labels"]
        edu = np.empty(n, dtype=np.int8)
        for b in range(self.n_b):
            sel = band == b
            if not sel.any():
                continue
            probs = edu_table.get(labels[b], edu_table["25-44"])
            edu[sel] = rng.choice(3, size=int(sel.sum()), p=probs)
        c["edu"][sl] = edu
        inc = np.empty(n, dtype=np.int8)
        for g, name in enumerate(self.edu_groups):
            sel = edu == g
            inc[sel] = rng.choice(3, size=int(sel.sum()), p=self.m.social["income_given_education"][name])
        c["inc"][sl] = inc
        alone_p = np.asarray(self.m.social["living_alone"])[band]
        c["alone"][sl] = rng.random(n) < alone_p
        shape = float(self.m.demography["frailty_shape"])
        c["frailty"][sl] = rng.gamma(shape, 1.0 / shape, n)
        c["weight"][sl] = np.clip(rng.normal(78, 14, n), 45, 150)
        if mothers is not None:
            c["clinic"][sl] = c["clinic"][mothers]
            c["address_of"][sl] = np.where(c["address_of"][mothers] >= 0, c["address_of"][mothers], mothers)
        else:
            c["clinic"][sl] = rng.choice(len(self.clinic_p), size=n, p=self.clinic_p)
            c["postal"][sl] = rng.integers(0, len(self.spec.municipality.postal), n)
            c["street"][sl] = rng.integers(0, len(self.names["streets"]), n)
            c["house"][sl] = rng.integers(1, 120, n)
        female = c["sex"][sl] == 1
        c["given"][sl] = np.where(
            female,
            rng.choice(len(self.p_female), size=n, p=self.p_female),
            rng.choice(len(self.p_male), size=n, p=self.p_male),
        )
        c["family"][sl] = rng.choice(len(self.p_family), size=n, p=self.p_family)
        if mothers is not None:
            c["family"][sl] = c["family"][mothers]
        # Chronic disease present at entry, onset some time before.
        rr_all = self._disease_rr(ids)
        for d, dis in enumerate(self.diseases):
            prev = at(*self.curves[d], age_days / YEAR)[0] * _band_normalised(rr_all[d], band, self.n_b)
            has = rng.random(n) < np.clip(prev, 0, 0.95)
            if has.any():
                lead = np.minimum(age_days[has], rng.uniform(30, 15 * YEAR, has.sum()))
                p.onset[d, ids[has]] = (day[has] - lead).astype(np.int32)
                p.code[d, ids[has]] = rng.choice(len(dis.codes), size=int(has.sum()), p=dis.code_p)
        self._social_at_entry(ids, day)
        return ids

    def _disease_rr(self, ids: np.ndarray) -> np.ndarray:
        c = self.people.cols
        female = c["sex"][ids] == 1
        edu = c["edu"][ids]
        out = np.empty((self.n_d, len(ids)))
        for d, dis in enumerate(self.diseases):
            out[d] = np.where(female, dis.female_factor, 1.0) * dis.education_rr[edu]
        return out

    def _social_at_entry(self, ids: np.ndarray, day: np.ndarray) -> None:
        c = self.people.cols
        birth = c["birth"][ids]
        adult = np.maximum(day, birth + int(25 * YEAR))
        grown = np.maximum(day, birth + int(18 * YEAR))
        ok = adult < self.end_day
        self._social(ids[ok], adult[ok], 0, c["edu"][ids][ok])
        self._social(ids[ok], adult[ok], 1, c["inc"][ids][ok])
        ok = grown < self.end_day
        self._social(ids[ok], grown[ok], 2, c["alone"][ids][ok].astype(np.int8))

    def _social(self, ids: np.ndarray, day: np.ndarray, kind: int, value: np.ndarray) -> None:
        self.social["person"].append(ids.astype(np.int32))
        self.social["day"].append(np.asarray(day, dtype=np.int32))
        self.social["kind"].append(np.full(len(ids), kind, dtype=np.int8))
        self.social["value"].append(np.asarray(value, dtype=np.int8))

    def initial_population(self) -> None:
        mun = self.spec.municipality
        structure = np.asarray(self.m.demography["age_structure"], dtype=np.float64)
        old = self.bands >= 65
        share = mun.share_65plus * float(self.m.demography["share_65plus_at_start_factor"])
        # An older municipality is older below 65 too (few young families, many in their fifties):
        # tilt the national shape of the under-65 bands by how far the 65+ share is from the country's.
        tilt = float(self.m.demography["age_tilt"]) * (
            mun.share_65plus - float(self.m.demography["national_share_65plus"])
        )
        middle = self.bands + self.band_width / 2
        structure[~old] *= np.exp(tilt * (middle[~old] - 40) / 10)
        structure[old] *= share / structure[old].sum()
        structure[~old] *= (1 - share) / structure[~old].sum()
        band = self.rng.choice(self.n_b, size=self.spec.size, p=structure / structure.sum())
        age_days = (self._ages_in_bands(band) * YEAR).astype(np.int32)
        self._add_people(self.spec.size, age_days, np.zeros(self.spec.size, dtype=np.int32), born_here=False)

    # ---------------------------------------------------------------- monthly step
    def run(self) -> ChunkEvents:
        self.initial_population()
        start = np.datetime64(self.spec.start, "D")
        month = start.astype("datetime64[M]")
        day0 = 0
        step = 0
        while day0 < self.end_day:
            nxt = (month + 1).astype("datetime64[D]")
            day1 = min(int((nxt - start).astype(int)), self.end_day)
            self._month(day0, day1, step, int(str(month)[:4]), int(str(month)[5:7]))
            day0, month, step = day1, month + 1, step + 1
        return self._result()

    def _month(self, d0: int, d1: int, step: int, year: int, month: int) -> None:
        rng = self.rng
        p = self.people
        c = p.cols
        n = p.n
        length = d1 - d0
        f = length / YEAR
        present = (c["entry"][:n] <= d0) & (c["exit"][:n] > d0)
        ids = np.flatnonzero(present)
        if len(ids) == 0:
            return
        age = (d0 - c["birth"][ids]) / YEAR
        band = self._band(age)
        has = p.onset[:, ids] <= d0  # (n_d, k)
        ncond = has.sum(axis=0)
        slot = step % 12
        adm12 = p.adm_hist[:, ids].sum(axis=0)
        ed12 = p.ed_hist[:, ids].sum(axis=0)
        p.adm_hist[slot, ids] = 0
        p.ed_hist[slot, ids] = 0
        unstable = c["unstable"][ids]
        alone = c["alone"][ids]
        homecare = c["homecare"][ids] >= 0
        frail = c["frailty"][ids]
        female = c["sex"][ids] == 1
        recent = (d0 - c["last_discharge"][ids]) < 30
        allmask = np.ones(len(ids), dtype=bool)

        # --- acute admission hazard (also the recorded "true hazard")
        acute = self.c["acute_admission"]
        r = acute["risk"]
        lp = np.zeros(len(ids))
        for d, dis in enumerate(self.diseases):
            lp += np.log(dis.admission_hr) * has[d]
        lp += r["per_condition"] * np.maximum(ncond - 1, 0)
        lp += r["admissions_12m"] * np.minimum(adm12, 4) + r["ed_visits_12m"] * np.minimum(ed12, 3)
        lp += r["unstable"] * unstable + r["alone"] * alone + r["homecare"] * homecare
        lp += np.asarray([r["education"][g] for g in self.edu_groups])[c["edu"][ids]]
        lp += np.asarray([r["income"][g] for g in self.inc_groups])[c["inc"][ids]]
        rel = np.exp(lp) * frail ** r["frailty_power"] * self.clinic_effect[c["clinic"][ids]]
        rate = np.asarray(acute["per_year"]) * self.spec.municipality.admission_factor
        h_acute = _renorm(rate, rel, band, allmask)
        if month == 1 or step == 0:
            self.truth["person"].append(ids.astype(np.int32))
            self.truth["year"].append(np.full(len(ids), year, dtype=np.int16))
            self.truth["hazard"].append(h_acute.astype(np.float32))
            self.truth["frailty"].append(frail.astype(np.float32))
            self.truth["unstable"].append(unstable.astype(np.int8))

        # --- deaths and moves (decided first: nothing happens to a citizen after leaving)
        mort = np.asarray(self.m.demography["mortality_per_1000"]) / 1000
        lpm = np.zeros(len(ids))
        for d, dis in enumerate(self.diseases):
            lpm += np.log(dis.mortality_hr) * has[d]
        h_death = _renorm(mort, np.exp(lpm) * frail, band, allmask)
        dies = rng.random(len(ids)) < -np.expm1(-h_death * f)
        move_rate = np.asarray(self.m.demography["move_out_per_1000"]) / 1000
        moves = (~dies) & (rng.random(len(ids)) < move_rate[band] * f)
        leave_day = np.full(len(ids), BIG, dtype=np.int32)
        n_leave = int((dies | moves).sum())
        leave_day[dies | moves] = rng.integers(d0, d1, n_leave)
        c["exit"][ids[dies | moves]] = leave_day[dies | moves]
        c["exit_reason"][ids[dies]] = 1
        c["exit_reason"][ids[moves]] = 2
        others = self.spec.other_municipalities
        if moves.any() and others:
            c["moved_to"][ids[moves]] = rng.integers(0, len(others), int(moves.sum()))

        # --- bulk contacts
        def draw(name: str, rates: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
            counts = rng.poisson(rates * f)
            who = np.repeat(np.arange(len(ids)), counts)
            day = rng.integers(d0, d1, len(who))
            keep = day < leave_day[who]
            return who[keep], day[keep]

        gp = self.c["gp"]
        g_rel = np.exp(
            gp["risk"]["per_condition"] * ncond
            + gp["risk"]["unstable"] * unstable
            + gp["risk"]["recent_discharge"] * recent
            + gp["risk"]["homecare"] * homecare
        )
        g_rel *= np.where(female & (age >= 15), gp["female_factor"], 1.0)
        who, day = draw("gp", _renorm(np.asarray(gp["per_year"]), g_rel, band, allmask))
        modes = np.asarray(list(gp["modes"].values()), dtype=np.float64)
        minute = day.astype(np.int64) * 1440 + rng.integers(8 * 60, 16 * 60, len(who))
        self._bulk("gp", ids[who], minute, mode=rng.choice(3, len(who), p=modes / modes.sum()))

        ooh = self.c["out_of_hours"]
        o_rel = np.exp(
            ooh["risk"]["per_condition"] * ncond
            + ooh["risk"]["unstable"] * unstable
            + ooh["risk"]["alone"] * alone
        )
        who, day = draw("ooh", _renorm(np.asarray(ooh["per_year"]), o_rel, band, allmask))
        evening = rng.integers(16 * 60, 32 * 60, len(who))  # 16:00 to 08:00 next morning
        self._bulk("ooh", ids[who], day.astype(np.int64) * 1440 + evening)

        ed = self.c["ed_visit"]
        e_rel = np.exp(ed["risk"]["per_condition"] * ncond + ed["risk"]["unstable"] * unstable)
        e_rel *= frail ** ed["risk"]["frailty_power"]
        who, day = draw("ed", _renorm(np.asarray(ed["per_year"]), e_rel, band, allmask))
        np.add.at(p.ed_hist[slot], ids[who], 1)
        self._bulk(
            "ed",
            ids[who],
            day.astype(np.int64) * 1440 + rng.integers(0, 1440, len(who)),
            code=rng.choice(len(self.ed_codes), len(who), p=self.ed_p),
        )

        # Outpatient visits: a background rate plus each chronic disease's own.
        out_rates = np.asarray(self.c["outpatient"]["per_year"])[band]
        who, day = draw("outpatient", out_rates)
        self._bulk(
            "outpatient",
            ids[who],
            day.astype(np.int64) * 1440 + rng.integers(8 * 60, 15 * 60, len(who)),
            disease=np.full(len(who), -1, dtype=np.int16),
        )
        for d, dis in enumerate(self.diseases):
            if dis.outpatient_per_year <= 0:
                continue
            counts = rng.poisson(dis.outpatient_per_year * f * has[d])
            w = np.repeat(np.arange(len(ids)), counts)
            dd = rng.integers(d0, d1, len(w))
            keep = dd < leave_day[w]
            w, dd = w[keep], dd[keep]
            self._bulk(
                "outpatient",
                ids[w],
                dd.astype(np.int64) * 1440 + rng.integers(8 * 60, 15 * 60, len(w)),
                disease=np.full(len(w), d, dtype=np.int16),
            )

        # --- admissions, in time order
        queue: list[tuple[int, int, int, int]] = []
        spont = rng.random(len(ids)) < -np.expm1(-h_acute * f)
        for k in np.flatnonzero(spont).tolist():
            dday = int(rng.integers(d0, d1))
            if dday < leave_day[k]:
                queue.append((dday, int(rng.integers(0, 1440)), Q_SPONTANEOUS, k))
        planned = self.c["planned_admission"]
        pl_rel = np.ones(len(ids))
        for d, dis in enumerate(self.diseases):
            pl_rel *= np.where(has[d], float(dis.raw.get("planned_admission_hr", 1.0)), 1.0)
        h_pl = _renorm(np.asarray(planned["per_year"]), pl_rel, band, allmask)
        for k in np.flatnonzero(rng.random(len(ids)) < -np.expm1(-h_pl * f)).tolist():
            dday = int(rng.integers(d0, d1))
            if dday < leave_day[k]:
                queue.append((dday, int(rng.integers(7 * 60, 11 * 60)), Q_PLANNED, int(k)))
        in_hosp = float(self.m.demography["in_hospital_death_share"])
        for k in np.flatnonzero(dies).tolist():
            if rng.random() < in_hosp:
                los = int(min(max(rng.gamma(1.3, 4.0), 0.3), 20) * 1440)
                start = max(int(leave_day[k]) * 1440 + 600 - los, d0 * 1440)
                queue.append((start // 1440, start % 1440, Q_TERMINAL, int(k)))
        for pid, pday in sorted(self.pending.items()):
            if pday >= d1:
                continue
            del self.pending[pid]
            k = int(np.searchsorted(ids, pid))
            if k < len(ids) and ids[k] == pid and pday < leave_day[k]:
                queue.append((pday, int(rng.integers(0, 1440)), Q_READMISSION, k))
        heapq.heapify(queue)
        ctx = _MonthContext(ids, band, has, ncond, adm12, leave_day, dies, age, d1)
        while queue:
            dday, minute0, kind, k = heapq.heappop(queue)
            follow = self._admission(ctx, dday, minute0, kind, k, slot)
            if follow is not None and follow < d1:
                heapq.heappush(queue, (follow, int(rng.integers(0, 1440)), Q_READMISSION, k))
            elif follow is not None:
                self.pending[int(ids[k])] = follow

        # --- chronic disease onset: incidence that keeps prevalence on its age curve
        rr_all = self._disease_rr(ids)
        alive = ~(dies | moves)
        counts = np.bincount(band, minlength=self.n_b)
        h_all = np.bincount(band, weights=h_death, minlength=self.n_b) / np.maximum(counts, 1)
        at_age = np.minimum((age * CURVE_STEPS).astype(np.intp), self.curve_tab.shape[1] - 1)
        for d, dis in enumerate(self.diseases):
            # A citizen's hazard is the curve's slope at their age (a cohort ageing along the curve
            # gains that many cases per year), plus the cases that the sick's excess mortality removes
            # (their mean death hazard minus the band's), over the share still free of the disease ...
            curve, slope = self.curve_tab[d, at_age], self.slope_tab[d, at_age]
            sick = np.bincount(band, weights=has[d], minlength=self.n_b)
            h_sick = np.bincount(band, weights=h_death * has[d], minlength=self.n_b)
            h_sick = np.divide(h_sick, sick, out=h_all.copy(), where=sick > 0)
            excess = curve * np.maximum(h_sick - h_all, 0.0)[band]
            # ... plus a correction towards the curve where the band has drifted from it, with the
            # band's observed share shrunk towards the curve (weight SHRINK people), so that small
            # chunks neither over- nor under-correct and prevalence does not depend on chunk size.
            expected = np.bincount(band, weights=curve, minlength=self.n_b)
            gap = (expected - sick) / (counts + SHRINK)
            inc = np.maximum(slope + excess + CONTROL_GAIN * gap[band], 0.0)
            inc /= np.maximum(1.0 - curve, 0.05)
            pr = inc * _band_normalised(rr_all[d], band, self.n_b) * f
            new = alive & ~has[d] & (rng.random(len(ids)) < pr)
            if new.any():
                who_new = ids[new]
                p.onset[d, who_new] = rng.integers(d0, d1, len(who_new))
                p.code[d, who_new] = rng.choice(len(dis.codes), size=len(who_new), p=dis.code_p)

        # --- latent deterioration
        u = self.c["unstable"]
        enter = u["enter_per_month"] * np.exp(u["per_condition"] * ncond) * frail * (length / 30.4)
        c["unstable"][ids] = np.where(
            unstable, rng.random(len(ids)) >= u["leave_per_month"], rng.random(len(ids)) < enter
        )

        # --- home care starts and stops
        hc = self.c["homecare"]
        hc_rel = np.exp(
            hc["risk"]["per_condition"] * ncond
            + hc["risk"]["dementia"] * has[self.idx["dementia"]]
            + hc["risk"]["alone"] * alone
            + hc["risk"]["recent_discharge"] * recent
        )
        hc_rate = np.asarray(hc["start_per_year"])[band] * hc_rel
        start_hc = alive & ~homecare & (rng.random(len(ids)) < hc_rate * f)
        for k in np.flatnonzero(start_hc).tolist():
            c["homecare"][ids[k]] = len(self.episodes)
            self.episodes.append(Episode(int(ids[k]), "homecare", int(rng.integers(d0, d1)) * 1440 + 600, -1))
        stop_hc = homecare & ((rng.random(len(ids)) < hc["stop_per_year"] * f) | dies | moves)
        for k in np.flatnonzero(stop_hc).tolist():
            ep = self.episodes[int(c["homecare"][ids[k]])]
            end = (
                int(leave_day[k]) * 1440 if (dies[k] or moves[k]) else int(rng.integers(d0, d1)) * 1440 + 600
            )
            ep.end = max(end, ep.start + 1440)
            c["homecare"][ids[k]] = -1

        # --- living alone
        becomes = np.asarray(self.m.social["becomes_alone_per_year"])[band]
        new_alone = alive & ~alone & (rng.random(len(ids)) < becomes * f)
        if new_alone.any():
            c["alone"][ids[new_alone]] = True
            self._social(
                ids[new_alone],
                rng.integers(d0, d1, int(new_alone.sum())),
                2,
                np.ones(int(new_alone.sum()), dtype=np.int8),
            )

        # --- telemonitoring of heart failure and COPD
        self._telemonitoring(ids, has, alive, d0, d1, unstable)

        # --- births and in-movers
        women = alive & female & (age >= 15) & (age < 50)
        fert = float(self.m.demography["fertility_per_1000_women_15_49"]) / 1000
        mothers = ids[women & (rng.random(len(ids)) < fert * f)]
        if len(mothers):
            bday = rng.integers(d0, d1, len(mothers)).astype(np.int32)
            self._add_people(len(mothers), np.zeros(len(mothers), dtype=np.int32), bday, True, mothers)
        # As many move in as move out, plus the country's net immigration (mostly young adults).
        net = float(self.m.demography["net_migration_per_1000"]) / 1000
        n_in = int(moves.sum()) + int(rng.poisson(net * len(ids) * f))
        if n_in:
            profile = np.asarray(self.m.demography["move_in_age_profile"], dtype=np.float64)
            band_in = rng.choice(self.n_b, size=n_in, p=profile / profile.sum())
            ages = (self._ages_in_bands(band_in) * YEAR).astype(np.int32)
            self._add_people(n_in, ages, rng.integers(d0, d1, n_in).astype(np.int32), False)

    def _telemonitoring(
        self,
        ids: np.ndarray,
        has: np.ndarray,
        alive: np.ndarray,
        d0: int,
        d1: int,
        unstable: np.ndarray,
    ) -> None:
        rng = self.rng
        c = self.people.cols
        t = self.c["telemonitoring"]
        hf = has[self.idx["heart_failure"]]
        copd = has[self.idx["copd"]]
        enrolled = c["tele_until"][ids] > d0
        f = (d1 - d0) / YEAR
        join = alive & (hf | copd) & ~enrolled & (rng.random(len(ids)) < t["enrol_per_year_if_eligible"] * f)
        if join.any():
            months = rng.integers(t["months"][0], t["months"][1] + 1, int(join.sum()))
            c["tele_until"][ids[join]] = d0 + (months * 30.4).astype(np.int32)
        active = alive & (c["tele_until"][ids] > d0)
        if not active.any():
            return
        weeks = (d1 - d0) / 7
        counts = rng.poisson(t["per_week"] * weeks, int(active.sum()))
        k = np.repeat(np.flatnonzero(active), counts)
        minute = rng.integers(d0, d1, len(k)).astype(np.int64) * 1440 + rng.integers(7 * 60, 10 * 60, len(k))
        pid = ids[k]
        worse = unstable[k]
        base_w = c["weight"][pid]
        # Heart failure: weight (fluid retention shows as gain) and blood pressure.
        sel = hf[k]
        w = (
            base_w[sel]
            + rng.normal(0, 0.6, int(sel.sum()))
            + worse[sel] * rng.uniform(1.0, 3.5, int(sel.sum()))
        )
        self._tele(pid[sel], minute[sel], 0, np.round(w, 1), np.zeros(int(sel.sum())))
        sys_bp = rng.normal(132, 14, int(sel.sum())) - worse[sel] * 8
        dia_bp = sys_bp * 0.6 + rng.normal(0, 5, int(sel.sum()))
        self._tele(pid[sel], minute[sel] + 1, 2, np.round(sys_bp), np.round(dia_bp))
        # COPD: oxygen saturation (falls with an exacerbation).
        sel = copd[k]
        spo2 = np.clip(
            rng.normal(94, 1.5, int(sel.sum())) - worse[sel] * rng.uniform(2, 6, int(sel.sum())),
            75,
            100,
        )
        self._tele(pid[sel], minute[sel] + 2, 1, np.round(spo2), np.zeros(int(sel.sum())))

    def _tele(
        self, pid: np.ndarray, minute: np.ndarray, kind: int, value: np.ndarray, value2: np.ndarray
    ) -> None:
        self.tele["person"].append(pid.astype(np.int32))
        self.tele["minute"].append(minute.astype(np.int64))
        self.tele["kind"].append(np.full(len(pid), kind, dtype=np.int8))
        self.tele["value"].append(value.astype(np.float32))
        self.tele["value2"].append(value2.astype(np.float32))

    def _bulk(self, name: str, person: np.ndarray, minute: np.ndarray, **extra: np.ndarray) -> None:
        store = self.bulk[name]
        store.setdefault("person", []).append(person.astype(np.int32))
        store.setdefault("minute", []).append(minute.astype(np.int64))
        for key, value in extra.items():
            store.setdefault(key, []).append(value)

    # ---------------------------------------------------------------- one admission
    def _admission(
        self, ctx: _MonthContext, dday: int, minute0: int, kind: int, k: int, slot: int
    ) -> int | None:
        """Create the stays of one admission (or an acute-bed stay); return a readmission day or None."""
        rng = self.rng
        c = self.people.cols
        pid = int(ctx.ids[k])
        start = dday * 1440 + minute0
        if start < int(c["busy_until"][pid]):
            return None
        age = float(ctx.age[k])
        old = age >= 65
        has = ctx.has[:, k]
        mun = self.spec.municipality
        orgs = self.spec.orgs
        leave = int(ctx.leave_day[k]) * 1440 + 600 if ctx.leave_day[k] < BIG else None
        acute_cfg = self.c["acute_admission"]
        if kind == Q_PLANNED:
            code = _weighted(rng, self.planned_codes, self.planned_p)
            group, dept = "planned", self.m.planned["department"]
            mean_los = float(self.c["planned_admission"]["length_of_stay_days"]["mean"])
        else:
            code, group, dept = self._acute_diagnosis(has, old)
            mean_los = acute_cfg["length_of_stay_days"]["mean_65plus" if old else "mean_under_65"]
            bed_share = self.c["acute_bed"]["instead_of_admission_65plus"]
            if mun.acute_bed_share is not None:
                bed_share = mun.acute_bed_share
            if kind == Q_SPONTANEOUS and old and rng.random() < bed_share:
                days = int(rng.integers(*self.c["acute_bed"]["length_of_stay_days"]))
                end = start + days * 1440
                if leave is not None:
                    end = min(end, leave)
                self.episodes.append(Episode(pid, "acutebed", start, max(end, start + 60), code))
                c["busy_until"][pid] = end
                c["unstable"][pid] = False
                return None
        los = int(max(rng.gamma(1.2, mean_los / 1.2), 0.15) * 1440)
        if kind == Q_TERMINAL and leave is not None:
            los = max(leave - start, 120)
        end = start + los
        died = leave is not None and bool(ctx.dies[k]) and end >= leave
        if leave is not None and end >= leave:
            end = max(leave, start + 60)
        department = self._department(dept, orgs)
        diseases = tuple(int(d) for d in np.flatnonzero(has)[:4])
        admit_source = "gp" if kind == Q_PLANNED else ("emd" if rng.random() < 0.7 else "gp")
        stay_kind = PLANNED if kind == Q_PLANNED else ACUTE
        first = len(self.stays)
        disposition = DISP_EXPIRED if died else DISP_HOME
        if (
            stay_kind == ACUTE
            and dept != "emergency"
            and rng.random() < acute_cfg["transfer_share"]
            and los > 8 * 60
        ):
            split = start + int(rng.uniform(3, min(24, los / 60 - 2)) * 60)
            self.stays.append(
                Stay(
                    pid,
                    start,
                    split,
                    ACUTE,
                    orgs.department_ids["emergency"],
                    code,
                    group,
                    DISP_TRANSFER,
                    admit_source,
                    -1,
                    diseases,
                )
            )
            self.stays.append(
                Stay(
                    pid,
                    split,
                    end,
                    ACUTE,
                    department,
                    code,
                    group,
                    disposition,
                    "emd",
                    first,
                    diseases,
                )
            )
        else:
            self.stays.append(
                Stay(
                    pid,
                    start,
                    end,
                    stay_kind,
                    department,
                    code,
                    group,
                    disposition,
                    admit_source,
                    -1,
                    diseases,
                )
            )
        c["busy_until"][pid] = end
        if stay_kind == ACUTE:
            self.people.adm_hist[slot, pid] += 1
            if rng.random() < self.c["unstable"]["resolved_by_admission"]:
                c["unstable"][pid] = False
        if died:
            return None
        discharge_day = end // 1440
        c["last_discharge"][pid] = discharge_day
        # After discharge: municipal acute-bed step-down and rehabilitation for older citizens.
        if old:
            if rng.random() < self.c["acute_bed"]["step_down_after_discharge_65plus"]:
                days = int(rng.integers(*self.c["acute_bed"]["length_of_stay_days"]))
                bed_end = end + days * 1440
                if leave is None or bed_end < leave:
                    self.stays[-1].disposition = DISP_ACUTE_BED
                    self.episodes.append(Episode(pid, "acutebed", end + 30, bed_end, code))
                    c["busy_until"][pid] = bed_end
            rehab = self.c["rehabilitation"]
            p_rehab = rehab["after_fracture"] if group == "fracture" else rehab["after_discharge_65plus"]
            if rng.random() < p_rehab:
                s = end + int(rng.integers(1, 8)) * 1440
                e = s + int(rng.integers(rehab["weeks"][0], rehab["weeks"][1] + 1)) * 7 * 1440
                if leave is None or e < leave:
                    self.episodes.append(Episode(pid, "rehab", s, e))
        # Readmission caused by this discharge (the hazard adds the rest).
        rd = self.c["readmission"]
        rr = rd["risk"]
        lp = (
            rr["per_condition"] * min(int(ctx.ncond[k]), 4)
            + rr["admissions_12m"] * min(int(ctx.adm12[k]), 4)
            + rr["long_stay"] * (los > 7 * 1440)
            + rr["age_80plus"] * (age >= 80)
        )
        rel = float(np.exp(lp) * float(c["frailty"][pid]) ** rr["frailty_power"])
        # Renormalise by the running mean of the relative risk over this chunk's discharges, so the
        # mean probability stays as configured whatever the case mix (a prior of 2.0 weighs 50).
        self.readmit_sum += rel
        self.readmit_n += 1
        p_readmit = min(rd["mean_probability"] * rel * self.readmit_n / self.readmit_sum, 0.6)
        if rng.random() < p_readmit:
            gap = 1 + min(int(rng.exponential(rd["mean_days"])), 29)
            return discharge_day + gap
        return None

    def _acute_diagnosis(self, has: np.ndarray, old: bool) -> tuple[str, str, str]:
        rng = self.rng
        for d in rng.permutation(np.flatnonzero(has)):
            dis = self.diseases[int(d)]
            if dis.exacerbation_share > 0 and rng.random() < dis.exacerbation_share:
                return (
                    _weighted(rng, dis.exacerbation_codes, dis.exacerbation_p),
                    f"exacerbation:{dis.key}",
                    dis.exacerbation_department,
                )
        groups = self.m.diagnosis_groups
        w = np.asarray([g.share_65plus if old else g.share_under_65 for g in groups], dtype=np.float64)
        for gi, g in enumerate(groups):
            for key, factor in g.factors.items():
                if has[self.idx[key]]:
                    w[gi] *= factor
        g = groups[int(rng.choice(len(groups), p=w / w.sum()))]
        return _weighted(rng, g.codes, g.code_p), g.key, g.department

    def _department(self, dept: str, orgs: MunicipalityOrgs) -> str:
        if dept == "psychiatry":
            return orgs.psychiatry_id
        return orgs.department_ids.get(dept, orgs.department_ids["medicine"])

    # ---------------------------------------------------------------- result
    def _result(self) -> ChunkEvents:
        p = self.people
        n = p.n
        people = {name: col[:n].copy() for name, col in p.cols.items()}
        bulk = {
            name: {k: np.concatenate(v) if v else np.zeros(0) for k, v in store.items()}
            for name, store in self.bulk.items()
        }
        return ChunkEvents(
            people=people,
            onset=p.onset[:, :n].copy(),
            disease_code=p.code[:, :n].copy(),
            social={
                k: np.concatenate(v) if v else np.zeros(0, dtype=np.int32) for k, v in self.social.items()
            },
            bulk=bulk,
            stays=self.stays,
            episodes=self.episodes,
            tele={k: np.concatenate(v) if v else np.zeros(0) for k, v in self.tele.items()},
            truth={k: np.concatenate(v) if v else np.zeros(0) for k, v in self.truth.items()},
            end_day=self.end_day,
            ed_codes=self.ed_codes,
        )


@dataclass
class _MonthContext:
    ids: np.ndarray
    band: np.ndarray
    has: np.ndarray
    ncond: np.ndarray
    adm12: np.ndarray
    leave_day: np.ndarray
    dies: np.ndarray
    age: np.ndarray
    d1: int


def _codes(table: dict[str, Any]) -> tuple[tuple[str, ...], np.ndarray]:
    keys = tuple(table)
    p = np.asarray([float(table[k]) for k in keys])
    return keys, p / p.sum()


def _band_normalised(rel: np.ndarray, band: np.ndarray, n_b: int) -> np.ndarray:
    sums = np.bincount(band, weights=rel, minlength=n_b)
    counts = np.bincount(band, minlength=n_b)
    mean = np.where(counts > 0, sums / np.maximum(counts, 1), 1.0)
    return np.asarray(rel / np.where(mean > 0, mean, 1.0)[band])


def simulate(model: Model, spec: ChunkSpec) -> ChunkEvents:
    """Run one chunk; same model, spec and seed give the same events."""
    return _Engine(model, spec).run()
