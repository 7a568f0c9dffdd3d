"""Bulk loading into the contract tables: COPY on PostgreSQL, executemany on SQLite."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import sqlalchemy as sa

from opsaudit import contract
from opsaudit.demo.org import CS_DEPARTMENTS
from opsaudit.demo.tickets import CHANNELS, KINDS, STATUSES, TicketChunk, ticket_id

BATCH = 10_000
# Constraints the demo schema leaves out so that the planted dq.not_null and dq.unique defects
# can be stored, as a source system without those constraints would store them.
_NULLABLE = {("tasks", "title")}
_NOT_UNIQUE = {("plan_adjustments", "adjustment_id")}
TICKET_COLUMNS = ("ticket_id", "kind", "channel", "department_id", "agent_id", "opened_at",
                  "first_response_at", "resolved_at", "closed_at", "status", "satisfaction", "revisited_at",
                  "reopened_count")


def demo_metadata() -> sa.MetaData:
    """The contract tables as the demo creates them: the same columns, types and indexes, less
    the constraints in _NULLABLE and _NOT_UNIQUE."""
    md = sa.MetaData()
    for table in contract.metadata.sorted_tables:
        columns = [sa.Column(c.name, c.type, primary_key=c.primary_key and (table.name, c.name) not in _NOT_UNIQUE,
                             nullable=c.nullable or (table.name, c.name) in _NULLABLE)
                   for c in table.columns]
        copy = sa.Table(table.name, md, *columns)
        for index in table.indexes:
            sa.Index(index.name, *(copy.c[c.name] for c in index.columns))
    return md


class Loader:
    """Writes the demo into the connection's database, inside the caller's transaction."""

    def __init__(self, conn: sa.Connection, agents: Sequence[str]) -> None:
        self.conn = conn
        self.postgres = conn.dialect.name == "postgresql"
        self.metadata = demo_metadata()
        self.counts = {name: 0 for name in contract.TABLE_NAMES}
        self.agents = list(agents)
        self._labels = {
            "kind": np.array(KINDS, dtype=object), "channel": np.array(CHANNELS, dtype=object),
            "department_id": np.array(CS_DEPARTMENTS, dtype=object), "status": np.array(STATUSES, dtype=object)}

    def reset(self) -> None:
        """Drop the contract tables and create the demo's; on PostgreSQL the ticket key and index
        are built after the load, about a fifth faster at a million tickets than maintained row by row."""
        contract.metadata.drop_all(self.conn, checkfirst=True)
        self.metadata.create_all(self.conn)
        if self.postgres:
            self.conn.exec_driver_sql("SET LOCAL synchronous_commit = off")
            self.conn.exec_driver_sql("SET LOCAL maintenance_work_mem = '256MB'")
            tickets = self.metadata.tables["tickets"]
            for index in tickets.indexes:
                index.drop(self.conn)
            key = sa.inspect(self.conn).get_pk_constraint("tickets")["name"]
            self.conn.exec_driver_sql(f'ALTER TABLE tickets DROP CONSTRAINT "{key}"')

    def rows(self, table: str, rows: list[dict]) -> None:
        """Insert dict rows in batches (executemany; SQLAlchemy batches the VALUES on PostgreSQL)."""
        for start in range(0, len(rows), BATCH):
            self.conn.execute(self.metadata.tables[table].insert(), rows[start:start + BATCH])
        self.counts[table] += len(rows)

    def tickets(self, chunk: TicketChunk) -> None:
        if self.postgres:
            self._copy_tickets(chunk)
        else:
            self._insert_tickets(chunk)
        self.counts["tickets"] += len(chunk)

    def finish(self) -> None:
        """Restore the ticket key and index, and give the planner fresh statistics."""
        if not self.postgres:
            return
        self.conn.exec_driver_sql("ALTER TABLE tickets ADD PRIMARY KEY (ticket_id)")
        for index in self.metadata.tables["tickets"].indexes:
            index.create(self.conn)
        for name in contract.TABLE_NAMES:
            self.conn.exec_driver_sql(f"ANALYZE {name}")

    def _columns(self, chunk: TicketChunk, null: object, stamp) -> list[list]:
        """The chunk as one list per column, in TICKET_COLUMNS order."""
        first = chunk.first_number
        satisfaction = np.where(chunk.satisfaction > 0, chunk.satisfaction, null)
        labels = self._labels
        agents = np.array([*self.agents, null], dtype=object)  # agent -1 (none) picks the trailing null
        return [
            [ticket_id(n) for n in range(first, first + len(chunk))],
            labels["kind"][chunk.kind].tolist(), labels["channel"][chunk.channel].tolist(),
            labels["department_id"][chunk.department].tolist(), agents[chunk.agent].tolist(),
            stamp(chunk.opened_at), stamp(chunk.first_response_at), stamp(chunk.resolved_at),
            stamp(chunk.closed_at), labels["status"][chunk.status].tolist(), satisfaction.tolist(),
            stamp(chunk.revisited_at), chunk.reopened_count.tolist(),
        ]

    def _copy_tickets(self, chunk: TicketChunk) -> None:
        """COPY in text format: tab-separated, \\N for null, ISO timestamps."""

        def stamp(values: np.ndarray) -> list[str]:
            return np.where(np.isnat(values), r"\N", np.datetime_as_string(values, unit="s")).tolist()

        columns = self._columns(chunk, r"\N", stamp)
        text = "\n".join(map("\t".join, zip(*(map(str, c) for c in columns), strict=True))) + "\n"
        with self.conn.connection.driver_connection.cursor() as cursor, cursor.copy(
                f"COPY tickets ({', '.join(TICKET_COLUMNS)}) FROM STDIN") as copy:
            copy.write(text)

    def _insert_tickets(self, chunk: TicketChunk) -> None:
        """executemany through the driver, with timestamps in SQLAlchemy's own SQLite format."""

        def stamp(values: np.ndarray) -> list[str | None]:
            text = np.strings.add(np.strings.replace(np.datetime_as_string(values, unit="s"), "T", " "), ".000000")
            return np.where(np.isnat(values), None, text.astype(object)).tolist()

        rows = list(zip(*self._columns(chunk, None, stamp), strict=True))
        sql = f"INSERT INTO tickets ({', '.join(TICKET_COLUMNS)}) VALUES ({', '.join('?' * len(TICKET_COLUMNS))})"
        for start in range(0, len(rows), BATCH):
            self.conn.exec_driver_sql(sql, rows[start:start + BATCH])
