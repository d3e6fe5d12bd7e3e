"""``sgctl``: the admin CLI. It reads and changes services through the library alone.

Exit codes: 0 ok; 1 not found or refused; 2 usage (bad arguments or names);
69 a backend unreachable (sysexits EX_UNAVAILABLE); 78 configuration error, which
includes a SQLite database that does not exist: sgctl never creates it (every
command needs records an agent wrote), so a typo in the path is said, not hidden
behind an empty table.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import replace
from typing import Any, TextIO
from urllib.parse import urlsplit, urlunsplit

import anyio

from sg.config import add_config_argument, load_settings
from sg.errors import BackendUnavailable, ConfigError, InvalidName, NotFound, Refused
from sg.group import ServiceGroup
from sg.logsetup import add_logging_arguments, configure_logging
from sg.model import (
    Actor,
    ServiceAction,
    ServiceKey,
    ServiceStatus,
    escape_text,
    validate_name,
    validate_text,
)
from sg.timings import parse_duration

__all__ = ["main"]

EXIT_OK = 0
EXIT_NOT_FOUND = 1
EXIT_USAGE = 2
EXIT_UNAVAILABLE = 69
EXIT_CONFIG = 78

TABLE_COLUMNS = ("Binary", "Host", "Topic", "Status", "State", "Reason", "Updated At", "Age", "Version")


def _checked(field: str, validate: Callable[[str, object], str]) -> Callable[[str], str]:
    """An argparse type: the model's validator for ``field``; its error is a usage error."""

    def check(value: str) -> str:
        try:
            return validate(field, value)
        except InvalidName as exc:
            raise argparse.ArgumentTypeError(str(exc)) from exc

    check.__name__ = field
    return check


def _name(field: str) -> Callable[[str], str]:
    return _checked(field, validate_name)


def _text(field: str) -> Callable[[str], str]:
    return _checked(field, validate_text)


def _duration(value: str) -> float:
    try:
        return parse_duration(value, "--down-for")
    except ConfigError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from exc


def _actor(args: argparse.Namespace) -> Actor:
    """Who runs this sgctl (the unix user), for the audit trail."""
    import getpass  # only the commands that change something name their actor

    try:
        user = getpass.getuser()
    except (OSError, KeyError):
        user = f"uid {os.getuid()}"
    return Actor(user, "sgctl", getattr(args, "reason", None))


#: The top-level options that take a value (``build_parser``): :func:`chosen_verb` skips them.
_VALUE_OPTIONS = ("--config", "--store", "--driver", "--log-level")
_FLAG_OPTIONS = ("--log-json",)


def chosen_verb(argv: Sequence[str]) -> str | None:
    """The verb of ``[OPTIONS] service VERB ...`` when it is plain to see, else None.

    ``main`` then builds the parser of that verb alone (argparse spends ~5 ms building
    all ten on a cold start, a tenth of sgctl's own time). Anything unusual (help, an
    abbreviated or unknown option, a verb that does not exist) gives None: the whole
    parser then parses, and says what is wrong exactly as it always has.
    """
    args = iter(argv)
    for arg in args:
        if arg in _VALUE_OPTIONS:
            next(args, None)
        elif arg.partition("=")[0] in _VALUE_OPTIONS or arg in _FLAG_OPTIONS:
            continue
        elif arg == "service":
            verb = next(args, None)
            return verb if verb in HANDLERS else None
        else:
            return None
    return None


def build_parser(only: str | None = None) -> argparse.ArgumentParser:
    """The argument parser (also used to render help); with ``only``, the parser of that
    verb alone under the same top-level options (see :func:`chosen_verb`)."""
    parser = argparse.ArgumentParser(prog="sgctl", description="Inspect and manage servicegroup services.")
    add_config_argument(parser)
    parser.add_argument("--store", help="store URL (overrides the config and $SG_STORE)")
    parser.add_argument("--driver", help="driver URL (overrides the config and $SG_DRIVER)")
    add_logging_arguments(parser, default_level="warning")
    top = parser.add_subparsers(dest="noun", required=True, metavar="service")
    service = top.add_parser("service", help="services and their liveness")
    verbs = service.add_subparsers(dest="verb", required=True)

    def with_key(p: argparse.ArgumentParser) -> argparse.ArgumentParser:
        p.add_argument("host", type=_name("host"))
        p.add_argument("binary", type=_name("binary"))
        return p

    why = "why (kept in the audit trail: sgctl service history)"

    def list_(p: argparse.ArgumentParser) -> None:
        p.add_argument("--topic", type=_name("topic"))
        p.add_argument("--binary", type=_name("binary"))
        p.add_argument("--host", type=_name("host"))
        p.add_argument("--json", action="store_true", help="one JSON array, for scripts")

    def show(p: argparse.ArgumentParser) -> None:
        with_key(p).add_argument("--json", action="store_true")

    def enable(p: argparse.ArgumentParser) -> None:
        with_key(p).add_argument("--reason", type=_text("reason"), help=why)

    def disable(p: argparse.ArgumentParser) -> None:
        with_key(p).add_argument(
            "--reason",
            type=_text("disabled_reason"),
            help="why (shown in listings and kept in the audit trail)",
        )

    def force_down(p: argparse.ArgumentParser) -> None:
        with_key(p).add_argument("--off", action="store_true", help="clear forced_down instead")
        p.add_argument("--reason", type=_text("reason"), help=why)

    def delete(p: argparse.ArgumentParser) -> None:
        with_key(p).add_argument("--force", action="store_true", help="delete even if it is up or unknown")
        p.add_argument("--reason", type=_text("reason"), help=why)

    def history(p: argparse.ArgumentParser) -> None:
        with_key(p).add_argument("--json", action="store_true")

    def prune(p: argparse.ArgumentParser) -> None:
        p.add_argument("--down-for", required=True, type=_duration, help="for example 7d, 12h, 90m")
        p.add_argument("--topic", type=_name("topic"))
        p.add_argument(
            "--yes", action="store_true", help="delete them (each through leave() and the audit trail)"
        )
        p.add_argument("--reason", type=_text("reason"), help=why)
        p.add_argument("--json", action="store_true")

    def min_version(p: argparse.ArgumentParser) -> None:
        p.add_argument("binary", type=_name("binary"))
        p.add_argument("--only-up", action="store_true", help="only over services that are up")
        p.add_argument("--json", action="store_true")

    def watch(p: argparse.ArgumentParser) -> None:
        p.add_argument("--topic", type=_name("topic"))
        p.add_argument("--json", action="store_true", help="one JSON object per line")

    table: tuple[tuple[str, str, Callable[[argparse.ArgumentParser], None]], ...] = (
        ("list", "list services with their state", list_),
        ("show", "one service in full", show),
        ("enable", "enable a service", enable),
        ("disable", "disable a service", disable),
        ("force-down", "force a service down (fencing)", force_down),
        ("delete", "delete a service record and its liveness member", delete),
        ("history", "who changed a service, when, what and why", history),
        ("prune", "list (with --yes: delete) services down for longer than --down-for", prune),
        ("min-version", "lowest version of a binary", min_version),
        ("watch", "print each up/down transition as it happens", watch),
    )
    for verb, summary, arguments in table:
        if only is None or verb == only:
            arguments(verbs.add_parser(verb, help=summary))
    return parser


def _age(age: float | None) -> str:
    if age is None:
        return "-"
    return f"{age:.1f}s" if abs(age) < 120 else f"{age / 60:.1f}m"


def _row(status: ServiceStatus) -> tuple[str, ...]:
    s, v = status.service, status.verdict
    updated = "-" if s.updated_at is None else s.updated_at.strftime("%Y-%m-%d %H:%M:%S")
    return (
        s.binary,
        s.host,
        s.topic,
        "disabled" if s.disabled else "enabled",
        v.state,
        v.reason,
        updated,
        _age(v.age),
        str(s.version),
    )


def print_table(statuses: Sequence[ServiceStatus], out: TextIO) -> None:
    """An aligned text table of services; with a ``Driver`` column during a driver roll
    (when the records name more than one driver)."""
    header: tuple[str, ...] = TABLE_COLUMNS
    rows = [_row(s) for s in statuses]
    drivers = [s.service.driver or "-" for s in statuses]
    if len(set(drivers)) > 1:
        header = (*header, "Driver")
        rows = [(*row, driver) for row, driver in zip(rows, drivers, strict=True)]
    rows = [header, *rows]
    widths = [max(len(r[i]) for r in rows) for i in range(len(header))]
    for r in rows:
        out.write("  ".join(cell.ljust(w) for cell, w in zip(r, widths, strict=True)).rstrip() + "\n")


def print_show(status: ServiceStatus, out: TextIO) -> None:
    """Every field of one service, one per line."""
    for key, value in status.as_dict().items():
        out.write(f"{key:16} {'-' if value is None else escape_text(str(value))}\n")


def reader_url(url: str) -> str:
    """``url`` with ``create=false`` when it is a ``sqlite:`` URL that does not set it:
    SQLite creates a missing file (and sg its directory) on open, which a reader must not."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return url  # the store says what is wrong with it
    if parts.scheme != "sqlite" or "create=" in parts.query:
        return url
    query = f"{parts.query}&create=false" if parts.query else "create=false"
    return urlunsplit(parts._replace(query=query))


async def run(args: argparse.Namespace, out: TextIO) -> int:
    """Execute the parsed command; returns the exit status."""
    settings = load_settings(args.config, overrides={"store": args.store, "driver": args.driver})
    settings = replace(settings, store=reader_url(settings.store))
    async with ServiceGroup.from_settings(settings) as group:
        handler = HANDLERS[args.verb]
        return await handler(group, args, out)


async def _list(group: ServiceGroup, args: argparse.Namespace, out: TextIO) -> int:
    statuses = await group.list(topic=args.topic, binary=args.binary, host=args.host)
    if args.json:
        json.dump([s.as_dict() for s in statuses], out, indent=2)
        out.write("\n")
    else:
        print_table(statuses, out)
    return EXIT_OK


async def _show(group: ServiceGroup, args: argparse.Namespace, out: TextIO) -> int:
    status = await group.get(args.host, args.binary)
    if args.json:
        json.dump(status.as_dict(), out, indent=2)
        out.write("\n")
    else:
        print_show(status, out)
    return EXIT_OK


async def _enable(group: ServiceGroup, args: argparse.Namespace, out: TextIO) -> int:
    await group.set_disabled(ServiceKey(args.host, args.binary), False, actor=_actor(args))
    out.write(f"enabled {args.binary} on {args.host}\n")
    return EXIT_OK


async def _disable(group: ServiceGroup, args: argparse.Namespace, out: TextIO) -> int:
    await group.set_disabled(ServiceKey(args.host, args.binary), True, args.reason, actor=_actor(args))
    out.write(f"disabled {args.binary} on {args.host}\n")
    return EXIT_OK


async def _force_down(group: ServiceGroup, args: argparse.Namespace, out: TextIO) -> int:
    await group.set_forced_down(ServiceKey(args.host, args.binary), not args.off, actor=_actor(args))
    out.write(f"forced_down={'false' if args.off else 'true'} for {args.binary} on {args.host}\n")
    return EXIT_OK


async def _delete(group: ServiceGroup, args: argparse.Namespace, out: TextIO) -> int:
    await group.delete(ServiceKey(args.host, args.binary), force=args.force, actor=_actor(args))
    out.write(f"deleted {args.binary} on {args.host}\n")
    return EXIT_OK


def print_history(actions: Sequence[ServiceAction], out: TextIO) -> None:
    """The audit trail as an aligned table, oldest first."""
    rows = [("At", "Action", "Actor", "Via", "Why")]
    for a in actions:
        at = "-" if a.at is None else a.at.strftime("%Y-%m-%d %H:%M:%S")
        rows.append((at, a.action, a.actor, a.via, a.why or "-"))
    widths = [max(len(r[i]) for r in rows) for i in range(5)]
    for r in rows:
        out.write("  ".join(cell.ljust(w) for cell, w in zip(r, widths, strict=True)).rstrip() + "\n")


async def _history(group: ServiceGroup, args: argparse.Namespace, out: TextIO) -> int:
    # By (host, binary): a deleted and re-registered service shows every record's history.
    actions = await group.actions(key=ServiceKey(args.host, args.binary))
    if not actions:
        await group.get(args.host, args.binary)  # NotFound (exit 1) when there is no such service
    if args.json:
        json.dump([a.as_dict() for a in actions], out, indent=2)
        out.write("\n")
    else:
        print_history(actions, out)
    return EXIT_OK


async def _prune(group: ServiceGroup, args: argparse.Namespace, out: TextIO) -> int:
    if not args.yes:
        statuses = await group.prunable(args.down_for, topic=args.topic)
        if args.json:
            json.dump([s.as_dict() for s in statuses], out, indent=2)
            out.write("\n")
        else:
            print_table(statuses, out)
            out.write(
                f"{len(statuses)} services down for longer than {args.down_for:g}s; --yes deletes them\n"
            )
        return EXIT_OK
    results = await group.prune(args.down_for, actor=_actor(args), topic=args.topic)
    refused = [(s, error) for s, error in results if error is not None]
    if args.json:
        rows = [{**s.as_dict(), "pruned": error is None, "error": error} for s, error in results]
        json.dump(rows, out, indent=2)
        out.write("\n")
    else:
        for s, error in results:
            what = "deleted" if error is None else f"kept ({error})"
            out.write(f"{what} {s.service.binary} on {s.service.host}\n")
    return EXIT_NOT_FOUND if refused else EXIT_OK


async def _min_version(group: ServiceGroup, args: argparse.Namespace, out: TextIO) -> int:
    version = await group.min_version(args.binary, only_up=args.only_up)
    if version is None:
        raise NotFound(f"no {'live ' if args.only_up else ''}service with binary {args.binary!r}")
    out.write(
        json.dumps({"binary": args.binary, "min_version": version}) + "\n" if args.json else f"{version}\n"
    )
    return EXIT_OK


async def _watch(group: ServiceGroup, args: argparse.Namespace, out: TextIO) -> int:
    async for event in group.watch(topic=args.topic):
        s, v = event.status.service, event.status.verdict
        state = "removed" if event.removed else v.state
        if args.json:
            row: dict[str, Any] = event.status.as_dict()
            row.update(event="removed" if event.removed else "state", previous=event.previous, state=state)
            out.write(json.dumps(row) + "\n")
        else:
            out.write(f"{s.host} {s.binary} {s.topic} {event.previous or '-'} -> {state} ({v.reason})\n")
        out.flush()
    return EXIT_OK


Handler = Callable[[ServiceGroup, argparse.Namespace, TextIO], Awaitable[int]]
HANDLERS: dict[str, Handler] = {
    "list": _list,
    "show": _show,
    "enable": _enable,
    "disable": _disable,
    "force-down": _force_down,
    "delete": _delete,
    "history": _history,
    "prune": _prune,
    "min-version": _min_version,
    "watch": _watch,
}


def main(argv: Sequence[str] | None = None, out: TextIO | None = None) -> int:
    """Entry point of ``sgctl``; returns the exit status."""
    out = out or sys.stdout
    words = sys.argv[1:] if argv is None else argv
    args = build_parser(only=chosen_verb(words)).parse_args(words)
    configure_logging(args.log_level, stream=sys.stderr, json=args.log_json, deferred=True)
    try:
        return anyio.run(run, args, out)
    except ConfigError as exc:
        sys.stderr.write(f"sgctl: configuration error: {exc}\n")
        return EXIT_CONFIG
    except (NotFound, Refused) as exc:
        sys.stderr.write(f"sgctl: {exc}\n")
        return EXIT_NOT_FOUND
    except InvalidName as exc:
        sys.stderr.write(f"sgctl: {exc}\n")
        return EXIT_USAGE
    except BackendUnavailable as exc:
        sys.stderr.write(f"sgctl: {exc}\n")
        return EXIT_UNAVAILABLE
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        # The reader (say `| head`) went away: not an error worth a traceback.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return EXIT_OK


if __name__ == "__main__":
    sys.exit(main())
