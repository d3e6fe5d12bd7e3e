"""Mutation testing of the modules that decide liveness and encode names (`make mutate`).

mutmut 3 (pinned in pyproject's ``dev`` extra) reads its settings from the
``pyproject.toml`` of the directory it runs in and mutates a copy (``mutants/``) of
the tree there. Each run below therefore gets its own scratch copy of the repository
under ``var/mutate/<run>/`` with a ``[tool.mutmut]`` table naming its modules and the
tests that must kill their mutants: the unit tier for the pure modules, the contract
and SQL store tests on SQLite with the db driver for the heartbeat, the group and the
SQL store (so a run stays bounded in time). The worktree itself is never mutated.

A module's score is killed / (all mutants - skipped); a mutant that times out or that
mypy would reject counts as killed, one with no covering test as surviving. The
command fails when a module's score is below its goal; every survivor's diff goes to
``var/mutate/report-<runs>.txt`` (docs/testing.md says why each is equivalent or accepted).

Usage: ``python tests/mutation/mutate.py [--fast] [RUN ...]``.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import time
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
WORK = ROOT / "var" / "mutate"
MUTMUT = Path(sys.executable).parent / "mutmut"

# mutmut's exit codes per mutant (mutmut/stats.py, 3.8.1): what counts as killed.
KILLED = {1, 3, 36, 37, -24, 24, 152, 255}
SKIPPED = {34}


# Mutants shown equivalent (no input can tell them from the original), keyed by module
# and the mutated line as mutmut prints it; each has its reason here and in
# docs/testing.md. They are left out of the score the goal is checked against; the
# raw score is printed beside it.
EQUIVALENT: dict[tuple[str, str], str] = {
    ("sg/verdict.py", 'return Verdict("down", reason, age, driver_seen, )'): "detail defaults to None",
    ("sg/verdict.py", 'return Verdict("up", "ok", age, True, )'): "detail defaults to None",
    (
        "sg/drivers/zookeeper/names.py",
        'return unquote(encoded, encoding=None, errors="strict")',
    ): "unquote's encoding None means utf-8",
    ("sg/drivers/zookeeper/names.py", 'return unquote(encoded, errors="strict")'): "utf-8 is the default",
    (
        "sg/drivers/zookeeper/names.py",
        'return unquote(encoded, encoding="UTF-8", errors="strict")',
    ): "codec names are case-insensitive",
    (
        "sg/drivers/zookeeper/names.py",
        'ch if allowed_in_name(ch) else "".join(f"%{b:02X}" for b in ch.encode("UTF-8", "surrogatepass"))',
    ): "codec names are case-insensitive",
    (
        "sg/drivers/zookeeper/names.py",
        'if _ALL_SAFE.fullmatch(name) and name.strip("XX.XX"):',
    ): "a safe name sent to the slow path (only X and dots) encodes to itself there too",
    (
        "sg/drivers/memcached/keys.py",
        'return quote(name.encode("UTF-8", "surrogatepass"), safe="")',
    ): "codec names are case-insensitive",
    (
        "sg/drivers/memcached/keys.py",
        'return quote(name.encode("utf-8", "surrogatepass"), safe="XXXX")',
    ): "quote never escapes X",
    (
        "sg/drivers/memcached/keys.py",
        "key = f\"{prefix}:h:{hashlib.sha256(body.encode('ASCII')).hexdigest()}\"",
    ): "codec names are case-insensitive",
    ("sg/drivers/memcached/keys.py", 'return key.encode("ASCII")'): "codec names are case-insensitive",
    ("sg/drivers/memcached/keys.py", "return int.from_bytes(digest, )"): "byteorder defaults to big (3.11+)",
    ("sg/timings.py", "self.check_interval(self.report_interval, )"): "the default names report_interval",
    (
        "sg/drivers/memcached/keys.py",
        'weight = (_weight(name.encode("UTF-8"), key), name)',
    ): "codec names are case-insensitive",
    (
        "sg/drivers/memcached/keys.py",
        'best, best_weight = 1, (-1, "")',
    ): "the first server always beats the start",
    (
        "sg/drivers/memcached/keys.py",
        'best, best_weight = 0, (-2, "")',
    ): "weights are >= 0: any start below 0 is the same",
    (
        "sg/drivers/memcached/keys.py",
        'best, best_weight = 0, (-1, "XXXX")',
    ): "weights are >= 0: the name never decides",
    # service_from_row's type and range test only decides whether validate_version runs:
    # running it more often, or for a value it accepts, changes nothing but the time.
    (
        "sg/model.py",
        "if type(None) is not int or not 0 <= version <= MAX_VERSION:",
    ): "validate_version then always runs, and it is the whole rule",
    (
        "sg/model.py",
        "if type(version) is not int or not 1 <= version <= MAX_VERSION:",
    ): "0 then goes to validate_version, which accepts it",
    (
        "sg/model.py",
        "if type(version) is not int or not 0 < version <= MAX_VERSION:",
    ): "0 then goes to validate_version, which accepts it",
    (
        "sg/model.py",
        "if type(version) is not int or not 0 <= version < MAX_VERSION:",
    ): "MAX_VERSION then goes to validate_version, which accepts it",
}


@dataclass(frozen=True)
class Run:
    """One mutmut run: modules mutated together, and the tests that must kill them."""

    modules: dict[str, float | None]  # path -> goal in percent (None: report only)
    tests: list[str]
    pytest_args: list[str] = field(default_factory=list)
    fast: bool = False


# Contract tests on SQLite + the db driver (and the API suite on memory://): the tier
# that runs the heartbeat, group and SQL store against a real database, without
# servers to start per mutant.
_SQLITE_DB = ["-k", "not postgres and not memcached and not zookeeper"]

RUNS: dict[str, Run] = {
    "fast": Run(
        {"sg/verdict.py": 95.0, "sg/drivers/zookeeper/names.py": 95.0},
        ["tests/unit/test_verdict.py", "tests/unit/test_zookeeper_names.py"],
        fast=True,
    ),
    "pure": Run(
        {
            "sg/model.py": 95.0,
            "sg/drivers/memcached/keys.py": 95.0,
            # No goal was set for these two: their scores are reported, not enforced.
            "sg/timings.py": None,
            "sg/config.py": None,
        },
        [
            "tests/unit/test_model.py",
            # The fast builders of a listing's values (service_from_row, status_of, the twins).
            "tests/unit/test_model_builders.py",
            "tests/unit/test_timings.py",
            "tests/unit/test_memcached_keys.py",
            "tests/unit/test_config.py",
            "tests/unit/test_verdict.py",
        ],
    ),
    "live": Run(
        {"sg/heartbeat.py": 80.0, "sg/group.py": 80.0, "sg/store/sql.py": 80.0},
        [
            "tests/unit/test_heartbeat.py",
            "tests/unit/test_group.py",
            "tests/contract/test_contract.py",
            "tests/contract/test_check_failure_store.py",
            "tests/contract/test_embedding.py",
            "tests/contract/test_api.py",
            "tests/contract/test_check_failure_api.py",
            "tests/backends/sql/test_sql_store.py",
            "tests/backends/sql/test_sql_errors.py",
            "tests/backends/sql/test_outage.py",
        ],
        _SQLITE_DB,
    ),
}
if (ROOT / "sg" / "guard.py").exists():  # the fleet guard, once it has landed
    RUNS["live"].modules["sg/guard.py"] = 80.0


def _prepare(name: str, run: Run) -> Path:
    """A fresh scratch copy of the tree with this run's mutmut settings."""
    where = WORK / name
    shutil.rmtree(where, ignore_errors=True)
    where.mkdir(parents=True)
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc", ".mypy_cache", ".pytest_cache")
    for part in ("sg", "agent", "tests"):
        shutil.copytree(ROOT / part, where / part, ignore=ignore)
    pytest_ini = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["pytest"]["ini_options"]
    lines = [
        "[tool.mutmut]",
        'source_paths = ["sg"]',
        f"only_mutate = {json.dumps(sorted(run.modules))}",
        f"pytest_add_cli_args = {json.dumps(['-q', '-p', 'no:cacheprovider', *run.pytest_args])}",
        f"pytest_add_cli_args_test_selection = {json.dumps(run.tests)}",
        "",
        "[tool.pytest.ini_options]",
    ]
    lines += [f"{key} = {json.dumps(value)}" for key, value in pytest_ini.items() if key != "addopts"]
    (where / "pyproject.toml").write_text("\n".join(lines) + "\n")
    return where


def _score(where: Path, module: str) -> tuple[int, int, list[str]]:
    """(killed, counted, surviving mutant names) of one module after a run."""
    meta = json.loads((where / "mutants" / f"{module}.meta").read_text())
    codes: dict[str, int | None] = meta["exit_code_by_key"]
    counted = {k: c for k, c in codes.items() if c not in SKIPPED}
    survivors = sorted(k for k, c in counted.items() if c not in KILLED)
    return len(counted) - len(survivors), len(counted), survivors


def _diff(where: Path, mutant: str) -> list[str]:
    """The changed lines of one mutant, as mutmut shows them."""
    shown = subprocess.run(
        [str(MUTMUT), "show", mutant], cwd=where, capture_output=True, text=True, check=False
    )
    return [d for d in shown.stdout.splitlines() if d[:1] in "+-" and d[:3] not in ("---", "+++")]


def main(argv: list[str] | None = None) -> int:
    """Run the selected mutation runs; 1 when a module is below its goal."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--fast", action="store_true", help="only the fast subset (verdict rules, names)")
    parser.add_argument(
        "--resume",
        action="store_true",
        help="go on with the mutants of an earlier, stopped run (mutmut keeps their results)",
    )
    parser.add_argument("runs", nargs="*", help=f"runs to do, of {', '.join(RUNS)} (default: all)")
    args = parser.parse_args(argv)
    if unknown := set(args.runs) - set(RUNS):
        parser.error(f"unknown run(s): {', '.join(sorted(unknown))}")
    names = args.runs or [n for n, r in RUNS.items() if r.fast or not args.fast]
    report: list[str] = []
    failed = False
    for name in names:
        run = RUNS[name]
        where = WORK / name
        if not (args.resume and (where / "mutants").is_dir()):
            where = _prepare(name, run)
        started = time.monotonic()
        proc = subprocess.run([str(MUTMUT), "run"], cwd=where, capture_output=True, text=True, check=False)
        took = time.monotonic() - started
        if proc.returncode != 0:
            print(proc.stdout[-4000:], proc.stderr[-4000:], sep="\n", file=sys.stderr)
            print(f"mutate: run {name} failed (exit {proc.returncode})", file=sys.stderr)
            return 2
        for module, goal in run.modules.items():
            killed, counted, survivors = _score(where, module)
            lines: list[str] = []
            equivalent = 0
            for mutant in survivors:
                diff = _diff(where, mutant)
                added = [d[1:].strip() for d in diff if d.startswith("+")]
                why = EQUIVALENT.get((module, added[0])) if len(added) == 1 else None
                equivalent += why is not None
                lines.append(f"  survived {mutant}" + (f" (equivalent: {why})" if why else ""))
                lines.extend(f"    {d}" for d in diff)
            raw = 100.0 * killed / counted if counted else 100.0
            judged = counted - equivalent
            score = 100.0 * killed / judged if judged else 100.0
            below = goal is not None and score < goal
            verdict = "BELOW GOAL" if below else "ok"
            failed |= below
            wanted = "no goal" if goal is None else f"goal {goal:.0f} %"
            line = (
                f"{module}: {killed}/{judged} killed = {score:.1f} % ({wanted}) {verdict};"
                f" raw {killed}/{counted} = {raw:.1f} % with {equivalent} equivalent"
            )
            print(f"{line}  [{name}, {took:.0f} s]")
            report.append(line)
            report.extend(lines)
    WORK.mkdir(parents=True, exist_ok=True)
    out = WORK / f"report-{'-'.join(names)}.txt"
    out.write_text("\n".join(report) + "\n")
    print(f"survivors: {out}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
