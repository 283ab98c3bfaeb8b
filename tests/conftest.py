"""Test fixtures: a real server process on a real PostgreSQL database, reached over real sockets.

- `server`       the session's server process (a throwaway database, bcrypt cost 4, rate limits
                 lifted); `.url`, `.port`, `.log_text()`.
- `start_server` factory for a test's own server process with config overrides (env-style keys,
                 e.g. start_server(RATE_LIMITS_AUTH_PER_MINUTE="3")); stopped after the test.
- `api`          api(method, path, json=..., token=..., headers=..., body=...) -> Response with
                 .status, .headers, .json, .text. Blocking and thread-safe.
- `make_user`    make_user(**fields) -> User(id, username, email, password, token) registered
                 through the API.
- `ws`           await ws(path, token=..., headers=..., url=...) -> a connected WebSocket client
                 (tornado's websocket_connect); `await recv(conn)` reads one JSON frame or fails
                 after a timeout, `await no_frame(conn)` asserts that nothing arrives.
- `db`           db.fetch / fetchrow / fetchval / execute against the session's database, for
                 checks the API cannot show (the ledger invariant, a row's existence).
- `scratch_database`  the DSN of an empty database of the test's own (for whole-database commands:
                 migrate, backup, restore, the single-file program).
- `private_postgres`  a throwaway PostgreSQL cluster of the test's own (unix socket only), for
                 tests that stop and start PostgreSQL: `.dsn`, `.stop(mode)`, `.start()`.

Everything else tests share (api_request for a server of a test's own, recv / no_frame /
closed, Db, ServerProcess, PrivateCluster, PASSWORD, JWT_SECRET, ...) is in helpers.py.

The database is created when the run starts and dropped when it ends. Tests never share state
except that database, so each creates the users it needs and is independent of order.
"""

from __future__ import annotations

import asyncio
import itertools

import pytest
import tornado.httpclient
import tornado.websocket
from helpers import (
    Db,
    PrivateCluster,
    Response,
    ServerProcess,
    User,
    admin_dsn,
    api_request,
    create_database,
    drop_database,
    register_user,
    server_env,
)


@pytest.fixture(scope="session")
def database_dsn():
    admin = admin_dsn()
    dsn = create_database(admin)
    yield dsn
    drop_database(admin, dsn)


@pytest.fixture
def scratch_database(database_dsn):
    """The DSN of an empty database of this test's own on the test server (for commands that
    migrate, dump or restore a whole database), dropped afterwards."""
    dsn = create_database(database_dsn, prefix="expertconnect_scratch")
    yield dsn
    drop_database(database_dsn, dsn)


@pytest.fixture(scope="session")
def server(database_dsn, tmp_path_factory):
    proc = ServerProcess(
        server_env(database_dsn, {}), tmp_path_factory.mktemp("server") / "server.log"
    ).start()
    yield proc
    proc.stop()
    # Every answer of the whole run was a planned one: a traceback in the shared server's log
    # is a failure no single test saw (a handler that raised while logging, say).
    assert "Traceback" not in proc.log_text(), proc.log_text()[-5000:]


@pytest.fixture
def start_server(database_dsn, tmp_path):
    started: list[ServerProcess] = []
    counter = itertools.count()

    def start(**overrides) -> ServerProcess:
        proc = ServerProcess(
            server_env(database_dsn, overrides), tmp_path / f"server-{next(counter)}.log"
        ).start()
        started.append(proc)
        return proc

    yield start
    for proc in started:
        proc.stop()


@pytest.fixture
def api(server):
    def call(method: str, path: str, **kwargs) -> Response:
        return api_request(server.url, method, path, **kwargs)

    return call


@pytest.fixture
def make_user(server):
    def make(**fields) -> User:
        return register_user(server.url, **fields)

    return make


@pytest.fixture
async def ws(server):
    opened = []

    async def connect(
        path: str, token: str | None = None, headers: dict | None = None, url: str | None = None
    ):
        base = (url or server.url).replace("http://", "ws://")
        sep = "&" if "?" in path else "?"
        full = base + path + (f"{sep}token={token}" if token is not None else "")
        request = tornado.httpclient.HTTPRequest(full, headers=headers or {})
        conn = await asyncio.wait_for(tornado.websocket.websocket_connect(request), 10)
        opened.append(conn)
        return conn

    yield connect
    for conn in opened:
        conn.close()


@pytest.fixture
def db(database_dsn):
    return Db(database_dsn)


@pytest.fixture
def private_postgres():
    cluster = PrivateCluster()
    try:
        cluster.start()
        yield cluster
    finally:
        cluster.remove()
