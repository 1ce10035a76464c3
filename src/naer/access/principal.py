"""The signed-in asker: who (account, person), in which role and organisation, with which scopes, from
where and why. Built from a verified token or session (tokens.py) and an account (accounts.py)."""

from __future__ import annotations

from dataclasses import dataclass

from naer.access.policy import Role, policy
from naer.access.scopes import Scopes


@dataclass(frozen=True)
class Principal:
    account: str
    display: str
    role: str
    scopes: Scopes
    practitioner: str | None = None
    practitioner_role: str | None = None
    organization: str | None = None
    ancestors: tuple[str, ...] = ()  # the organisation's partOf chain upwards, for blocks of sub-units
    patient: str | None = None  # the citizen's own Patient id (role citizen), or a token's launch patient
    address: str = "unknown"
    purpose: str | None = None  # PurposeOfUse (ETREAT when breaking the glass)
    session: str | None = None

    @property
    def policy_role(self) -> Role:
        return policy().roles[self.role]

    def parties(self) -> list[tuple[str, str]]:
        """What a care relation may name the asker by: the person, the role, the organisation."""
        found = []
        if self.practitioner:
            found.append(("Practitioner", self.practitioner))
        if self.practitioner_role:
            found.append(("PractitionerRole", self.practitioner_role))
        if self.organization:
            found.append(("Organization", self.organization))
        return found

    @property
    def reference(self) -> str:
        """The asker as a FHIR reference for the audit log."""
        if self.practitioner_role:
            return f"PractitionerRole/{self.practitioner_role}"
        if self.practitioner:
            return f"Practitioner/{self.practitioner}"
        if self.role == "citizen" and self.patient:
            return f"Patient/{self.patient}"
        return f"Device/{self.account}" if self.role == "system" else f"Person/{self.account}"
