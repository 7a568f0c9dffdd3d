"""Great Expectations plumbing for the dq.* rules: one ephemeral context and SQL datasource per
run, a query asset per batch, and no progress bars.

Great Expectations is imported inside the functions: it takes seconds to import.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from types import ModuleType
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from opsaudit.errors import SourceError
from opsaudit.settings import mask_url

if TYPE_CHECKING:
    from great_expectations.datasource.fluent import SQLDatasource
    from great_expectations.datasource.fluent.interfaces import Batch


@dataclass
class Batches:
    """Query assets on the source database; each SQL string becomes one GX batch."""

    datasource: SQLDatasource
    # The asset queries as GX sends them, so that its bare "what columns?" run can be narrowed.
    bare_queries: set[str] = field(default_factory=set)

    # One batch per SQL string, reused when a second pass validates the same asset again.
    _batches: dict[str, Batch] = field(default_factory=dict)

    def get(self, name: str, sql: str) -> Batch:
        if sql not in self._batches:
            engine = self.datasource.get_execution_engine().engine
            self.bare_queries.add(str(sa.text(sql).compile(dialect=engine.dialect)))
            asset = self.datasource.add_query_asset(name=name, query=sql)
            self._batches[sql] = asset.add_batch_definition_whole_table(name).get_batch()
        return self._batches[sql]


@contextmanager
def gx_batches(engine: Engine) -> Iterator[Batches]:
    """A GX SQL datasource on the engine's database, in an ephemeral context without progress bars."""
    _quiet_gx_logging()
    import great_expectations as gx
    from great_expectations.data_context.types.base import ProgressBarsConfig

    _quiet_gx_logging()  # again: importing GX pinned one of its loggers to INFO

    context = gx.get_context(mode="ephemeral")
    # tqdm bars would go to the terminal of every CLI run.
    context.variables.progress_bars = ProgressBarsConfig(globally=False)
    url = engine.url.render_as_string(hide_password=False)
    add = {"postgresql": context.data_sources.add_postgres,
           "sqlite": context.data_sources.add_sqlite}.get(engine.dialect.name, context.data_sources.add_sql)
    try:
        datasource = add(name="opsaudit_source", connection_string=url)
        gx_engine = datasource.get_execution_engine().engine
    except Exception as exc:  # GX's message may quote the URL, so only its type is kept
        raise SourceError(f"database: {mask_url(url)}: Great Expectations cannot use it "
                          f"({type(exc).__name__})") from None
    batches = Batches(datasource)
    sa.event.listen(gx_engine, "before_cursor_execute", _narrow(batches.bare_queries), retval=True)
    try:
        yield batches
    finally:
        # GX keeps two engines: the datasource's (it tests the connection) and the validator's.
        for used in (datasource.get_engine(), gx_engine):
            used.dispose()


def _narrow(bare_queries: set[str]) -> Callable[..., tuple[str, Any]]:
    """A cursor hook that makes GX's bare run of an asset query return no rows.

    GX learns a query asset's columns by executing the query itself and reading only the column
    names; psycopg would first fetch the whole result (a million rows for a month of tickets).
    Every metric wraps the query in a subquery, so only that run matches exactly.
    """
    def hook(conn: sa.Connection, cursor: Any, statement: str, parameters: Any, context: Any,
             executemany: bool) -> tuple[str, Any]:
        if statement in bare_queries:
            return f"SELECT * FROM ({statement}) AS columns_only WHERE 1 = 0", parameters
        return statement, parameters

    return hook


def gx_expectations() -> ModuleType:
    """great_expectations.expectations, imported on first use with GX's INFO chatter muted."""
    _quiet_gx_logging()
    import great_expectations.expectations as gxe

    return gxe


def _quiet_gx_logging() -> None:
    """GX logs hundreds of INFO lines per run (docs registration, batch slices); keep warnings.

    A level set on purpose (by the CLI or a developer) is left alone, except the one logger GX
    itself pins to INFO when it is imported.
    """
    logger = logging.getLogger("great_expectations")
    if logger.level == logging.NOTSET:
        logger.setLevel(logging.WARNING)
    logging.getLogger("great_expectations.data_context.types.base").setLevel(logging.NOTSET)
