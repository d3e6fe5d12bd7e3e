"""A stand-in ``systemctl`` for the ``systemd:`` check where systemd is not PID 1.

The CI machine kind runs no systemd, so no unit can be active there; the check's code
path (run ``systemctl is-active -- UNIT``, pass on exit 0, fail with its one-line
answer otherwise) is exercised against this script instead, put first on ``PATH``.
A unit is active while the file ``units/UNIT`` holds ``active``; every call's
arguments are appended to ``calls``, one line each.
"""

from __future__ import annotations

import sys
from pathlib import Path

_SCRIPT = """\
#!{python}
import os
import sys
from pathlib import Path
here = Path(__file__).parent
with open(here / "calls", "a") as calls:
    calls.write(" ".join(sys.argv[1:]) + "\\n")
if sys.argv[1:3] != ["is-active", "--"] or len(sys.argv) != 4:
    print("stand-in systemctl: only 'is-active -- UNIT'")
    sys.exit(2)
unit = here / "units" / sys.argv[3]
state = unit.read_text().strip() if unit.exists() else "inactive"
print(state)
sys.exit(0 if state == "active" else 3)
"""


class StandInSystemctl:
    """The stand-in's directory, its units and its call log."""

    def __init__(self, where: Path) -> None:
        self.bin = where
        (where / "units").mkdir(parents=True, exist_ok=True)
        script = where / "systemctl"
        script.write_text(_SCRIPT.format(python=sys.executable))
        script.chmod(0o755)

    def set_state(self, unit: str, state: str) -> None:
        """What ``systemctl is-active`` answers for ``unit`` from now on."""
        (self.bin / "units" / unit).write_text(state + "\n")

    def calls(self) -> list[str]:
        """The arguments of every call so far."""
        log = self.bin / "calls"
        return log.read_text().splitlines() if log.exists() else []
