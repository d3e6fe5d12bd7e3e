"""One SQL store over a dialect: every statement, the schema and its migrations, once.

:class:`SQLStore` implements the whole :class:`~sg.store.base.Store` protocol. What
differs between databases is split in two:

- a :class:`Dialect`, pure data: column type names, boolean literals, the clock
  expression, how a timestamp becomes epoch seconds, and the placeholder style.
  Statements are written here with ``?`` placeholders and rendered once per store.
- a :class:`Connector`, the I/O: connect and close, one connection per operation
  (:class:`Connection`: execute / fetch), the lock that serialises migrations between
  processes, and which of the driver's exceptions are backend faults.

``sqlite.py`` and ``postgresql.py`` hold only those two hooks and a ``from_url``.
Deadlines belong to the caller; the connectors keep only their databases' native
timeouts (SQLite's ``busy_timeout``, asyncpg's connect and command timeouts).
"""

from __future__ import annotations

import builtins
import math
import re
import uuid as uuidlib
from collections.abc import AsyncIterator, Iterable, Sequence
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Protocol

import anyio

from sg.errors import BackendTimeout, ConfigError, NotFound, translate_errors
from sg.model import (  # the private names: the fast build of a listing's rows
    _VALID_NAMES,
    DEFAULT_ZONE,
    MAX_VERSION,
    NEW_SERVICE_REASON,
    Action,
    Actor,
    Member,
    Service,
    ServiceAction,
    ServiceKey,
    StoreContext,
    _ServiceTwin,
    collection_deferred,
    service_from_row,
)
from sg.store.base import MAX_CHECK_FAILURE, BeatResult, Survey, SurveyQuery

__all__ = [
    "ACTION_COLUMNS",
    "BEAT_CHUNK",
    "BEAT_PAIRS",
    "COLUMNS",
    "SCHEMA_VERSION",
    "Connection",
    "Connector",
    "Dialect",
    "SQLStore",
    "Statements",
    "migrations",
    "row_to_action",
    "row_to_service",
    "rows_to_services",
    "to_datetime",
    "url_seconds",
]

#: The schema version this release writes; stores refuse a newer database.
SCHEMA_VERSION = 4

#: Columns of ``services`` in the order every SELECT returns them (``binary`` is a
#: reserved word in PostgreSQL, so it is always quoted).
COLUMNS = (
    'id, uuid, host, "binary", topic, version, disabled, disabled_reason, forced_down, '
    "has_left, report_count, created_at, updated_at, check_failure, driver, zone"
)
#: Columns of ``service_actions`` (the audit trail) in the order every SELECT returns them.
ACTION_COLUMNS = 'id, service_uuid, host, "binary", action, actor, via, why, at'

#: Where beat_many's statement takes its ``(?, ?)`` pairs, and how many keys one
#: statement stamps (two parameters a key: far below SQLite's and PostgreSQL's limits).
BEAT_PAIRS = "<pairs>"
BEAT_CHUNK = 500

# No statement holds a literal "?": every "?" is a parameter (names are always bound).
_PARAM = re.compile(r"\?")


@dataclass(frozen=True, slots=True)
class Dialect:
    """What differs in the SQL text between databases (no I/O)."""

    #: The ``id`` column's type and key clause.
    serial_key: str
    #: The ``uuid`` column's type.
    uuid: str
    #: The type of flag columns and their literals.
    boolean: str
    true: str
    false: str
    #: The type of ``created_at`` / ``updated_at``.
    timestamp: str
    #: The store's clock, as a value of :attr:`timestamp` (read at the moment of the statement).
    clock: str
    #: Turns a :attr:`timestamp` expression ``{}`` into float seconds since the epoch.
    epoch_of: str
    #: ``True`` for numbered placeholders (``$1``, ``$2``), ``False`` for ``?``.
    numbered: bool

    def epoch(self, expr: str) -> str:
        """``expr`` (a timestamp) as float seconds since the epoch."""
        return self.epoch_of.format(expr)

    def params(self, sql: str) -> str:
        """``sql`` with its ``?`` placeholders in this dialect's style."""
        if not self.numbered:
            return sql
        counter = iter(range(1, sql.count("?") + 1))
        return _PARAM.sub(lambda _: f"${next(counter)}", sql)


def migrations(d: Dialect) -> dict[int, tuple[str, ...]]:
    """The schema, version by version, in dialect ``d``: version N's statements take a
    database at version N-1 to N."""
    return {
        1: (
            f"""CREATE TABLE services (
            id {d.serial_key},
            uuid {d.uuid} NOT NULL UNIQUE,
            host TEXT NOT NULL,
            "binary" TEXT NOT NULL,
            topic TEXT NOT NULL,
            version INTEGER NOT NULL DEFAULT 0,
            disabled {d.boolean} NOT NULL DEFAULT {d.false},
            disabled_reason TEXT,
            forced_down {d.boolean} NOT NULL DEFAULT {d.false},
            has_left {d.boolean} NOT NULL DEFAULT {d.false},
            report_count BIGINT NOT NULL DEFAULT 0,
            created_at {d.timestamp} NOT NULL DEFAULT ({d.clock}),
            updated_at {d.timestamp},
            UNIQUE (host, "binary")
        )""",
            "CREATE INDEX services_topic ON services (topic)",
            'CREATE INDEX services_binary ON services ("binary")',
        ),
        # Why the agent's local health check failed; NULL while it passes.
        2: ("ALTER TABLE services ADD COLUMN check_failure TEXT",),
        # For the fleet guard: the seconds between a beat and the stamp before it (a beat
        # after a long silence shows the store, or the path to it, came back), and the
        # driver the service beats through (during a driver roll each record is judged
        # by its own).
        3: (
            "ALTER TABLE services ADD COLUMN beat_gap DOUBLE PRECISION",
            "ALTER TABLE services ADD COLUMN driver TEXT",
        ),
        # The operators' tools: the zone os-services shows, and the audit trail of admin
        # changes (who, when by the store's clock, what, why). It keeps host and binary
        # and has no foreign key: a deleted service's history stays. IF NOT EXISTS: when
        # services and sg_schema were dropped under a live store (tests/backends/sql/
        # test_outage.py), the trail may have survived, and the schema is made again.
        4: (
            f"ALTER TABLE services ADD COLUMN zone TEXT NOT NULL DEFAULT '{DEFAULT_ZONE}'",
            f"""CREATE TABLE IF NOT EXISTS service_actions (
            id {d.serial_key},
            service_uuid {d.uuid} NOT NULL,
            host TEXT NOT NULL,
            "binary" TEXT NOT NULL,
            action TEXT NOT NULL,
            actor TEXT NOT NULL,
            via TEXT NOT NULL,
            why TEXT,
            at {d.timestamp} NOT NULL DEFAULT ({d.clock})
        )""",
            "CREATE INDEX IF NOT EXISTS service_actions_uuid ON service_actions (service_uuid)",
            'CREATE INDEX IF NOT EXISTS service_actions_key ON service_actions (host, "binary")',
        ),
    }


class Statements:
    """Every statement of the store, written once and rendered in one dialect."""

    #: Not rendered: the same text in every dialect.
    schema_table = "CREATE TABLE IF NOT EXISTS sg_schema (version INTEGER NOT NULL)"
    schema_version = "SELECT COALESCE(MAX(version), 0) FROM sg_schema"
    ping = "SELECT 1"

    def __init__(self, d: Dialect) -> None:
        # Age is computed where the stamp lives, so the reader's clock never matters.
        now, stamp = d.epoch(d.clock), d.epoch("updated_at")
        age = f"{now} - {stamp} AS age"
        returning = f"RETURNING {COLUMNS}, {age}"
        key = 'host = ? AND "binary" = ?'
        p = d.params
        self.migrations = migrations(d)
        self.schema_insert = p("INSERT INTO sg_schema (version) VALUES (?)")
        # list() adds its WHERE clause and renders its placeholders per call.
        self.select = f"SELECT {COLUMNS}, {age} FROM services"
        # disabled and its reason are set on insert only (enable_new_services).
        self.register = p(
            'INSERT INTO services (uuid, host, "binary", topic, version, zone, disabled, '
            f"disabled_reason, driver, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, {d.clock}) "
            'ON CONFLICT (host, "binary") DO UPDATE SET topic = excluded.topic, '
            "version = excluded.version, zone = excluded.zone, "
            f"driver = COALESCE(excluded.driver, services.driver) {returning}"
        )
        # Every SET expression reads the row as it was, so beat_gap is measured from the
        # previous stamp.
        self.beat = p(
            f"UPDATE services SET beat_gap = {now} - {stamp}, updated_at = {d.clock}, "
            f"report_count = report_count + 1, has_left = {d.false}, check_failure = NULL "
            f"WHERE {key} RETURNING id, report_count, {stamp} AS store_time"
        )
        # beat_many renders its (?, ?) pairs per call (BEAT_PAIRS marks where they go).
        self.beat_many = (
            f"UPDATE services SET beat_gap = {now} - {stamp}, updated_at = {d.clock}, "
            "report_count = report_count + 1, "
            f'has_left = {d.false}, check_failure = NULL WHERE (host, "binary") IN (VALUES {BEAT_PAIRS}) '
            f'RETURNING host, "binary", id, report_count, {d.epoch("updated_at")} AS store_time'
        )
        self.get = p(f"{self.select} WHERE {key}")
        self.get_by_uuid = p(f"{self.select} WHERE uuid = ?")
        self.set_disabled = p(
            f"UPDATE services SET disabled = ?, disabled_reason = ? WHERE {key} {returning}"
        )
        self.set_forced_down = p(f"UPDATE services SET forced_down = ? WHERE {key} {returning}")
        # Both admin flags in one statement (a PUT changing both must not half-apply);
        # a NULL leaves its column as it is.
        self.update_admin = p(
            "UPDATE services SET disabled = COALESCE(?, disabled), "
            "disabled_reason = CASE WHEN ? THEN ? ELSE disabled_reason END, "
            f"forced_down = COALESCE(?, forced_down) WHERE {key} {returning}"
        )
        self.set_check_failure = p(f"UPDATE services SET check_failure = ? WHERE {key} RETURNING id")
        self.mark_left = p(f"UPDATE services SET has_left = {d.true} WHERE {key} RETURNING id")
        self.delete = p(f'DELETE FROM services WHERE {key} RETURNING id, uuid, host, "binary"')
        self.record_action = p(
            'INSERT INTO service_actions (service_uuid, host, "binary", action, actor, via, why, at) '
            f"VALUES (?, ?, ?, ?, ?, ?, ?, {d.clock})"
        )
        self.actions_by_uuid = p(
            f"SELECT {ACTION_COLUMNS} FROM service_actions WHERE service_uuid = ? ORDER BY id"
        )
        self.actions_by_key = p(f"SELECT {ACTION_COLUMNS} FROM service_actions WHERE {key} ORDER BY id")
        self.min_version = p('SELECT MIN(version) FROM services WHERE "binary" = ?')
        self._dialect = d
        #: Rendered survey statements by their clauses (column names only, never values:
        #: a few dozen at most). Rendering one was a fifth of a verdict's CPU, and the
        #: same text each time also lets asyncpg find its prepared statement.
        self._surveys: dict[tuple[str, ...], str] = {}

    def survey(self, clauses: Sequence[str]) -> str:
        """The survey statement: the matching rows (``clauses`` ANDed, each with one
        ``?``), each with its ``beat_gap``.

        Without clauses the rows are the whole store, and its context is computed from
        them. With clauses, each stale row also carries the store's context and its
        topic's size, as subqueries evaluated only for a stale row (a ``CASE`` branch):
        a read of live services pays nothing for them. Its parameters: the down time,
        then (with clauses) down time, window, down time, window, down time, once per
        stale-row column in order, then the clauses'."""
        key = tuple(clauses)
        sql = self._surveys.get(key)
        if sql is None:
            sql = self._surveys[key] = self._render_survey(key)
        return sql

    def _render_survey(self, clauses: Sequence[str]) -> str:
        d, p = self._dialect, self._dialect.params
        now, stamp, inner = d.epoch(d.clock), d.epoch("services.updated_at"), d.epoch("t.updated_at")
        columns = ", ".join(f"services.{c.strip()}" for c in COLUMNS.split(","))
        sql = f"SELECT {columns}, {now} - {stamp} AS age, services.beat_gap"
        if clauses:
            stale = f"{now} - {stamp} > ?"
            # The previous stamps of the beats that landed within the window after a
            # silence longer than the down time (beat_gap is the gap each beat closed).
            resumed = (
                f"CASE WHEN t.beat_gap > ? AND {now} - {inner} < ? THEN {now} - {inner} + t.beat_gap END"
            )
            parts = {
                "ctx_total": "SELECT COUNT(*) FROM services t",
                "ctx_newest_age": f"SELECT {now} - MAX({inner}) FROM services t",
                "ctx_resumed_oldest": f"SELECT MAX({resumed}) FROM services t",
                "ctx_resumed_newest": f"SELECT MIN({resumed}) FROM services t",
                "topic_size": "SELECT COUNT(*) FROM services t WHERE t.topic = services.topic",
            }
            sql += "".join(
                f", CASE WHEN {stale} THEN ({query}) END AS {name}" for name, query in parts.items()
            )
            sql += f" FROM services WHERE {' AND '.join(clauses)}"
        else:
            sql += " FROM services"
        return p(sql + ' ORDER BY services.host, services."binary"')


def _context(rows: Sequence[Any], down: float, window: float) -> StoreContext:
    """The store's context from all of its rows (what the subqueries of a filtered
    survey compute in SQL)."""
    ages = [float(row[16]) for row in rows if row[16] is not None]
    resumed = [
        float(row[16]) + float(row[17])
        for row in rows
        if row[16] is not None and row[17] is not None and float(row[17]) > down and float(row[16]) < window
    ]
    return StoreContext(
        total=len(rows),
        newest_age=min(ages) if ages else None,
        resumed=(max(resumed), min(resumed)) if resumed else None,
    )


#: One audit row to write with a change: the action, who, and why.
Audit = tuple[Action, Actor, str | None]


def _audits(audit: Sequence[Audit] | Audit | None) -> Sequence[Audit]:
    """One audit row or several, as a sequence (an ``Audit`` starts with its action)."""
    if audit is None:
        return ()
    if audit and isinstance(audit[0], str):
        return [audit]  # type: ignore[list-item]
    return audit  # type: ignore[return-value]


def url_seconds(shown_url: str, option: str, value: str) -> float:
    """A store URL option in seconds: a positive finite number, else :class:`ConfigError`."""
    try:
        seconds = float(value)
    except ValueError:
        seconds = math.nan
    if not math.isfinite(seconds) or seconds <= 0:
        raise ConfigError(f"store URL {shown_url!r}: {option} must be a positive number of seconds")
    return seconds


class Connection(Protocol):
    """One database connection, for the length of one operation. Rows support both
    ``row[0]`` and ``row["column"]``."""

    async def execute(self, sql: str, args: Sequence[object] = ()) -> None:
        """Run a statement, discarding any rows."""

    async def fetchone(self, sql: str, args: Sequence[object] = ()) -> Any | None:
        """Run a statement and return its first row, or ``None``."""

    async def fetchall(self, sql: str, args: Sequence[object] = ()) -> Sequence[Any]:
        """Run a statement and return all its rows."""
        ...

    async def fetchtuples(self, sql: str, args: Sequence[object] = ()) -> Sequence[Sequence[Any]]:
        """:meth:`fetchall`, the rows read by position only (plain tuples where the
        driver can: a listing's rows are unpacked, never read by name)."""
        ...


class Connector(Protocol):
    """A database's I/O hooks for :class:`SQLStore`."""

    #: The store's name in logs and errors.
    name: str
    dialect: Dialect
    #: The driver's exceptions that mean the backend failed (mapped to BackendUnavailable).
    faults: tuple[type[BaseException], ...]

    def where(self) -> str:
        """The database, for messages (never with a password)."""
        ...

    def session(self) -> AbstractAsyncContextManager[Connection]:
        """One connection for one operation, connecting first if needed."""
        ...

    def migration_lock(self, conn: Connection) -> AbstractAsyncContextManager[None]:
        """A transaction on ``conn`` that holds the database-wide migration lock, so two
        processes opening a new database at once cannot both create the schema."""
        ...

    def transaction(self, conn: Connection) -> AbstractAsyncContextManager[None]:
        """A transaction on ``conn``: committed when the block ends, rolled back when it
        raises (an admin change and its audit row commit together)."""
        ...

    def schema_missing(self, exc: BaseException) -> bool:
        """Whether ``exc`` says our tables are gone (dropped under us)."""
        ...

    async def close(self) -> None:
        """Release connections; on cancellation, drop them without waiting."""


def to_datetime(value: object) -> datetime | None:
    """Map a stored timestamp (epoch seconds or a datetime) to an aware UTC datetime."""
    if value is None:
        return None
    if isinstance(value, datetime):
        # asyncpg already gives timestamptz in UTC: skip the conversion (a listing has
        # two stamps per row).
        return value if value.tzinfo is UTC else value.astimezone(UTC)
    if isinstance(value, int | float):
        return datetime.fromtimestamp(float(value), tz=UTC)
    raise TypeError(f"unexpected timestamp {value!r}")


def row_to_service(row: Any) -> Service:
    """Build a :class:`Service` from a row holding :data:`COLUMNS` and ``age``, in that
    order (a survey's row holds more after them)."""
    return rows_to_services((row,))[0]


def rows_to_services(rows: Iterable[Any]) -> list[Service]:
    """:func:`row_to_service` of each of ``rows``, in one loop.

    Once per row of a listing, so everything is a local, the common types are tested
    with ``type() is`` before any conversion, and the Service is filled in place (see
    :func:`sg.model.service_from_row`); a row whose names or version are not already
    known good goes through :func:`~sg.model.service_from_row`, which checks them."""
    out: list[Service] = []
    append = out.append
    valid = _VALID_NAMES
    new, twin, service_cls = object.__new__, _ServiceTwin, Service
    stamp, utc, dt = datetime.fromtimestamp, UTC, datetime
    for row in rows:
        # Unpacked by position: both drivers' rows slice to a tuple.
        (
            id_,
            uuid,
            host,
            binary,
            topic,
            version,
            disabled,
            disabled_reason,
            forced_down,
            has_left,
            report_count,
            created_at,
            updated_at,
            check_failure,
            driver,
            zone,
            age,
        ) = row[:17]
        # SQLite stores epoch seconds (REAL), asyncpg gives aware UTC datetimes, kept as
        # they are (to_datetime's own test, without the call); anything else converts.
        if type(created_at) is float:
            created_at = stamp(created_at, utc)
        elif not (type(created_at) is dt and created_at.tzinfo is utc):
            created_at = to_datetime(created_at)
        if type(updated_at) is float:
            updated_at = stamp(updated_at, utc)
        elif updated_at is not None and not (type(updated_at) is dt and updated_at.tzinfo is utc):
            updated_at = to_datetime(updated_at)
        if type(age) is not float and age is not None:
            age = float(age)
        if type(uuid) is not str:
            uuid = str(uuid)
        if type(id_) is not int:
            id_ = int(id_)
        if type(report_count) is not int:
            report_count = int(report_count)
        if not (
            host in valid
            and binary in valid
            and topic in valid
            and type(version) is int
            and 0 <= version <= MAX_VERSION
        ):
            append(
                service_from_row(
                    id_,
                    uuid,
                    host,
                    binary,
                    topic,
                    int(version),
                    bool(disabled),
                    disabled_reason,
                    bool(forced_down),
                    bool(has_left),
                    report_count,
                    created_at,
                    updated_at,
                    check_failure,
                    driver,
                    zone,
                    age,
                )
            )
            continue
        s = new(twin)
        s.host = host
        s.binary = binary
        s.topic = topic
        s.id = id_
        s.uuid = uuid
        s.version = version
        s.disabled = True if disabled else False  # noqa: SIM210 (bool() without a call)
        s.disabled_reason = disabled_reason
        s.forced_down = True if forced_down else False  # noqa: SIM210 (bool() without a call)
        s.left = True if has_left else False  # noqa: SIM210 (bool() without a call)
        s.report_count = report_count
        s.created_at = created_at
        s.updated_at = updated_at
        s.age = age
        s.check_failure = check_failure
        s.driver = driver
        s.zone = zone
        s.__class__ = service_cls
        append(s)
    return out


def row_to_action(row: Any) -> ServiceAction:
    """Build a :class:`ServiceAction` from a row holding :data:`ACTION_COLUMNS`."""
    return ServiceAction(
        id=int(row["id"]),
        uuid=str(row["service_uuid"]),
        host=row["host"],
        binary=row["binary"],
        action=row["action"],
        actor=row["actor"],
        via=row["via"],
        why=row["why"],
        at=to_datetime(row["at"]),
    )


class SQLStore:
    """Service records in a SQL database, through a :class:`Connector`.

    The schema is created or migrated on the first operation (and again after it was
    dropped under us), so a store built while its database is down starts working
    when the database comes back.
    """

    def __init__(self, connector: Connector, *, timeout: float) -> None:
        self.name = connector.name
        self.connector = connector
        #: Bounds close() only; every other deadline is the caller's.
        self.timeout = timeout
        self.sql = Statements(connector.dialect)
        self._schema_ready = False
        self._schema_lock = anyio.Lock()

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.connector.where()!r})"

    # -- plumbing ----------------------------------------------------------------------------

    @asynccontextmanager
    async def _session(self, what: str) -> AsyncIterator[Connection]:
        """One connection, the schema ready, the backend's faults mapped at this boundary."""
        connector = self.connector
        with translate_errors(self.name, what, connector.faults):
            try:
                async with connector.session() as conn:
                    await self._ensure_schema(conn)
                    yield conn
            except TimeoutError as exc:
                # Only a native timeout (asyncpg's command timeout) lands here: the caller's
                # deadline is a cancellation until it leaves the caller's scope.
                raise BackendTimeout(self.name, f"{what}: the database's own timeout expired") from exc
            except connector.faults as exc:
                if connector.schema_missing(exc):
                    # Dropped and re-created under us: migrate again on the next call.
                    self._schema_ready = False
                raise

    async def _ensure_schema(self, conn: Connection) -> None:
        if self._schema_ready:
            return
        async with self._schema_lock:
            if not self._schema_ready:
                await self._migrate(conn)
                self._schema_ready = True

    async def _migrate(self, conn: Connection) -> None:
        sql = self.sql
        async with self.connector.migration_lock(conn):
            await conn.execute(sql.schema_table)
            row = await conn.fetchone(sql.schema_version)
            current = int(row[0]) if row is not None else 0
            if current > SCHEMA_VERSION:
                raise ConfigError(
                    f"database {self.connector.where()} has schema version {current}, newer than "
                    f"this release supports ({SCHEMA_VERSION}); upgrade servicegroup"
                )
            for version in range(current + 1, SCHEMA_VERSION + 1):
                for statement in sql.migrations[version]:
                    await conn.execute(statement)
                await conn.execute(sql.schema_insert, (version,))

    async def _one(self, what: str, sql: str, args: Sequence[object] = ()) -> Any | None:
        async with self._session(what) as conn:
            return await conn.fetchone(sql, args)

    async def _audited(
        self, what: str, sql: str, args: Sequence[object], audit: Sequence[Audit] | Audit | None
    ) -> Any | None:
        """Run one change; with ``audit`` (one or more (action, actor, why)), record them
        in the same transaction (the change's row gives the service's uuid, host and binary)."""
        audits = _audits(audit)
        async with self._session(what) as conn:
            if not audits:
                return await conn.fetchone(sql, args)
            async with self.connector.transaction(conn):
                row = await conn.fetchone(sql, args)
                if row is not None:
                    for action, actor, why in audits:
                        record = (str(row["uuid"]), row["host"], row["binary"], action, actor.name, actor.via)
                        reason = actor.why if actor.why is not None else why
                        await conn.execute(self.sql.record_action, (*record, reason))
            return row

    async def _changed(
        self,
        what: str,
        sql: str,
        args: Sequence[object],
        key: ServiceKey,
        audit: Sequence[Audit] | Audit | None = None,
    ) -> Service:
        row = await self._audited(what, sql, args, audit)
        if row is None:
            raise NotFound(f"no service host={key.host!r} binary={key.binary!r}")
        return row_to_service(row)

    # -- the Store protocol ------------------------------------------------------------------

    async def open(self) -> None:
        """Connect and create or migrate the schema."""
        async with self._session("open"):
            pass

    async def close(self) -> None:
        """Release connections, shielded and bounded by the store's timeout. Idempotent."""
        self._schema_ready = False
        with anyio.CancelScope(shield=True), anyio.move_on_after(self.timeout):
            await self.connector.close()

    async def ping(self) -> None:
        """Run a trivial query."""
        await self._one("ping", self.sql.ping)

    async def register(self, member: Member, *, driver: str | None = None) -> Service:
        """Upsert the record for ``member.key``; its id and uuid never change. ``driver``
        names the driver the service beats through (``None`` keeps the one recorded)."""
        reason = None if member.enable_new else NEW_SERVICE_REASON
        args = (
            str(uuidlib.uuid4()),
            member.host,
            member.binary,
            member.topic,
            member.version,
            member.zone,
            not member.enable_new,
            reason,
            driver,
        )
        row = await self._one("register", self.sql.register, args)
        assert row is not None, "an upsert with RETURNING always returns its row"
        return row_to_service(row)

    async def beat(self, key: ServiceKey) -> BeatResult | None:
        """Stamp ``updated_at`` with the store's clock in one UPDATE."""
        row = await self._one("beat", self.sql.beat, key)
        if row is None:
            return None
        return BeatResult(int(row[0]), int(row[1]), float(row[2]))

    async def beat_many(self, keys: Sequence[ServiceKey]) -> list[BeatResult | None]:
        """:meth:`beat` for each of ``keys`` in one UPDATE per :data:`BEAT_CHUNK` keys, on one
        connection (:class:`~sg.store.base.BatchBeats`)."""
        stamped: dict[tuple[str, str], BeatResult] = {}
        async with self._session("beat_many") as conn:
            for start in range(0, len(keys), BEAT_CHUNK):
                chunk = keys[start : start + BEAT_CHUNK]
                pairs = ", ".join(["(?, ?)"] * len(chunk))
                sql = self.connector.dialect.params(self.sql.beat_many.replace(BEAT_PAIRS, pairs))
                rows = await conn.fetchall(sql, [name for key in chunk for name in key])
                for row in rows:
                    stamped[(row[0], row[1])] = BeatResult(int(row[2]), int(row[3]), float(row[4]))
        return [stamped.get((key.host, key.binary)) for key in keys]

    async def get(self, key: ServiceKey) -> Service | None:
        """One record with its age."""
        row = await self._one("get", self.sql.get, key)
        return None if row is None else row_to_service(row)

    async def get_by_uuid(self, uuid: str) -> Service | None:
        """The record with this uuid (``None`` for a malformed uuid too)."""
        try:
            value = uuidlib.UUID(uuid)
        except (ValueError, TypeError, AttributeError):
            return None
        row = await self._one("get_by_uuid", self.sql.get_by_uuid, (str(value),))
        return None if row is None else row_to_service(row)

    async def list(
        self, *, topic: str | None = None, binary: str | None = None, host: str | None = None
    ) -> list[Service]:
        """Matching records in one query, ordered by host then binary."""
        clauses: list[str] = []
        args: list[str] = []
        for column, value in (("topic", topic), ('"binary"', binary), ("host", host)):
            if value is not None:
                clauses.append(f"{column} = ?")
                args.append(value)
        where = f" WHERE {' AND '.join(clauses)}" if clauses else ""
        sql = self.connector.dialect.params(f'{self.sql.select}{where} ORDER BY host, "binary"')
        async with self._session("list") as conn:
            rows = await conn.fetchall(sql, args)
        return rows_to_services(rows)

    async def survey(self, query: SurveyQuery) -> Survey:
        """Matching records plus what the store says about itself, in one query."""
        clauses: list[str] = []
        args: list[object] = []
        filters: list[tuple[str, object]] = [
            ("topic", query.topic),
            ('"binary"', query.binary),
            ("host", query.host),
        ]
        if query.key is not None:
            filters += [("host", query.key.host), ('"binary"', query.key.binary)]
        if query.uuid is not None:
            try:
                filters.append(("uuid", str(uuidlib.UUID(query.uuid))))
            except (ValueError, TypeError, AttributeError):
                return Survey([], StoreContext())
        for column, value in filters:
            if value is not None:
                clauses.append(f"services.{column} = ?")
                args.append(value)
        down, window = query.down_time, query.window
        if clauses:
            args = [down, down, down, down, window, down, down, window, down, *args]
        sql = self.sql.survey(clauses)
        async with self._session("survey") as conn:
            rows = await conn.fetchtuples(sql, args)
        with collection_deferred():
            services = rows_to_services(rows)
        if not clauses:
            return Survey(services, _context(rows, down, window))
        # Columns 18 to 22: the context and the topic's size (Statements.survey), set
        # only on stale rows.
        stale = [row for row in rows if row[18] is not None]
        if not stale:
            return Survey(services, StoreContext(), {})
        first = stale[0]
        total, newest_age, oldest, newest = first[18:22]
        context = StoreContext(
            total=int(total),
            newest_age=None if newest_age is None else float(newest_age),
            resumed=None if oldest is None else (float(oldest), float(newest)),
        )
        return Survey(services, context, {row[4]: int(row[22]) for row in stale})

    async def set_disabled(
        self, key: ServiceKey, disabled: bool, reason: str | None, *, actor: Actor | None = None
    ) -> Service:
        """Enable or disable; never touches ``updated_at``. With ``actor``, audited."""
        kept = reason if disabled else None
        args = (disabled, kept, *key)
        audit: tuple[Action, Actor, str | None] | None = None
        if actor is not None:
            audit = ("disable" if disabled else "enable", actor, kept)
        return await self._changed("set_disabled", self.sql.set_disabled, args, key, audit)

    async def set_forced_down(
        self, key: ServiceKey, forced_down: bool, *, actor: Actor | None = None
    ) -> Service:
        """Set or clear ``forced_down``; never touches ``updated_at``. With ``actor``, audited."""
        audit: tuple[Action, Actor, str | None] | None = None
        if actor is not None:
            audit = ("force_down" if forced_down else "force_up", actor, None)
        return await self._changed(
            "set_forced_down", self.sql.set_forced_down, (forced_down, *key), key, audit
        )

    async def update_admin(
        self,
        key: ServiceKey,
        *,
        disabled: bool | None = None,
        reason: str | None = None,
        forced_down: bool | None = None,
        actor: Actor | None = None,
    ) -> Service:
        """Change ``disabled`` (with its reason) and ``forced_down`` in one statement; a
        ``None`` leaves that flag as it is. Never touches ``updated_at``. With ``actor``,
        each change is audited in the same transaction."""
        kept = reason if disabled else None
        args = (disabled, disabled is not None, kept, forced_down, *key)
        audits: list[Audit] = []
        if actor is not None and disabled is not None:
            audits.append(("disable" if disabled else "enable", actor, kept))
        if actor is not None and forced_down is not None:
            audits.append(("force_down" if forced_down else "force_up", actor, None))
        return await self._changed("update_admin", self.sql.update_admin, args, key, audits)

    async def set_check_failure(self, key: ServiceKey, reason: str | None) -> bool:
        """Record or clear the failed check's reason (cut to :data:`MAX_CHECK_FAILURE`);
        never touches ``updated_at``."""
        value = None if reason is None else reason[:MAX_CHECK_FAILURE]
        return await self._one("set_check_failure", self.sql.set_check_failure, (value, *key)) is not None

    async def mark_left(self, key: ServiceKey) -> bool:
        """Record a clean stop."""
        return await self._one("mark_left", self.sql.mark_left, key) is not None

    async def delete(self, key: ServiceKey, *, actor: Actor | None = None, action: Action = "delete") -> bool:
        """Remove the record. With ``actor``, audited as ``action``."""
        audit = None if actor is None else (action, actor, None)
        return await self._audited("delete", self.sql.delete, key, audit) is not None

    async def actions(
        self, *, uuid: str | None = None, key: ServiceKey | None = None
    ) -> builtins.list[ServiceAction]:
        """The audit trail of one service, oldest first (by ``uuid`` or by ``key``)."""
        args: tuple[str, ...]
        if uuid is not None:
            try:
                sql, args = self.sql.actions_by_uuid, (str(uuidlib.UUID(uuid)),)
            except (ValueError, TypeError, AttributeError):
                return []
        elif key is not None:
            sql, args = self.sql.actions_by_key, tuple(key)
        else:
            raise TypeError("actions() needs uuid or key")
        async with self._session("actions") as conn:
            rows = await conn.fetchall(sql, args)
        return [row_to_action(row) for row in rows]

    async def min_version(self, binary: str) -> int | None:
        """``MIN(version)`` over every record of ``binary``, in SQL."""
        row = await self._one("min_version", self.sql.min_version, (binary,))
        return None if row is None or row[0] is None else int(row[0])
