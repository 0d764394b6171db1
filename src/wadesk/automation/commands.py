"""`wadesk automation`: list, export and import an inbox's rules and FAQ entries.

Exports are what imports read, so rules and FAQ move between inboxes or installations
(rules name teams, flows and integrations by name, so those must exist where they land).
"""

from __future__ import annotations

import asyncio
import csv
import io
import json
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Annotated, Any, NoReturn, TypeVar

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table
from sqlalchemy.ext.asyncio import AsyncSession

from wadesk.audit.actions import Actor
from wadesk.automation.actions import (
    RULE_FIELDS,
    FaqReplaced,
    ImportInvalid,
    do_import_faq,
    do_import_rules,
    do_replace_faq,
)
from wadesk.automation.models import AutomationRule, FaqEntry
from wadesk.automation.queries import inbox_faq, inbox_rules
from wadesk.config import get_settings
from wadesk.db import Database
from wadesk.inboxes.models import Inbox

automation_app = typer.Typer(help="Automation of an inbox: rules and FAQ.", no_args_is_help=True)
rules_app = typer.Typer(help="Keyword and event rules of an inbox.", no_args_is_help=True)
faq_app = typer.Typer(help="FAQ entries the FAQ bot answers from.", no_args_is_help=True)
automation_app.add_typer(rules_app, name="rules")
automation_app.add_typer(faq_app, name="faq")

console = Console()
err = Console(stderr=True)
CLI_ACTOR = Actor.system("cli")
FAQ_COLUMNS = ("question", "answer", "alternatives", "language")
InboxOption = Annotated[int, typer.Option("--inbox", help="The inbox's id", show_default=False)]
OutOption = Annotated[
    Path | None, typer.Option("--out", help="Write to this file instead of the standard output")
]
T = TypeVar("T")


def _fail(message: str) -> NoReturn:
    err.print(f"[red]error:[/red] {escape(message)}", highlight=False)
    raise typer.Exit(code=1)


def _in_inbox(inbox_id: int, work: Callable[[AsyncSession], Awaitable[T]]) -> T:
    """Run ``work`` in one transaction (committed when it returns) once the inbox is found."""

    async def main() -> T | None:
        db = Database(get_settings())
        try:
            async with db.session() as session:
                if await session.get(Inbox, inbox_id) is None:
                    return None
                return await work(session)
        finally:
            await db.dispose()

    result = asyncio.run(main())
    if result is None:
        _fail(f"no inbox with id {inbox_id}")
    return result


def _write(text: str, out: Path | None) -> None:
    if out is None:
        typer.echo(text, nl=False)
    else:
        out.write_text(text, encoding="utf-8")
        err.print(f"written to {escape(str(out))}", highlight=False)


def _read(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as exc:
        _fail(f"cannot read {path}: {exc}")


# ------------------------------------------------------------------ rules


def _rule_export(rule: AutomationRule) -> dict[str, Any]:
    return {field: getattr(rule, field) for field in RULE_FIELDS}


@rules_app.command("list")
def rules_list(inbox: InboxOption) -> None:
    """Show an inbox's rules in the order they are tried."""
    rules = _in_inbox(inbox, lambda s: inbox_rules(s, inbox))
    table = Table("#", "id", "name", "trigger", "actions", "enabled", "after hand-off", "matches")
    for number, rule in enumerate(rules, start=1):
        table.add_row(
            str(number),
            str(rule.id),
            escape(rule.name),
            rule.trigger,
            ", ".join(str(a.get("type")) for a in rule.actions or []),
            "yes" if rule.enabled else "no",
            "yes" if rule.after_handoff else "no",
            str(rule.matches),
        )
    console.print(table)


@rules_app.command("export")
def rules_export(inbox: InboxOption, out: OutOption = None) -> None:
    """Write an inbox's rules as JSON: {"rules": [{name, trigger, conditions, actions, ...}]}."""
    rules = _in_inbox(inbox, lambda s: inbox_rules(s, inbox))
    document = {"inbox_id": inbox, "rules": [_rule_export(r) for r in rules]}
    _write(json.dumps(document, ensure_ascii=False, indent=2) + "\n", out)


def _rules_document(text: str, path: Path) -> list[Any]:
    """The rules of an export ({"rules": [...]}) or of a bare JSON list."""
    try:
        document = json.loads(text)
    except json.JSONDecodeError as exc:
        _fail(f"{path} is not JSON: {exc}")
    if isinstance(document, dict) and isinstance(document.get("rules"), list):
        return list(document["rules"])
    if isinstance(document, list):
        return document
    _fail(f'{path}: expected {{"rules": [...]}} or a list of rules')


@rules_app.command("import")
def rules_import(
    inbox: InboxOption,
    file: Annotated[Path, typer.Argument(help="JSON written by `rules export` (or a list)")],
    replace: Annotated[
        bool, typer.Option("--replace", help="Delete the inbox's rules first")
    ] = False,
) -> None:
    """Add rules to an inbox after its own (or instead of them, with --replace).

    Every rule is checked as the API checks it; if any is invalid, nothing is written.
    """
    items = _rules_document(_read(file), file)

    async def work(session: AsyncSession) -> list[AutomationRule]:
        try:
            return await do_import_rules(
                session, actor=CLI_ACTOR, inbox_id=inbox, items=items, replace=replace
            )
        except ImportInvalid as exc:
            name = f" ({exc.name!r})" if exc.name else ""
            field = f", {exc.field}" if exc.field else ""
            _fail(f"{file}: rule {exc.index + 1}{name}{field}: {exc}")

    rules = _in_inbox(inbox, work)
    console.print(f"imported {len(rules)} rule(s) into inbox {inbox}", highlight=False)


# ------------------------------------------------------------------ FAQ


def faq_rows(text: str) -> list[dict[str, Any]]:
    """FAQ entries of a CSV: question, answer[, alternatives separated by |][, language].
    A first row starting with "question" is a header. Raises ValueError naming the line."""
    items: list[dict[str, Any]] = []
    for number, row in enumerate(csv.reader(io.StringIO(text)), start=1):
        if not any(cell.strip() for cell in row):
            continue
        if number == 1 and row[0].strip().casefold() == "question":
            continue
        if not 2 <= len(row) <= 4:
            raise ValueError(f"line {number}: expected 2 to 4 columns ({', '.join(FAQ_COLUMNS)})")
        item: dict[str, Any] = {"question": row[0], "answer": row[1], "line": number}
        if len(row) > 2:
            item["alternatives"] = [a.strip() for a in row[2].split("|") if a.strip()]
        if len(row) > 3:
            item["language"] = row[3]
        items.append(item)
    return items


def faq_csv(entries: list[FaqEntry]) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(FAQ_COLUMNS)
    for entry in entries:
        alternatives = "|".join(entry.alternatives or [])
        writer.writerow([entry.question, entry.answer, alternatives, entry.language or ""])
    return buffer.getvalue()


@faq_app.command("export")
def faq_export(inbox: InboxOption, out: OutOption = None) -> None:
    """Write an inbox's own FAQ entries as CSV (question, answer, alternatives, language)."""
    entries = _in_inbox(inbox, lambda s: inbox_faq(s, inbox))
    _write(faq_csv(entries), out)


@faq_app.command("import")
def faq_import(
    inbox: InboxOption,
    file: Annotated[
        Path, typer.Argument(help="CSV: question,answer[,alternatives a|b|c][,language]")
    ],
    replace: Annotated[
        bool,
        typer.Option(
            "--replace",
            help="Make the inbox's own entries those of the file: update the entries with the"
            " same question, delete the ones not in the file",
        ),
    ] = False,
) -> None:
    """Add FAQ entries to an inbox from a CSV (or, with --replace, make its own entries those
    of the CSV); if any row is invalid, nothing is written."""
    try:
        rows = faq_rows(_read(file))
    except (ValueError, csv.Error) as exc:
        _fail(f"{file}: {exc}")
    lines = [row.pop("line") for row in rows]

    async def work(session: AsyncSession) -> list[FaqEntry] | FaqReplaced:
        try:
            if replace:
                return await do_replace_faq(session, actor=CLI_ACTOR, inbox_id=inbox, items=rows)
            return await do_import_faq(session, actor=CLI_ACTOR, inbox_id=inbox, items=rows)
        except ImportInvalid as exc:
            field = f", {exc.field}" if exc.field else ""
            _fail(f"{file}: line {lines[exc.index]}{field}: {exc}")

    result = _in_inbox(inbox, work)
    if isinstance(result, FaqReplaced):
        console.print(
            f"replaced the FAQ entries of inbox {inbox}: {result.created} created,"
            f" {result.updated} updated, {result.deleted} deleted"
            f" ({result.unchanged} unchanged)",
            highlight=False,
        )
    else:
        console.print(f"imported {len(result)} FAQ entries into inbox {inbox}", highlight=False)
