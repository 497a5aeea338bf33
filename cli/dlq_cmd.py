"""``usagemeter dlq list|count|replay``: what the worker refused, why, and re-delivery after a fix.

Reading never disturbs the DLQ (assigned partitions, no consumer group, stops at the end it finds);
replay is one Kafka transaction per chunk with a ledger of what it re-delivered, so running it twice
re-delivers nothing twice (``consumers/dlq/replay.py`` says why this design).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from enum import StrEnum
from typing import Annotated, Any, get_args

import typer
from confluent_kafka import KafkaException
from rich.console import Console
from rich.table import Table

from usagemeter.cli.formats import FormatChoice
from usagemeter.cli.times import UTC_HELP, utc_time
from usagemeter.consumers.dlq.reader import DeadLetter, OffsetRange, Selection, count_by, read_dead_letters
from usagemeter.consumers.dlq.replay import ReplayReport, read_ledger, replay
from usagemeter.consumers.settings import KafkaSettings
from usagemeter.schemas import RejectReason
from usagemeter.schemas.errors import DeadLetterReadError

app = typer.Typer(help="Dead letters: list and count them by reason, replay them after a fix.", no_args_is_help=True)

_REASONS = get_args(RejectReason)
_SHOWN_REPLAYS = 50


class CountBy(StrEnum):
    reason = "reason"
    topic = "topic"


def _reasons(values: list[str] | None) -> list[str] | None:
    unknown = sorted(set(values or []) - set(_REASONS))
    if unknown:
        raise typer.BadParameter(f"unknown reason {', '.join(unknown)}; one of: {', '.join(_REASONS)}")
    return values


def _offsets(values: list[str] | None) -> list[str] | None:
    for value in values or []:
        for part in value.split(","):
            try:
                OffsetRange.parse(part)
            except ValueError as exc:
                raise typer.BadParameter(str(exc)) from exc
    return values


Bootstrap = Annotated[
    str | None, typer.Option(help="Kafka bootstrap servers (env USAGEMETER_KAFKA_BOOTSTRAP_SERVERS).")
]
DlqTopic = Annotated[str | None, typer.Option(help="The dead-letter topic (env USAGEMETER_KAFKA_DLQ_TOPIC).")]
Reasons = Annotated[
    list[str] | None,
    typer.Option("--reason", callback=_reasons, help="Only this reason code (repeatable), e.g. unknown_schema."),
]
Since = Annotated[
    datetime | None,
    typer.Option(parser=utc_time, help=f"Only dead letters from this time on: {UTC_HELP}."),
]
Offsets = Annotated[
    list[str] | None,
    typer.Option(
        "--offsets",
        callback=_offsets,
        help="Only these DLQ positions: PARTITION:OFFSET or PARTITION:FIRST-LAST (bare offsets on a "
        "one-partition DLQ); repeatable or comma-separated.",
    ),
]
Format = Annotated[FormatChoice, typer.Option("--format", help="table, or JSON for scripts.")]


def _kafka(bootstrap_servers: str | None, dlq_topic: str | None, topic: str | None = None) -> KafkaSettings:
    overrides = {"bootstrap_servers": bootstrap_servers, "dlq_topic": dlq_topic, "topic": topic}
    return KafkaSettings.model_validate({k: v for k, v in overrides.items() if v is not None})


def _selection(
    reasons: list[str] | None, since: datetime | None, offsets: list[str] | None, limit: int | None = None
) -> Selection:
    ranges = tuple(OffsetRange.parse(part) for value in offsets or [] for part in value.split(","))
    return Selection(frozenset(reasons or []), since, ranges, limit)


@contextmanager
def _kafka_errors(kafka: KafkaSettings) -> Iterator[None]:
    """Kafka failures as one line on stderr and exit code 1 (no traceback, no settings: they may hold secrets)."""
    try:
        yield
    except (DeadLetterReadError, KafkaException) as exc:
        Console(stderr=True).print(
            f"[red]error:[/red] {exc} (DLQ {kafka.dlq_topic!r} on {kafka.bootstrap_servers})",
            highlight=False,
            soft_wrap=True,
        )
        raise typer.Exit(1) from exc


@app.command("list")
def list_command(
    *,
    reason: Reasons = None,
    since: Since = None,
    offsets: Offsets = None,
    limit: Annotated[int, typer.Option(min=1, help="At most this many, oldest first.")] = 100,
    output_format: Format = FormatChoice.table,
    bootstrap_servers: Bootstrap = None,
    dlq_topic: DlqTopic = None,
) -> None:
    """Dead letters with their reason, message, origin, key, DLQ position, time, and replay if any."""
    kafka = _kafka(bootstrap_servers, dlq_topic)
    with _kafka_errors(kafka):
        letters = list(read_dead_letters(kafka, _selection(reason, since, offsets, limit)))
        ledger = read_ledger(kafka)
    if output_format is FormatChoice.json:
        typer.echo(json.dumps([_as_json(letter, ledger.get(letter.position)) for letter in letters], indent=2))
        return
    table = Table(title=f"Dead letters in {kafka.dlq_topic} ({len(letters)} shown)", title_justify="left")
    for heading in ("DLQ", "Time (UTC)", "Reason"):
        table.add_column(heading, no_wrap=True)
    for heading in ("Message", "From", "Key", "Replayed to"):
        table.add_column(heading, overflow="fold")
    for letter in letters:
        table.add_row(
            letter.position,
            _time(letter.timestamp),
            letter.reason,
            letter.message[:160],
            letter.origin,
            _key_text(letter.key),
            ledger.get(letter.position, "-") + (f"\n(replay of {letter.replay_of})" if letter.replay_of else ""),
        )
    Console().print(table)


@app.command()
def count(
    *,
    by: Annotated[CountBy, typer.Option("--by", help="Count by reason code, or by original topic.")] = CountBy.reason,
    since: Since = None,
    output_format: Format = FormatChoice.table,
    bootstrap_servers: Bootstrap = None,
    dlq_topic: DlqTopic = None,
) -> None:
    """How many dead letters there are by reason (or original topic), and how many were replayed."""
    kafka = _kafka(bootstrap_servers, dlq_topic)
    key: Callable[[DeadLetter], str] = (lambda x: x.reason) if by is CountBy.reason else (lambda x: x.topic)
    with _kafka_errors(kafka):
        letters = list(read_dead_letters(kafka, _selection(None, since, None)))
        ledger = read_ledger(kafka)
    counts = count_by(letters, key)
    replayed = count_by((x for x in letters if x.position in ledger), key)
    if output_format is FormatChoice.json:
        typer.echo(json.dumps({"by": by.value, "counts": counts, "replayed": replayed, "total": len(letters)}))
        return
    table = Table(title=f"Dead letters in {kafka.dlq_topic} by {by.value}", title_justify="left")
    table.add_column(by.value.capitalize())
    table.add_column("Dead letters", justify="right")
    table.add_column("Replayed", justify="right")
    for name, number in counts.most_common():
        table.add_row(name or "(none)", f"{number:,}", f"{replayed[name]:,}")
    table.add_section()
    table.add_row("total", f"{len(letters):,}", f"{replayed.total():,}")
    Console().print(table)


@app.command("replay")
def replay_command(
    *,
    reason: Reasons = None,
    offsets: Offsets = None,
    since: Since = None,
    all_letters: Annotated[bool, typer.Option("--all", help="Replay every dead letter (no filter).")] = False,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Show what would be replayed; send nothing.")] = False,
    force: Annotated[
        bool, typer.Option("--force", help="Replay again dead letters the ledger says were replayed.")
    ] = False,
    topic: Annotated[
        str | None, typer.Option(help="Where to re-deliver (env USAGEMETER_KAFKA_TOPIC: the worker's topic).")
    ] = None,
    bootstrap_servers: Bootstrap = None,
    dlq_topic: DlqTopic = None,
) -> None:
    """Re-deliver selected dead letters (original key and value) to the main topic after a fix, once each."""
    if not (reason or offsets or since or all_letters):
        raise typer.BadParameter("select what to replay with --reason, --offsets or --since, or say --all")
    kafka = _kafka(bootstrap_servers, dlq_topic, topic)
    with _kafka_errors(kafka):
        letters = list(read_dead_letters(kafka, _selection(reason, since, offsets)))
        report = replay(kafka, letters, dry_run=dry_run, force=force)
    _print_replay(report, kafka)


def _print_replay(report: ReplayReport, kafka: KafkaSettings) -> None:
    console = Console(highlight=False, soft_wrap=True)
    verb = "would replay" if report.dry_run else "replayed"
    for item in report.replayed[:_SHOWN_REPLAYS]:
        console.print(f"{verb} {item.letter.position} ({item.letter.reason}) -> {item.to}")
    if len(report.replayed) > _SHOWN_REPLAYS:
        console.print(f"... and {len(report.replayed) - _SHOWN_REPLAYS:,} more")
    by_reason = count_by((item.letter for item in report.replayed), lambda x: x.reason)
    summary = ", ".join(f"{name} {number:,}" for name, number in by_reason.most_common()) or "nothing"
    console.print(f"{verb} {len(report.replayed):,} dead letters from {kafka.dlq_topic} to {kafka.topic}: {summary}")
    if report.skipped:
        console.print(
            f"skipped {len(report.skipped):,} replayed before (first: {report.skipped[0][0].position} -> "
            f"{report.skipped[0][1]}); --force replays them again"
        )


def _as_json(letter: DeadLetter, replayed_to: str | None) -> dict[str, Any]:
    return {
        "dlq_partition": letter.partition,
        "dlq_offset": letter.offset,
        "timestamp": letter.timestamp.isoformat() if letter.timestamp else None,
        "reason": letter.reason,
        "message": letter.message,
        "topic": letter.topic,
        "partition": letter.original_partition,
        "offset": letter.original_offset,
        "key": _key_text(letter.key) if letter.key is not None else None,
        "value_bytes": None if letter.value is None else len(letter.value),
        "replay_of": letter.replay_of,
        "replayed_to": replayed_to,
    }


def _key_text(key: bytes | None) -> str:
    """The key as text when it is printable UTF-8 (event ids are), else as 0x-prefixed hex."""
    if key is None:
        return "-"
    try:
        text = key.decode()
    except UnicodeDecodeError:
        return "0x" + key.hex()
    return text if text.isprintable() else "0x" + key.hex()


def _time(at: datetime | None) -> str:
    return "-" if at is None else at.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S")
