"""A/B of the server from several checkouts: every server on one throwaway database seeded as
bench/run.py seeds it, each GET endpoint driven in turn against the bare Tornado floor and each
server (order rotated every round), with the CPU each request cost the server process and the
database's backends (from /proc). For measuring one change alone; `make bench` stays the
measurement of record.

    bench/.venv/bin/python bench/ab.py old=/tmp/old-checkout new=.            (or .venv/bin/python)

A checkout is a directory with server.py (e.g. `git archive main | tar -x -C /tmp/old`); an
optional third part, label=dir=path, is put on that server's PYTHONPATH. Settings: AB_ROUNDS
(5), AB_SECONDS (3), AB_ONLY (comma list of the endpoint names below),
EXPERTCONNECT_BENCH_ADMIN_DSN as for bench/run.py.
"""

from __future__ import annotations

import asyncio
import os
import signal
import statistics
import subprocess
import sys
import time
import uuid

import run as bench

ROUNDS = bench.env_int("AB_ROUNDS", 5)
SECONDS = bench.env_int("AB_SECONDS", 3)
ENDPOINTS = ["me", "meetings", "conversation", "experts", "inbox", "conversations",
             "transactions", "notifications"]  # fmt: skip
ONLY = [n for n in os.environ.get("AB_ONLY", ",".join(ENDPOINTS)).split(",") if n]
TICK = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int) -> float:
    try:
        with open(f"/proc/{pid}/stat") as stat:
            fields = stat.read().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / TICK  # utime + stime


def backends_cpu_seconds(database: str) -> float:
    """CPU of every PostgreSQL backend connected to `database` (their titles name it)."""
    total = 0.0
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/cmdline", "rb") as cmdline:
                title = cmdline.read()
        except OSError:
            continue
        if title.startswith(b"postgres:") and database.encode() in title:
            total += cpu_seconds(int(entry))
    return total


def start_server(label: str, root: str, port: int, dsn: str, pythonpath: str | None):
    env = {k: v for k, v in os.environ.items() if not k.startswith("EXPERTCONNECT_")}
    env.update(
        EXPERTCONNECT_DATABASE_DSN=dsn,
        EXPERTCONNECT_SERVER_PORT=str(port),
        EXPERTCONNECT_AUTH_JWT_SECRET=bench.JWT_SECRET,
        EXPERTCONNECT_AUTH_BCRYPT_ROUNDS="4",
        EXPERTCONNECT_RATE_LIMITS_DEFAULT_PER_MINUTE="100000000",
        EXPERTCONNECT_RATE_LIMITS_AUTH_PER_MINUTE="100000000",
    )
    if pythonpath:
        env["PYTHONPATH"] = pythonpath
    log = open(bench.ROOT / "var" / f"ab-{label}.log", "wb")
    return subprocess.Popen(
        [sys.executable, f"{root}/server.py", "--config", f"{root}/config.yaml"],
        cwd=root,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )


def wait_ready(
    port: int, process: subprocess.Popen, path: str = "/api/health/", token: str | None = None
) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and process.poll() is None:
        try:
            if bench.request(port, "GET", path, token=token, timeout=5)[0] == 200:
                return
        except OSError:
            pass
        time.sleep(0.2)
    raise RuntimeError(f"server on port {port} did not become ready")


def main() -> int:
    servers = [arg.split("=") for arg in sys.argv[1:]]
    if len(servers) < 2 or any(len(s) not in (2, 3) for s in servers):
        sys.exit(__doc__)
    (bench.ROOT / "var").mkdir(exist_ok=True)
    admin = bench.admin_dsn()
    database = f"expertconnect_ab_{os.getpid()}"
    asyncio.run(bench.ensure_database(admin, database))
    dsn = bench.with_database(admin, database)
    processes: list[subprocess.Popen] = []
    try:
        ports, pids = {}, {}
        for label, root, *path in servers:
            ports[label] = bench.free_port()
            process = start_server(label, root, ports[label], dsn, path[0] if path else None)
            processes.append(process)
            pids[label] = process.pid
            wait_ready(ports[label], process)
        first = ports[servers[0][0]]
        tag = uuid.uuid4().hex[:6]
        alice, bob = (bench.register(first, f"{n}_{tag}") for n in ("alice", "bob"))
        bench.create_meeting(first, dsn, alice, bob)
        asyncio.run(bench.seed_pool(dsn, alice["id"], bob["id"], tag))
        asyncio.run(bench.seed_experts(dsn, tag))
        floor_port = bench.free_port()
        floor_argv = [sys.executable, str(bench.BENCH / "floor_tornado.py"), str(floor_port)]
        floor_log = open(bench.ROOT / "var" / "ab-floor.log", "wb")
        processes.append(
            subprocess.Popen(
                [*floor_argv, dsn, bench.JWT_SECRET], stdout=floor_log, stderr=subprocess.STDOUT
            )
        )
        token = alice["token"]
        floor = bench.Target("floor", "floor GET", floor_port, "GET", "/floor/get", token)
        wait_ready(floor_port, processes[-1], "/floor/get", token)
        paths = {
            "me": "/api/users/me/",
            "meetings": "/api/meetings/",
            "conversation": f"/api/messages/?with_user={bob['id']}",
            "experts": f"/api/experts/?q={bench.SEARCH_WORD}&limit={bench.SEARCH_LIMIT}",
            "inbox": "/api/messages/",
            "conversations": "/api/conversations/",
            "transactions": "/api/credit-transactions/",
            "notifications": "/api/notifications/",
        }
        for name in ONLY:
            answers = [bench.request(ports[s[0]], "GET", paths[name], token=token) for s in servers]
            same = all(a == answers[0] for a in answers)
            print(f"{name}: statuses {[a[0] for a in answers]}, same JSON: {same}", flush=True)
        results: dict[tuple[str, str], list[tuple[float, float, float]]] = {}
        for r in range(ROUNDS):
            for name in ONLY:
                floor_rps = floor.wrk(SECONDS)["rps"]
                for label, *_ in servers[r % len(servers) :] + servers[: r % len(servers)]:
                    target = bench.Target(name, name, ports[label], "GET", paths[name], token)
                    server_cpu, db_cpu = cpu_seconds(pids[label]), backends_cpu_seconds(database)
                    run = target.wrk(SECONDS)
                    n = max(1, run["requests"])
                    server_us = (cpu_seconds(pids[label]) - server_cpu) / n * 1e6
                    db_us = (backends_cpu_seconds(database) - db_cpu) / n * 1e6
                    results.setdefault((name, label), []).append(
                        (run["rps"] / floor_rps, server_us, db_us)
                    )
                    print(
                        f"round {r + 1} {name} {label}: {run['rps']:.0f} req/s "
                        f"(floor {floor_rps:.0f}, {run['rps'] / floor_rps:.2f}), CPU per request "
                        f"server {server_us:.0f} us, database {db_us:.0f} us",
                        flush=True,
                    )
        print("\nmedians: req/s / floor (per round), CPU us per request server + database")
        for name in ONLY:
            cells = []
            for label, *_ in servers:
                rows = results[(name, label)]
                ratios = ", ".join(f"{x[0]:.2f}" for x in rows)
                cells.append(
                    f"{label} {statistics.median(x[0] for x in rows):.2f} ({ratios}) "
                    f"{statistics.median(x[1] for x in rows):.0f}+"
                    f"{statistics.median(x[2] for x in rows):.0f}"
                )
            print(f"{name}: " + " | ".join(cells))
    finally:
        for process in reversed(processes):
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                process.kill()
        asyncio.run(bench.drop_database(admin, database))
    return 0


if __name__ == "__main__":
    sys.exit(main())
