"""Backends: the store and the driver, each call under its deadline, failures mapped once.

Everything above this module (the group, the heartbeat, the watch) reaches the
store and the driver through a :class:`Backends`; nothing else wraps a backend
call in a deadline. A backend maps its own exceptions at its boundary
(:func:`~sg.errors.translate_errors`); what still escapes it is mapped here, by
:data:`FAILURES`.

Backend classes are chosen by URL scheme through the entry-point groups
``sg.stores`` and ``sg.drivers``, so a third party can add one. An entry point
may name the extra it needs (``"sg.store.postgresql:PostgresStore [postgres]"``);
when its import fails, the error says which extra to install.
"""

from __future__ import annotations

import importlib
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, TypeVar
from urllib.parse import urlsplit

import anyio

from sg.drivers.base import ChangeNotifier, Driver, Membership
from sg.errors import BackendTimeout, BackendUnavailable, ConfigError
from sg.lazylog import get_logger
from sg.model import RECOVERING, Member, Presence, Service, ServiceKey
from sg.redact import redact_url
from sg.store.base import BatchBeats, BeatResult, Store
from sg.timings import Timings

if TYPE_CHECKING:
    from importlib.metadata import EntryPoint

__all__ = [
    "BATCH_WINDOW_SHARE",
    "BUILTIN_BACKENDS",
    "FAILURES",
    "LEAVE_ORDER_GRACE",
    "RESTART_ONLY_TIMINGS",
    "Backends",
    "load_backend_class",
    "load_driver",
    "load_store",
    "scheme_of",
]

log = get_logger("sg.backends")

T = TypeVar("T")

#: What escapes a backend call, and what it becomes: the one table of failure mapping.
#: (Deadlines become :class:`BackendTimeout`; an ``OSError`` a backend did not map
#: is still a backend fault, never a crash of the caller.)
FAILURES: tuple[tuple[type[BaseException], type[BackendUnavailable]], ...] = (
    (TimeoutError, BackendTimeout),
    (OSError, BackendUnavailable),
)

#: How long ``leave`` lets the driver wait for the store's ``left`` mark (seconds).
LEAVE_ORDER_GRACE = 0.2

#: How long the first store beat of a batch waits for the others, as a share of the
#: report interval: the heartbeat's jitter (10 %) plus the time a local check takes.
BATCH_WINDOW_SHARE = 0.15

#: Timings the backends were built with, which a running process cannot change.
RESTART_ONLY_TIMINGS = ("service_down_time", "store_timeout", "driver_timeout")


# -- URL -> class -------------------------------------------------------------------------


def scheme_of(url: str, kind: str) -> str:
    """Return the lower-cased scheme of ``url`` or raise :class:`ConfigError`."""
    try:
        scheme = urlsplit(url).scheme
    except ValueError as exc:
        raise ConfigError(f"{kind} URL {redact_url(url)!r} is malformed: {exc}") from exc
    if not scheme:
        raise ConfigError(f"{kind} URL {redact_url(url)!r} has no scheme (like 'sqlite://')")
    return scheme.lower()


#: The schemes this distribution registers as entry points (pyproject.toml), resolved
#: without importlib.metadata: importing it and scanning every installed
#: distribution was a fifth of a cold ``sgctl``. Any other scheme goes through the
#: entry points as before. tests/unit/test_backends.py keeps the two in step.
BUILTIN_BACKENDS: dict[str, dict[str, str]] = {
    "sg.stores": {
        "sqlite": "sg.store.sqlite:SQLiteStore",
        "postgresql": "sg.store.postgresql:PostgresStore [postgres]",
        "postgres": "sg.store.postgresql:PostgresStore [postgres]",
        "memory": "sg.store.memory:MemoryStore",
    },
    "sg.drivers": {
        "db": "sg.drivers.db:DBDriver",
        "memory": "sg.drivers.memory:MemoryDriver",
        "memcached": "sg.drivers.memcached.driver:MemcachedDriver [memcached]",
        "zookeeper": "sg.drivers.zookeeper.driver:ZooKeeperDriver [zookeeper]",
    },
}


@dataclass(frozen=True)
class _Builtin:
    """A built-in backend, loaded like an :class:`~importlib.metadata.EntryPoint`."""

    name: str
    value: str

    @property
    def extras(self) -> list[str]:
        _, _, extra = self.value.partition("[")
        return [e.strip() for e in extra.rstrip("] ").split(",") if e.strip()]

    def load(self) -> Any:
        module, _, attr = self.value.partition(" ")[0].partition(":")
        return getattr(importlib.import_module(module), attr)


def load_backend_class(group: str, url: str, kind: str) -> Any:
    """Return the class registered in entry-point ``group`` for the scheme of ``url``."""
    scheme = scheme_of(url, kind)
    builtin = BUILTIN_BACKENDS.get(group, {}).get(scheme)
    if builtin is not None:
        return _load_entry_point(_Builtin(scheme, builtin), kind)
    from importlib.metadata import entry_points  # only for third-party schemes: see above

    available: dict[str, EntryPoint | _Builtin] = {ep.name: ep for ep in entry_points(group=group)}
    available.update((name, _Builtin(name, value)) for name, value in BUILTIN_BACKENDS.get(group, {}).items())
    ep = available.get(scheme)
    if ep is None:
        known = ", ".join(sorted(available)) or "none (is servicegroup installed?)"
        raise ConfigError(f"unknown {kind} scheme {scheme!r} in {redact_url(url)!r}; known: {known}")
    return _load_entry_point(ep, kind)


def _load_entry_point(ep: EntryPoint | _Builtin, kind: str) -> Any:
    try:
        return ep.load()
    except ImportError as exc:
        extra = ",".join(ep.extras) if ep.extras else None
        hint = f"pip install 'servicegroup[{extra}]'" if extra else "check the installation"
        raise ConfigError(
            f"{kind} scheme {ep.name!r} needs a package that is not installed ({exc.name or exc}): {hint}"
        ) from exc


def load_store(url: str, timings: Timings) -> Store:
    """Build (not yet open) the store for ``url``, chosen by its scheme."""
    cls: type[Store] = load_backend_class("sg.stores", url, "store")
    return cls.from_url(url, timings)


def load_driver(url: str, timings: Timings) -> Driver:
    """Build (not yet open) the driver for ``url``, chosen by its scheme."""
    cls: type[Driver] = load_backend_class("sg.drivers", url, "driver")
    return cls.from_url(url, timings)


def _stronger(a: Presence, b: Presence) -> Presence:
    """Two drivers' answers for one member: held by either is held; else cannot tell;
    else recovering; else not held."""
    for strongest in (True, None, RECOVERING):
        if strongest in (a, b):
            return strongest
    return False


# -- calls under deadlines ------------------------------------------------------------------


def _mapped(backend: str, what: str, timeout: float, exc: BaseException) -> BackendUnavailable | None:
    for foreign, ours in FAILURES:
        if isinstance(exc, foreign):
            if ours is BackendTimeout:
                return BackendTimeout(backend, f"{what}: no answer within {timeout:g}s")
            return ours(backend, f"{what}: {type(exc).__name__}: {exc}")
    return None


@dataclass(eq=False)
class _Waiter:
    """One heartbeat's store beat, waiting for its batch."""

    key: ServiceKey
    #: The beat's own bound (seconds from ``arrived``), or ``None`` when its caller keeps
    #: the deadline (a ``store_call`` around it).
    timeout: float | None = None
    arrived: float = 0.0
    wake: anyio.Event = field(default_factory=anyio.Event)
    lead: bool = False
    finished: bool = False
    result: BeatResult | None = None
    error: BackendUnavailable | None = None


#: ``Backends.store_call``'s shape: ``(what, call, *, timeout)``.
StoreCall = Callable[..., Awaitable[Any]]


class _BeatBatcher:
    """Coalesces the store beats of one process's heartbeats into ``beat_many`` calls.

    The first beat to arrive leads: it waits ``window`` seconds for the others, then
    stamps every waiting record in one round trip and hands each its result. The leader
    keeps the batch's one deadline: its own bound, counted from its arrival (the
    earliest in the batch, so no beat waits longer than its own bound would have let
    it); a beat given no bound is under its caller's deadline, as every caller once
    was. A leader cancelled before its batch left hands the lead to the next waiter;
    one cancelled or timed out while the batch is in flight fails the batch.
    """

    def __init__(self, store: BatchBeats, name: str, window: Callable[[], float], call: StoreCall) -> None:
        self.store = store
        self.name = name
        self.window = window
        self.call = call
        self._waiting: list[_Waiter] = []
        self._leading = False

    async def beat(self, key: ServiceKey, timeout: float | None = None) -> BeatResult | None:
        me = _Waiter(key, timeout, time.monotonic())
        self._waiting.append(me)
        if not self._leading:
            self._leading = me.lead = True
        try:
            while not me.finished:
                if me.lead:
                    await self._lead(me)
                else:
                    # No deadline of its own (a timer per beat was a third of a batched
                    # beat's CPU): the leader's, which arrived first, bounds this wait.
                    await me.wake.wait()
                    me.wake = anyio.Event()
        finally:
            if me in self._waiting:
                # Cancelled (or timed out) before its batch left: leave it, pass the lead on.
                self._waiting.remove(me)
                if me.lead:
                    self._leading = False
                    if self._waiting:
                        heir = self._waiting[0]
                        heir.lead = self._leading = True
                        heir.wake.set()
        if me.error is not None:
            raise me.error
        return me.result

    async def _lead(self, me: _Waiter) -> None:
        batch: list[_Waiter] = []
        try:
            if me.timeout is None:
                stamped = await self._send(batch)
            else:
                left = max(0.0, me.arrived + me.timeout - time.monotonic())
                try:
                    stamped = await self.call("beat", self._send(batch), timeout=left)
                except BackendTimeout as exc:
                    if time.monotonic() < me.arrived + me.timeout:
                        raise  # the store's own timeout, not this deadline
                    # Name the beat's bound, not the part of it left when the lead began.
                    raise BackendTimeout(self.name, f"beat: no answer within {me.timeout:g}s") from exc
        except BaseException as exc:
            if isinstance(exc, BackendUnavailable):
                kind = BackendTimeout if isinstance(exc, BackendTimeout) else BackendUnavailable
                detail = exc.detail
            else:
                kind, detail = BackendUnavailable, f"batch interrupted ({exc!r})"
            for waiter in batch:
                if waiter is not me:
                    waiter.error = kind(self.name, f"beat_many: {detail}")
                    waiter.finished = True
                    waiter.wake.set()
            raise
        results = dict(zip(dict.fromkeys(w.key for w in batch), stamped, strict=True))
        for waiter in batch:
            waiter.result = results[waiter.key]
            waiter.finished = True
            waiter.wake.set()

    async def _send(self, batch: list[_Waiter]) -> list[BeatResult | None]:
        """Wait the window, take every waiting beat into ``batch``, stamp them."""
        await anyio.sleep(self.window())
        batch.extend(self._waiting)
        self._waiting = []
        self._leading = False
        return await self.store.beat_many(list(dict.fromkeys(w.key for w in batch)))


class Backends:
    """A store and a driver with the :class:`~sg.timings.Timings` they work to.

    The one owner of deadlines: :meth:`store_call` and :meth:`driver_call` run a
    call under ``store_timeout`` / ``driver_timeout`` (or a shorter bound given)
    and raise only :mod:`sg.errors` exceptions.
    """

    def __init__(
        self, store: Store, driver: Driver, timings: Timings, *, roll: Sequence[Driver] = ()
    ) -> None:
        self.store = store
        self.driver = driver
        #: During a driver roll, the other drivers agents may still beat through: each
        #: record is judged by the driver it names (see :meth:`membership`).
        self.roll = tuple(roll)
        self._timings = timings
        self._batcher: _BeatBatcher | None = None

    @classmethod
    def from_urls(
        cls, store_url: str, driver_url: str, timings: Timings, *, roll_urls: Sequence[str] = ()
    ) -> Backends:
        """Build the store and driver named by the URLs (not yet opened)."""
        roll = [load_driver(url, timings) for url in roll_urls]
        return cls(load_store(store_url, timings), load_driver(driver_url, timings), timings, roll=roll)

    @property
    def drivers(self) -> tuple[Driver, ...]:
        """The driver, then the roll's."""
        return (self.driver, *self.roll)

    def swap_driver(self, driver: Driver) -> Driver:
        """Beat through ``driver`` from now on (an agent's reload); returns the old one,
        for the caller to leave its members and close."""
        old, self.driver = self.driver, driver
        return old

    @property
    def timings(self) -> Timings:
        """The timings in force."""
        return self._timings

    def update_timings(self, timings: Timings) -> None:
        """Use ``timings`` from now on (a reload). The backends were built with
        :data:`RESTART_ONLY_TIMINGS`; changing them is a :class:`ConfigError`."""
        changed = [n for n in RESTART_ONLY_TIMINGS if getattr(timings, n) != getattr(self._timings, n)]
        if changed:
            raise ConfigError(f"changing {', '.join(changed)} needs a restart")
        self._timings = timings

    @property
    def local_membership(self) -> bool:
        """Whether every driver answers :meth:`membership` without a round trip (their
        ``local`` attribute, :mod:`sg.drivers.base`): then nothing is gained by asking
        them concurrently with the store."""
        return all(getattr(driver, "local", False) is True for driver in self.drivers)

    @property
    def notifier(self) -> ChangeNotifier | None:
        """The driver, if it can push membership changes."""
        return self.driver if isinstance(self.driver, ChangeNotifier) else None

    def __repr__(self) -> str:
        return f"Backends(store={self.store.name}, driver={self.driver.name})"

    async def _call(self, backend: str, what: str, call: Awaitable[T], timeout: float) -> T:
        # A bare cancel scope with a deadline, not anyio.fail_after: the same bound
        # without the two generator context managers fail_after wraps it in (9.6
        # against 6.8 us per call here; a verdict makes two).
        try:
            with anyio.CancelScope(deadline=anyio.current_time() + timeout):
                return await call
        except BackendUnavailable:
            raise
        except Exception as exc:
            mapped = _mapped(backend, what, timeout, exc)
            if mapped is None:
                raise
            raise mapped from exc
        # Only this scope's own deadline lands here (an outer cancellation propagates).
        raise BackendTimeout(backend, f"{what}: no answer within {timeout:g}s")

    async def store_call(self, what: str, call: Awaitable[T], *, timeout: float | None = None) -> T:
        """Await a store call under ``store_timeout`` (or ``timeout``)."""
        bound = self._timings.store_timeout if timeout is None else timeout
        return await self._call(self.store.name, what, call, bound)

    async def driver_call(self, what: str, call: Awaitable[T], *, timeout: float | None = None) -> T:
        """Await a driver call under ``driver_timeout`` (or ``timeout``)."""
        bound = self._timings.driver_timeout if timeout is None else timeout
        return await self._call(self.driver.name, what, call, bound)

    # -- batched heartbeats (the agent's) ---------------------------------------------------

    def batch_beats(self) -> bool:
        """From now on, coalesce concurrent :meth:`beat` calls into one ``beat_many`` round
        trip per :data:`BATCH_WINDOW_SHARE` of the report interval, if the store can
        (:class:`~sg.store.base.BatchBeats`). Returns whether it can. For a process
        that beats several services (the agent); one embedded service has no use for it."""
        if isinstance(self.store, BatchBeats):
            self._batcher = _BeatBatcher(
                self.store,
                self.store.name,
                lambda: BATCH_WINDOW_SHARE * self._timings.report_interval,
                self.store_call,
            )
        return self._batcher is not None

    @property
    def batches_beats(self) -> bool:
        """Whether :meth:`beat` is batched."""
        return self._batcher is not None

    @property
    def beat_batch_window(self) -> float:
        """How long a batch's first beat waits for the others (seconds); 0 unbatched."""
        return 0.0 if self._batcher is None else self._batcher.window()

    async def beat(self, key: ServiceKey, *, timeout: float | None = None) -> BeatResult | None:
        """The store's beat of ``key``, batched with others' if :meth:`batch_beats` was
        called. With ``timeout`` it is bounded here, as a :meth:`store_call` (a batched
        one by its batch's leader: one deadline a batch, not one a beat); without, the
        caller's deadline (a :meth:`store_call`) must bound it."""
        if self._batcher is None:
            if timeout is None:
                return await self.store.beat(key)
            return await self.store_call("beat", self.store.beat(key), timeout=timeout)
        return await self._batcher.beat(key, timeout)

    async def membership(self, services: Sequence[Service | Member]) -> tuple[Membership, str | None]:
        """Ask the driver which ``services`` it holds; on failure return the error instead.

        During a roll, a record is asked of the drivers of the name it records (a
        record from before names none: the driver's), all at once; held by any is held.
        A record naming a driver this reader has not configured is ``None`` (unknown).
        """
        if not services:
            return {}, None
        if not self.roll:
            try:
                return await self.driver_call("members", self.driver.members(services)), None
            except BackendUnavailable as exc:
                return {}, str(exc)
        return await self._roll_membership(services)

    async def _roll_membership(self, services: Sequence[Service | Member]) -> tuple[Membership, str | None]:
        by_name: dict[str, list[Driver]] = {}
        for driver in self.drivers:
            by_name.setdefault(driver.name, []).append(driver)
        asked: dict[str, list[Service | Member]] = {}
        result: dict[ServiceKey, Presence] = {}
        for service in services:
            name = (service.driver if isinstance(service, Service) else None) or self.driver.name
            if name in by_name:
                asked.setdefault(name, []).append(service)
            else:
                result[service.key] = None
        answers: list[tuple[Membership, str | None]] = []

        async def ask(driver: Driver, part: list[Service | Member]) -> None:
            try:
                answers.append((await self.driver_call("members", driver.members(part)), None))
            except BackendUnavailable as exc:
                answers.append(({s.key: None for s in part}, str(exc)))

        async with anyio.create_task_group() as tg:
            for name, part in asked.items():
                for driver in by_name[name]:
                    tg.start_soon(ask, driver, part)
        for answer, _ in answers:
            for key, presence in answer.items():
                result[key] = _stronger(result.get(key, False), presence)
        errors = [error for _, error in answers if error is not None]
        return result, (errors[0] if errors and len(errors) == len(answers) else None)

    # -- life cycle ---------------------------------------------------------------------------

    async def open(self) -> None:
        """Connect both backends concurrently. A backend that is down now is logged, not
        fatal (backends reconnect on use, so an agent can start before its database);
        one that refuses the configuration raises :class:`ConfigError` itself."""
        refused: list[ConfigError] = []

        async def open_one(backend: Store | Driver, call: Any) -> None:
            try:
                await call(backend.open())
            except BackendUnavailable as exc:
                log.warning("backend_unavailable_at_start", backend=backend.name, error=str(exc))
            except ConfigError as exc:
                refused.append(exc)

        async with anyio.create_task_group() as tg:
            tg.start_soon(open_one, self.store, lambda c: self.store_call("open", c))
            for driver in self.drivers:
                tg.start_soon(open_one, driver, lambda c: self.driver_call("open", c))
        if refused:
            await self.close()
            raise refused[0]

    async def close(self) -> None:
        """Close both backends, shielded and bounded."""

        async def close_one(backend: Store | Driver, timeout: float) -> None:
            with anyio.move_on_after(timeout) as scope:
                try:
                    await backend.close()
                except (BackendUnavailable, OSError) as exc:
                    log.warning("backend_close_failed", backend=backend.name, error=str(exc))
            if scope.cancelled_caught:
                log.warning("backend_close_timed_out", backend=backend.name, timeout=timeout)

        with anyio.CancelScope(shield=True):
            async with anyio.create_task_group() as tg:
                for driver in self.drivers:
                    tg.start_soon(close_one, driver, self._timings.driver_timeout)
                tg.start_soon(close_one, self.store, self._timings.store_timeout)

    async def ping(self) -> dict[str, str | None]:
        """Ping both backends concurrently: ``{"store": error, "driver": error}``, each
        ``None`` when that backend answered (every server of it, for the driver)."""
        errors: dict[str, str | None] = {}

        async def one(name: str, call: Awaitable[None]) -> None:
            try:
                await call
                errors[name] = None
            except BackendUnavailable as exc:
                errors[name] = str(exc)

        async with anyio.create_task_group() as tg:
            tg.start_soon(one, "store", self.store_call("ping", self.store.ping()))
            tg.start_soon(one, "driver", self._ping_drivers())
        return errors

    async def _ping_drivers(self) -> None:
        errors: list[str] = []

        async def one(driver: Driver) -> None:
            try:
                await self.driver_call("ping", driver.ping())
            except BackendUnavailable as exc:
                errors.append(str(exc))

        async with anyio.create_task_group() as tg:
            for driver in self.drivers:
                tg.start_soon(one, driver)
        if errors:
            raise BackendUnavailable(self.driver.name, "; ".join(sorted(errors)))

    async def leave(self, member: Member) -> None:
        """Mark the record ``left`` and remove the driver member, concurrently.

        The member is removed once the record is marked, so readers see ``left``
        rather than a passing ``not_joined`` (which looks like a crash), but never
        later than :data:`LEAVE_ORDER_GRACE` after the start: a slow store must not
        keep a stopped service's member alive. Raises the first failure.
        """
        errors: list[BackendUnavailable] = []
        marked = anyio.Event()

        async def from_driver() -> None:
            with anyio.move_on_after(LEAVE_ORDER_GRACE):
                await marked.wait()
            try:
                await self.driver_call("leave", self.driver.leave(member))
            except BackendUnavailable as exc:
                errors.append(exc)

        async def in_store() -> None:
            try:
                await self.store_call("mark_left", self.store.mark_left(member.key))
            except BackendUnavailable as exc:
                errors.append(exc)
            finally:
                marked.set()

        async with anyio.create_task_group() as tg:
            tg.start_soon(from_driver)
            tg.start_soon(in_store)
        if errors:
            raise errors[0]
