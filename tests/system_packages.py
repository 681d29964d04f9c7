"""Programs the tests need from Debian's packages (Chromium now; servers later).

Outside CI a missing program skips the tests that need it; in CI (CI=true) it is installed with apt-get,
and a failed install fails those tests: CI never silently skips a browser test.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

from plugin.lifetime import ending_with_parent

IN_CI = os.environ.get("CI", "").lower() == "true"
APT_TIMEOUT_S = 900
_apt_updated = False  # one `apt-get update` per test run is enough


def _apt_get(*args: str) -> subprocess.CompletedProcess:
    sudo = [] if os.geteuid() == 0 else ["sudo", "-n"]
    return subprocess.run(  # noqa: S603 - fixed arguments, our own package names
        [*sudo, "apt-get", *args],
        env={**os.environ, "DEBIAN_FRONTEND": "noninteractive"},
        capture_output=True,
        text=True,
        timeout=APT_TIMEOUT_S,
        check=False,
    )


def require_program(program: str, package: str) -> Path:
    """The program's path; installs `package` in CI when missing, else skips (or fails in CI)."""
    found = shutil.which(program)
    if found:
        return Path(found)
    if not IN_CI:
        pytest.skip(f"{program} is not installed (apt-get install {package}); CI installs it")
    global _apt_updated
    update = _apt_get("update", "-qq") if not _apt_updated else None
    _apt_updated = True
    install = _apt_get("install", "-y", "-qq", package)
    found = shutil.which(program)
    if install.returncode != 0 or not found:
        pytest.fail(
            f"CI could not install {package} for {program}: apt-get update exit "
            f"{update.returncode if update else 'skipped'}, "
            f"install exit {install.returncode}\n{install.stderr[-2000:]}"
        )
    return Path(found)


# --- servers for the scaled-out configuration: PostgreSQL and Redis, private to the test run -------------


def _free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _postgres_bin() -> Path | None:
    found = sorted(Path("/usr/lib/postgresql").glob("*/bin/initdb"), key=lambda p: int(p.parts[-3]))
    return found[-1].parent if found else None


def require_postgres_bin() -> Path:
    """The directory of PostgreSQL's server programs (Debian keeps them off PATH)."""
    if _postgres_bin() is None:
        if not IN_CI:
            pytest.skip("PostgreSQL is not installed (apt-get install postgresql); CI installs it")
        require_program("pg_ctlcluster", "postgresql")
    bin_dir = _postgres_bin()
    if bin_dir is None:
        pytest.fail("CI installed postgresql but no initdb was found under /usr/lib/postgresql")
    return bin_dir


class PostgresServer:
    """A throwaway PostgreSQL cluster on a free loopback port, trust authentication, removed on stop."""

    def __init__(self) -> None:
        import tempfile

        self.bin = require_postgres_bin()
        # Its own directory under /tmp: pytest's are private to their owner; the server may run as postgres.
        root = Path(tempfile.mkdtemp(prefix="backstride-pg-"))
        self.root = root
        self.data = root / "pgdata"
        self.port = _free_port()
        # PostgreSQL refuses to run as root: as root, its programs run as the postgres user Debian created.
        self.as_user = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
        self.data.mkdir(parents=True)
        if self.as_user:
            shutil.chown(root, "postgres")
            shutil.chown(self.data, "postgres")
        self._run(self.bin / "initdb", "-D", self.data, "-A", "trust", "-U", "backstride", "-E", "UTF8")
        options = f"-p {self.port} -k {self.data} -c listen_addresses=127.0.0.1 -c fsync=off"
        self._run(self.bin / "pg_ctl", "-D", self.data, "-o", options, "-w", "-l", self.data / "log", "start")
        self.admin_url = f"postgresql+psycopg://backstride@127.0.0.1:{self.port}/postgres"
        self._created = 0

    def _run(self, *args: str | Path) -> None:
        result = subprocess.run(  # noqa: S603 - PostgreSQL's own programs, fixed arguments
            [*self.as_user, *map(str, args)], capture_output=True, text=True, timeout=120, check=False
        )
        if result.returncode != 0:
            raise RuntimeError(f"{Path(str(args[0])).name} failed: {result.stderr[-2000:]}")

    def new_database(self) -> str:
        """An empty database for the caller: one database, its schema dropped and made again (fast)."""
        from sqlalchemy import create_engine, text

        engine = create_engine(self.admin_url, isolation_level="AUTOCOMMIT")
        with engine.connect() as connection:
            if not self._created:
                connection.execute(text('CREATE DATABASE "backstride_test"'))
                self._created = 1
        engine.dispose()
        url = f"postgresql://backstride@127.0.0.1:{self.port}/backstride_test"
        engine = create_engine(
            url.replace("postgresql://", "postgresql+psycopg://"), isolation_level="AUTOCOMMIT"
        )
        with engine.connect() as connection:
            # Connections a previous test left open would block the drop: end them first.
            connection.execute(
                text(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                    "WHERE datname = 'backstride_test' AND pid <> pg_backend_pid()"
                )
            )
            connection.execute(text("DROP SCHEMA public CASCADE"))
            connection.execute(text("CREATE SCHEMA public"))
        engine.dispose()
        return url

    def stop(self) -> None:
        self._run(self.bin / "pg_ctl", "-D", self.data, "-m", "immediate", "stop")
        shutil.rmtree(self.root, ignore_errors=True)


class RedisServer:
    """A throwaway Redis on a free loopback port, no persistence."""

    def __init__(self, root: Path) -> None:
        program = require_program("redis-server", "redis-server")
        self.port = _free_port()
        self.process = subprocess.Popen(  # noqa: S603 - Redis itself, fixed arguments
            [
                str(program),
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
                "--dir",
                str(root),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            preexec_fn=ending_with_parent(),  # a test run killed outright takes its Redis with it
        )
        import redis

        client = redis.Redis(port=self.port)
        for _ in range(100):
            try:
                client.ping()
                break
            except redis.ConnectionError:
                import time

                time.sleep(0.05)
        else:
            raise RuntimeError("redis-server did not start")
        client.close()
        self._used = 0

    def new_url(self) -> str:
        """A Redis URL on a database emptied for the caller (16 databases, reused in turn)."""
        import redis

        db = self._used % 16
        self._used += 1
        client = redis.Redis(port=self.port, db=db)
        client.flushdb()
        client.close()
        return f"redis://127.0.0.1:{self.port}/{db}"

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(timeout=10)
