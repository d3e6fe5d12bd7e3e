"""The ``sgctl`` console script: :func:`sg.cli.main`, with the garbage collector set
for a short-lived command.

A cold ``sgctl service list`` creates some 100,000 objects while importing and frees
few: the collections run during the imports find nothing, and the full collection at
interpreter exit walks them all (about 18 ms, as long as the listing itself). So no
collection runs during the imports, and the objects alive at exit are frozen (left to
the process's end) instead of collected. A long command (``watch``) collects as usual
in between.
"""

from __future__ import annotations

import gc
import sys

__all__ = ["main"]


def main() -> None:
    """Entry point of ``sgctl``: exits with :func:`sg.cli.main`'s status."""
    gc.disable()
    try:
        from sg.cli import main as run
    finally:
        # What the imports made lives as long as the process: out of the collector's way.
        gc.freeze()
        gc.enable()
    status = run()
    gc.freeze()
    sys.exit(status)
