"""``naer messages``: MedCom messages in and out — receive files, validate them, run the outbox."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import orjson
import typer
from rich.console import Console

from naer.errors import UserError
from naer.store.db import database_url

messages_app = typer.Typer(
    help="MedCom messages (HospitalNotification, CareCommunication, Acknowledgement): receive, validate, "
    "and send what waits in the outbox.",
    no_args_is_help=True,
)
console = Console(highlight=False)
SUFFIXES = (".json", ".xml")
MAX_FILES = 100_000


def _shown(text: str) -> str:
    """A line as the terminal shows it: a message's or a file's own control characters (newlines, escape
    sequences) printed as visible marks, so a message cannot forge or hide output lines."""
    return "".join(ch if ch.isprintable() else "\ufffd" for ch in text)


def _read(path: Path) -> bytes | str:
    """The file's bytes, or why it cannot be read (checked against the size limit before it is read)."""
    from naer.messaging.xhtml import MAX_BYTES

    try:
        size = path.stat().st_size
        if size > MAX_BYTES:
            return f"larger than {MAX_BYTES // (1024 * 1024)} MiB: not read"
        return path.read_bytes()
    except OSError as exc:
        return f"cannot be read: {exc.strerror or exc}"


def _answers_folder(answers: Path) -> None:
    try:
        answers.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise UserError(f"--answers {answers}: {exc.strerror or exc}") from None
    if not answers.is_dir():
        raise UserError(f"--answers {answers} is not a folder")


def _files(target: Path) -> list[Path]:
    if not target.exists():
        raise UserError(f"{target}: no such file or directory")
    if target.is_file():
        return [target]
    found = sorted(p for p in target.rglob("*") if p.is_file() and p.suffix.lower() in SUFFIXES)
    if not found:
        raise UserError(f"{target}: no .json or .xml files in it")
    if len(found) > MAX_FILES:
        raise UserError(f"{target}: more than {MAX_FILES} files; receive them in parts")
    return found


@messages_app.command("receive")
def receive_command(
    target: Annotated[Path, typer.Argument(help="A message file (JSON or XML), or a folder of them.")],
    url: Annotated[str | None, typer.Option("--url", help="Database URL (default: settings).")] = None,
    answers: Annotated[
        Path | None, typer.Option("--answers", help="Write each acknowledgement to this folder.")
    ] = None,
) -> None:
    """Receive MedCom messages as the gateway does: validate, apply once, and acknowledge. A message
    received before gets the acknowledgement it got then. One line per message; exit code 1 if any was
    refused."""
    from naer.messaging.receive import receive
    from naer.store.db import engine
    from naer.store.migrate import upgrade

    files = _files(target)
    resolved = database_url(url)
    upgrade(resolved)
    db = engine(resolved)
    if answers is not None:
        _answers_folder(answers)
    refused = 0
    for path in files:
        raw = _read(path)
        if isinstance(raw, str):
            console.print(_shown(f"{path.name}: {raw}"), markup=False, soft_wrap=True)
            refused += 1
            continue
        receipt = receive(db, raw, "application/fhir+xml" if path.suffix.lower() == ".xml" else None)
        console.print(_shown(f"{path.name}: {receipt.line()}"), markup=False, soft_wrap=True)
        if receipt.outcome in ("rejected", "bundle-reused", "unreadable"):
            refused += 1
        if answers is not None and receipt.acknowledgement is not None:
            name = f"ack-{receipt.acknowledgement['id']}.json"
            try:
                (answers / name).write_bytes(
                    orjson.dumps(receipt.acknowledgement, option=orjson.OPT_INDENT_2)
                )
            except OSError as exc:
                raise UserError(f"--answers {answers}: {exc.strerror or exc}") from None
    if refused:
        console.print(f"{refused} of {len(files)} refused")
        raise typer.Exit(1)


@messages_app.command("validate")
def validate_command(
    target: Annotated[Path, typer.Argument(help="A message file (JSON or XML), or a folder of them.")],
) -> None:
    """Validate messages against MedCom's profiles without receiving them: each problem on a line with the
    rule it breaks. Exit code 1 if any message is invalid."""
    from naer.messaging import shape
    from naer.messaging.parse import Unreadable, read
    from naer.messaging.validate import validate

    bad = 0
    for path in _files(target):
        raw = _read(path)
        try:
            if isinstance(raw, str):
                raise Unreadable(raw)
            message = read(raw, "application/fhir+xml" if path.suffix.lower() == ".xml" else None)
        except Unreadable as exc:
            console.print(_shown(f"{path.name}: unreadable: {exc}"), markup=False, soft_wrap=True)
            bad += 1
            continue
        problems = shape.problems(message)
        result = validate(message) if not problems else None
        ok = result is not None and result.ok
        console.print(_shown(f"{path.name}: {'valid' if ok else 'invalid'}"), markup=False)
        for problem in problems or (result.problems if result else []):
            if problem.severity != "information":
                console.print(_shown(f"  {problem.severity}: {problem}"), markup=False, soft_wrap=True)
        bad += not ok
    if bad:
        raise typer.Exit(1)


@messages_app.command("send")
def send_command(
    url: Annotated[str | None, typer.Option("--url", help="Database URL (default: settings).")] = None,
) -> None:
    """Send what the outbox holds that is due: new messages, and again those without an acknowledgement
    after 30 minutes (at most twice; then they wait for a person). Units of this Nær get them directly;
    others as files in NAER_MESSAGING_OUTBOX. The server does this every 10 seconds too."""
    from naer.messaging.outbox import send_due
    from naer.settings import get_settings
    from naer.store.db import engine
    from naer.store.migrate import upgrade

    resolved = database_url(url)
    upgrade(resolved)
    folder = get_settings().messaging_outbox
    if folder is not None and folder.exists() and not folder.is_dir():
        raise UserError(f"NAER_MESSAGING_OUTBOX {folder} is not a folder")
    try:
        done = send_due(engine(resolved), folder=folder)
    except OSError as exc:
        raise UserError(f"NAER_MESSAGING_OUTBOX {folder}: {exc.strerror or exc}") from None
    states: dict[str, int] = {}
    for item in done:
        states[item.state] = states.get(item.state, 0) + 1
    console.print(
        f"{len(done)} due: " + (", ".join(f"{n} {state}" for state, n in sorted(states.items())) or "none")
    )


@messages_app.command("demo")
def demo_command(
    url: Annotated[str | None, typer.Option("--url", help="Database URL (default: settings).")] = None,
) -> None:
    """Write the demo's MedCom messages on the demo's today (`make demo` runs it once after `naer
    coordination demo`): ten days of a department's stays of citizens in Samsø's home care, told by
    HospitalNotification, and care communications between the department, home care and the GP."""
    from naer.messaging.demo import make_demo
    from naer.store.db import engine
    from naer.store.migrate import upgrade

    resolved = database_url(url)
    upgrade(resolved)
    made = make_demo(engine(resolved))
    for what, n in made.items():
        console.print(f"{n} {what}")
