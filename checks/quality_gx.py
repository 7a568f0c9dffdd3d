"""Great Expectations plumbing for the dq.* rules: one ephemeral context and SQL datasource per
run, a query asset per batch, and no progress bars.

Great Expectations is imported inside the functions, through `import_great_expectations`: it
takes seconds to import.
"""

from __future__ import annotations

import importlib.util
import logging
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from types import ModuleType
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from opsaudit.errors import SourceError
from opsaudit.i18n.render import Message
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
    gx = import_great_expectations()
    from great_expectations.data_context.types.base import ProgressBarsConfig

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
        raise SourceError(Message.of("error.quality.gx_unusable", purpose=Message.of("error.purpose.database"),
                                     url=mask_url(url), tool="Great Expectations",
                                     reason=type(exc).__name__)) from None
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
    import_great_expectations()
    import great_expectations.expectations as gxe

    return gxe


# Imported by GX at module level for one expectation (KL divergence) and two KS-test metrics,
# none of which opsaudit's suites use: 85 MB and half a second of every audit.
DEFERRED_MODULES = ("scipy.stats", "altair")


def import_great_expectations() -> ModuleType:
    """great_expectations, with its INFO chatter muted and DEFERRED_MODULES loaded only when a
    suite first uses them. Every import of GX in opsaudit goes through here."""
    _quiet_gx_logging()
    if "great_expectations" not in sys.modules:
        for name in DEFERRED_MODULES:
            _defer(name)
    import great_expectations

    _quiet_gx_logging()  # again: importing GX pinned one of its loggers to INFO
    return great_expectations


class _DeferredModule(ModuleType):
    """Stands in for a module in sys.modules until one of its attributes is first read; then the
    real module is imported and takes its place, and every read is passed on to it."""

    def __getattr__(self, attribute: str) -> Any:
        loaded = self.__dict__.get("_loaded")
        if loaded is None:
            loaded = self._load()
        return getattr(loaded, attribute)

    def _load(self) -> ModuleType:
        parent, _, child = self.__name__.rpartition(".")
        if sys.modules.get(self.__name__) is self:
            del sys.modules[self.__name__]
        # The real module's own imports must find it, not this stand-in, through its parent.
        if parent and getattr(sys.modules[parent], child, None) is self:
            delattr(sys.modules[parent], child)
        loaded = importlib.import_module(self.__name__)
        self.__dict__["_loaded"] = loaded
        return loaded


def _defer(name: str) -> None:
    """Put a stand-in for `name` in sys.modules, unless it is imported already or not installed."""
    if name in sys.modules:
        return
    parent, _, child = name.rpartition(".")
    try:
        if importlib.util.find_spec(name) is None:
            return
    except ModuleNotFoundError:
        return
    stand_in = _DeferredModule(name)
    sys.modules[name] = stand_in
    if parent:
        setattr(sys.modules[parent], child, stand_in)


def _quiet_gx_logging() -> None:
    """GX logs hundreds of INFO lines per run (docs registration, batch slices); keep warnings.

    A level set on purpose (by the CLI or a developer) is left alone, except the one logger GX
    itself pins to INFO when it is imported.
    """
    logger = logging.getLogger("great_expectations")
    if logger.level == logging.NOTSET:
        logger.setLevel(logging.WARNING)
    logging.getLogger("great_expectations.data_context.types.base").setLevel(logging.NOTSET)
