"""`make dist` builds dist/expertconnect, a single file that serves from anywhere: copied into an
empty directory outside the checkout and run with the system's python3 (no virtualenv, no
checkout on its path) against a database of its own, it prints its version, applies every
migration it carries and answers health checks."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import time
import urllib.request
from pathlib import Path

from helpers import Db

from expertconnect import __version__

ROOT = Path(__file__).resolve().parent.parent
MIGRATIONS = sorted(p.name for p in (ROOT / "sql" / "migrations").glob("*.sql"))
# Seconds for the first start, which unpacks the dependencies once.
START_TIMEOUT = 90


def _clean_environment(shiv_root: Path) -> dict[str, str]:
    """The environment of a plain server: nothing of the checkout or its virtualenv on PATH,
    no EXPERTCONNECT_* settings but those the test gives."""
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("EXPERTCONNECT_", "PYTHON", "VIRTUAL_ENV"))
    }
    env["PATH"] = os.pathsep.join(
        entry for entry in env.get("PATH", "").split(os.pathsep) if str(ROOT) not in entry
    )
    env["SHIV_ROOT"] = str(shiv_root)  # unpack into the test's directory, not ~/.shiv
    return env


def _get(url: str) -> tuple[int, dict]:
    with urllib.request.urlopen(url, timeout=5) as answer:
        return answer.status, json.loads(answer.read())


def test_the_single_file_program_serves_from_another_directory(
    scratch_database, tmp_path, unused_tcp_port
):
    built = subprocess.run(["make", "dist"], cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert built.returncode == 0, built.stdout + built.stderr

    app_dir, etc_dir = tmp_path / "opt", tmp_path / "etc"
    app_dir.mkdir()
    etc_dir.mkdir()
    program = app_dir / "expertconnect"
    shutil.copy2(ROOT / "dist" / "expertconnect", program)
    config = etc_dir / "config.yaml"
    config.write_text(
        f"server:\n  port: {unused_tcp_port}\n"
        f"database:\n  dsn: {scratch_database}\n"
        f"auth:\n  jwt_secret: {'single-file-test-' * 3}\n  bcrypt_rounds: 4\n"
    )
    env = _clean_environment(tmp_path / "shiv")

    version = subprocess.run(
        ["./expertconnect", "--version"],
        cwd=app_dir,
        env=env,
        capture_output=True,
        text=True,
        timeout=START_TIMEOUT,
    )
    assert version.returncode == 0, version.stderr
    assert version.stdout.strip() == f"expertconnect {__version__}"

    log_path = tmp_path / "server.log"
    with open(log_path, "wb") as log:
        server = subprocess.Popen(
            ["./expertconnect", "serve", "--config", str(config)],
            cwd=app_dir,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    try:
        base = f"http://127.0.0.1:{unused_tcp_port}"
        deadline = time.monotonic() + START_TIMEOUT
        while True:
            assert server.poll() is None, log_path.read_text()
            assert time.monotonic() < deadline, log_path.read_text()
            try:
                status, body = _get(base + "/api/health/")
                break
            except OSError:
                time.sleep(0.2)
        assert (status, body) == (200, {"status": "ok"})
        _, document = _get(base + "/api/openapi.json")
        assert document["info"]["version"] == __version__

        rows = Db(scratch_database).fetch("SELECT name FROM schema_migrations ORDER BY name")
        applied = [r["name"] for r in rows]
        assert applied == MIGRATIONS
        # Nothing was created beside the program: its state directory is the config's.
        assert sorted(p.name for p in app_dir.iterdir()) == ["expertconnect"]
    finally:
        server.send_signal(signal.SIGTERM)
        assert server.wait(timeout=20) == 0, log_path.read_text()
