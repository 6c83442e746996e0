"""The report store: the handoff history in an embedded DuckDB file, and the SQL read from it.

Delivery semantics: rows and the Kafka positions they came from are written in ONE DuckDB
transaction (`write`), and reading resumes from those positions (`positions`): a crash before
the commit loses nothing (the records are read again), a crash after it repeats nothing. Rows
are keyed by event id (`INSERT OR IGNORE`), so a record published twice upstream (routing is
at-least-once) is stored once. Deleting the file rebuilds the store from the topics (their
retention is the history's reach, see shared/topics.py).

Threads: DuckDB connections are not shared between threads; every call opens its own cursor
on the one database, so the consumer's writes (on a worker thread) and the API's reads (on
others) run side by side, each reader seeing the last committed state.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Mapping, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

import duckdb

from metrics.domain.history import (
    DECISION_COLUMNS,
    LIFECYCLE_COLUMNS,
    STANDARD_COLUMNS,
    DecisionRow,
    HistoryRow,
    LifecycleRow,
    StandardRow,
)
from metrics.domain.reports import GROUP_COLUMNS, Grouping, ReportFilter

log = logging.getLogger(__name__)

SCHEMA_VERSION = "1"

TABLES = {
    "lifecycle": """
        event_id VARCHAR PRIMARY KEY,
        handoff_id VARCHAR NOT NULL,
        case_id VARCHAR,
        type VARCHAR NOT NULL,
        occurred_at TIMESTAMP NOT NULL,
        recorded_at TIMESTAMP NOT NULL,
        from_process VARCHAR,
        to_process VARCHAR,
        kind VARCHAR,
        priority VARCHAR,
        route_id VARCHAR,
        standard_version INTEGER,
        actor VARCHAR,
        reason VARCHAR,
        note VARCHAR,
        rating INTEGER,
        comment VARCHAR,
        source VARCHAR,
        seq BIGINT NOT NULL""",
    "decisions": """
        event_id VARCHAR PRIMARY KEY,
        handoff_id VARCHAR NOT NULL,
        case_id VARCHAR NOT NULL,
        type VARCHAR NOT NULL,
        occurred_at TIMESTAMP NOT NULL,
        kind VARCHAR NOT NULL,
        from_process VARCHAR NOT NULL,
        to_process VARCHAR NOT NULL,
        priority VARCHAR NOT NULL,
        cycle INTEGER NOT NULL,
        route_id VARCHAR NOT NULL,
        standard_version INTEGER NOT NULL,
        clock VARCHAR,
        target_seconds DOUBLE,
        deadline TIMESTAMP,
        revision INTEGER,
        decided_at TIMESTAMP,
        reached_at TIMESTAMP,
        business_seconds DOUBLE,
        wall_seconds DOUBLE,
        late BOOLEAN,
        retracted VARCHAR,
        reason VARCHAR,
        threshold INTEGER""",
    "standards": """
        route_id VARCHAR NOT NULL,
        version INTEGER NOT NULL,
        from_process VARCHAR NOT NULL,
        to_process VARCHAR NOT NULL,
        kind VARCHAR NOT NULL,
        objective DOUBLE NOT NULL,
        calendar VARCHAR NOT NULL,
        delivery_seconds DOUBLE,
        targets VARCHAR NOT NULL,
        map_version INTEGER NOT NULL,
        published_at TIMESTAMP NOT NULL,
        PRIMARY KEY (route_id, version)""",
    "positions": """
        topic VARCHAR NOT NULL,
        partition INTEGER NOT NULL,
        next_offset BIGINT NOT NULL,
        PRIMARY KEY (topic, partition)""",
    "store_meta": """
        name VARCHAR PRIMARY KEY,
        value VARCHAR NOT NULL""",
}


def table_columns(table: str) -> tuple[str, ...]:
    """The column names of one of the store's tables, in order."""
    names = []
    for line in TABLES[table].strip().splitlines():
        word = line.strip().split(" ", 1)[0]
        if word != "PRIMARY":
            names.append(word)
    return tuple(names)


COLUMNS = {
    "lifecycle": LIFECYCLE_COLUMNS,
    "decisions": DECISION_COLUMNS,
    "standards": STANDARD_COLUMNS,
}


def _insert(table: str, columns: Sequence[str], verb: str = "INSERT OR IGNORE") -> str:
    # One statement per batch: a list parameter per column, zipped by unnest. DuckDB's
    # executemany is row by row (about a thousand times slower).
    unnests = ", ".join("unnest(?)" for _ in columns)
    return f"{verb} INTO {table} ({', '.join(columns)}) SELECT {unnests}"


def _columnar(rows: Sequence[Any], columns: Sequence[str]) -> list[list[Any]]:
    return [[getattr(row, c) for row in rows] for c in columns]


class StoreClosed(RuntimeError):
    """The store is not open (the service is stopping)."""


class HistoryStore:
    """The DuckDB file of the handoff history (or `:memory:`)."""

    def __init__(self, path: str) -> None:
        self.path = path
        self._db: duckdb.DuckDBPyConnection | None = None
        self.open()

    def open(self) -> None:
        """Open the file (creating it and its tables) unless it is open already."""
        if self._db is not None:
            return
        if self.path != ":memory:":
            Path(self.path).parent.mkdir(parents=True, exist_ok=True)
        self._db = duckdb.connect(self.path)
        cursor = self._db.cursor()
        try:
            for table, body in TABLES.items():
                cursor.execute(f"CREATE TABLE IF NOT EXISTS {table} ({body})")
            found = cursor.execute(
                "SELECT value FROM store_meta WHERE name = 'schema_version'"
            ).fetchone()
            if found is None:
                cursor.execute(
                    "INSERT INTO store_meta VALUES ('schema_version', ?)", [SCHEMA_VERSION]
                )
            elif found[0] != SCHEMA_VERSION:
                raise RuntimeError(
                    f"{self.path} holds report-store schema {found[0]}, this version writes "
                    f"{SCHEMA_VERSION}: move the file away and the store is rebuilt from Kafka"
                )
            for table in TABLES:
                # A file written by a development build of the same schema version.
                found_columns = tuple(
                    name
                    for (name,) in cursor.execute(
                        "SELECT column_name FROM information_schema.columns "
                        "WHERE table_name = ? ORDER BY ordinal_position",
                        [table],
                    ).fetchall()
                )
                if found_columns != table_columns(table):
                    raise RuntimeError(
                        f"{self.path}: table {table} has columns {', '.join(found_columns)}, "
                        f"this version writes {', '.join(table_columns(table))}: move the "
                        "file away and the store is rebuilt from Kafka"
                    )
        finally:
            cursor.close()

    def close(self) -> None:
        """Close the database (checkpointing its write-ahead log); `open` opens it again."""
        if self._db is not None:
            self._db.close()
            self._db = None

    def cursor(self) -> duckdb.DuckDBPyConnection:
        """A cursor of its own for the calling thread."""
        if self._db is None:
            raise StoreClosed(f"the report store {self.path} is closed")
        return self._db.cursor()

    # ----------------------------------------------------------------------- writing

    def positions(self) -> dict[tuple[str, int], int]:
        """The next offset to read per (topic, partition), as last committed with rows."""
        cursor = self.cursor()
        try:
            rows = cursor.execute("SELECT topic, partition, next_offset FROM positions").fetchall()
        finally:
            cursor.close()
        return {(str(t), int(p)): int(o) for t, p, o in rows}

    def write(self, rows: Sequence[HistoryRow], positions: Mapping[tuple[str, int], int]) -> None:
        """Store rows and the positions after them, in one transaction (all or nothing)."""
        lifecycle = [r for r in rows if isinstance(r, LifecycleRow)]
        decisions = [r for r in rows if isinstance(r, DecisionRow)]
        cursor = self.cursor()
        try:
            cursor.execute("BEGIN TRANSACTION")
            try:
                if lifecycle:
                    cursor.execute(
                        _insert("lifecycle", LIFECYCLE_COLUMNS),
                        _columnar(lifecycle, LIFECYCLE_COLUMNS),
                    )
                if decisions:
                    cursor.execute(
                        _insert("decisions", DECISION_COLUMNS),
                        _columnar(decisions, DECISION_COLUMNS),
                    )
                if positions:
                    keys = list(positions)
                    cursor.execute(
                        _insert(
                            "positions",
                            ("topic", "partition", "next_offset"),
                            "INSERT OR REPLACE",
                        ),
                        [[t for t, _ in keys], [p for _, p in keys], [positions[k] for k in keys]],
                    )
                cursor.execute("COMMIT")
            except BaseException:
                cursor.execute("ROLLBACK")
                raise
        finally:
            cursor.close()

    def put_standards(self, rows: Sequence[StandardRow]) -> None:
        """Remember standard versions (a version seen before keeps its first record)."""
        if not rows:
            return
        cursor = self.cursor()
        try:
            cursor.execute(
                _insert("standards", STANDARD_COLUMNS), _columnar(rows, STANDARD_COLUMNS)
            )
        finally:
            cursor.close()

    def purge(self, before: datetime) -> int:
        """Delete history that happened before `before` (naive UTC); returns rows deleted."""
        cursor = self.cursor()
        try:
            cursor.execute("BEGIN TRANSACTION")
            deleted = 0
            for table in ("lifecycle", "decisions"):
                found = cursor.execute(
                    f"DELETE FROM {table} WHERE occurred_at < ? RETURNING 1", [before]
                ).fetchall()
                deleted += len(found)
            cursor.execute("COMMIT")
        finally:
            cursor.close()
        return deleted

    def counts(self) -> dict[str, int]:
        """Rows per history table."""
        cursor = self.cursor()
        try:
            return {
                table: int(cursor.execute(f"SELECT count(*) FROM {table}").fetchone()[0])  # type: ignore[index]
                for table in ("lifecycle", "decisions", "standards")
            }
        finally:
            cursor.close()

    # ----------------------------------------------------------------------- reading

    def query(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        """Every row of a read-only query."""
        cursor = self.cursor()
        try:
            return cursor.execute(sql, list(params)).fetchall()
        finally:
            cursor.close()

    def stream(
        self, sql: str, params: Sequence[Any] = (), chunk: int = 2000
    ) -> Iterator[list[tuple[Any, ...]]]:
        """The rows of a query, `chunk` at a time (the result is never held whole)."""
        cursor = self.cursor()
        try:
            cursor.execute(sql, list(params))
            while True:
                rows = cursor.fetchmany(chunk)
                if not rows:
                    return
                yield rows
        finally:
            cursor.close()


# --------------------------------------------------------------------------- report SQL


def _key_sql(columns: Sequence[str], alias: str = "") -> str:
    prefix = f"{alias}." if alias else ""
    return "concat_ws(chr(31), " + ", ".join(f"{prefix}{c}::VARCHAR" for c in columns) + ")"


def key_text(key: Sequence[Any]) -> str:
    """A group key as the SQL `_key_sql` spells it."""
    return "\x1f".join(str(v) for v in key)


def _where_handoff(filters: ReportFilter, alias: str = "") -> tuple[str, list[Any]]:
    """Conditions on who the handoff is between and its route (invariant per handoff)."""
    p = f"{alias}." if alias else ""
    clauses: list[str] = []
    params: list[Any] = []
    if filters.process is not None:
        clauses.append(f"({p}from_process = ? OR {p}to_process = ?)")
        params += [filters.process, filters.process]
    if filters.from_process is not None:
        clauses.append(f"{p}from_process = ?")
        params.append(filters.from_process)
    if filters.to_process is not None:
        clauses.append(f"{p}to_process = ?")
        params.append(filters.to_process)
    if filters.route_id is not None:
        clauses.append(f"{p}route_id = ?")
        params.append(filters.route_id)
    return "".join(f" AND {c}" for c in clauses), params


def clocks_sql(filters: ReportFilter) -> tuple[str, list[Any]]:
    """A CTE `clocks`: one row per (handoff, cycle, clock) with its net outcome, the instant it
    counts at (milestone for met, deadline for missed), its labels and its durations."""
    where, params = _where_handoff(filters)
    if filters.milestone is not None:
        where += " AND clock = ?"
        params.append(filters.milestone.value)
    outcome = "type IN ('met', 'missed')"
    sql = f"""
    clock_rows AS (
        SELECT handoff_id, cycle, clock,
            sum(CASE WHEN type = 'met' THEN 1
                     WHEN type = 'retracted' AND retracted = 'met' THEN -1 ELSE 0 END) AS met,
            sum(CASE WHEN type = 'missed' THEN 1
                     WHEN type = 'retracted' AND retracted = 'missed' THEN -1 ELSE 0 END)
                AS missed,
            count(*) FILTER (WHERE type = 'retracted') AS retractions,
            arg_max(occurred_at, revision) FILTER (WHERE {outcome}) AS outcome_at,
            max(occurred_at) AS last_at,
            arg_max(priority, revision) FILTER (WHERE {outcome}) AS outcome_priority,
            any_value(priority) AS any_priority,
            any_value(from_process) AS from_process,
            any_value(to_process) AS to_process,
            any_value(route_id) AS route_id,
            any_value(standard_version) AS standard_version,
            any_value(kind) AS kind,
            any_value(case_id) AS case_id,
            arg_max(deadline, revision) FILTER (WHERE {outcome}) AS deadline,
            arg_max(target_seconds, revision) FILTER (WHERE {outcome}) AS target_seconds,
            max(business_seconds) FILTER (WHERE type = 'stopped') AS business_seconds,
            max(wall_seconds) FILTER (WHERE type = 'stopped') AS wall_seconds,
            max(reached_at) FILTER (WHERE type = 'stopped') AS reached_at
        FROM decisions
        WHERE clock IS NOT NULL AND type <> 'warning'{where}
        GROUP BY handoff_id, cycle, clock
    ),
    clocks AS (
        SELECT * EXCLUDE (outcome_priority, any_priority),
            CASE WHEN met > 0 THEN 'met' WHEN missed > 0 THEN 'missed' END AS outcome,
            coalesce(outcome_at, last_at) AS counted_at,
            coalesce(outcome_priority, any_priority) AS priority
        FROM clock_rows
    )"""
    return sql, params


def handoffs_sql(restrict: str = "") -> str:
    """A CTE `handoffs`: who each handoff is between, under which route and version, from its
    first opening (sla's `opened` first, routing's opening events otherwise). `restrict` is
    SQL selecting the handoff ids needed (all when empty)."""
    only = f" AND handoff_id IN ({restrict})" if restrict else ""
    return f"""
    openings AS (
        SELECT handoff_id, from_process, to_process, route_id, standard_version, kind, case_id,
               priority, 0 AS source, occurred_at AS opened_at
        FROM decisions WHERE type = 'opened'{only}
        UNION ALL
        SELECT handoff_id, from_process, to_process, route_id, standard_version, kind, case_id,
               priority, 1, occurred_at
        FROM lifecycle WHERE route_id IS NOT NULL{only}
    ),
    handoffs AS (
        SELECT * EXCLUDE (rank) FROM (
            SELECT *, row_number() OVER (
                PARTITION BY handoff_id ORDER BY source, opened_at) AS rank
            FROM openings)
        WHERE rank = 1
    )"""


class ReportSql:
    """The report queries of one grouping, window and filter set."""

    def __init__(self, grouping: Grouping, filters: ReportFilter) -> None:
        self.grouping = grouping
        self.filters = filters
        self.columns = GROUP_COLUMNS[grouping]
        self.group = ", ".join(self.columns)

    def clock_figures(self, start: datetime, end: datetime) -> tuple[str, list[Any]]:
        """Per group and milestone: decided, met, breaches, retractions, objective,
        business and wall quantiles, clocks timed."""
        cte, params = clocks_sql(self.filters)
        cols = ", ".join(f"c.{c}" for c in self.columns)
        priority = ""
        if self.filters.priority is not None:
            priority = " AND c.priority = ?"
        sql = f"""
        WITH {cte}
        SELECT {cols}, c.clock,
            count(c.outcome),
            count(*) FILTER (WHERE c.outcome = 'met'),
            count(*) FILTER (WHERE c.outcome = 'missed'),
            sum(c.retractions)::BIGINT,
            max(s.objective),
            quantile_cont(c.business_seconds, [0.5, 0.9, 0.95]),
            quantile_cont(c.wall_seconds, [0.5, 0.9, 0.95]),
            count(c.business_seconds)
        FROM clocks c
        LEFT JOIN standards s ON s.route_id = c.route_id AND s.version = c.standard_version
        WHERE c.counted_at >= ? AND c.counted_at < ?{priority}
        GROUP BY ALL
        """
        params += [start, end]
        if self.filters.priority is not None:
            params.append(self.filters.priority)
        return sql, params

    def clock_trend(
        self, buckets: Sequence[tuple[str, datetime, datetime]]
    ) -> tuple[str, list[Any]]:
        """Per bucket (label, start, end) and milestone: clocks decided and met -- the on-time
        trend, in one pass over the clocks."""
        cte, params = clocks_sql(self.filters)
        sql = f"""
        WITH {cte},
        buckets AS (SELECT unnest(?) AS label, unnest(?) AS b_start, unnest(?) AS b_end)
        SELECT b.label, c.clock, count(c.outcome), count(*) FILTER (WHERE c.outcome = 'met')
        FROM clocks c JOIN buckets b ON c.counted_at >= b.b_start AND c.counted_at < b.b_end
        GROUP BY ALL
        """
        params += [[x[0] for x in buckets], [x[1] for x in buckets], [x[2] for x in buckets]]
        return sql, params

    def deliveries(self, start: datetime, end: datetime) -> tuple[str, list[Any]]:
        """Per group: cycles opened in the window, and distinct handoffs."""
        where, params = _where_handoff(self.filters)
        if self.filters.priority is not None:
            where += " AND priority = ?"
            params.append(self.filters.priority)
        sql = f"""
        SELECT {self.group}, count(*), count(DISTINCT handoff_id)
        FROM decisions
        WHERE type = 'opened' AND occurred_at >= ? AND occurred_at < ?{where}
        GROUP BY ALL
        """
        return sql, [start, end, *params]

    def _lifecycle(
        self,
        kind: str,
        select: str,
        start: datetime,
        end: datetime,
        keys: Sequence[str] | None = None,
    ) -> tuple[str, list[Any]]:
        """Lifecycle events of `kind` in the window with their handoff's facts (alias `h`):
        the group's columns, then `select`."""
        where, params = _where_handoff(self.filters, "h")
        if self.filters.priority is not None:
            where += " AND h.priority = ?"
            params.append(self.filters.priority)
        key = _key_sql(self.columns, "h")
        if keys is not None:
            where += f" AND list_contains(?, {key})"
            params.append(list(keys))
        restrict = (
            f"SELECT handoff_id FROM lifecycle WHERE type = '{kind}' "
            "AND occurred_at >= ? AND occurred_at < ?"
        )
        cols = ", ".join(f"h.{c}" for c in self.columns)
        sql = f"""
        WITH {handoffs_sql(restrict)}
        SELECT {key} AS group_key, {cols}, {select}
        FROM lifecycle l JOIN handoffs h ON h.handoff_id = l.handoff_id
        WHERE l.type = '{kind}' AND l.occurred_at >= ? AND l.occurred_at < ?{where}
        """
        # The restriction appears in both branches of `openings`, before the main clause.
        return sql, [start, end, start, end, start, end, *params]

    def rework(self, start: datetime, end: datetime) -> tuple[str, list[Any]]:
        """Per group and reason: rejections in the window (group key first)."""
        sql, params = self._lifecycle("rejected", "l.reason, count(*)", start, end)
        return sql + " GROUP BY ALL", params

    def ratings(self, start: datetime, end: datetime) -> tuple[str, list[Any]]:
        """Per group and rating (1..5): ratings in the window (group key first)."""
        sql, params = self._lifecycle("rated", "l.rating, count(*)", start, end)
        return sql + " GROUP BY ALL", params

    def comments(
        self, start: datetime, end: datetime, keys: Sequence[str], per_group: int
    ) -> tuple[str, list[Any]]:
        """Per group of `keys`: the latest `per_group` ratings with a comment."""
        inner, params = self._lifecycle(
            "rated",
            "l.handoff_id, h.case_id, l.rating, l.comment, l.occurred_at, l.actor, l.event_id",
            start,
            end,
            keys,
        )
        inner += " AND l.comment IS NOT NULL"
        sql = f"""
        SELECT * EXCLUDE (rank) FROM (
            SELECT *, row_number() OVER (
                PARTITION BY group_key ORDER BY occurred_at DESC, event_id) AS rank
            FROM ({inner}))
        WHERE rank <= ?
        ORDER BY group_key, occurred_at DESC, event_id
        """
        return sql, [*params, per_group]

    def late(
        self,
        start: datetime,
        end: datetime,
        keys: Sequence[str] | None,
        per_group: int | None,
        limit: int | None = None,
        offset: int = 0,
    ) -> tuple[str, list[Any]]:
        """Breaches of the window, latest deadline first: `per_group` per group of `keys`, or
        a page (`limit`, `offset`) of them all."""
        cte, params = clocks_sql(self.filters)
        key = _key_sql(self.columns)
        where = ""
        if self.filters.priority is not None:
            where += " AND priority = ?"
        select = f"""
            SELECT {key} AS group_key, handoff_id, case_id, from_process,
                to_process, kind, clock, priority, cycle, route_id, standard_version,
                deadline, reached_at, target_seconds, business_seconds, counted_at
            FROM clocks WHERE outcome = 'missed' AND counted_at >= ? AND counted_at < ?{where}"""
        params += [start, end]
        if self.filters.priority is not None:
            params.append(self.filters.priority)
        if keys is not None:
            select += f" AND list_contains(?, {key})"
            params.append(list(keys))
        if per_group is not None:
            sql = f"""
            WITH {cte}
            SELECT * EXCLUDE (rank) FROM (
                SELECT *, row_number() OVER (
                    PARTITION BY group_key ORDER BY counted_at DESC, handoff_id) AS rank
                FROM ({select}))
            WHERE rank <= ? ORDER BY counted_at DESC, handoff_id
            """
            return sql, [*params, per_group]
        sql = f"WITH {cte} {select} ORDER BY counted_at DESC, handoff_id LIMIT ? OFFSET ?"
        return sql, [*params, limit if limit is not None else 50, offset]

    def late_count(self, start: datetime, end: datetime) -> tuple[str, list[Any]]:
        """How many breaches the window has."""
        cte, params = clocks_sql(self.filters)
        where = ""
        if self.filters.priority is not None:
            where = " AND priority = ?"
        sql = f"WITH {cte} SELECT count(*) FROM clocks WHERE outcome = 'missed' "
        sql += f"AND counted_at >= ? AND counted_at < ?{where}"
        params += [start, end]
        if self.filters.priority is not None:
            params.append(self.filters.priority)
        return sql, params


def _event_log(
    start: datetime, end: datetime, process: str | None, case_id: str | None
) -> tuple[str, list[Any]]:
    """CTEs `handoffs` and `log`: the lifecycle events of the window (optionally of one
    process or one case), each with its case and handoff facts."""
    where = ""
    params: list[Any] = [start, end]
    if process is not None:
        where += " AND (h.from_process = ? OR h.to_process = ?)"
        params += [process, process]
    if case_id is not None:
        where += " AND coalesce(h.case_id, l.case_id, l.handoff_id) = ?"
        params.append(case_id)
    sql = f"""
    {handoffs_sql()},
    log AS (
        SELECT coalesce(h.case_id, l.case_id, l.handoff_id) AS case_id, l.handoff_id,
            l.event_id, l.type, l.occurred_at,
            coalesce(h.from_process, l.from_process) AS from_process,
            coalesce(h.to_process, l.to_process) AS to_process,
            coalesce(h.kind, l.kind) AS kind,
            coalesce(l.priority, h.priority) AS priority,
            coalesce(h.route_id, l.route_id) AS route_id,
            coalesce(h.standard_version, l.standard_version) AS standard_version,
            l.actor, l.reason, l.note, l.rating, l.comment, l.seq
        FROM lifecycle l LEFT JOIN handoffs h ON h.handoff_id = l.handoff_id
        WHERE l.occurred_at >= ? AND l.occurred_at < ?{where}
    )"""
    return sql, params


def event_log_sql(
    start: datetime, end: datetime, process: str | None, case_id: str | None
) -> tuple[str, list[Any]]:
    """The process-mining log: its events (columns EVENT_LOG_COLUMNS) by case, time, id."""
    cte, params = _event_log(start, end, process, case_id)
    sql = f"WITH {cte} SELECT * EXCLUDE (seq) FROM log ORDER BY case_id, occurred_at, seq, event_id"
    return sql, params


def event_log_objects_sql(
    start: datetime, end: datetime, process: str | None, case_id: str | None
) -> tuple[str, list[Any]]:
    """The handoffs of the same log, once each: id, case, from, to, kind, route, version."""
    cte, params = _event_log(start, end, process, case_id)
    sql = f"""
    WITH {cte}
    SELECT handoff_id, min(case_id), any_value(from_process), any_value(to_process),
        any_value(kind), any_value(route_id), any_value(standard_version)
    FROM log GROUP BY handoff_id ORDER BY handoff_id
    """
    return sql, params


EVENT_LOG_COLUMNS = (
    "case_id",
    "handoff_id",
    "event_id",
    "type",
    "occurred_at",
    "from_process",
    "to_process",
    "kind",
    "priority",
    "route_id",
    "standard_version",
    "actor",
    "reason",
    "note",
    "rating",
    "comment",
)
"""The columns `event_log_sql` selects, in order."""
