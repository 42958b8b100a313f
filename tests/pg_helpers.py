"""A real PostgreSQL server for the gym hub's tests: Debian's binaries, a cluster in a
temporary directory owned by `postgres` (initdb and pg_ctl refuse to run as root), on a
free port, started once per test session and stopped at its end."""

from __future__ import annotations

import contextlib
import glob
import os
import shutil
import subprocess
import tempfile
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from mqtt_helpers import free_port


def pg_bin() -> Path:
    """The newest installed PostgreSQL's bin directory (scripts/setup.sh --dev installs one)."""
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"), key=lambda p: int(p.split("/")[4]))
    if not found:
        raise RuntimeError("PostgreSQL is not installed: run scripts/setup.sh --dev (Debian package postgresql)")
    return Path(found[-1]).parent


def _as_postgres(args: list[str]) -> list[str]:
    return ["runuser", "-u", "postgres", "--", *args] if os.geteuid() == 0 else args


@dataclass
class Postgres:
    """One PostgreSQL cluster; `stop()`/`start()` let a test take it away and bring it back."""

    directory: Path
    port: int

    @property
    def data(self) -> Path:
        return self.directory / "data"

    def url(self, database: str = "postgres") -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/{database}"

    def initdb(self) -> None:
        subprocess.run(_as_postgres([str(pg_bin() / "initdb"), "-D", str(self.data), "-A", "trust", "-U",
                                     "postgres", "--no-sync"]), check=True, capture_output=True, timeout=120)

    def start(self) -> None:
        # fsync off: a test cluster is thrown away; it only makes the tests slower.
        options = f"-p {self.port} -k {self.directory} -c listen_addresses=127.0.0.1 -c fsync=off"
        subprocess.run(_as_postgres([str(pg_bin() / "pg_ctl"), "-D", str(self.data), "-o", options, "-l",
                                     str(self.directory / "server.log"), "-w", "start"]),
                       check=True, capture_output=True, timeout=60)

    def stop(self, mode: str = "fast") -> None:
        subprocess.run(_as_postgres([str(pg_bin() / "pg_ctl"), "-D", str(self.data), "-m", mode, "-w", "stop"]),
                       capture_output=True, timeout=60)

    def psql(self, sql: str, database: str = "postgres") -> str:
        out = subprocess.run(_as_postgres([str(pg_bin() / "psql"), "-h", str(self.directory), "-p", str(self.port),
                                           "-U", "postgres", "-d", database, "-tAc", sql]),
                             check=True, capture_output=True, text=True, timeout=60)
        return out.stdout

    def new_database(self) -> str:
        """A fresh, empty database; its URL (postgresql://…)."""
        name = f"hub_{uuid.uuid4().hex[:10]}"
        self.psql(f"CREATE DATABASE {name}")
        return self.url(name)


@pytest.fixture(scope="session", name="postgres")
def postgres_fixture() -> Iterator[Postgres]:
    """A PostgreSQL server for the whole test session (each test takes its own database)."""
    directory = Path(tempfile.mkdtemp(prefix="millctl-pg-"))
    if os.geteuid() == 0:
        shutil.chown(directory, "postgres", "postgres")
    server = Postgres(directory, free_port())
    server.initdb()
    server.start()
    try:
        yield server
    finally:
        server.stop("immediate")
        with contextlib.suppress(OSError):
            shutil.rmtree(directory)
