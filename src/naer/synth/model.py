"""Load the generator's model: the reviewable YAML files under ``synth/model/``.

The engine is small and generic; what a population looks like (age structure, diseases, contact rates,
diagnosis mix, targets) is data, as Synthea keeps disease modules as data.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache, cached_property
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from naer.synth.prevalence import knots

MODEL_DIR = Path(__file__).parent / "model"


@dataclass(frozen=True)
class Disease:
    key: str
    name: str
    codes: tuple[str, ...]
    code_p: np.ndarray
    prevalence: np.ndarray
    female_factor: float
    education_rr: np.ndarray  # by education group index
    admission_hr: float
    mortality_hr: float
    outpatient_per_year: float
    exacerbation_share: float
    exacerbation_codes: tuple[str, ...]
    exacerbation_p: np.ndarray
    exacerbation_department: str
    outpatient_department: str
    raw: dict[str, Any]


@dataclass(frozen=True)
class DiagnosisGroup:
    key: str
    codes: tuple[str, ...]
    code_p: np.ndarray
    share_65plus: float
    share_under_65: float
    department: str
    preventable_elderly: bool
    factors: dict[str, float]


@dataclass(frozen=True)
class Model:
    areas: dict[str, Any]
    demography: dict[str, Any]
    social: dict[str, Any]
    contacts: dict[str, Any]
    diseases: tuple[Disease, ...]
    diagnosis_groups: tuple[DiagnosisGroup, ...]
    planned: dict[str, Any]
    ed_visit: dict[str, Any]
    names: dict[str, Any]
    targets: dict[str, Any]

    @property
    def bands(self) -> np.ndarray:
        return np.asarray(self.demography["age_bands"], dtype=np.float64)

    @cached_property
    def prevalence_curves(self) -> tuple[tuple[np.ndarray, np.ndarray], ...]:
        """Each disease's prevalence as knots of a curve over age: fitted once per process, not per chunk."""
        max_age = float(self.demography["max_age"])
        return tuple(knots(d.prevalence, self.bands, max_age) for d in self.diseases)

    def disease_index(self, key: str) -> int:
        return next(i for i, d in enumerate(self.diseases) if d.key == key)


def _read(path: Path) -> Any:
    with path.open(encoding="utf-8") as fh:
        return yaml.safe_load(fh)


def _weights(table: dict[str, float]) -> tuple[tuple[str, ...], np.ndarray]:
    keys = tuple(table)
    p = np.asarray([float(table[k]) for k in keys], dtype=np.float64)
    return keys, (p / p.sum() if p.sum() > 0 else p)


def _disease(key: str, raw: dict[str, Any], education_groups: list[str]) -> Disease:
    codes, code_p = _weights(raw["codes"])
    exa = raw.get("exacerbation") or {}
    exa_codes, exa_p = _weights(exa.get("codes") or {})
    return Disease(
        key=key,
        name=raw["name"],
        codes=codes,
        code_p=code_p,
        prevalence=np.asarray(raw["prevalence"], dtype=np.float64),
        female_factor=float(raw.get("female_factor", 1.0)),
        education_rr=np.asarray([raw["education_rr"][g] for g in education_groups], dtype=np.float64),
        admission_hr=float(raw["admission_hr"]),
        mortality_hr=float(raw["mortality_hr"]),
        outpatient_per_year=float(raw.get("outpatient_per_year", 0.0)),
        exacerbation_share=float(exa.get("share", 0.0)),
        exacerbation_codes=exa_codes,
        exacerbation_p=exa_p,
        exacerbation_department=str(exa.get("department", "medicine")),
        outpatient_department=str(raw.get("outpatient_department", "medicine")),
        raw=raw,
    )


@cache
def load_model(directory: Path = MODEL_DIR) -> Model:
    """Read and check every model file once per process."""
    social = _read(directory / "social.yaml")
    groups = social["education"]["groups"]
    diseases = tuple(
        _disease(p.stem, _read(p), groups) for p in sorted((directory / "diseases").glob("*.yaml"))
    )
    dx = _read(directory / "admission_diagnoses.yaml")
    diagnosis_groups = []
    for key, raw in dx["groups"].items():
        codes, code_p = _weights(raw["codes"])
        diagnosis_groups.append(
            DiagnosisGroup(
                key=key,
                codes=codes,
                code_p=code_p,
                share_65plus=float(raw["share_65plus"]),
                share_under_65=float(raw["share_under_65"]),
                department=str(raw["department"]),
                preventable_elderly=bool(raw.get("preventable_elderly", False)),
                factors={str(k): float(v) for k, v in (raw.get("factors") or {}).items()},
            )
        )
    model = Model(
        areas=_read(directory / "areas.yaml"),
        demography=_read(directory / "demography.yaml"),
        social=social,
        contacts=_read(directory / "contacts.yaml"),
        diseases=diseases,
        diagnosis_groups=tuple(diagnosis_groups),
        planned=dx["planned"],
        ed_visit=dx["ed_visit"],
        names=_read(directory / "names.yaml"),
        targets=_read(directory / "targets.yaml")["targets"],
    )
    _check(model)
    return model


def _check(model: Model) -> None:
    n_bands = len(model.demography["age_bands"])
    for d in model.diseases:
        if len(d.prevalence) != n_bands:
            raise ValueError(f"disease {d.key}: prevalence needs {n_bands} age bands")
    for name in (
        "gp",
        "out_of_hours",
        "ed_visit",
        "acute_admission",
        "planned_admission",
        "outpatient",
    ):
        if len(model.contacts[name]["per_year"]) != n_bands:
            raise ValueError(f"contacts.{name}.per_year needs {n_bands} age bands")
    keys = {d.key for d in model.diseases}
    for g in model.diagnosis_groups:
        unknown = set(g.factors) - keys
        if unknown:
            raise ValueError(f"diagnosis group {g.key}: unknown diseases {sorted(unknown)}")
