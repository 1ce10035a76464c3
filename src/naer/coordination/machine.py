"""Workflows as state machines defined as data (``workflows/*.yaml``), run by this one small engine:
which states there are, what each shows in FHIR, which transitions lead from which state to which,
and who may take each. The workflows (advice.py, ...) ask ``step`` before they write anything, so a
move the definition does not allow never reaches the store."""

from __future__ import annotations

from functools import cache
from pathlib import Path
from typing import Annotated, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from naer.errors import UserError
from naer.store.errors import Conflict, Forbidden, NotFound

FOLDER = Path(__file__).with_name("workflows")
Party = Literal["requester", "owner", "system"]
TaskStatus = Literal[
    "draft", "requested", "received", "accepted", "rejected", "ready", "cancelled", "in-progress",
    "on-hold", "failed", "completed", "entered-in-error",
]  # fmt: skip
Name = Annotated[str, Field(pattern=r"^[a-z][a-z0-9-]{0,39}$")]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class State(_Strict):
    title: str
    title_da: str
    task: TaskStatus
    request: Literal["draft", "active", "on-hold", "revoked", "completed", "entered-in-error"] | None = None
    waiting_for: Literal["requester", "owner"] | None = None  # whose inbox shows it; None: finished


class Transition(_Strict):
    title: str
    title_da: str
    from_: Annotated[list[Name], Field(alias="from", min_length=1)]
    to: Name
    by: Party
    text: Literal["required", "optional", "none"] = "none"
    deadline: Literal["keep", "restart"] = "keep"


class Workflow(_Strict):
    id: Name
    code: Name
    title: str
    title_da: str
    start: Name
    states: dict[Name, State]
    transitions: dict[Name, Transition]

    @model_validator(mode="after")
    def _closed(self) -> Workflow:
        """Every state a transition names exists, and the start state too."""
        if self.start not in self.states:
            raise ValueError(f"start state {self.start!r} is not among the states")
        for name, t in self.transitions.items():
            for state in [*t.from_, t.to]:
                if state not in self.states:
                    raise ValueError(f"transition {name!r} names the unknown state {state!r}")
        return self

    def state(self, name: str) -> State:
        found = self.states.get(name)
        if found is None:
            raise Conflict(f"the {self.id} request is in a state this workflow does not know ({name!r})")
        return found

    def may(self, transition: str, parties: set[str]) -> Transition:
        """The transition, if one of ``parties`` may take it at all (404 for one the workflow does not
        have, 403 for the wrong party): asked before anything else about the move, so that a party that
        may not move the request never learns more (its version, its state)."""
        move = self.transitions.get(transition)
        if move is None:
            known = ", ".join(sorted(self.transitions))
            raise UnknownTransition(f"{self.id} has no transition {transition[:40]!r} (it has: {known})")
        if move.by not in parties:
            who = {"requester": "the one who asked", "owner": "the department asked", "system": "Nær itself"}
            raise Forbidden(f"only {who[move.by]} may {transition} this {self.title.lower()}")
        return move

    def step(self, current: str, transition: str, parties: set[str]) -> Transition:
        """The transition ``transition`` from ``current``, if one of ``parties`` may take it; else a
        clear refusal (409 for a move the state does not allow, 403 for the wrong party)."""
        move = self.may(transition, parties)
        if current not in move.from_:
            state = self.state(current)
            raise Conflict(
                f"the {self.title.lower()} is {state.title.lower()} and cannot be moved by {transition!r} "
                f"(only from: {', '.join(move.from_)})"
            )
        return move


class UnknownTransition(NotFound):
    """A transition the workflow does not have (404: like an unknown URL)."""


def load(path: Path) -> Workflow:
    try:
        return Workflow.model_validate(yaml.safe_load(path.read_text(encoding="utf-8")))
    except (OSError, yaml.YAMLError) as error:
        raise UserError(f"{path.name}: cannot read the workflow: {error}") from None
    except ValidationError as error:
        first = error.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or "(top)"
        raise UserError(f"{path.name}: {where}: {first['msg']}") from None


@cache
def workflow(name: str) -> Workflow:
    path = FOLDER / f"{name}.yaml"
    if not path.is_file():
        raise UserError(f"no workflow definition {name!r} in {FOLDER}")
    return load(path)


@cache
def by_code(code: str) -> Workflow | None:
    """The workflow whose Tasks carry ``code`` (Task.code), or None for a Task of no workflow here."""
    found = (workflow(path.stem) for path in sorted(FOLDER.glob("*.yaml")))
    return next((flow for flow in found if flow.code == code), None)
