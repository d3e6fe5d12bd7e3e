"""sgctl builds the parser of the chosen verb alone: it must parse, fail and help
exactly as the whole parser does."""

from __future__ import annotations

import argparse

import pytest

from sg.cli import HANDLERS, build_parser, chosen_verb

VALID = [
    ["service", "list"],
    ["--config", "x.toml", "service", "list", "--topic", "compute", "--json"],
    ["--config=x.toml", "--store", "sqlite:///tmp/a.db", "--log-json", "service", "show", "h1", "nova"],
    ["--log-level", "debug", "--driver", "db://", "service", "disable", "h1", "nova", "--reason", "why"],
    ["service", "force-down", "h1", "nova", "--off"],
    ["service", "delete", "h1", "nova", "--force"],
    ["service", "history", "h1", "nova", "--json"],
    ["service", "prune", "--down-for", "7d", "--yes"],
    ["service", "min-version", "nova", "--only-up"],
    ["service", "watch", "--topic", "compute"],
    ["service", "enable", "h1", "nova"],
]

INVALID = [
    ["service", "list", "--bogus"],
    ["service", "show", "only-host"],
    ["service", "list", "--topic", ""],
    ["service", "prune"],
    ["service", "prune", "--down-for", "soon"],
    ["--log-level", "loud", "service", "list"],
    ["service", "list", "-h"],
    ["service", "min-version", "--help"],
]


@pytest.mark.parametrize(
    ("argv", "verb"),
    [
        (["service", "list"], "list"),
        (["--config", "service", "service", "show"], "show"),  # an option's value is not the noun
        (["--log-level=debug", "--log-json", "service", "min-version", "x"], "min-version"),
        (["--log-level", "service", "list"], None),  # "list" is where the noun should be
        (["service", "nope"], None),
        (["service"], None),
        (["-h"], None),
        (["--conf", "x", "service", "list"], None),  # an abbreviation: the whole parser decides
        ([], None),
    ],
)
def test_chosen_verb(argv: list[str], verb: str | None) -> None:
    assert chosen_verb(argv) == verb


def _verbs(parser: argparse.ArgumentParser) -> list[str]:
    (nouns,) = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    service = nouns.choices["service"]
    (verbs,) = [a for a in service._actions if isinstance(a, argparse._SubParsersAction)]
    return list(verbs.choices)


def test_every_verb_has_a_parser_of_its_own() -> None:
    assert _verbs(build_parser()) == list(HANDLERS)
    for verb in HANDLERS:
        assert _verbs(build_parser(only=verb)) == [verb]


@pytest.mark.parametrize("argv", VALID, ids=lambda a: " ".join(a))
def test_the_verb_alone_parses_as_the_whole_parser(argv: list[str]) -> None:
    verb = chosen_verb(argv)
    assert verb is not None
    assert build_parser(only=verb).parse_args(argv) == build_parser().parse_args(argv)


@pytest.mark.parametrize("argv", INVALID, ids=lambda a: " ".join(a))
def test_the_verb_alone_fails_and_helps_as_the_whole_parser(
    argv: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    verb = chosen_verb(argv)
    said = []
    for parser in (build_parser(only=verb), build_parser()):
        with pytest.raises(SystemExit) as exc:
            parser.parse_args(argv)
        said.append((exc.value.code, capsys.readouterr()))
    assert said[0] == said[1]
    assert said[0][1].out or said[0][1].err
