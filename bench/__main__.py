"""``python -m bench``: run every benchmark of issue 12 and write ``docs/benchmarks.md``.

``python -m bench --only listing,api`` runs some parts and keeps the others' last
results (each part is self-contained: a figure and its peer are always taken in
the same part); ``--report-only`` redraws the page from ``docs/benchmarks.json``.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Any

import anyio

from bench import beats, listing, machine, processes, report
from bench.servers import Servers, started

ROOT = Path(__file__).resolve().parent.parent
PARTS = ("listing", "beats", "api", "sgctl", "agent", "detection")


def _parts(servers: Servers, tmp: Path, sizes: tuple[int, ...]) -> dict[str, Callable[[], Any]]:
    return {
        "listing": lambda: anyio.run(listing.run, servers, tmp, sizes),
        "beats": lambda: anyio.run(beats.run, servers),
        "api": lambda: processes.api_rate(tmp),
        "sgctl": lambda: processes.sgctl_cold(tmp),
        "agent": lambda: processes.agent_cpu(tmp),
        "detection": lambda: processes.detection(servers, tmp),
    }


def main(argv: list[str]) -> int:
    """Run the chosen parts, save the results as JSON, write the page and plots."""
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__.splitlines()[0])
    parser.add_argument("--only", default=",".join(PARTS), help=f"comma-separated parts of {','.join(PARTS)}")
    parser.add_argument(
        "--sizes",
        default=",".join(str(n) for n in listing.SIZES),
        help="service counts of the listing sweep (the table quotes 1,000 and 10,000)",
    )
    parser.add_argument(
        "--out",
        type=Path,
        default=ROOT / "docs" / "benchmarks.md",
        help="the page to write (a directory: its benchmarks.md); the JSON goes beside it",
    )
    parser.add_argument("--report-only", action="store_true", help="redraw the page from the saved JSON")
    args = parser.parse_args(argv)
    chosen = [p.strip() for p in args.only.split(",") if p.strip()]
    unknown = sorted(set(chosen) - set(PARTS))
    if unknown:
        parser.error(f"--only: unknown part(s) {unknown}; known: {', '.join(PARTS)}")
    try:
        sizes = tuple(sorted(int(n) for n in args.sizes.split(",")))
    except ValueError:
        parser.error("--sizes: comma-separated integers, e.g. 1000,10000")
    if args.out.is_dir() or not args.out.suffix:
        args.out = args.out / "benchmarks.md"
    saved = args.out.with_suffix(".json")
    results: dict[str, Any] = json.loads(saved.read_text()) if saved.exists() else {}

    failed: list[str] = []
    if not args.report_only:
        began = time.monotonic()
        with started() as servers, tempfile.TemporaryDirectory(prefix="sg-bench-") as tmp:
            results["machine"] = machine.describe(servers)
            parts = _parts(servers, Path(tmp), sizes)
            for name in chosen:
                print(f"== {name}", flush=True)
                part_began = time.monotonic()
                try:
                    results[name] = parts[name]()
                except Exception as exc:
                    # One part's failure (a server dying) must not lose the others' figures;
                    # the page says what failed, and the exit status says it too.
                    traceback.print_exc()
                    results[name] = {"error": f"{type(exc).__name__}: {exc}"}
                    failed.append(name)
                print(f"== {name}: {time.monotonic() - part_began:.0f} s", flush=True)
        results["machine"]["load_end"] = machine.load()
        results["machine"]["seconds"] = time.monotonic() - began
        results["machine"]["parts"] = chosen
        saved.parent.mkdir(parents=True, exist_ok=True)
        saved.write_text(json.dumps(results, indent=1) + "\n", encoding="utf-8")

    report.write(results, args.out, args.out.parent / "img" / "benchmarks")
    print(report.table(report.rows(results)))
    print(f"wrote {args.out}", flush=True)
    if failed:
        print(f"FAILED parts: {', '.join(failed)}", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
