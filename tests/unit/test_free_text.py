"""The one free-text rule of the model (issue 10, defect 12)."""

from __future__ import annotations

import pytest

from sg.errors import InvalidName
from sg.model import MAX_TEXT_LENGTH, escape_text, validate_text


@pytest.mark.parametrize("text", ["", "maintenance", "é ü 中文 🚀", "x" * MAX_TEXT_LENGTH, "a b"])
def test_acceptable_text_is_returned(text: str) -> None:
    assert validate_text("disabled_reason", text) == text


@pytest.mark.parametrize(
    ("text", "why"),
    [
        ("\x1b[31mred", "control character"),
        ("two\nlines", "control character"),
        ("tab\there", "control character"),
        ("c1\x9bcsi", "control character"),
        ("sep\u2028", "control character"),
        ("lone \ud800", "surrogate"),
        ("argv \udcff", "surrogate"),
        ("x" * (MAX_TEXT_LENGTH + 1), "longer than 255"),
        ("x" * 100_000, "longer than 255"),
    ],
)
def test_bad_text_is_refused_naming_the_field(text: str, why: str) -> None:
    with pytest.raises(InvalidName, match=why) as err:
        validate_text("disabled_reason", text)
    assert err.value.field == "disabled_reason"
    assert len(str(err.value)) < 200  # a 100,000-character value is not echoed whole


def test_non_strings_are_refused() -> None:
    with pytest.raises(InvalidName, match="must be a string"):
        validate_text("disabled_reason", 7)


def test_escape_text_makes_control_characters_visible() -> None:
    shown = escape_text("\x1b]0;owned\x07 ok é")
    assert "\x1b" not in shown
    assert "\x07" not in shown
    assert shown == "\\x1b]0;owned\\x07 ok é"
