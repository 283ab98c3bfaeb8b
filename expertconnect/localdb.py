"""A private PostgreSQL cluster for deployments that configure no database.dsn: created with the
system's initdb on first use, started with pg_ctl when not running, listening only on a unix
socket in its own directory. As root the binaries run as the `postgres` OS user, and the cluster
lives where that user can reach it (a checkout under a 0700 home cannot be). Also where the
server's DSN is decided (resolve_dsn) and its database created when missing."""

from __future__ import annotations

import asyncio
import glob
import hashlib
import logging
import os
import pwd
import shutil
import subprocess
from pathlib import Path
from urllib.parse import quote

import asyncpg

from expertconnect.config import Config

log = logging.getLogger(__name__)

PG_USER = "postgres"


class LocalDatabaseError(Exception):
    pass


def find_pg_bin() -> Path:
    """The newest installed server's bin directory (Debian keeps them off PATH)."""
    candidates = sorted(
        glob.glob("/usr/lib/postgresql/*/bin/initdb"), key=lambda p: int(Path(p).parent.parent.name)
    )
    if candidates:
        return Path(candidates[-1]).parent
    initdb = shutil.which("initdb")
    if initdb:
        return Path(initdb).resolve().parent
    raise LocalDatabaseError(
        "PostgreSQL server binaries not found: install them (Debian: apt-get install postgresql) "
        "or set database.dsn to an existing server"
    )


def _reachable_by(path: Path, user: pwd.struct_passwd) -> bool:
    """Can `user` traverse every directory down to `path`? (others' x bit, or owner/group)."""
    for parent in [*reversed(path.parents), path]:
        if not parent.exists():
            break
        st = parent.stat()
        if st.st_uid == user.pw_uid:
            ok = st.st_mode & 0o100
        elif st.st_gid == user.pw_gid:
            ok = st.st_mode & 0o010
        else:
            ok = st.st_mode & 0o001
        if not ok:
            return False
    return True


def cluster_dir(var_dir: Path) -> Path:
    """var/pg normally; as root, a per-checkout directory under /var/tmp when the postgres user
    cannot reach var/."""
    wanted = (var_dir / "pg").resolve()
    if os.geteuid() != 0:
        return wanted
    pg = pwd.getpwnam(PG_USER)
    if _reachable_by(wanted.parent, pg):
        return wanted
    tag = hashlib.sha256(str(wanted).encode()).hexdigest()[:12]
    return Path("/var/tmp") / f"expertconnect-pg-{tag}"


def _run(argv: list[str]) -> subprocess.CompletedProcess:
    if os.geteuid() == 0:
        argv = ["runuser", "-u", PG_USER, "--", *argv]
    return subprocess.run(argv, capture_output=True, text=True, timeout=120)


def _prepare_dir(path: Path) -> None:
    path.mkdir(parents=True, exist_ok=True)
    if os.geteuid() == 0:
        pg = pwd.getpwnam(PG_USER)
        os.chown(path, pg.pw_uid, pg.pw_gid)
    os.chmod(path, 0o700)


def ensure_local_cluster(var_dir: Path) -> str:
    """Create and start the private cluster if needed; return a DSN for its `postgres` database."""
    pg_bin = find_pg_bin()
    root = cluster_dir(var_dir)
    data, sockets = root / "data", root / "socket"
    for d in (root, sockets):
        _prepare_dir(d)
    if not (data / "PG_VERSION").exists():
        _prepare_dir(data)
        log.info("creating private PostgreSQL cluster in %s", data)
        done = _run(
            [
                str(pg_bin / "initdb"),
                "-D",
                str(data),
                "-U",
                PG_USER,
                "--auth=trust",
                "--encoding=UTF8",
                "--no-instructions",
            ]
        )
        if done.returncode != 0:
            raise LocalDatabaseError(f"initdb failed: {done.stderr.strip()}")
    status = _run([str(pg_bin / "pg_ctl"), "-D", str(data), "status"])
    if status.returncode != 0:
        log.info("starting private PostgreSQL cluster in %s", data)
        # No TCP listener: the socket directory is the only way in. The log keeps no user data:
        # an expected refusal (a duplicate review, an overlapping slot) is logged without its
        # statement text (log_min_error_statement) and without the DETAIL line that quotes the
        # key values (terse verbosity).
        options = (
            f"-c listen_addresses='' -k {sockets} -c max_connections=200 "
            "-c log_min_error_statement=panic -c log_error_verbosity=terse"
        )
        started = _run(
            [
                str(pg_bin / "pg_ctl"),
                "-D",
                str(data),
                "-l",
                str(root / "server.log"),
                "-o",
                options,
                "-w",
                "-t",
                "60",
                "start",
            ]
        )
        if started.returncode != 0:
            raise LocalDatabaseError(
                f"pg_ctl start failed ({started.stderr.strip() or started.stdout.strip()}); "
                f"see {root / 'server.log'}"
            )
    return f"postgresql://{PG_USER}@/postgres?host={quote(str(sockets), safe='')}"


def local_cluster_running(var_dir: Path) -> bool:
    data = cluster_dir(var_dir) / "data"
    if not (data / "PG_VERSION").exists():
        return False
    return _run([str(find_pg_bin() / "pg_ctl"), "-D", str(data), "status"]).returncode == 0


def stop_local_cluster(var_dir: Path) -> bool:
    """Stop the private cluster (fast: sessions are disconnected); False if it was not running."""
    if not local_cluster_running(var_dir):
        return False
    data = cluster_dir(var_dir) / "data"
    done = _run([str(find_pg_bin() / "pg_ctl"), "-D", str(data), "-m", "fast", "-w", "stop"])
    if done.returncode != 0:
        raise LocalDatabaseError(f"pg_ctl stop failed: {done.stderr.strip()}")
    return True


async def resolve_dsn(config: Config) -> str:
    """The configured DSN, or the private cluster's (created on first use) with our database."""
    if config.database.dsn:
        return config.database.dsn
    admin_dsn = await asyncio.get_running_loop().run_in_executor(
        None, ensure_local_cluster, config.var_dir
    )
    await ensure_database(admin_dsn, config.database.name)
    return admin_dsn.replace("@/postgres?", f"@/{config.database.name}?", 1)


async def ensure_database(admin_dsn: str, name: str) -> None:
    conn = await asyncpg.connect(admin_dsn)
    try:
        exists = await conn.fetchval("SELECT 1 FROM pg_database WHERE datname = $1", name)
        if not exists:
            # Identifiers cannot be parameters; quote_ident makes the name safe.
            quoted = await conn.fetchval("SELECT quote_ident($1)", name)
            await conn.execute(f"CREATE DATABASE {quoted}")
    finally:
        await conn.close()
