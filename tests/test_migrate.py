"""The migration runner (expertconnect.migrate) on an empty database of each test's own, with
migration files of the test's own: order, once only, the sha256 check of applied files, the
advisory lock that makes concurrent starters wait, and `status`."""

import asyncio
import hashlib

import asyncpg
import pytest
from helpers import admin_dsn, create_database, drop_database

from expertconnect import migrate
from expertconnect.migrate import ADVISORY_LOCK_KEY, MigrationError, apply_pending, status


@pytest.fixture
def empty_dsn():
    admin = admin_dsn()
    dsn = create_database(admin, prefix="expertconnect_migrate")
    yield dsn
    drop_database(admin, dsn)


@pytest.fixture
def migrations(tmp_path):
    """write(name, sql): add a migration file to the test's own migrations directory."""
    directory = tmp_path / "migrations"
    directory.mkdir()

    def write(name: str, sql: str):
        (directory / name).write_text(sql)
        return directory

    write.directory = directory
    return write


@pytest.fixture
async def connect(empty_dsn):
    """await connect() -> a connection of its own (a PostgreSQL backend process of its own) to
    the test's empty database; closed after the test."""
    opened = []

    async def open_one() -> asyncpg.Connection:
        conn = await asyncpg.connect(empty_dsn)
        opened.append(conn)
        return conn

    yield open_one
    for conn in opened:
        await conn.close()


async def recorded(conn) -> dict[str, str]:
    rows = await conn.fetch("SELECT name, checksum FROM schema_migrations ORDER BY name")
    return {r["name"]: r["checksum"] for r in rows}


def sha256_of(path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


async def test_pending_files_are_applied_in_order_once_with_their_sha256(migrations, connect):
    # 0002 and 0010 only work after 0001; "0010" sorts after "0002" because names are 4 digits.
    migrations("0010_third.sql", "INSERT INTO runs (step) VALUES (3);")
    migrations("0001_first.sql", "CREATE TABLE runs (step int NOT NULL);")
    migrations("0002_second.sql", "INSERT INTO runs (step) VALUES (2);")
    migrations("README.txt", "not a migration")
    conn = await connect()

    applied = await apply_pending(conn, migrations.directory)

    assert applied == ["0001_first.sql", "0002_second.sql", "0010_third.sql"]
    assert await conn.fetch("SELECT step FROM runs") == [(2,), (3,)]
    assert await recorded(conn) == {
        name: sha256_of(migrations.directory / name) for name in applied
    }
    # Run again: nothing is pending, nothing runs twice.
    assert await apply_pending(conn, migrations.directory) == []
    assert await conn.fetchval("SELECT count(*) FROM runs") == 2
    # A file added later is applied alone.
    migrations("0011_fourth.sql", "INSERT INTO runs (step) VALUES (4);")
    assert await apply_pending(conn, migrations.directory) == ["0011_fourth.sql"]
    assert await conn.fetchval("SELECT count(*) FROM runs") == 3


async def test_an_edited_applied_file_stops_the_runner(migrations, connect):
    migrations("0001_first.sql", "CREATE TABLE runs (step int NOT NULL);")
    conn = await connect()
    await apply_pending(conn, migrations.directory)
    before = await recorded(conn)

    migrations("0001_first.sql", "CREATE TABLE runs (step bigint NOT NULL);")
    migrations("0002_second.sql", "INSERT INTO runs (step) VALUES (2);")
    with pytest.raises(MigrationError, match=r"migration 0001_first\.sql was edited"):
        await apply_pending(conn, migrations.directory)

    # Nothing after the edited file ran, and the lock was released for the next starter.
    assert await recorded(conn) == before
    assert await conn.fetchval("SELECT count(*) FROM runs") == 0
    other = await connect()
    assert await other.fetchval("SELECT pg_try_advisory_lock($1)", ADVISORY_LOCK_KEY)


async def test_a_failing_file_leaves_no_trace_and_later_files_wait(migrations, connect):
    migrations("0001_first.sql", "CREATE TABLE runs (step int NOT NULL);")
    migrations("0002_broken.sql", "CREATE TABLE half (id int);\nSELECT 1 / 0;")
    migrations("0003_later.sql", "INSERT INTO runs (step) VALUES (3);")
    conn = await connect()

    with pytest.raises(asyncpg.DivisionByZeroError):
        await apply_pending(conn, migrations.directory)

    assert list(await recorded(conn)) == ["0001_first.sql"]
    assert await conn.fetchval("SELECT to_regclass('half')") is None
    assert await conn.fetchval("SELECT count(*) FROM runs") == 0
    # Fixed (it was never applied, so it may change), the run continues where it stopped.
    migrations("0002_broken.sql", "CREATE TABLE half (id int);")
    assert await apply_pending(conn, migrations.directory) == ["0002_broken.sql", "0003_later.sql"]


async def test_a_runner_waits_while_another_process_holds_the_lock(migrations, connect):
    migrations("0001_first.sql", "CREATE TABLE runs (step int NOT NULL);")
    migrations("0002_second.sql", "INSERT INTO runs (step) VALUES (2);")
    holder, waiter = await connect(), await connect()
    await holder.execute("SELECT pg_advisory_lock($1)", ADVISORY_LOCK_KEY)

    waiting = asyncio.create_task(apply_pending(waiter, migrations.directory))
    done, _ = await asyncio.wait({waiting}, timeout=0.5)
    assert not done, "apply_pending ran while another process held the advisory lock"
    wait_event = await holder.fetchval(
        "SELECT wait_event_type FROM pg_stat_activity WHERE pid = $1",
        waiter.get_server_pid(),
    )
    assert wait_event == "Lock"

    # Meanwhile the holder migrates (the lock is re-entrant in its own session), then lets go.
    assert await apply_pending(holder, migrations.directory) == [
        "0001_first.sql",
        "0002_second.sql",
    ]
    await holder.execute("SELECT pg_advisory_unlock($1)", ADVISORY_LOCK_KEY)

    assert await asyncio.wait_for(waiting, 10) == []
    assert await holder.fetchval("SELECT count(*) FROM runs") == 1
    assert len(await recorded(holder)) == 2


async def test_runners_starting_together_apply_each_file_once(migrations, connect):
    migrations("0001_first.sql", "CREATE TABLE runs (step int NOT NULL);")
    migrations("0002_second.sql", "INSERT INTO runs (step) VALUES (2);")
    conns = [await connect() for _ in range(3)]

    results = await asyncio.wait_for(
        asyncio.gather(*(apply_pending(c, migrations.directory) for c in conns)), 20
    )

    assert sorted(results) == [[], [], ["0001_first.sql", "0002_second.sql"]]
    assert await conns[0].fetchval("SELECT count(*) FROM runs") == 1


async def test_status_lists_applied_pending_and_edited(migrations, connect):
    migrations("0001_first.sql", "CREATE TABLE runs (step int NOT NULL);")
    migrations("0002_second.sql", "INSERT INTO runs (step) VALUES (2);")
    conn = await connect()
    assert await status(conn, migrations.directory) == [
        ("0001_first.sql", "pending"),
        ("0002_second.sql", "pending"),
    ]

    await apply_pending(conn, migrations.directory)
    migrations("0001_first.sql", "CREATE TABLE runs (step bigint);")
    migrations("0003_third.sql", "SELECT 1;")
    assert await status(conn, migrations.directory) == [
        ("0001_first.sql", "edited"),
        ("0002_second.sql", "applied"),
        ("0003_third.sql", "pending"),
    ]


def test_a_file_without_a_four_digit_number_is_refused(migrations):
    migrations("0001_first.sql", "SELECT 1;")
    migrations("2_second.sql", "SELECT 1;")
    with pytest.raises(MigrationError, match=r"2_second\.sql: name must start with a 4-digit"):
        migrate.discover(migrations.directory)


def test_the_shipped_migrations_are_numbered_once_each():
    names = [m.name for m in migrate.discover()]
    numbers = [name[:4] for name in names]
    assert names and len(set(numbers)) == len(numbers), names
