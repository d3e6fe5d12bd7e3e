"""Under CI=true a skip is a failure (tests/conftest.py), importorskip included."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def run_pytest(tmp_path: Path, ci: str) -> subprocess.CompletedProcess[str]:
    (tmp_path / "test_skips.py").write_text(
        "import pytest\n"
        "def test_skips():\n    pytest.skip('no server')\n"
        "@pytest.mark.skipif(True, reason='never here')\n"
        "def test_skipif():\n    pass\n"
        "@pytest.mark.xfail(reason='known', strict=True)\n"
        "def test_xfail():\n    assert False\n"
        "def test_passes():\n    pass\n"
    )
    (tmp_path / "test_importorskip.py").write_text(
        "import pytest\npytest.importorskip('sg_no_such_module')\ndef test_never():\n    pass\n"
    )
    env = {k: v for k, v in os.environ.items() if k != "CI"} | {"CI": ci}
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "-p",
            "tests.conftest",
            "-q",
            "-p",
            "no:cacheprovider",
            "--continue-on-collection-errors",
            str(tmp_path),
        ],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )


@pytest.mark.parametrize("ci", ["true", "1"])
def test_every_skip_fails_under_ci(tmp_path: Path, ci: str) -> None:
    done = run_pytest(tmp_path, ci)
    assert done.returncode == 1, done.stdout
    last = done.stdout.strip().splitlines()[-1]
    # A skip in the call fails; a skipif (at setup) and a module skipped at collection
    # are errors; an xfail stays an xfail.
    assert "1 failed" in last, last
    assert "2 errors" in last, last
    assert "1 passed" in last, last
    assert "1 xfailed" in last, last
    assert "skipped" not in last, last
    assert "CI=true: a skip is a failure (no server)" in done.stdout
    assert "CI=true: a skip is a failure (never here)" in done.stdout
    assert "sg_no_such_module" in done.stdout


def test_skips_stay_skips_outside_ci(tmp_path: Path) -> None:
    done = run_pytest(tmp_path, "")
    assert done.returncode == 0, done.stdout
    assert "3 skipped" in done.stdout.strip().splitlines()[-1]
