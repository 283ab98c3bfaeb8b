"""What tests share besides fixtures (those are in conftest.py): the test settings, the server
process, plain HTTP requests, WebSocket frame reading, blocking database access, throwaway
databases and a private PostgreSQL cluster. Import with `from helpers import ...`: pytest puts
tests/ on sys.path, for tests/security/ too.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import http.client
import itertools
import json as jsonlib
import os
import pwd
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

import asyncpg

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from expertconnect import migrate  # noqa: E402
from expertconnect.localdb import (  # noqa: E402
    PG_USER,
    ensure_database,
    ensure_local_cluster,
    find_pg_bin,
)

# Every server the tests start signs with this secret, so a test can forge or check tokens.
JWT_SECRET = "test-secret-" + uuid.uuid4().hex
PASSWORD = "correct-horse-battery"


# ---------------------------------------------------------------------- databases
def admin_dsn() -> str:
    """EXPERTCONNECT_TEST_ADMIN_DSN (any database on a server we may create databases on),
    else the project's own private cluster, as `make run` uses."""
    return os.environ.get("EXPERTCONNECT_TEST_ADMIN_DSN") or ensure_local_cluster(ROOT / "var")


def with_database(dsn: str, name: str) -> str:
    """The same server and credentials as `dsn`, another database."""
    parts = urlsplit(dsn)
    return parts._replace(path="/" + name).geturl()


def run_blocking(coroutine):
    """Run a coroutine to its end on an event loop in a thread of its own, so that a fixture or
    test may call it whether or not an event loop is running (or set) in this thread."""
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        return pool.submit(asyncio.run, coroutine).result()


def create_database(admin: str, prefix: str = "expertconnect_test") -> str:
    """An empty database with a unique name on the server of `admin`; returns its DSN."""
    name = f"{prefix}_{os.getpid()}_{uuid.uuid4().hex[:6]}"
    run_blocking(ensure_database(admin, name))
    return with_database(admin, name)


def migrations_around(tmp_path: Path, migration: str) -> tuple[Path, Path]:
    """Two copies of the shipped migrations for a test of one of them on a database with data:
    every file before `migration`, and the same with it (later ones play no part)."""
    before, through = tmp_path / "before", tmp_path / "through"
    before.mkdir()
    through.mkdir()
    for m in migrate.discover():
        if m.name < migration:
            shutil.copy(migrate.MIGRATIONS_DIR / m.name, before / m.name)
        if m.name <= migration:
            shutil.copy(migrate.MIGRATIONS_DIR / m.name, through / m.name)
    return before, through


def drop_database(admin: str, dsn: str) -> None:
    """Drop the database `dsn` names, disconnecting whoever is still connected to it."""
    name = urlsplit(dsn).path.lstrip("/")

    async def drop():
        conn = await asyncpg.connect(admin)
        try:
            quoted = await conn.fetchval("SELECT quote_ident($1)", name)
            await conn.execute(f"DROP DATABASE IF EXISTS {quoted} WITH (FORCE)")
        finally:
            await conn.close()

    run_blocking(drop())


class Db:
    """Blocking access to the test database, one connection per call. It runs in a thread of
    its own, so async tests may call it too."""

    def __init__(self, dsn: str):
        self.dsn = dsn

    def _run(self, method: str, query: str, *args):
        async def go():
            conn = await asyncpg.connect(self.dsn)
            try:
                return await getattr(conn, method)(query, *args)
            finally:
                await conn.close()

        return run_blocking(go())

    def fetch(self, query: str, *args):
        return self._run("fetch", query, *args)

    def fetchrow(self, query: str, *args):
        return self._run("fetchrow", query, *args)

    def fetchval(self, query: str, *args):
        return self._run("fetchval", query, *args)

    def execute(self, query: str, *args):
        return self._run("execute", query, *args)


class PrivateCluster:
    """A PostgreSQL cluster of one test's own, so that stopping it disturbs no other test. As
    root its binaries run as the postgres user, under a directory that user can reach."""

    def __init__(self):
        self.pg_bin = find_pg_bin()
        self.root = Path(tempfile.mkdtemp(prefix="expertconnect-faults-", dir="/var/tmp"))
        self.data, self.sockets = self.root / "data", self.root / "socket"
        for d in (self.data, self.sockets):
            d.mkdir(mode=0o700)
        if os.geteuid() == 0:
            pg = pwd.getpwnam(PG_USER)
            for d in (self.root, self.data, self.sockets):
                os.chown(d, pg.pw_uid, pg.pw_gid)
        self._pg(
            "initdb",
            "-D",
            str(self.data),
            "-U",
            PG_USER,
            "--auth=trust",
            "--encoding=UTF8",
            "--no-instructions",
        )

    @property
    def dsn(self) -> str:
        return f"postgresql://{PG_USER}@/postgres?host={self.sockets}"

    def _pg(self, tool: str, *args: str) -> None:
        argv = [str(self.pg_bin / tool), *args]
        if os.geteuid() == 0:
            argv = ["runuser", "-u", PG_USER, "--", *argv]
        done = subprocess.run(argv, capture_output=True, text=True, timeout=60)
        assert done.returncode == 0, f"{tool} {args}: {done.stdout}{done.stderr}"

    def start(self) -> None:
        # No TCP listener: only the private socket directory reaches it.
        self._pg(
            "pg_ctl",
            "-D",
            str(self.data),
            "-l",
            str(self.root / "server.log"),
            "-o",
            f"-c listen_addresses='' -k {self.sockets}",
            "-w",
            "-t",
            "30",
            "start",
        )

    def stop(self, mode: str = "fast") -> None:
        self._pg("pg_ctl", "-D", str(self.data), "-m", mode, "-w", "-t", "30", "stop")

    def remove(self) -> None:
        try:
            if (self.data / "postmaster.pid").exists():
                self.stop("immediate")
        finally:
            shutil.rmtree(self.root, ignore_errors=True)


# ---------------------------------------------------------------------- the server process
def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def server_env(database_dsn: str, overrides: dict[str, str]) -> dict[str, str]:
    """The environment of a test server: the test database and secret, bcrypt at its cheapest
    cost, rate limits lifted; then `overrides` as env-style keys (RATE_LIMITS_AUTH_PER_MINUTE)."""
    env = {
        "EXPERTCONNECT_DATABASE_DSN": database_dsn,
        "EXPERTCONNECT_AUTH_JWT_SECRET": JWT_SECRET,
        "EXPERTCONNECT_AUTH_BCRYPT_ROUNDS": "4",
        "EXPERTCONNECT_RATE_LIMITS_AUTH_PER_MINUTE": "100000",
        "EXPERTCONNECT_RATE_LIMITS_DEFAULT_PER_MINUTE": "100000",
        "EXPERTCONNECT_RATE_LIMITS_REGISTRATIONS_PER_HOUR": "100000",
        "EXPERTCONNECT_RATE_LIMITS_PURCHASES_PER_DAY": "100000",
    }
    env.update({f"EXPERTCONNECT_{k.upper()}": str(v) for k, v in overrides.items()})
    return env


@dataclass
class ServerProcess:
    env: dict[str, str]
    log_path: Path
    port: int = 0
    proc: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout: float = 30.0) -> ServerProcess:
        self.port = self.port or free_port()
        # The suite's own settings (EXPERTCONNECT_TEST_*) are no config keys: the server would
        # refuse them as unknown.
        inherited = {k: v for k, v in os.environ.items() if not k.startswith("EXPERTCONNECT_TEST_")}
        env = {**inherited, **self.env, "EXPERTCONNECT_SERVER_PORT": str(self.port)}
        log = open(self.log_path, "ab")
        self.proc = subprocess.Popen(
            [sys.executable, str(ROOT / "server.py"), "--config", str(ROOT / "config.yaml")],
            cwd=ROOT,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        log.close()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"server exited early:\n{self.log_text()}")
            try:
                if api_request(self.url, "GET", "/api/health/").status == 200:
                    return self
            except OSError:
                pass
            time.sleep(0.05)
        self.stop()
        raise RuntimeError(f"server did not become healthy:\n{self.log_text()}")

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 15.0) -> int | None:
        if self.proc is None or self.proc.poll() is not None:
            return self.proc.returncode if self.proc else None
        self.proc.send_signal(sig)
        try:
            return self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            return self.proc.wait(timeout=5)

    def log_text(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""


# ---------------------------------------------------------------------- HTTP
@dataclass
class Response:
    status: int
    headers: http.client.HTTPMessage
    text: str
    json: object = field(default=None)


def api_request(
    base_url: str,
    method: str,
    path: str,
    *,
    json=None,
    token=None,
    headers=None,
    body: bytes | str | None = None,
    timeout: float = 30.0,
) -> Response:
    """One request to the server at `base_url` on a new connection; the `api` fixture is this
    bound to the session's server. Blocking and thread-safe."""
    parts = urlsplit(base_url)
    conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=timeout)
    all_headers = dict(headers or {})
    if json is not None:
        body = jsonlib.dumps(json)
        all_headers.setdefault("Content-Type", "application/json")
    if isinstance(body, str):
        body = body.encode("utf-8", "surrogatepass")
    if token is not None:
        all_headers["Authorization"] = f"Bearer {token}"
    try:
        conn.request(method, path, body=body, headers=all_headers)
        raw = conn.getresponse()
        text = raw.read().decode("utf-8")
        parsed = jsonlib.loads(text) if text else None
        return Response(raw.status, raw.headers, text, parsed)
    finally:
        conn.close()


@dataclass
class User:
    id: int
    username: str
    email: str
    password: str
    token: str
    first_name: str
    last_name: str

    @property
    def name(self) -> str:
        return f"{self.first_name} {self.last_name}".strip() or self.username


_user_counter = itertools.count(1)


def register_user(base_url: str, **fields) -> User:
    """A new user registered through the API of the server at `base_url`; `fields` replace the
    generated ones (unique username and email, PASSWORD, First<n> Last<n>)."""
    n = next(_user_counter)
    tag = uuid.uuid4().hex[:8]
    body = {
        "username": f"user{n}_{tag}",
        "email": f"user{n}_{tag}@example.com",
        "password": PASSWORD,
        "first_name": f"First{n}",
        "last_name": f"Last{n}",
    }
    body.update(fields)
    r = api_request(base_url, "POST", "/api/users/register/", json=body)
    assert r.status == 201, r.text
    return User(
        id=r.json["id"],
        username=body["username"],
        email=body["email"],
        password=body["password"],
        token=r.json["token"],
        first_name=body["first_name"],
        last_name=body["last_name"],
    )


# ---------------------------------------------------------------------- WebSocket frames
async def recv(conn, within: float = 5.0) -> dict:
    """The next JSON frame, or fail after `within` seconds or if the socket closed."""
    raw = await asyncio.wait_for(conn.read_message(), within)
    assert raw is not None, f"socket closed: {conn.close_code} {conn.close_reason}"
    return jsonlib.loads(raw)


async def no_frame(conn, wait: float = 0.3) -> None:
    """Assert that no frame arrives within `wait` seconds."""
    try:
        raw = await asyncio.wait_for(conn.read_message(), wait)
    except TimeoutError:
        return
    raise AssertionError(f"unexpected frame: {raw}")


async def closed(conn, within: float = 5.0) -> int:
    """Wait for the server to close the socket; return the close code."""
    deadline = asyncio.get_running_loop().time() + within
    while True:
        remaining = deadline - asyncio.get_running_loop().time()
        assert remaining > 0, "socket was not closed"
        if await asyncio.wait_for(conn.read_message(), remaining) is None:
            return conn.close_code
