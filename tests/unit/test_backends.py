"""sg.backends: built-in schemes resolve without entry points, and agree with them."""

from __future__ import annotations

import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

from sg.backends import (
    BUILTIN_BACKENDS,
    Backends,
    _Builtin,
    _load_entry_point,
    load_backend_class,
    load_driver,
    load_store,
)
from sg.errors import ConfigError
from sg.store.sqlite import SQLiteStore
from sg.timings import Timings

PYPROJECT = Path(__file__).resolve().parents[2] / "pyproject.toml"


def test_builtin_table_matches_the_entry_points() -> None:
    declared = tomllib.loads(PYPROJECT.read_text(encoding="utf-8"))["project"]["entry-points"]
    for group, table in BUILTIN_BACKENDS.items():
        assert table == declared[group], f"{group}: pyproject.toml and BUILTIN_BACKENDS differ"


def test_builtin_loads_like_an_entry_point() -> None:
    assert load_backend_class("sg.stores", "sqlite:///tmp/x.db", "store") is SQLiteStore
    assert _Builtin("postgresql", "sg.store.postgresql:PostgresStore [postgres]").extras == ["postgres"]
    assert _Builtin("sqlite", "sg.store.sqlite:SQLiteStore").extras == []
    with pytest.raises(ConfigError, match=r"pip install 'servicegroup\[fancy\]'"):
        _load_entry_point(_Builtin("fancy", "sg_no_such_module:Store [fancy]"), "store")


def test_a_cold_sgctl_never_imports_importlib_metadata() -> None:
    # What the table is for: resolving a built-in scheme scans no distribution.
    code = (
        "import sys; from sg.backends import load_store; from sg.timings import Timings; "
        "load_store('sqlite:///tmp/sg-never-opened.db', Timings()); "
        "print('importlib.metadata' in sys.modules, 'sg.heartbeat' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["False", "False"], out.stdout + out.stderr


def test_only_drivers_that_say_local_skip_the_concurrent_ask() -> None:
    """``local_membership`` holds when every driver, the roll's too, says ``local``; a
    driver that does not say it (a third party's) is asked beside the store."""
    timings = Timings()
    db, memory = load_driver("db://", timings), load_driver("memory://local-test", timings)
    zk = load_driver("zookeeper://127.0.0.1:2181/sg", timings)
    mc = load_driver("memcached://127.0.0.1:11211", timings)
    store = load_store("memory://local-test", timings)
    assert Backends(store, db, timings).local_membership
    assert Backends(store, memory, timings, roll=[db]).local_membership
    assert not Backends(store, zk, timings).local_membership
    assert not Backends(store, mc, timings).local_membership
    assert not Backends(store, db, timings, roll=[zk]).local_membership

    class ThirdParty:
        name = "third"

    assert not Backends(store, ThirdParty(), timings).local_membership  # type: ignore[arg-type]
