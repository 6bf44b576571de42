"""The `frictionlog` command: an edge, like `serve`, so it may pick platforms and providers."""

import os
import socket
import sys
from contextlib import contextmanager
from enum import StrEnum
from pathlib import Path
from typing import Annotated, NoReturn

import typer
from pydantic import ValidationError
from rich.console import Console
from rich.markdown import Markdown
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from bot.settings import Settings

app = typer.Typer(
    help="frictionlog: the front line's voice, themed, owned and in front of leadership every week.",
    no_args_is_help=True,
    add_completion=False,
)
db_app = typer.Typer(help="Database maintenance.", no_args_is_help=True)
app.add_typer(db_app, name="db")
console = Console()
errors = Console(stderr=True)


class ExportFormat(StrEnum):
    csv = "csv"
    json = "json"
    xlsx = "xlsx"


class DigestFormat(StrEnum):
    text = "text"
    markdown = "markdown"
    html = "html"


def load_settings(**overrides) -> Settings:
    try:
        return Settings(**overrides)
    except ValidationError as error:
        problems = "; ".join(_problem(e) for e in error.errors())
        errors.print(f"[red]Configuration problem:[/red] {escape(problems)}")
        raise typer.Exit(2) from None


def _problem(error) -> str:
    """One setting's problem, named by its environment variable: which of forty is wrong."""
    message = str(error["msg"]).removeprefix("Value error, ")
    name = str(error["loc"][0]) if error["loc"] else ""
    field = Settings.model_fields.get(name)
    variable = (field.alias if field and field.alias else name).upper()
    if not variable or message.startswith(variable):  # a whole-settings check, or named already
        return message
    return f"{variable}: {message}"  # not the value: it may be a secret


def shown_url(url: str) -> str:
    """A database URL fit to print: the password masked."""
    from sqlalchemy.engine import make_url

    try:
        return make_url(url).render_as_string(hide_password=True)
    except Exception:
        return "the configured DATABASE_URL"


def display_names(settings: Settings, service) -> dict[tuple[str, str], str]:
    """Owners' names from their platforms (Slack's users.info); ids where a platform is not set up."""
    import asyncio

    from adapters.wiring import make_router
    from bot.publish import owner_names

    return asyncio.run(owner_names(service, make_router(settings, service)))


QUIET = {"on": False}  # --quiet, before the command


@app.callback()
def options(
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="Do not say which database is used.")] = False,
) -> None:
    QUIET["on"] = quiet


def service_from(settings: Settings, *, must_exist: bool = False, **kwargs):
    """The service on the configured database, saying which (password masked). `must_exist`: a
    command that only reads refuses a database that is not there rather than creating it."""
    from adapters.wiring import build_service
    from storage.db import database_exists

    shown = escape(shown_url(settings.database_url))
    if not QUIET["on"]:
        errors.print(f"Database: {shown}", soft_wrap=True)  # a path or URL is never broken
    try:
        if must_exist and not database_exists(settings.database_url):
            errors.print(
                f"[red]There is no frictionlog database at[/red] {shown}. Set DATABASE_URL to yours, or "
                "start one with `frictionlog import FILE` or `frictionlog serve`.",
                soft_wrap=True,
            )
            raise typer.Exit(1)
        return build_service(settings, **kwargs)
    except typer.Exit:
        raise
    except Exception as error:  # an unreachable database, a bad URL: one sentence, not a trace
        errors.print(f"[red]Cannot open the database[/red] {shown}: {escape(str(error))}", soft_wrap=True)
        raise typer.Exit(1) from None


@contextmanager
def writing(path: Path):
    """Writing a file the admin named: a folder that is not there, or a refused write, is one
    sentence and exit 1, not a trace."""

    def cannot(reason: str) -> NoReturn:
        errors.print(f"[red]Cannot write[/red] {escape(str(path))}: {escape(reason)}", soft_wrap=True)
        raise typer.Exit(1)

    if not path.parent.is_dir():  # said before anything is written (a workbook half saved)
        cannot(f"there is no folder {path.parent}")
    try:
        yield
    except OSError as error:
        cannot(error.strerror or str(error))


@contextmanager
def progress_bar():
    """A rich progress bar fed by the core's (stage, done, total) callbacks."""
    with Progress(
        TextColumn("{task.description:>15}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=errors,
        transient=False,
    ) as bar:
        tasks: dict[str, int] = {}

        def report(stage: str, done: int, total: int) -> None:
            if stage not in tasks:
                tasks[stage] = bar.add_task(stage, total=total)
            bar.update(tasks[stage], completed=done, total=total)

        yield report


@app.command()
def demo(
    database: Annotated[Path, typer.Option(help="SQLite file for the demo; replaced on every run.")] = Path(
        "frictionlog-demo.db"
    ),
    output: Annotated[
        Path, typer.Option(help="Folder for digest.md (and its chart, digest-chart.png) and digest.html.")
    ] = Path("."),
) -> None:
    """Run frictionlog on its embedded defaults with ~300 sample messages and show the weekly digest."""
    from adapters.console import ConsolePlatform
    from bot.clock import FrozenClock, system_clock
    from bot.deadlines import when
    from bot.demo import LEAD, run_demo
    from bot.router import Router
    from digests.render import render_html, render_markdown, write_markdown

    for suffix in ("", "-wal", "-shm"):
        Path(f"{database}{suffix}").unlink(missing_ok=True)
    settings = load_settings(database_url=f"sqlite:///{database}", team_leads=LEAD)
    clock = FrozenClock(system_clock())
    service = service_from(settings, clock=clock)
    errors.print(f"Sample data into a fresh database ({database}), embedder {service.theming.embedder.name} …")
    chat = ConsolePlatform()  # what the demo's people were sent, through the outbox
    with progress_bar() as report:
        result = run_demo(service, clock, report, Router([chat]))
    markdown = render_markdown(result.digest)
    console.print(Markdown(markdown))
    console.print("\n[bold]Deadlines that chase themselves[/bold] (sent through the outbox to the console):")
    for moment, kind, subject in result.chased:
        console.print(escape(f"  {when(moment, service.settings.zone)} · {kind}: {subject}"))
    for received in chat.received:
        if received.kind == "notify" and received.text.startswith(("Reminder:", "Escalation:")):
            console.print(escape(f"  [to {received.to}] {received.text.splitlines()[0]}"), soft_wrap=True)
    output.mkdir(parents=True, exist_ok=True)
    written = write_markdown(result.digest, output / "digest.md")  # and its chart beside it
    (output / "digest.html").write_text(render_html(result.digest), encoding="utf-8")
    written.append(output / "digest.html")
    summary = result.summary
    errors.print(
        f"\n{summary.imported} messages → {summary.recluster.themes if summary.recluster else 0} themes. "
        f"Wrote {', '.join(str(path) for path in written)}. "
        f"Try: frictionlog chat --user dana   (with DATABASE_URL=sqlite:///{database})"
    )


@app.command("import")
def import_(
    files: Annotated[
        list[Path],
        typer.Argument(exists=True, dir_okay=False, help="CSV (any common encoding and delimiter) or .xlsx files."),
    ],
    sheet: Annotated[str | None, typer.Option(help="Only this sheet of each workbook (default: every sheet).")] = None,
    text_column: Annotated[str | None, typer.Option(help="The column with the complaint's text.")] = None,
    date_column: Annotated[str | None, typer.Option(help="The column with its date.")] = None,
    author_column: Annotated[str | None, typer.Option(help="The column with who reported it.")] = None,
    id_column: Annotated[str | None, typer.Option(help="The column with its ticket or reference id.")] = None,
    kind_column: Annotated[str | None, typer.Option(help="The column with policy / customer / other.")] = None,
    tags_column: Annotated[str | None, typer.Option(help="The column with areas or tags.")] = None,
    day_first: Annotated[
        bool, typer.Option("--day-first", help="03/11/2026 is 3 November (default: 11 March).")
    ] = False,
    date: Annotated[
        str | None, typer.Option(help="The date of rows without one (YYYY-MM-DD); default: the file's own date.")
    ] = None,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Show what would be imported; store nothing.")] = False,
    no_cluster: Annotated[
        bool, typer.Option("--no-cluster", help="Place rows in themes but skip the re-clustering.")
    ] = False,
) -> None:
    """Bulk-import past complaints from spreadsheets: the text column is required; a date, author,
    id, kind and tags are used when there (headers such as Complaint, Comment, Feedback,
    Description or Date are recognised; map others with --text-column and friends)."""
    from adapters.spreadsheets import read_tables
    from bot.transfer import (
        ImportOptions,
        ImportSummary,
        UnreadableFile,
        import_rows,
        map_columns,
        parse_time,
        theme_imported,
    )
    from digests.digest import counted

    settings = load_settings()
    try:
        given_date = parse_time(date, day_first=day_first, zone=settings.zone) if date else None
    except ValueError:
        errors.print(f"[red]--date {escape(date or '')} is not a date[/red]; write it like 2026-11-03")
        raise typer.Exit(2) from None
    columns = {
        "text": text_column,
        "created_at": date_column,
        "author": author_column,
        "external_id": id_column,
        "kind": kind_column,
        "tags": tags_column,
    }
    options = ImportOptions(columns=columns, day_first=day_first, date=given_date, dry_run=dry_run)
    service = service_from(settings)
    summary = ImportSummary()
    failed = []
    verb = "would import" if dry_run else "imported"

    def cannot(name: str, error: UnreadableFile) -> None:
        failed.append(name)
        errors.print(f"[red]Cannot import {escape(name)}:[/red] {escape(str(error))}", soft_wrap=True)

    def counts() -> tuple[int, int, int]:
        return summary.imported, summary.already_there, len(summary.bad_rows)

    with progress_bar() as report:
        for file in files:
            try:
                tables = read_tables(file, sheet)
            except UnreadableFile as error:
                cannot(str(file), error)
                continue
            for table in tables:  # a sheet without a text column (a totals sheet) spares the others
                note = f" ({table.encoding})" if table.encoding and table.encoding != "UTF-8" else ""
                errors.print(f"{'Checking' if dry_run else 'Reading'} {escape(table.name)}{note} …")
                try:
                    mapping = map_columns(table.columns, options.columns)
                except UnreadableFile as error:
                    cannot(table.name, error)
                    continue
                errors.print("  columns: " + escape(", ".join(f"{f} ← {c}" for f, c in mapping.items())))
                before = counts()
                import_rows(
                    service,
                    table.columns,
                    table.rows,
                    progress=report,
                    options=options,
                    file_date=table.modified,
                    summary=summary,
                    theme=False,
                )
                imported, already, bad = (after - was for after, was in zip(counts(), before, strict=True))
                errors.print(f"  {verb} {imported}, already there {already}, bad {bad}")
        if not dry_run:
            theme_imported(service, summary, progress=report, recluster=not no_cluster)
    for where, reason in summary.bad_rows[:50]:
        errors.print(f"[yellow]{escape(str(where))}:[/yellow] {escape(reason)}")
    if len(summary.bad_rows) > 50:
        errors.print(f"… and {len(summary.bad_rows) - 50} more bad rows")
    for where, note in summary.warnings[:20]:
        errors.print(f"[yellow]{escape(str(where))}:[/yellow] {escape(note)}")
    console.print(
        f"Read {summary.read} rows: {verb} {summary.imported}, already there {summary.already_there}, "
        f"bad {len(summary.bad_rows)}."
    )
    if failed:
        console.print("Not imported: " + escape(", ".join(failed)) + ".", soft_wrap=True)
    if summary.undated:
        dated_by = f"--date {date}" if date else "the date of their file"
        console.print(f"{counted(summary.undated, 'row', 'rows')} had no date: dated by {dated_by}.")
    if summary.unknown_columns:
        console.print("Ignored columns: " + escape(", ".join(summary.unknown_columns)))
    if summary.imported and not summary.had_external_ids:
        console.print("No id column: importing these files again would add their rows again.")
    if dry_run:
        console.print("Dry run: nothing was stored.")
    if summary.recluster:
        r = summary.recluster
        console.print(f"Themes: {r.themes} ({r.new_themes} new, {r.kept_themes} kept).")
    if failed or (summary.bad_rows and not summary.imported and not summary.already_there):
        raise typer.Exit(1)


@app.command()
def export(
    format: Annotated[ExportFormat, typer.Option("--format", "-f", help="csv, json or xlsx.")] = ExportFormat.csv,
    output: Annotated[
        Path | None, typer.Option("--output", "-o", help="File to write; standard output if absent.")
    ] = None,
    bom: Annotated[bool, typer.Option("--bom", help="CSV with a byte-order mark, so Excel reads it as UTF-8.")] = False,
) -> None:
    """Export every submission with its theme, owner, status and resolution note (never an author
    for anonymous ones). Importing the export back adds nothing."""
    from adapters.spreadsheets import write_xlsx
    from bot.transfer import EXPORT_COLUMNS, export_records, write_export

    service = service_from(load_settings(), must_exist=True)
    if format is ExportFormat.xlsx:
        if output is None:
            errors.print("[red]An .xlsx export needs --output FILE.xlsx[/red]")
            raise typer.Exit(2)
        with writing(output):
            count = write_xlsx(output, list(EXPORT_COLUMNS), export_records(service))
    elif output is None:
        write_export(service, sys.stdout, format.value)
        return
    else:
        with writing(output), open(output, "w", newline="", encoding="utf-8-sig" if bom else "utf-8") as handle:
            count = write_export(service, handle, format.value)
    errors.print(f"Wrote {count} submissions to {output}.")


@app.command()
def cluster(
    all_: Annotated[
        bool, typer.Option("--all", help="Re-theme every submission, not only the FRICTIONLOG_RECLUSTER_DAYS window.")
    ] = False,
    embed_again: Annotated[
        bool,
        typer.Option(
            "--embed-again",
            help="Embed every submission again first. A switch of model is noticed without it: this is for a "
            "model whose files changed under the same name or path.",
        ),
    ] = False,
) -> None:
    """Re-theme recent submissions now, keeping theme keys, owners and a lead's decisions."""
    settings = load_settings()
    service = service_from(settings, must_exist=True)
    with progress_bar() as report:
        if embed_again:
            service.theming.embed_again(report, every=True)
        result = service.theming.recluster(service.clock(), report, everything=all_)
    if result.newer_model:
        errors.print(
            f"[red]Nothing done:[/red] a `frictionlog serve` started after this command switched stored vectors to "
            f"{escape(result.newer_model)}; this command embeds with {escape(service.theming.embedder.name)}. "
            "Run it with the FRICTIONLOG_EMBEDDING_MODEL the servers use."
        )
        raise typer.Exit(1)
    if result.embedded_again:
        console.print(
            f"{result.embedded_again} stored submissions embedded again with {escape(service.theming.embedder.name)} "
            "(another embedder had made them)."
        )
    console.print(
        f"{result.submissions} submissions in {result.themes} themes: {result.kept_themes} kept their key, "
        f"{result.new_themes} new, {result.emptied_themes} emptied."
    )
    if result.held:
        older = "" if all_ or not settings.recluster_days else f", or older than {settings.recluster_days} days"
        console.print(f"{result.held} submissions stayed where they were (pinned by a lead{older}).")


@app.command()
def themes(limit: Annotated[int, typer.Option(help="How many themes to show.")] = 50) -> None:
    """A table of themes with counts, owner and status."""
    from sqlmodel import Session

    from storage import queries

    settings = load_settings()
    service = service_from(settings, must_exist=True)
    names = display_names(settings, service)
    with Session(service.engine) as session:
        rows = queries.live_themes(session)
        table = Table("Theme", "Title", "Submissions", "People", "Owner", "Status", title=f"{len(rows)} themes")
        for theme in rows[:limit]:
            people = queries.reporter_count(session, theme_id=theme.id)
            table.add_row(
                theme.key,
                escape(theme.title),
                str(theme.size),
                str(people),
                escape(
                    names.get((theme.owner_platform or "console", theme.owner), theme.owner) if theme.owner else "—"
                ),
                theme.status.replace("_", " "),
            )
    console.print(table)


@app.command()
def chat(user: Annotated[str, typer.Option(help="Who you are in this chat (a user id).")]) -> None:
    """Chat with frictionlog in the terminal, exactly as in Slack."""
    from adapters.console import run_console

    service = service_from(load_settings())
    # Plain print: what people wrote ("[email]", brackets of any kind) is text, not Rich markup.
    run_console(service, user, read=input, write=print)


@app.command()
def digest(
    format: Annotated[DigestFormat, typer.Option("--format", "-f")] = DigestFormat.text,
    week: Annotated[str | None, typer.Option(help="ISO week, e.g. 2026-W47; the last complete week if absent.")] = None,
    post: Annotated[
        bool,
        typer.Option("--post", help="Post it now to every Slack digest target (once a channel and week)."),
    ] = False,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="With --post: show what each target would get; post nothing.")
    ] = False,
    output: Annotated[
        Path | None,
        typer.Option(
            "--output",
            "-o",
            dir_okay=False,
            help="Write it to this file instead of printing it; Markdown gets its chart as a PNG beside it.",
        ),
    ] = None,
) -> None:
    """Compose the weekly digest and print it, or post it to Slack with --post. The HTML digest
    holds its chart; Markdown printed holds none (write it with --output to get the chart)."""
    from bot.publish import compose_for
    from digests.digest import IsoWeek
    from digests.render import render_html, render_markdown, render_text, write_markdown

    settings = load_settings()
    try:
        chosen = IsoWeek.parse(week) if week else None
    except ValueError as error:
        errors.print(f"[red]{escape(str(error))}[/red]")
        raise typer.Exit(2) from None
    if dry_run and not post:
        errors.print("[red]--dry-run goes with --post:[/red] frictionlog digest --post --dry-run")
        raise typer.Exit(2)
    if post:
        _post_digest(settings, chosen, dry_run)
        return
    service = service_from(settings, must_exist=True)
    value = compose_for(service, chosen, display_names(settings, service))
    render = {"text": render_text, "markdown": render_markdown, "html": render_html}[format.value]
    if output is None:
        sys.stdout.write(render(value))
        return
    with writing(output):
        if format is DigestFormat.markdown:
            written = write_markdown(value, output)
        else:
            output.write_text(render(value), encoding="utf-8")
            written = [output]
    errors.print(f"Wrote {', '.join(str(path) for path in written)}.")


NOWHERE = (
    "set FRICTIONLOG_DIGEST_SLACK_CHANNELS to one or more channel ids (comma-separated) and invite the app "
    "to those channels, or type `/friction digest here` in a Slack channel."
)


def _post_digest(settings: Settings, week, dry_run: bool = False) -> None:
    """Queue the digest for each Slack target (once per channel and week), then send it now. The
    week is the last complete one in each target's time zone unless `week` says which."""
    import asyncio

    from sqlmodel import Session

    from adapters.slack.platform import SlackPlatform
    from adapters.slack.web_api import make_client
    from bot.pipeline import delivery_worker
    from bot.publish import queue_digests
    from bot.router import Router
    from bot.targets import by_hand, configured_targets, targets_now
    from storage.models import OutboxMessage

    if not settings.slack_bot_token and not dry_run:
        errors.print("[red]Cannot post:[/red] SLACK_BOT_TOKEN is not set.")
        raise typer.Exit(2)
    service = service_from(settings, must_exist=dry_run)
    scheduled = targets_now(service, configured_targets(settings))
    slack = [item for item in scheduled if item.target.platform == "slack"]
    if dry_run:
        _show_dry_run(settings, service, scheduled, week)
        return
    if not slack:
        errors.print(f"[red]Nowhere to post:[/red] {NOWHERE}")
        raise typer.Exit(2)
    names = display_names(settings, service)
    queued = queue_digests(service, by_hand(service, slack, week), names)
    router = Router([SlackPlatform(make_client(settings), service.codec)])
    outbox = delivery_worker(service, router, platforms=["slack"], max_attempts=3, backoff=1.0)
    ids = [item.message_id for item in queued if item.message_id is not None]

    def states() -> dict[int, OutboxMessage]:
        with Session(service.engine) as session:
            return {i: session.get(OutboxMessage, i) for i in ids}

    async def send() -> None:  # retries included, for at most a minute
        for _ in range(600):
            await outbox.send_due()
            if all(m is None or m.state != "pending" for m in states().values()):
                return
            await asyncio.sleep(0.1)

    asyncio.run(send())
    messages = states()
    failed = False
    for item in queued:
        message = messages.get(item.message_id)
        word = {"sent": "posted", "pending": "queued; `frictionlog serve` retries it"}.get(
            message.state if message else "", message.state if message else "queued"
        )
        if item.result != "queued":
            word = f"already queued this week ({word})"
        detail = f": {message.last_error}" if message and message.last_error else ""
        if message and message.state == "failed":
            failed = True
            detail += f" (retry with: frictionlog outbox --retry {message.id})"
        console.print(escape(f"{item.target.channel}: {word}{detail}"))
    if failed:
        raise typer.Exit(1)


def _show_dry_run(settings: Settings, service, scheduled, week) -> None:
    """What `digest --post` would do, target by target, and each digest once as it would be
    posted (its text rendering); nothing is claimed, queued or sent."""
    from bot.publish import dry_run
    from bot.targets import by_hand
    from digests.render import render_text

    slack = [item for item in scheduled if item.target.platform == "slack"]
    console.print("Dry run of `frictionlog digest --post`: nothing will be posted or queued.", soft_wrap=True)
    if not scheduled:
        console.print(f"Nowhere to post: {NOWHERE}", soft_wrap=True)
    shown = dry_run(service, by_hand(service, slack, week), display_names(settings, service) if slack else None)
    bodies: dict[tuple[str, str], list] = {}
    for item in shown:
        where = f"{item.due.target}: {item.due.week} ({item.due.zone})"
        if item.digest is None:
            said = "already posted" if item.earlier == "sent" else f"already queued ({item.earlier}), not posted again"
            console.print(escape(f"{where}: {said}"), soft_wrap=True)
            continue
        console.print(escape(f"{where}: would be posted"), soft_wrap=True)
        bodies.setdefault((str(item.due.week), str(item.due.zone)), []).append(item)
    for item in scheduled:
        if item.target.platform != "slack":
            console.print(
                escape(f"{item.target}: not posted from the command line; `frictionlog serve` posts it on schedule"),
                soft_wrap=True,
            )
    if slack and not settings.slack_bot_token:
        console.print("SLACK_BOT_TOKEN is not set: `frictionlog digest --post` would refuse to post.", soft_wrap=True)
    for (period, zone), items in bodies.items():
        heading = f"\n── {period} ({zone}), as {', '.join(str(i.due.target) for i in items)} would get it ──"
        console.print(escape(heading), soft_wrap=True)
        sys.stdout.write(render_text(items[0].digest))
    console.print("\nDry run: nothing was posted or queued.")


@app.command()
def targets() -> None:
    """Where the weekly digest goes: every target, where it comes from, its schedule, its next
    run (local time in the target's zone) and the last week queued for it."""
    from bot.cron import when
    from bot.targets import configured_targets, targets_overview

    settings = load_settings()
    service = service_from(settings, must_exist=True)
    lines = targets_overview(service, configured_targets(settings))
    if not lines:
        console.print(
            "No digest targets yet: set FRICTIONLOG_DIGEST_SLACK_CHANNELS or type `/friction digest here` in a "
            "channel.",
            soft_wrap=True,
        )
        return
    table = Table(
        "Target", "From", "Schedule", "Time zone", "Next run", "Last week posted", title=f"{len(lines)} digest targets"
    )
    for line in lines:
        item = line.scheduled
        last = line.last_week or "—"
        if line.last_week and line.last_state != "sent":
            last += f" ({line.last_state or 'not queued'})"
        table.add_row(
            escape(str(item.target)),
            escape(item.source),
            escape(item.schedule.cron),
            escape(item.schedule.timezone),
            when(line.next_run) if line.next_run else "never",
            last,
        )
    # Not a terminal (a pipe, a file, a test): whole cells on one line each, not 80 columns' wrapping.
    (console if console.is_terminal else Console(width=200)).print(table)
    platforms = {line.scheduled.target.platform for line in lines}
    if "slack" in platforms and not settings.slack_enabled:
        console.print(
            "Slack is not configured here (SLACK_BOT_TOKEN): `frictionlog serve` posts to no Slack target.",
            soft_wrap=True,
        )
    if "teams" in platforms and not settings.teams_enabled:
        console.print(
            "Teams is not configured here (MICROSOFT_APP_ID): `frictionlog serve` posts to no Teams target.",
            soft_wrap=True,
        )


@app.command()
def outbox(
    retry: Annotated[
        list[int] | None, typer.Option("--retry", help="Put a failed or undeliverable message back in line (by id).")
    ] = None,
    retry_failed: Annotated[bool, typer.Option("--retry-failed", help="Retry every failed message.")] = False,
    show_sent: Annotated[bool, typer.Option("--sent", help="List sent messages too.")] = False,
) -> None:
    """Messages waiting to go out, and those that failed (with the reason); retry failed ones."""
    from sqlmodel import Session

    from bot import outbox as box
    from storage import queries
    from storage.models import OUTBOX_STATES, OutboxMessage

    service = service_from(load_settings(), must_exist=True)
    chosen = list(retry or [])
    if retry_failed:
        chosen += [m.id for m in box.list_messages(service.engine, ("failed", "undeliverable"), limit=10_000)]
    if chosen:
        again = [message_id for message_id in chosen if box.retry(service.engine, message_id)]
        console.print(f"Back in line: {len(again)} of {len(chosen)}; `frictionlog serve` sends them.")
        left = [message_id for message_id in retry or [] if message_id not in again]
        with Session(service.engine) as session:  # each id asked for by hand and not retried: why
            for message_id in left:
                message = session.get(OutboxMessage, message_id)
                why = f"{message.state}, not failed: left as it is" if message else "no such message"
                console.print(f"#{message_id}: {why}")
        if left:
            raise typer.Exit(1)
        return
    states = ("pending", "held", "failed", "undeliverable") + (("sent", "batched") if show_sent else ())
    rows = box.list_messages(service.engine, states)
    with Session(service.engine) as session:
        counts = queries.outbox_counts(session)
    console.print(", ".join(f"{counts.get(state, 0)} {state}" for state in OUTBOX_STATES) + ".")
    zone = service.settings.zone
    for row in rows:  # one line each: easy to read, easy to grep
        attempts = f"{row.attempts} attempt{'s' if row.attempts != 1 else ''}"
        reason = f": {row.last_error}" if row.last_error else ""
        when = f"{row.created_at:%Y-%m-%d %H:%M}"
        state = row.state
        if state == "held":  # over the person's daily DM budget: goes out later, with the others held
            release = row.next_attempt_at.astimezone(zone)
            state = f"held until {release:%Y-%m-%d %H:%M} {release.tzname()} (daily DM budget)"
        line = f"#{row.id} {when} {row.platform} {row.label} — {state}, {attempts}{reason}"
        console.print(escape(line), soft_wrap=True)


@app.command()
def serve(
    host: Annotated[str, typer.Option(help="Interface to listen on.")] = "0.0.0.0",
    port: Annotated[int, typer.Option(help="Port to listen on.")] = 3000,
) -> None:
    """Serve everything: Slack at /slack/events (or Socket Mode), /healthz, and the scheduled digest."""
    import logging

    from aiohttp import web

    from adapters.web import make_web_app

    settings = load_settings()
    if settings.slack_enabled and not settings.slack_socket_mode and not settings.slack_signing_secret:
        errors.print(
            "[red]Configuration problem:[/red] SLACK_BOT_TOKEN is set but SLACK_SIGNING_SECRET is not; "
            "every Slack request would be refused. Copy it from the app's Basic Information page "
            "(or set SLACK_APP_TOKEN for Socket Mode)."
        )
        raise typer.Exit(2)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    service = service_from(settings)
    errors.print(f"Database: {escape(shown_url(settings.database_url))}")
    if settings.slack_enabled:
        mode = "Socket Mode" if settings.slack_socket_mode else f"HTTP at http://{host}:{port}/slack/events"
        errors.print(f"Slack: {mode}")
    else:
        errors.print("Slack: not configured (set SLACK_BOT_TOKEN)")
    if settings.microsoft_app_id:
        errors.print(f"Teams: HTTP at http://{host}:{port}/api/messages (app {escape(settings.microsoft_app_id)})")
    elif settings.teams_without_app_id:
        errors.print("Teams: without an app id (authentication off; loopback and FRICTIONLOG_TEAMS_SERVICE_URLS only)")
    else:
        errors.print("Teams: not configured (set MICROSOFT_APP_ID)")
    embedder = service.theming.embedder
    errors.print(f"Loading the embedding model ({escape(embedder.name)}) …")
    try:  # here, not first inside the server's start-up, where a missing model is a page of trace
        embedder.embed(["warming up"])
    except Exception as error:
        reason = f"{type(error).__name__}: {error}"
        errors.print(
            f"[red]Cannot load the embedding model[/red] {escape(embedder.name)}: {escape(reason)}", soft_wrap=True
        )
        raise typer.Exit(1) from None
    try:  # bound before anything starts: a port taken leaves no worker or schedule half started
        listening = socket.create_server((host, port), family=socket.AF_INET6 if ":" in host else socket.AF_INET)
    except OSError as error:
        errors.print(f"[red]Cannot listen on {host}:{port}:[/red] {os.strerror(error.errno or 0).lower()}")
        raise typer.Exit(1) from None
    web.run_app(make_web_app(service, schedule=True), sock=listening, print=errors.print)


@app.command("teams-package")
def teams_package(
    endpoint: Annotated[
        str, typer.Option(help="The bot's public messaging endpoint, e.g. https://bot.example.com/api/messages.")
    ],
    output: Annotated[Path, typer.Option("--output", "-o", help="The zip to write.")] = Path("frictionlog-teams.zip"),
    app_id: Annotated[str | None, typer.Option(help="The bot's app id; MICROSOFT_APP_ID by default.")] = None,
    website: Annotated[str | None, typer.Option(help="Your organisation's site, for the app's About page.")] = None,
    source: Annotated[Path | None, typer.Option(help="A folder with manifest.json and the icons.")] = None,
) -> None:
    """Write the Teams app package (manifest and icons) to upload in Teams."""
    from adapters.teams.package import SOURCE, PackageError, write_package

    settings = load_settings()
    try:
        manifest = write_package(
            output,
            app_id=app_id or settings.microsoft_app_id,
            endpoint=endpoint,
            website=website,
            source=source or SOURCE,
        )
    except PackageError as error:
        errors.print(f"[red]Cannot write the package:[/red] {escape(str(error))}")
        raise typer.Exit(2) from None
    console.print(
        f"Wrote {escape(str(output))} (manifest {manifest['manifestVersion']}, app {escape(manifest['id'])}). "
        "Upload it in Teams: Apps → Manage your apps → Upload an app."
    )


@db_app.command("upgrade")
def db_upgrade() -> None:
    """Create or migrate the schema to the newest version."""
    from storage.db import make_engine, upgrade

    settings = load_settings()
    try:
        upgrade(make_engine(settings.database_url))
    except Exception as error:  # an unreachable database, a bad URL: one sentence, not a trace
        errors.print(f"[red]Cannot upgrade[/red] {escape(shown_url(settings.database_url))}: {escape(str(error))}")
        raise typer.Exit(1) from None
    console.print(f"Schema is up to date ({escape(shown_url(settings.database_url))}).")


if __name__ == "__main__":  # python -m adapters.cli, where the frictionlog script is not installed
    app()
