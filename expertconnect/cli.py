"""The command line of `expertconnect` (the installed program, the single-file build) and of
`python server.py`:

    expertconnect [serve]                 apply pending migrations, then serve
    expertconnect migrate [--status]      apply pending migrations (or list them) and exit
    expertconnect check-config            validate, print the effective configuration
    expertconnect demo-data [--force]     fill an empty database with a demo marketplace
    expertconnect db start|stop|status    the private PostgreSQL cluster (database.dsn empty)
    expertconnect backup FILE             pg_dump, custom format, of the configured database
    expertconnect restore FILE [--force]  pg_restore into it (refuses a non-empty one)
    expertconnect --version

Every command takes --config PATH (default: $EXPERTCONNECT_CONFIG, else ./config.yaml). A
failure the operator can fix is one line on stderr and exit status 2, never a traceback."""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import logging
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import asyncpg
import yaml

from expertconnect import __version__, demo, migrate
from expertconnect.config import ENV_CONFIG, Config, ConfigError, load_config
from expertconnect.db.queries import health as health_q
from expertconnect.localdb import (
    LocalDatabaseError,
    cluster_dir,
    ensure_local_cluster,
    find_pg_bin,
    local_cluster_running,
    resolve_dsn,
    stop_local_cluster,
)
from expertconnect.observability import configure_logging
from expertconnect.serve import (
    DATABASE_UNREACHABLE,
    StartupError,
    build_services,
    event_loop_factory,
    open_database,
    redacted_dsn,
    run_migrations,
    serve,
)

log = logging.getLogger("expertconnect")

# Exit statuses: 2 for anything the operator must fix (as argparse does for a bad command
# line); 1 when `migrate --status` finds pending migrations, so scripts can test for it.
EXIT_USAGE = 2
EXIT_PENDING = 1
# Seconds pg_dump / pg_restore may run: bounded, but generous for a small deployment's data.
DUMP_TIMEOUT = 3600


class CommandError(Exception):
    """A command cannot do what was asked; the message is the one line the user sees."""


def _parser() -> argparse.ArgumentParser:
    # --config is accepted before or after the command name.
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument(
        "--config",
        default=argparse.SUPPRESS,
        help=f"the configuration file (default: ${ENV_CONFIG}, else ./config.yaml)",
    )
    parser = argparse.ArgumentParser(
        prog="expertconnect",
        description="ExpertConnect: the backend of an expert-consultation marketplace.",
        parents=[common],
    )
    parser.add_argument("--version", action="version", version=f"expertconnect {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")
    commands.add_parser("serve", parents=[common], help="serve (the default)")
    migrate_cmd = commands.add_parser(
        "migrate", parents=[common], help="apply pending migrations and exit"
    )
    migrate_cmd.add_argument(
        "--status",
        action="store_true",
        help="list applied and pending migrations, change nothing; exit 1 while any is pending",
    )
    commands.add_parser(
        "check-config", parents=[common], help="validate and print the effective configuration"
    )
    demo_cmd = commands.add_parser(
        "demo-data",
        parents=[common],
        help="fill an empty database with a believable demo marketplace (never in production)",
    )
    demo_cmd.add_argument(
        "--force",
        action="store_true",
        help="add the demo marketplace to a database that already has users (deletes nothing)",
    )
    db_cmd = commands.add_parser(
        "db", parents=[common], help="the private PostgreSQL cluster (database.dsn empty)"
    )
    db_cmd.add_argument("action", choices=["start", "stop", "status"])
    backup_cmd = commands.add_parser(
        "backup", parents=[common], help="dump the database to FILE (pg_dump custom format)"
    )
    backup_cmd.add_argument("file", type=Path)
    restore_cmd = commands.add_parser(
        "restore", parents=[common], help="restore a dump made by backup"
    )
    restore_cmd.add_argument("file", type=Path)
    restore_cmd.add_argument(
        "--force", action="store_true", help="replace the contents of a non-empty database"
    )
    return parser


def _config_path(args: argparse.Namespace, default_config: Path | None) -> Path:
    given = getattr(args, "config", None) or os.environ.get(ENV_CONFIG)
    if given:
        return Path(given)
    if default_config is not None:
        return default_config
    if Path("config.yaml").exists():
        return Path("config.yaml")
    raise ConfigError(f"no configuration file: pass --config PATH or set {ENV_CONFIG}")


# ---------------------------------------------------------------------------------- commands
def _run_serve(config: Config) -> int:
    with asyncio.Runner(loop_factory=event_loop_factory(config.server.event_loop)) as runner:
        runner.run(serve(config))
    return 0


def _run_migrate(config: Config, show_status: bool) -> int:
    async def run() -> int:
        dsn = await resolve_dsn(config)
        conn = await asyncpg.connect(dsn)
        try:
            if not show_status:
                applied = await migrate.apply_pending(conn)
                print(f"applied: {', '.join(applied)}" if applied else "up to date")
                return 0
            states = await migrate.status(conn)
        finally:
            await conn.close()
        for name, state in states:
            print(f"{state:8} {name}")
        return EXIT_PENDING if any(state != "applied" for _, state in states) else 0

    return asyncio.run(run())


def _masked(config: Config) -> dict[str, Any]:
    """The effective configuration as plain data, secrets replaced."""
    shown: dict[str, Any] = {}
    for f in dataclasses.fields(config):
        value = getattr(config, f.name)
        if dataclasses.is_dataclass(value) and not isinstance(value, type):
            section = {}
            for key, item in dataclasses.asdict(value).items():
                section[key] = list(item) if isinstance(item, tuple) else item
            shown[f.name] = section
        else:
            shown[f.name] = str(value) if value is not None else None
    if shown["auth"]["jwt_secret"]:
        shown["auth"]["jwt_secret"] = "***"
    shown["database"]["dsn"] = redacted_dsn(shown["database"]["dsn"])
    shown["credits"]["price_usd"] = str(shown["credits"]["price_usd"])
    return shown


def _run_check_config(config: Config) -> int:
    print(f"# {config.source}: valid. Effective configuration (secrets masked):")
    print(yaml.safe_dump(_masked(config), sort_keys=False), end="")
    return 0


def _run_demo_data(config: Config, force: bool) -> int:
    async def run() -> demo.Summary:
        dsn = await resolve_dsn(config)
        await run_migrations(dsn)
        db = await open_database(config, dsn)
        try:
            # The listener is never started: nothing here needs to hear other processes.
            services, _listener = await build_services(config, dsn, db)
            return await demo.create_marketplace(services, force=force)
        finally:
            await db.close()

    try:
        summary = asyncio.run(run())
    except demo.DatabaseHasUsers as exc:
        raise CommandError(str(exc)) from None
    print("demo marketplace created:")
    for line in summary.lines():
        print(f"  {line}")
    expert, client = summary.experts[0], summary.clients[0]
    print(f"log in as the expert {expert.username} or the client {client.username};")
    print(f'every demo account has the password "{demo.DEMO_PASSWORD}"')
    return 0


def _require_private_cluster(config: Config) -> None:
    if config.database.dsn:
        raise CommandError(
            "database.dsn is set: this deployment uses that server, not a private cluster"
        )


def _run_db(config: Config, action: str) -> int:
    _require_private_cluster(config)
    where = cluster_dir(config.var_dir)
    if action == "start":
        ensure_local_cluster(config.var_dir)
        print(f"private PostgreSQL cluster running in {where}")
    elif action == "stop":
        stopped = stop_local_cluster(config.var_dir)
        print(
            f"private PostgreSQL cluster in {where} {'stopped' if stopped else 'was not running'}"
        )
    else:
        running = local_cluster_running(config.var_dir)
        print(f"private PostgreSQL cluster in {where}: {'running' if running else 'stopped'}")
        return 0 if running else 3  # as pg_ctl status: 3 = not running
    return 0


def _pg_tool(name: str) -> str:
    """pg_dump/pg_restore of the newest installed server (never older than the server)."""
    try:
        return str(find_pg_bin() / name)
    except LocalDatabaseError:
        raise CommandError(
            f"{name} not found: install PostgreSQL's client tools "
            "(Debian: apt-get install postgresql-client)"
        ) from None


def _run_pg_tool(argv: list[str]) -> None:
    done = subprocess.run(argv, capture_output=True, text=True, timeout=DUMP_TIMEOUT)
    if done.returncode != 0:
        reason = (done.stderr.strip().splitlines() or ["failed"])[-1]
        raise CommandError(f"{Path(argv[0]).name}: {reason}")


def _run_backup(config: Config, file: Path) -> int:
    dsn = asyncio.run(resolve_dsn(config))
    _run_pg_tool([_pg_tool("pg_dump"), "--format=custom", "--file", str(file), "--dbname", dsn])
    print(f"backed up {redacted_dsn(dsn)} to {file} ({file.stat().st_size} bytes)")
    return 0


async def _database_has_tables(dsn: str) -> bool:
    conn = await asyncpg.connect(dsn)
    try:
        return await health_q.exists_any_table(conn)
    finally:
        await conn.close()


def _run_restore(config: Config, file: Path, force: bool) -> int:
    if not file.is_file():
        raise CommandError(f"no such backup file: {file}")
    dsn = asyncio.run(resolve_dsn(config))
    if asyncio.run(_database_has_tables(dsn)) and not force:
        raise CommandError(
            f"the database {redacted_dsn(dsn)} is not empty: restore would replace its "
            "contents; run again with --force to do so"
        )
    argv = [_pg_tool("pg_restore"), "--no-owner", "--exit-on-error", "--single-transaction"]
    if force:
        argv += ["--clean", "--if-exists"]
    _run_pg_tool([*argv, "--dbname", dsn, str(file)])
    print(f"restored {file} into {redacted_dsn(dsn)}")
    return 0


# ------------------------------------------------------------------------------------- main
def main(argv: list[str] | None = None, default_config: Path | None = None) -> int:
    args = _parser().parse_args(argv)
    configure_logging()  # the defaults, until the configuration is read
    command = args.command or "serve"
    try:
        config = load_config(_config_path(args, default_config))
        configure_logging(config.logging.format, config.logging.level)
        if command == "serve":
            # Start-up failures arrive as StartupError; anything else is a crash worth its
            # traceback.
            return _run_serve(config)
        if command == "migrate":
            return _run_migrate(config, args.status)
        if command == "check-config":
            return _run_check_config(config)
        if command == "demo-data":
            return _run_demo_data(config, args.force)
        if command == "db":
            return _run_db(config, args.action)
        if command == "backup":
            return _run_backup(config, args.file)
        return _run_restore(config, args.file, args.force)
    except (ConfigError, CommandError, StartupError, LocalDatabaseError) as exc:
        return _fail(str(exc))
    except migrate.MigrationError as exc:
        return _fail(f"migrations: {exc}")
    except DATABASE_UNREACHABLE as exc:
        if command == "serve":
            raise
        return _fail(f"cannot reach the database: {_reason(exc)}")
    except subprocess.TimeoutExpired as exc:
        return _fail(f"{Path(str(exc.cmd[0])).name} did not finish in {exc.timeout:.0f} s")


def _reason(exc: BaseException) -> str:
    """The first line of an error's own message."""
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__


def _fail(message: str) -> int:
    print(f"expertconnect: error: {message}", file=sys.stderr)
    return EXIT_USAGE
