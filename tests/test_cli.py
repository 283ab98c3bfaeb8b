"""The command line (`python server.py ...`, the same as the installed `expertconnect`): every
subcommand against a real database of its own, and every start-up failure an operator can fix
answered with one line and exit status 2."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest
from helpers import Db

from expertconnect import __version__

ROOT = Path(__file__).resolve().parent.parent
SECRET = "cli-test-secret-" + "x" * 32


def cli(*args: str, env: dict[str, str] | None = None, cwd: Path = ROOT, timeout: float = 60):
    """Run the command line with a clean environment (no EXPERTCONNECT_* but `env`)."""
    base = {k: v for k, v in os.environ.items() if not k.startswith("EXPERTCONNECT_")}
    return subprocess.run(
        [sys.executable, str(ROOT / "server.py"), *args],
        env={**base, **(env or {})},
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def assert_one_line_error(done: subprocess.CompletedProcess, *words: str) -> None:
    assert done.returncode == 2, done
    assert "Traceback" not in done.stderr, done.stderr
    # One clear line, the last thing written (start-up's log lines may come before it).
    errors = [line for line in done.stderr.splitlines() if "error" in line.lower()]
    assert len(errors) == 1, done.stderr
    assert errors[0].startswith("expertconnect: error: "), errors
    assert done.stderr.rstrip().endswith(errors[0])
    for word in words:
        assert word in errors[0], errors[0]


def db_env(dsn: str) -> dict[str, str]:
    return {"EXPERTCONNECT_DATABASE_DSN": dsn, "EXPERTCONNECT_AUTH_JWT_SECRET": SECRET}


def test_version():
    done = cli("--version")
    assert done.returncode == 0
    assert done.stdout.strip() == f"expertconnect {__version__}"


def test_check_config_prints_the_effective_configuration_with_secrets_masked():
    done = cli(
        "check-config",
        env={
            "EXPERTCONNECT_AUTH_JWT_SECRET": SECRET,
            "EXPERTCONNECT_DATABASE_DSN": "postgresql://app:hunter2-secret@db.internal:5432/ec",
            "EXPERTCONNECT_SERVER_PORT": "9123",
        },
    )
    assert done.returncode == 0, done.stderr
    assert "port: 9123" in done.stdout
    assert SECRET not in done.stdout and "hunter2-secret" not in done.stdout
    assert "postgresql://app:***@db.internal:5432/ec" in done.stdout


@pytest.mark.parametrize(
    ("env", "words"),
    [
        ({"EXPERTCONNECT_SERVR_PORT": "1"}, ["EXPERTCONNECT_SERVR_PORT"]),
        ({"EXPERTCONNECT_DATABASE_DSN": "mysql://x@y/z"}, ["database.dsn"]),
        ({"EXPERTCONNECT_DATABASE_DSN": "postgresql://x@y:port/z"}, ["database.dsn", "port"]),
        ({"EXPERTCONNECT_REALTIME_PING_TIMEOUT": "30"}, ["realtime.ping_timeout"]),
        ({"EXPERTCONNECT_SERVER_PORT": "http"}, ["server.port"]),
    ],
)
def test_a_bad_configuration_is_one_line_and_exit_status_2(env, words):
    assert_one_line_error(cli("check-config", env=env), *words)
    assert_one_line_error(cli("serve", env=env), *words)


def test_a_missing_config_file_is_one_line_and_exit_status_2(tmp_path):
    assert_one_line_error(cli("--config", str(tmp_path / "nope.yaml")), "nope.yaml")


def test_an_unreachable_database_at_start_up_is_one_line():
    # Port 1 on loopback: nothing listens there.
    done = cli("serve", env=db_env("postgresql://postgres@127.0.0.1:1/expertconnect"))
    assert_one_line_error(done, "cannot reach the database")


def test_the_listening_address_in_use_is_named(scratch_database):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        done = cli(
            "serve", env={**db_env(scratch_database), "EXPERTCONNECT_SERVER_PORT": str(port)}
        )
    assert_one_line_error(done, f"127.0.0.1:{port}", "in use")


def test_migrate_status_changes_nothing_and_exits_1_while_pending(scratch_database):
    done = cli("migrate", "--status", env=db_env(scratch_database))
    assert done.returncode == 1, done
    assert "pending  0001_initial_schema.sql" in done.stdout
    # Nothing was written: not even the bookkeeping table.
    assert Db(scratch_database).fetchval("SELECT to_regclass('schema_migrations')") is None

    assert cli("migrate", env=db_env(scratch_database)).returncode == 0
    done = cli("migrate", "--status", env=db_env(scratch_database))
    assert done.returncode == 0, done
    assert "pending" not in done.stdout and "applied  0001_initial_schema.sql" in done.stdout


def test_backup_and_restore_round_trip(scratch_database, tmp_path):
    env = db_env(scratch_database)
    assert cli("migrate", env=env).returncode == 0
    Db(scratch_database).execute(
        "INSERT INTO categories (name) VALUES ('Backed-up category')",
    )
    dump = tmp_path / "expertconnect.dump"
    done = cli("backup", str(dump), env=env)
    assert done.returncode == 0, done.stderr
    assert dump.stat().st_size > 0

    # A database with tables is not replaced without --force.
    assert_one_line_error(cli("restore", str(dump), env=env), "--force")
    Db(scratch_database).execute("DELETE FROM categories WHERE name = 'Backed-up category'")
    done = cli("restore", str(dump), "--force", env=env)
    assert done.returncode == 0, done.stderr
    count = "SELECT count(*) FROM categories WHERE name = 'Backed-up category'"
    assert Db(scratch_database).fetchval(count) == 1


def test_restore_of_a_missing_file_is_one_line(tmp_path):
    done = cli("restore", str(tmp_path / "none.dump"), env=db_env("postgresql://x@127.0.0.1/x"))
    assert_one_line_error(done, "none.dump")


def test_var_dir_resolves_against_the_config_file_not_the_current_directory(tmp_path):
    config_dir = tmp_path / "etc"
    config_dir.mkdir()
    (config_dir / "config.yaml").write_text("var_dir: state\n")
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    done = cli("check-config", "--config", "../etc/config.yaml", cwd=elsewhere)
    assert done.returncode == 0, done.stderr
    assert f"var_dir: {config_dir.resolve() / 'state'}" in done.stdout


def test_db_commands_speak_of_the_private_cluster_only(tmp_path):
    config = tmp_path / "config.yaml"
    config.write_text("var_dir: state\n")
    # No cluster was ever created under this var_dir: stopped, status 3 as pg_ctl says.
    done = cli("db", "status", "--config", str(config))
    assert done.returncode == 3, done
    assert "stopped" in done.stdout
    assert not (tmp_path / "state" / "pg").exists()  # asking created nothing
    done = cli("db", "status", "--config", str(config), env=db_env("postgresql://x@h/db"))
    assert_one_line_error(done, "database.dsn is set")
