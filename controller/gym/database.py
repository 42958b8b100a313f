"""The hub's database: an engine from a URL, the schema migrated to the newest revision at
start (alembic, shipped in this package).

`--db` takes `sqlite:///PATH` or `postgresql://user:pass@host:port/db` (psycopg 3 is the
driver; `postgresql+psycopg://…` is accepted as well). Without it the hub keeps its
history in SQLite in the data directory.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from sqlalchemy import Engine, create_engine, event, make_url
from sqlalchemy.exc import ArgumentError, DBAPIError, SQLAlchemyError

MIGRATIONS_DIR = Path(__file__).parent / "migrations"
DEFAULT_DB_FILE = "gym-hub.sqlite3"


class DatabaseError(Exception):
    """The hub's database cannot be reached, opened or migrated; the message says which (no password)."""


class DatabaseUrlError(DatabaseError, ValueError):
    """A `--db` value that is not a database URL the hub supports."""


def database_url(db: str | None, data_dir: Path) -> str:
    """The SQLAlchemy URL for `--db` (default: SQLite in the data directory)."""
    if db is None:
        return f"sqlite:///{Path(data_dir) / DEFAULT_DB_FILE}"
    try:
        url = make_url(db)
    except ArgumentError:
        raise DatabaseUrlError(f"--db {db!r} is not a database URL; use sqlite:///PATH or "
                               f"postgresql://user:password@host:port/database") from None
    if url.drivername in ("postgresql", "postgres", "postgresql+psycopg"):
        return url.set(drivername="postgresql+psycopg").render_as_string(hide_password=False)
    if url.drivername == "sqlite":
        return url.render_as_string(hide_password=False)
    raise DatabaseUrlError(f"--db: {url.drivername!r} is not supported; use sqlite:///PATH or postgresql://…")


def safe_url(url: str) -> str:
    """The URL for messages and logs: password hidden."""
    return make_url(url).render_as_string(hide_password=True)


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    # WAL: the CLI reads while the hub writes; NORMAL: a commit survives a process crash.
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA busy_timeout=10000")
    cursor.close()


def open_engine(url: str, migrate: bool = True) -> Engine:
    """An engine for `url`, its schema migrated to the newest revision (`migrate`)."""
    parsed = make_url(url)
    if parsed.drivername == "sqlite" and parsed.database:
        try:
            Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise DatabaseError(f"{parsed.database}: cannot create its directory: {exc.strerror}") from None
    connect_args: dict[str, Any] = {"connect_timeout": 5} if parsed.drivername.startswith("postgresql") else {}
    engine = create_engine(url, pool_pre_ping=True, connect_args=connect_args)
    if parsed.drivername == "sqlite":
        event.listen(engine, "connect", _sqlite_pragmas)
    if migrate:
        try:
            migrate_to_head(engine)
        except SQLAlchemyError as exc:
            engine.dispose()
            raise DatabaseError(f"{safe_url(url)}: cannot open the hub database: {describe(exc)}") from None
    return engine


def describe(exc: SQLAlchemyError) -> str:
    """The driver's own first line (what a technician can act on), without SQL or parameters."""
    cause = exc.orig if isinstance(exc, DBAPIError) else exc
    lines = str(cause).strip().splitlines()
    return f"{type(cause).__name__}: {lines[0] if lines else ''}"


def alembic_config() -> Config:
    """The alembic configuration of the hub (no ini file: the scripts ship in the package)."""
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    return config


def migrate_to_head(engine: Engine) -> None:
    """Bring the schema to the newest revision (a no-op when it is there already)."""
    config = alembic_config()
    with engine.begin() as connection:
        config.attributes["connection"] = connection
        command.upgrade(config, "head")
