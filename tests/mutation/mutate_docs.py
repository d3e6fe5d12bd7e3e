"""Render the survivors reports of ``tests/mutation/mutate.py`` as the Markdown of docs/testing.md.

Usage: ``python tests/mutation/mutate_docs.py var/mutate/report-*.txt``. Each survivor gets the
reason it is equivalent (from ``tests/mutation/mutate.py``'s table) or the class of change it
makes, so a reader sees at once which survivors are accepted and why.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

# (pattern on the mutated line, why such a survivor is accepted); first match wins.
CLASSES: list[tuple[re.Pattern[str], str]] = [
    (
        re.compile(r"_log\.|log\.(info|warning|exception)\(|\"(beat_|service_|check_|clock_|leave_)"),
        "log text",
    ),
    (
        re.compile(r"store_call\(|driver_call\(|_one\(|_changed\(|_session\(|_guarded, "),
        "call name in an error",
    ),
    (re.compile(r"Error\(|raise \w+\(|NotFound\(|Refused\(|BackendUnavailable\("), "error message text"),
    (re.compile(r"\"XX|'XX|XX\"|XX'"), "string literal"),
]


def _why(added: str) -> str:
    for pattern, why in CLASSES:
        if pattern.search(added):
            return why
    return "not killed yet"


def render(paths: list[Path]) -> str:
    """The Markdown of every report in ``paths``."""
    out: list[str] = []
    for path in paths:
        lines = path.read_text().splitlines()
        i = 0
        while i < len(lines):
            line = lines[i]
            if not line.startswith(" "):
                out += ["", f"#### `{line.split(':')[0]}`", "", line.split(": ", 1)[1], ""]
                out += ["| mutant | mutated line | why it survives |", "|---|---|---|"]
                i += 1
                continue
            match = re.match(r"\s+survived (\S+)(?: \(equivalent: (.*)\))?$", line)
            i += 1
            if match is None:
                continue
            added = ""
            while i < len(lines) and lines[i].startswith("    "):
                if lines[i].strip().startswith("+"):
                    added = lines[i].strip()[1:].strip()
                i += 1
            name = match.group(1).rsplit(".", 1)[-1].replace("ǁ", ".")
            why = f"equivalent: {match.group(2)}" if match.group(2) else _why(added)
            shown = added.replace("|", "\\|")
            out.append(f"| `{name}` | `{shown}` | {why} |")
    return "\n".join(out) + "\n"


if __name__ == "__main__":
    sys.stdout.write(render([Path(p) for p in sys.argv[1:]]))
