"""`make bench`: measure the server against a bare Tornado floor and a FastAPI peer, and write
docs/performance.md.

Creates a throwaway database, starts the real server (rate limits lifted, bcrypt at its default
cost), the floor apps and wrk. Seeds a pool of users (seed_pool) so that the POST load spreads
over many users as real traffic does, keeping a one-hot-pair row of each POST to show the cost
of contention. Alternates floor and project runs (A B A B) for several rounds and reports
medians, each project figure also as a ratio to the floor of the same round. Then
logins under load, WebSocket load (bench/ws_load.py in its own process) and, with BENCH_SCALE=1,
the REST figures again on a database seeded to 1M rows.

Environment (all optional):
  BENCH_SECONDS=4 BENCH_ROUNDS=3   length of one wrk run, rounds of A B runs
  BENCH_CONNECTIONS=64 BENCH_THREADS=2
  BENCH_SCALE=1                    also seed 10k users / 1M messages / 200k meetings / 1M ledger
  BENCH_WS_SOCKETS=1000 BENCH_WS_RATE=500 BENCH_WS_SECONDS=10 BENCH_WS_BURST=1000
  BENCH_POOL_USERS=500             users the POST load spreads over
  BENCH_LOGINS=20                  concurrent logins during the login-under-load runs
  BENCH_BCRYPT_ROUNDS=12
  BENCH_PROFILE=1                  py-spy record the server under GET /api/users/me/ load (0: skip)
  BENCH_OUTPUT=docs/performance.md
  EXPERTCONNECT_BENCH_ADMIN_DSN    a server we may create databases on; default: the project's
                                   private cluster under var/, as `make run` uses
"""

from __future__ import annotations

import asyncio
import collections
import concurrent.futures
import datetime as dt
import http.client
import json
import os
import platform
import random
import re
import signal
import socket
import statistics
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path
from urllib.parse import urlsplit

import asyncpg
import jwt

ROOT = Path(__file__).resolve().parent.parent
BENCH = ROOT / "bench"
sys.path.insert(0, str(ROOT))

from expertconnect.localdb import ensure_database, ensure_local_cluster  # noqa: E402


def env_int(name: str, default: int) -> int:
    return int(os.environ.get(name, default))


SECONDS = max(1, env_int("BENCH_SECONDS", 4))
ROUNDS = max(1, env_int("BENCH_ROUNDS", 3))
CONNECTIONS = env_int("BENCH_CONNECTIONS", 64)
THREADS = env_int("BENCH_THREADS", 2)
SCALE = os.environ.get("BENCH_SCALE", "1") == "1"
WS_SOCKETS = env_int("BENCH_WS_SOCKETS", 1000)
WS_RATE = env_int("BENCH_WS_RATE", 500)
WS_SECONDS = env_int("BENCH_WS_SECONDS", 10)
WS_BURST = env_int("BENCH_WS_BURST", 1000)
WS_SENDERS = min(200, WS_SOCKETS)
LOGINS = env_int("BENCH_LOGINS", 20)
BCRYPT_ROUNDS = env_int("BENCH_BCRYPT_ROUNDS", 12)
PROFILE = os.environ.get("BENCH_PROFILE", "1") == "1"
OUTPUT = ROOT / os.environ.get("BENCH_OUTPUT", "docs/performance.md")
WARMUP_SECONDS = 1

SCALE_USERS, SCALE_MESSAGES, SCALE_MEETINGS, SCALE_LEDGER = 10_000, 1_000_000, 200_000, 1_000_000
# Share of the seeded rows that belong to the measured user (and its peer): 2 %.
SCALE_OWN_EVERY = 50
# The write load spreads over this many users (half pay, half are paid), each request a random
# pair from POOL_MESSAGE_PAIRS (messages) or a random payer's meeting (transfers).
POOL_USERS = max(4, env_int("BENCH_POOL_USERS", 500))
POOL_MESSAGE_PAIRS = 2000
POOL_CREDITS = 1_000_000_000
# The conversation GET /api/messages/?with_user= reads: fixed, the POST load writes elsewhere.
CONVERSATION_MESSAGES = 200
# More than a page (50), so the empty-database and scale runs both answer a full page.
READER_MEETINGS = 60

JWT_SECRET = "bench-" + uuid.uuid4().hex
PASSWORD = "correct-horse-battery"
LUA = BENCH / "wrk" / "request.lua"
CHANGES = BENCH / "CHANGES.md"
BENCH_PY = BENCH / ".venv" / "bin" / "python"
PY_SPY = BENCH / ".venv" / "bin" / "py-spy"


def log(message: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {message}", flush=True)


# ---------------------------------------------------------------------- processes and HTTP
def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def request(
    port: int, method: str, path: str, *, body=None, token: str | None = None, timeout: float = 30.0
) -> tuple[int, object]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    headers = {}
    data = None
    if body is not None:
        data = json.dumps(body).encode()
        headers["Content-Type"] = "application/json"
    if token:
        headers["Authorization"] = f"Bearer {token}"
    try:
        conn.request(method, path, body=data, headers=headers)
        raw = conn.getresponse()
        text = raw.read().decode()
        try:
            return raw.status, json.loads(text) if text else None
        except ValueError:
            return raw.status, text
    finally:
        conn.close()


class Process:
    """A child process with its output in a log file; stopped by its own pid."""

    def __init__(self, name: str, argv: list[str], env: dict | None = None):
        self.name = name
        self.log_path = ROOT / "var" / f"bench-{name}.log"
        self.log_path.parent.mkdir(exist_ok=True)
        with open(self.log_path, "wb") as out:
            self.proc = subprocess.Popen(
                argv,
                cwd=ROOT,
                env={**os.environ, **(env or {})},
                stdout=out,
                stderr=subprocess.STDOUT,
            )

    @property
    def pid(self) -> int:
        return self.proc.pid

    def wait_ready(self, port: int, path: str, token: str | None, timeout: float = 60.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(
                    f"{self.name} exited early:\n{self.log_path.read_text()[-3000:]}"
                )
            try:
                if request(port, "GET", path, token=token, timeout=5)[0] == 200:
                    return
            except OSError:
                pass
            time.sleep(0.1)
        raise RuntimeError(
            f"{self.name} did not become ready:\n{self.log_path.read_text()[-3000:]}"
        )

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=5)


def rss_kb(pid: int) -> int:
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise RuntimeError("no VmRSS")


def mint_token(user_id: int) -> str:
    """A token as the server issues it; the bench shares the server's secret."""
    now = int(time.time())
    return jwt.encode(
        {"sub": str(user_id), "iat": now, "exp": now + 86400, "jti": str(uuid.uuid4())},
        JWT_SECRET,
        algorithm="HS256",
    )


# ---------------------------------------------------------------------- wrk
UNITS = {"us": 1e-3, "ms": 1.0, "s": 1e3, "m": 60e3, "h": 3600e3}


def parse_time_ms(text: str) -> float:
    match = re.fullmatch(r"([\d.]+)(us|ms|s|m|h)", text.strip())
    if not match:
        raise ValueError(f"cannot parse wrk time {text!r}")
    return float(match.group(1)) * UNITS[match.group(2)]


def parse_wrk(output: str) -> dict:
    result = {"rps": None, "p50": None, "p99": None, "non2xx": 0, "socket_errors": 0, "requests": 0}
    match = re.search(r"Requests/sec:\s+([\d.]+)", output)
    if match:
        result["rps"] = float(match.group(1))
    for pct, key in (("50", "p50"), ("99", "p99")):
        match = re.search(rf"^\s+{pct}(?:\.0+)?%\s+(\S+)", output, re.M)
        if match:
            result[key] = parse_time_ms(match.group(1))
    match = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", output)
    if match:
        result["non2xx"] = int(match.group(1))
    match = re.search(
        r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", output
    )
    if match:
        result["socket_errors"] = sum(int(g) for g in match.groups())
    match = re.search(r"(\d+) requests in", output)
    if match:
        result["requests"] = int(match.group(1))
    if result["rps"] is None or result["p50"] is None or result["p99"] is None:
        raise RuntimeError(f"cannot parse wrk output:\n{output}")
    return result


def write_pool(name: str, pool: list[tuple[str, dict | None]]) -> Path:
    """A Lua file returning {{token, body}, ...} for bench/wrk/request.lua (BENCH_POOL)."""
    path = ROOT / "var" / f"bench-pool-{name}.lua"
    path.parent.mkdir(exist_ok=True)
    # Tokens and bodies are ASCII without "]==]": Lua long brackets need no escaping.
    entries = [
        f"{{[==[{token}]==], [==[{json.dumps(body) if body else ''}]==]}}" for token, body in pool
    ]
    path.write_text("return {\n" + ",\n".join(entries) + "\n}\n")
    return path


class Target:
    """One wrk target. With `pool` [(token, body), ...], every request picks an entry at
    random (many users); otherwise every request is `token` and `body` (one user)."""

    def __init__(
        self,
        name: str,
        label: str,
        port: int,
        method: str,
        path: str,
        token: str,
        body: dict | None = None,
        floor: str | None = None,
        pool: list[tuple[str, dict | None]] | None = None,
    ):
        self.name, self.label, self.port = name, label, port
        self.method, self.path, self.token, self.body = method, path, token, body
        self.floor = floor  # name of the floor target it is compared with
        self.pool_file = write_pool(name, pool) if pool else None
        if pool:  # what the checks and the error sample send
            self.token, self.body = pool[0]

    def wrk(self, seconds: int) -> dict:
        env = {
            **os.environ,
            "BENCH_METHOD": self.method,
            "BENCH_PATH": self.path,
            "BENCH_TOKEN": "" if self.pool_file else self.token,
            "BENCH_BODY": json.dumps(self.body) if self.body and not self.pool_file else "",
            "BENCH_POOL": str(self.pool_file or ""),
        }
        argv = [
            "wrk",
            f"-t{THREADS}",
            f"-c{CONNECTIONS}",
            f"-d{seconds}s",
            "--latency",
            "-s",
            str(LUA),
            f"http://127.0.0.1:{self.port}{self.path}",
        ]
        done = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=seconds + 60)
        if done.returncode != 0:
            raise RuntimeError(f"wrk failed for {self.name}: {done.stderr}")
        result = parse_wrk(done.stdout)
        if result["non2xx"]:
            status, body = request(
                self.port, self.method, self.path, body=self.body, token=self.token
            )
            result["sample_error"] = f"{status} {str(body)[:200]}"
        return result


def median(values):
    values = [v for v in values if v is not None]
    return statistics.median(values) if values else None


def run_rounds(targets: list[Target], floors: dict[str, Target], label: str) -> dict:
    """A B A B: for every target, its floor then the target, ROUNDS times over. Returns per
    target the medians of its figures and of its per-round ratios to the floor."""
    log(f"{label}: warm-up")
    for target in [*floors.values(), *targets]:
        target.wrk(WARMUP_SECONDS)
    runs: dict[str, list[tuple[dict, dict]]] = collections.defaultdict(list)
    for r in range(ROUNDS):
        for target in targets:
            floor_result = floors[target.floor].wrk(SECONDS)
            result = target.wrk(SECONDS)
            runs[target.name].append((floor_result, result))
            log(
                f"{label} round {r + 1}/{ROUNDS} {target.label}: {result['rps']:.0f} req/s "
                f"p50 {result['p50']:.2f} ms p99 {result['p99']:.2f} ms "
                f"(floor {floor_result['rps']:.0f} req/s)"
            )
    summary = {}
    for target in targets:
        pairs = runs[target.name]
        summary[target.name] = {
            "label": target.label,
            "floor": target.floor,
            "rps": median([p["rps"] for _, p in pairs]),
            "p50": median([p["p50"] for _, p in pairs]),
            "p99": median([p["p99"] for _, p in pairs]),
            "rps_ratio": median([p["rps"] / f["rps"] for f, p in pairs]),
            "p50_ratio": median([p["p50"] / f["p50"] for f, p in pairs]),
            "p99_ratio": median([p["p99"] / f["p99"] for f, p in pairs]),
            "non2xx": sum(p["non2xx"] for _, p in pairs),
            "socket_errors": sum(p["socket_errors"] for _, p in pairs),
            "sample_error": next(
                (p["sample_error"] for _, p in pairs if "sample_error" in p), None
            ),
            "rounds": [p for _, p in pairs],
            "by_round": [p["rps"] for _, p in pairs],
        }
    for name, floor in floors.items():
        results = [f for t in targets if t.floor == name for f, _ in runs[t.name]]
        if results:
            summary[name] = {
                "label": floor.label,
                "floor": None,
                "rps": median([f["rps"] for f in results]),
                "p50": median([f["p50"] for f in results]),
                "p99": median([f["p99"] for f in results]),
                "non2xx": sum(f["non2xx"] for f in results),
                "socket_errors": sum(f["socket_errors"] for f in results),
                "runs": len(results),
                "by_round": [f["rps"] for f in results],
            }
    return summary


# ---------------------------------------------------------------------- database
def admin_dsn() -> str:
    return os.environ.get("EXPERTCONNECT_BENCH_ADMIN_DSN") or ensure_local_cluster(ROOT / "var")


def with_database(dsn: str, name: str) -> str:
    return urlsplit(dsn)._replace(path="/" + name).geturl()


async def sql(dsn: str, statements: list[tuple[str, tuple]]) -> list:
    conn = await asyncpg.connect(dsn)
    try:
        out = []
        for statement, args in statements:
            out.append(await conn.fetch(statement, *args))
        return out
    finally:
        await conn.close()


def run_sql(dsn: str, statement: str, *args) -> list:
    return asyncio.run(sql(dsn, [(statement, args)]))[0]


async def drop_database(admin: str, name: str) -> None:
    conn = await asyncpg.connect(admin)
    try:
        await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await conn.close()


SCALE_SQL = [
    (
        "users",
        """INSERT INTO users (username, email, password_hash, first_name, last_name)
                 SELECT 'scale_' || g, 'scale_' || g || '@example.com', $1, 'Scale', 'User ' || g
                 FROM generate_series(1, $2) g""",
    ),
    (
        "credit accounts",
        """INSERT INTO credit_accounts (user_id, balance)
                           SELECT u.id, 1 FROM users u
                           WHERE NOT EXISTS (SELECT 1 FROM credit_accounts c
                                             WHERE c.user_id = u.id)""",
    ),
    (
        "id map",
        """CREATE UNLOGGED TABLE bench_ids AS
                  SELECT row_number() OVER (ORDER BY id)::int AS n, id FROM users""",
    ),
    ("id map index", "CREATE UNIQUE INDEX ON bench_ids (n)"),
    (
        "messages",
        """INSERT INTO messages (sender_id, receiver_id, content, is_read, created_at)
        SELECT CASE WHEN p.g % $2 = 0
                    THEN (CASE WHEN p.g % (2 * $2) = 0 THEN $3::bigint ELSE $4::bigint END)
                    ELSE s.id END,
               CASE WHEN p.g % $2 = 0
                    THEN (CASE WHEN p.g % (2 * $2) = 0 THEN $4::bigint ELSE $3::bigint END)
                    ELSE r.id END,
               'Seeded message ' || p.g, true, now() - ($1 - p.g) * interval '1 second'
        FROM (SELECT g, 1 + floor(random() * n.c)::int AS si,
                     floor(random() * (n.c - 1))::int AS off, n.c
              FROM generate_series(1, $1) g, (SELECT count(*)::int AS c FROM bench_ids) n) p
        JOIN bench_ids s ON s.n = p.si
        JOIN bench_ids r ON r.n = 1 + (p.si + p.off) % p.c""",
    ),
    (
        "meetings",
        """INSERT INTO meetings (title, requester_id, expert_id, category_id, status,
                                          scheduled_start, scheduled_end)
        SELECT 'Seeded meeting ' || p.g,
               CASE WHEN p.g % $2 = 0 THEN $3::bigint ELSE s.id END,
               CASE WHEN p.g % $2 = 0 THEN $4::bigint ELSE r.id END,
               cat.ids[1 + p.g % cardinality(cat.ids)],
               (ARRAY['pending', 'confirmed', 'completed', 'cancelled'])[1 + p.g % 4],
               now() + p.g * interval '1 hour', now() + p.g * interval '1 hour' + interval '1 hour'
        FROM (SELECT g, 1 + floor(random() * n.c)::int AS si,
                     floor(random() * (n.c - 1))::int AS off, n.c
              FROM generate_series(1, $1) g, (SELECT count(*)::int AS c FROM bench_ids) n) p
        JOIN bench_ids s ON s.n = p.si
        JOIN bench_ids r ON r.n = 1 + (p.si + p.off) % p.c,
        (SELECT array_agg(id ORDER BY id) AS ids FROM categories) cat""",
    ),
    (
        "ledger",
        """INSERT INTO credit_transactions (user_id, transaction_type, amount, description)
        SELECT CASE WHEN p.g % $2 = 0 THEN $3::bigint ELSE s.id END,
               (ARRAY['purchased', 'spent', 'earned'])[1 + p.g % 3], 1, 'Seeded ledger row'
        FROM (SELECT g, 1 + floor(random() * n.c)::int AS si
              FROM generate_series(1, $1) g, (SELECT count(*)::int AS c FROM bench_ids) n) p
        JOIN bench_ids s ON s.n = p.si""",
    ),
    ("drop id map", "DROP TABLE bench_ids"),
    ("analyze", "ANALYZE"),
]


async def seed_scale(dsn: str, a_id: int, b_id: int) -> dict:
    conn = await asyncpg.connect(dsn, command_timeout=600)
    timings = {}
    try:
        # The seeded rows are valid by construction: as a superuser, skip the foreign-key
        # triggers while seeding (session-local) to stay well inside the time budget.
        if await conn.fetchval("SELECT rolsuper FROM pg_roles WHERE rolname = current_user"):
            await conn.execute("SET session_replication_role = replica")
        password_hash = await conn.fetchval("SELECT password_hash FROM users WHERE id = $1", a_id)
        have = await conn.fetchval("SELECT count(*) FROM users")
        args = {
            "users": (password_hash, max(0, SCALE_USERS - have)),
            "messages": (SCALE_MESSAGES, SCALE_OWN_EVERY, a_id, b_id),
            "meetings": (SCALE_MEETINGS, SCALE_OWN_EVERY, a_id, b_id),
            "ledger": (SCALE_LEDGER, SCALE_OWN_EVERY, a_id),
        }
        for name, statement in SCALE_SQL:
            started = time.monotonic()
            await conn.execute(statement, *args.get(name, ()))
            timings[name] = time.monotonic() - started
            log(f"scale seed: {name} {timings[name]:.1f} s")
        counts = {}
        for table in ("users", "messages", "meetings", "credit_transactions"):
            counts[table] = await conn.fetchval(f"SELECT count(*) FROM {table}")
    finally:
        await conn.close()
    return {"seconds": sum(timings.values()), "steps": timings, "counts": counts}


# ---------------------------------------------------------------------- the parts
def register(port: int, name: str) -> dict:
    body = {
        "username": name,
        "email": f"{name}@example.com",
        "password": PASSWORD,
        "first_name": name.capitalize(),
        "last_name": "Bench",
    }
    status, reply = request(port, "POST", "/api/users/register/", body=body)
    if status != 201:
        raise RuntimeError(f"register {name}: {status} {reply}")
    return reply


def create_meeting(port: int, dsn: str, requester: dict, expert: dict) -> tuple[int, str]:
    """Through POST /api/meetings/ when that endpoint exists and accepts it, else a row."""
    start = dt.datetime.now(dt.UTC).replace(microsecond=0) + dt.timedelta(days=7)
    status, reply = request(
        port,
        "POST",
        "/api/meetings/",
        token=requester["token"],
        body={
            "title": "Bench meeting",
            "description": "",
            "expert_id": expert["id"],
            "category_id": 1,
            "scheduled_start": start.strftime("%Y-%m-%dT%H:%M:%SZ"),
            "scheduled_end": (start + dt.timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M:%SZ"),
        },
    )
    if status == 201:
        return reply["id"], "POST /api/meetings/"
    rows = run_sql(
        dsn,
        """INSERT INTO meetings (title, requester_id, expert_id, category_id,
                                                 status, scheduled_start, scheduled_end)
                           VALUES ('Bench meeting', $1, $2, (SELECT min(id) FROM categories),
                                   'confirmed', now() + interval '7 days',
                                   now() + interval '7 days 1 hour')
                           RETURNING id""",
        requester["id"],
        expert["id"],
    )
    return rows[0]["id"], f"a row inserted directly (POST /api/meetings/ answered {status})"


def login_under_load(me: Target, port: int, username: str) -> dict:
    """GET /api/users/me/ alone, then with LOGINS logins looping at once, ROUNDS times."""
    pairs = []
    login_counts = []
    login_latencies = []
    for r in range(ROUNDS):
        idle = me.wrk(SECONDS)
        deadline = time.monotonic() + SECONDS
        done = collections.Counter()
        lock = threading.Lock()

        def storm(deadline=deadline, lock=lock, done=done):
            for _ in range(10_000):  # bounded; the deadline ends it first
                if time.monotonic() >= deadline:
                    return
                started = time.monotonic()
                status, _ = request(
                    port,
                    "POST",
                    "/api/users/login/",
                    body={"username": username, "password": PASSWORD},
                )
                with lock:
                    done[status] += 1
                    login_latencies.append(time.monotonic() - started)

        with concurrent.futures.ThreadPoolExecutor(LOGINS) as pool:
            futures = [pool.submit(storm) for _ in range(LOGINS)]
            loaded = me.wrk(SECONDS)
            for future in futures:
                future.result(timeout=120)
        pairs.append((idle, loaded))
        login_counts.append(dict(done))
        log(
            f"login round {r + 1}/{ROUNDS}: idle p99 {idle['p99']:.2f} ms, with logins "
            f"p99 {loaded['p99']:.2f} ms; logins {dict(done)}"
        )
    ok = sum(c.get(200, 0) for c in login_counts)
    return {
        "idle_rps": median([i["rps"] for i, _ in pairs]),
        "idle_p50": median([i["p50"] for i, _ in pairs]),
        "idle_p99": median([i["p99"] for i, _ in pairs]),
        "loaded_rps": median([loaded["rps"] for _, loaded in pairs]),
        "loaded_p50": median([loaded["p50"] for _, loaded in pairs]),
        "loaded_p99": median([loaded["p99"] for _, loaded in pairs]),
        "p99_ratio": median([loaded["p99"] / idle["p99"] for idle, loaded in pairs]),
        "logins_ok": ok,
        "logins_failed": sum(sum(c.values()) for c in login_counts) - ok,
        "logins_per_s": ok / (ROUNDS * SECONDS),
        "login_p50_ms": 1000 * median(login_latencies) if login_latencies else None,
    }


async def seed_pool(dsn: str, reader_id: int, peer_id: int, tag: str) -> dict:
    """Users for the write load and a fixed read set, in one transaction, then ANALYZE.

    - POOL_USERS users (tokens are minted, not logged in): user 2k pays user 2k+1 for a
      confirmed meeting of theirs (yesterday: never pending, so the expiry task leaves it
      alone, and in the past, so no scale-seeded meeting can overlap it). Each payer holds
      POOL_CREDITS bought in one 'purchased' ledger row; experts start at 0 with no rows, so
      balance == signed sum of the ledger for everyone.
    - CONVERSATION_MESSAGES messages between the reader and its peer, alternating directions.
    - READER_MEETINGS meetings of the reader, half as requester, half as expert, in the past
      (confirmed/completed/cancelled: nothing for the expiry task)."""
    conn = await asyncpg.connect(dsn, command_timeout=120)
    try:
        async with conn.transaction():
            users = [
                r["id"]
                for r in await conn.fetch(
                    """INSERT INTO users (username, email, password_hash, first_name, last_name)
                   SELECT 'pool_' || $2 || '_' || g, 'pool_' || $2 || '_' || g || '@example.com',
                          'x', 'Pool', 'User ' || g
                   FROM generate_series(1, $1) g
                   ORDER BY g
                   RETURNING id""",
                    POOL_USERS - POOL_USERS % 2,
                    tag,
                )
            ]
            users.sort()
            payers, experts = users[0::2], users[1::2]
            await conn.execute(
                """INSERT INTO credit_accounts (user_id, balance)
                   SELECT u, CASE WHEN o % 2 = 1 THEN $2 ELSE 0 END
                   FROM unnest($1::bigint[]) WITH ORDINALITY AS t(u, o)""",
                users,
                POOL_CREDITS,
            )
            await conn.execute(
                """INSERT INTO credit_transactions (user_id, transaction_type, amount, description)
                   SELECT u, 'purchased', $2, 'Bench credits' FROM unnest($1::bigint[]) u""",
                payers,
                POOL_CREDITS,
            )
            meetings = await conn.fetch(
                """INSERT INTO meetings (title, requester_id, expert_id, category_id, status,
                                         scheduled_start, scheduled_end)
                   SELECT 'Pool meeting', p, e, (SELECT min(id) FROM categories), 'confirmed',
                          date_trunc('hour', now()) - interval '1 day',
                          date_trunc('hour', now()) - interval '23 hours'
                   FROM unnest($1::bigint[], $2::bigint[]) AS t(p, e)
                   RETURNING id, requester_id""",
                payers,
                experts,
            )
            await conn.execute(
                """INSERT INTO messages (sender_id, receiver_id, content, is_read, created_at)
                   SELECT CASE WHEN g % 2 = 0 THEN $1::bigint ELSE $2::bigint END,
                          CASE WHEN g % 2 = 0 THEN $2::bigint ELSE $1::bigint END,
                          'Conversation message ' || g, true,
                          now() - ($3 - g) * interval '1 minute'
                   FROM generate_series(1, $3) g""",
                reader_id,
                peer_id,
                CONVERSATION_MESSAGES,
            )
            await conn.execute(
                """INSERT INTO meetings (title, requester_id, expert_id, category_id, status,
                                         scheduled_start, scheduled_end)
                   SELECT 'Reader meeting ' || g,
                          CASE WHEN g % 2 = 0 THEN $1::bigint ELSE p END,
                          CASE WHEN g % 2 = 0 THEN e ELSE $1::bigint END,
                          (SELECT min(id) FROM categories),
                          (ARRAY['confirmed', 'completed', 'cancelled'])[1 + g % 3],
                          date_trunc('hour', now()) - (g + 1) * interval '1 day',
                          date_trunc('hour', now()) - (g + 1) * interval '1 day'
                                                    + interval '1 hour'
                   FROM unnest($2::bigint[], $3::bigint[]) WITH ORDINALITY AS t(p, e, g)""",
                reader_id,
                payers[:READER_MEETINGS],
                experts[:READER_MEETINGS],
            )
        # The planner must see these rows (and the registrations before them), not the
        # statistics of empty tables.
        await conn.execute("ANALYZE")
    finally:
        await conn.close()
    return {
        "users": users,
        "payers": payers,
        "experts": experts,
        "meetings": [(r["requester_id"], r["id"]) for r in meetings],
    }


def message_pool(pool: dict, n: int) -> list[tuple[str, dict]]:
    """n requests of random distinct pairs of pool users (one token per user, minted once)."""
    rng = random.Random(1)
    users = pool["users"]
    tokens = {u: mint_token(u) for u in users}
    out = []
    for i in range(n):
        sender, receiver = rng.sample(users, 2)
        out.append((tokens[sender], {"receiver_id": receiver, "content": f"bench {i}"}))
    return out


def transfer_pool(pool: dict) -> list[tuple[str, dict]]:
    """One request per payer: 1 credit for its own meeting."""
    return [
        (mint_token(payer), {"meeting_id": meeting_id, "amount": 1})
        for payer, meeting_id in pool["meetings"]
    ]


def websocket_load(port: int, server_pid: int, dsn: str) -> dict:
    rows = run_sql(
        dsn,
        """INSERT INTO users (username, email, password_hash, first_name)
                           SELECT 'ws_' || g, 'ws_' || g || '@example.com', 'x', 'Socket'
                           FROM generate_series(1, $1) g RETURNING id""",
        WS_SOCKETS,
    )
    ids = [r["id"] for r in rows]
    run_sql(
        dsn,
        """INSERT INTO credit_accounts (user_id, balance)
                    SELECT unnest($1::bigint[]), 0""",
        ids,
    )
    run_sql(dsn, "ANALYZE users, credit_accounts")
    job = {
        "url": f"http://127.0.0.1:{port}",
        "server_pid": server_pid,
        "users": [[i, mint_token(i)] for i in ids],
        "senders": WS_SENDERS,
        "rate": WS_RATE,
        "seconds": WS_SECONDS,
        "burst": WS_BURST,
        "connect_concurrency": 50,
    }
    done = subprocess.run(
        [sys.executable, str(BENCH / "ws_load.py")],
        input=json.dumps(job),
        capture_output=True,
        text=True,
        timeout=WS_SECONDS + 300,
    )
    if done.returncode != 0:
        raise RuntimeError(f"ws_load failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout)


PROFILE_AREAS = [
    ("expertconnect/", "expertconnect (project code)"),
    ("tornado/", "tornado (HTTP, routing, iostream)"),
    ("jwt/", "pyjwt (token decode)"),
    ("asyncpg/", "asyncpg"),
    ("json/", "json encoding/decoding"),
    ("logging/", "logging (access log)"),
    ("asyncio/", "asyncio event loop and transports"),
    ("selectors.py", "epoll wait (idle)"),
]


def profile_area(frame: str) -> str:
    for needle, area in PROFILE_AREAS:
        if needle in frame:
            return area
    return "other (stdlib, builtins)"


def summarize_profile(path: Path, seconds: int) -> dict:
    """Shares of the event-loop thread's samples (py-spy raw format: stack;... count)."""
    own, inclusive, area = collections.Counter(), collections.Counter(), collections.Counter()
    total = other_threads = 0
    for line in path.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack or not count.isdigit():
            continue
        n = int(count)
        frames = [re.sub(r" \((.*?):\d+\)$", r" (\1)", f) for f in stack.split(";")]
        if not any("run_forever" in f for f in frames):
            other_threads += n  # executor threads waiting for work, mostly
            continue
        total += n
        own[frames[-1]] += n
        area[profile_area(frames[-1])] += n
        for frame in set(frames):
            inclusive[frame] += n
    total = total or 1
    return {
        "samples": total,
        "seconds": seconds,
        "other_threads": other_threads,
        "areas": [(a, n / total) for a, n in area.most_common()],
        "own": [(f, n / total) for f, n in own.most_common(15)],
        "inclusive": [(f, n / total) for f, n in inclusive.most_common(25)],
    }


def profile_me(me: Target, server_pid: int) -> dict | None:
    """py-spy samples the server while wrk drives GET /api/users/me/; the top frames by own
    samples and by inclusive samples."""
    if not PY_SPY.exists():
        return None
    out = ROOT / "var" / "bench-profile.txt"
    seconds = max(3, SECONDS)
    spy = subprocess.Popen(
        [
            str(PY_SPY),
            "record",
            "--pid",
            str(server_pid),
            "--duration",
            str(seconds),
            "--rate",
            "250",
            "--format",
            "raw",
            "--output",
            str(out),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    time.sleep(0.5)
    me.wrk(seconds)
    try:
        _, err = spy.communicate(timeout=seconds + 60)
    except subprocess.TimeoutExpired:
        spy.kill()
        return None
    if spy.returncode != 0 or not out.exists():
        log(f"py-spy failed: {err[-500:]}")
        return None
    return summarize_profile(out, seconds)


# ---------------------------------------------------------------------- the report
def fmt(value, spec=".2f", suffix=""):
    return "n/a" if value is None else f"{value:{spec}}{suffix}"


def rest_table(summary: dict, order: list[str], unavailable: dict[str, str]) -> list[str]:
    lines = [
        "| endpoint | req/s | p50 ms | p99 ms | req/s ÷ floor | p50 ÷ floor | p99 ÷ floor "
        "| req/s by round |",
        "|---|---:|---:|---:|---:|---:|---:|---|",
    ]
    for name in order:
        if name in unavailable:
            lines.append(f"| {unavailable[name]} | n/a | n/a | n/a | n/a | n/a | n/a | |")
            continue
        if name not in summary:
            continue
        s = summary[name]
        errors = ""
        if s["non2xx"] or s["socket_errors"]:
            errors = f" ({s['non2xx']} non-2xx, {s['socket_errors']} socket errors)"
        lines.append(
            f"| {s['label']}{errors} | {fmt(s['rps'], '.0f')} | {fmt(s['p50'])} | "
            f"{fmt(s['p99'])} | {fmt(s.get('rps_ratio'))} | {fmt(s.get('p50_ratio'))} | "
            f"{fmt(s.get('p99_ratio'))} | "
            f"{', '.join(f'{x:.0f}' for x in s.get('by_round', []))} |"
        )
    return lines


def targets_section(r: dict) -> list[str]:
    """The issue's targets against this run's figures."""
    rows = []

    def add(target: str, value, limit, ok_when_above: bool, spec: str = ".2f") -> None:
        if value is None:
            rows.append(f"| {target} | n/a | n/a |")
            return
        met = value >= limit if ok_when_above else value <= limit
        rows.append(f"| {target} | {value:{spec}} | {'met' if met else 'missed'} |")

    rest = r["rest"]
    if "me" in rest and "fastapi_get" in rest:
        add(
            f"GET /api/users/me/ req/s ÷ floor >= FastAPI GET's "
            f"({rest['fastapi_get']['rps_ratio']:.2f})",
            rest["me"]["rps_ratio"],
            rest["fastapi_get"]["rps_ratio"],
            True,
        )
    if "send" in rest:
        add("POST /api/messages/ req/s ÷ floor POST >= 0.50", rest["send"]["rps_ratio"], 0.5, True)
    ws = r.get("ws")
    if ws:
        add(
            f"WebSocket p99 at {ws['paced']['rate']}/s, {ws['sockets']} sockets < 10 ms",
            ws["paced"]["p99_ms"],
            10,
            False,
        )
        add("WebSocket messages lost = 0", ws["paced"]["lost"] + ws["burst"]["lost"], 0, False, "d")
        add("memory per idle WebSocket < 20 KB", ws["kb_per_socket"], 20, False, ".1f")
    add("idle server memory < 80 MB", r["idle_rss_kb"] / 1024, 80, False, ".1f")
    if r.get("login"):
        add("GET /api/users/me/ p99 with logins ÷ alone <= 2", r["login"]["p99_ratio"], 2, False)
    scale = r.get("scale")
    for name in ("meetings", "conversation"):
        if name in r["unavailable"]:
            rows.append(f"| {r['unavailable'][name]}: p50 at scale ÷ empty <= 1.5 | n/a | n/a |")
        elif scale and name in scale["rest"] and name in rest:
            add(
                f"{rest[name]['label']} p50 at scale ÷ empty <= 1.5",
                scale["rest"][name]["p50"] / rest[name]["p50"],
                1.5,
                False,
            )
    return ["## Targets (issue 6)", "", "| target | measured | |", "|---|---:|---|", *rows, ""]


def machine() -> dict:
    model = "unknown"
    with open("/proc/cpuinfo") as f:
        for line in f:
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    with open("/proc/meminfo") as f:
        mem_kb = int(f.readline().split()[1])
    wrk_version = subprocess.run(["wrk", "-v"], capture_output=True, text=True).stdout
    return {
        "cores": os.cpu_count(),
        "nproc": subprocess.run(["nproc"], capture_output=True, text=True).stdout.strip(),
        "model": model,
        "mem_gib": mem_kb / 1024 / 1024,
        "kernel": platform.release(),
        "python": platform.python_version(),
        "wrk": (wrk_version.split() or ["wrk", "?"])[1],
    }


def write_report(r: dict) -> None:
    m = r["machine"]
    lines = [
        "# Performance",
        "",
        "Written by `make bench` (bench/run.py); rerun it to refresh. Figures are medians over "
        "rounds; each ratio is the median of per-round ratios to the floor run just before it "
        "(A B A B).",
        "",
        f"- Date: {r['date']}",
        f"- Machine: {m['nproc']} cores (nproc), {m['model']}, {m['mem_gib']:.1f} GiB RAM, "
        f"Linux {m['kernel']}",
        f"- Software: Python {m['python']}, PostgreSQL {r['postgres']}, wrk {m['wrk']}",
        f"- Command: `{r['command']}`",
        f"- Load: wrk -t{THREADS} -c{CONNECTIONS} --latency, {ROUNDS} rounds x {SECONDS} s per "
        f"figure; server at bcrypt cost {BCRYPT_ROUNDS}, rate limits lifted by config",
        f"- Whole run: {r['elapsed']:.0f} s",
        "",
        "Floor: bench/floor_tornado.py (bare Tornado, same pool settings, JWT decode, one "
        "primary-key SELECT for GET, one INSERT for POST). FastAPI: bench/floor_fastapi.py "
        "(same endpoints and SQL, uvicorn with uvloop and httptools, one worker). GET rows are "
        "compared with the floor's GET, POST rows with the floor's POST.",
        "",
        "## REST, empty database",
        "",
        *rest_table(r["rest"], r["order"], r["unavailable"]),
        "",
        f"Write load: each POST /api/messages/ request is one of {POOL_MESSAGE_PAIRS} random "
        f"pairs of {POOL_USERS} seeded users, each POST /api/credits/transfer/ one of "
        f"{POOL_USERS // 2} payers paying 1 credit for its own meeting (each request picks an "
        'entry at random, bench/wrk/request.lua). The "(one hot pair)" rows send every '
        "request between the same two users, so each waits for the previous one's row locks "
        "(event counters, credit accounts). GET /api/messages/?with_user= reads a conversation "
        f"of {CONVERSATION_MESSAGES} seeded messages that no POST adds to; GET /api/meetings/ "
        f"lists {READER_MEETINGS + 1} meetings of the reader. Statistics: ANALYZE after every "
        f"seeding. Meeting for the hot-pair transfer: {r['meeting_source']}.",
        "",
        "## Memory",
        "",
        f"- Idle server RSS after start-up: {r['idle_rss_kb'] / 1024:.1f} MB",
        f"- Server RSS after the REST runs: {r['rest_rss_kb'] / 1024:.1f} MB",
        "",
    ]
    login = r.get("login")
    if login:
        lines += [
            "## Login under load",
            "",
            f"GET /api/users/me/ alone, then while {LOGINS} clients log in continuously "
            f"(bcrypt cost {BCRYPT_ROUNDS}).",
            "",
            "| | req/s | p50 ms | p99 ms |",
            "|---|---:|---:|---:|",
            f"| alone | {fmt(login['idle_rps'], '.0f')} | {fmt(login['idle_p50'])} | "
            f"{fmt(login['idle_p99'])} |",
            f"| with logins | {fmt(login['loaded_rps'], '.0f')} | {fmt(login['loaded_p50'])} | "
            f"{fmt(login['loaded_p99'])} |",
            "",
            f"- p99 with logins ÷ p99 alone: {fmt(login['p99_ratio'])}",
            f"- Logins completed: {login['logins_ok']} ({fmt(login['logins_per_s'], '.1f')}/s), "
            f"failed: {login['logins_failed']}; login p50 {fmt(login['login_p50_ms'], '.0f')} ms",
            "",
        ]
    ws = r.get("ws")
    if ws:
        lines += [
            "## WebSockets",
            "",
            f"{ws['sockets']} /ws/ sockets (one per user) and {ws['chat_sockets']} "
            "/ws/chat/{id}/ sockets for random pairs, from bench/ws_load.py in its own process. "
            "Latency: message.send frame written on a chat socket -> message.receive read on the "
            "receiver's /ws/ socket.",
            "",
            "| phase | sent | received | lost | p50 ms | p99 ms | max ms | delivered msg/s |",
            "|---|---:|---:|---:|---:|---:|---:|---:|",
        ]
        for phase, title in (
            ("paced", f"paced {ws['paced']['rate']}/s"),
            ("burst", f"burst of {ws['burst']['sent']}"),
        ):
            p = ws[phase]
            lines.append(
                f"| {title} | {p['sent']} | {p['received']} | {p['lost']} | "
                f"{fmt(p['p50_ms'])} | {fmt(p['p99_ms'])} | {fmt(p['max_ms'])} | "
                f"{fmt(p['messages_per_s'], '.0f')} |"
            )
        lines += [
            "",
            f"- Server RSS before connecting: {ws['rss_before_kb'] / 1024:.1f} MB; with "
            f"{ws['sockets']} idle sockets: {ws['rss_after_kb'] / 1024:.1f} MB; after the "
            f"messages: {ws['rss_loaded_kb'] / 1024:.1f} MB",
            f"- Memory per idle socket: {ws['kb_per_socket']:.1f} KB",
            f"- Connecting {ws['sockets']} sockets took {ws['connect_seconds']:.1f} s; error "
            f"frames: {ws['error_frames']}; sockets closed by the server: {ws['closed_early']}",
            "",
        ]
    scale = r.get("scale")
    if scale:
        c = scale["counts"]
        lines += [
            "## Scale",
            "",
            f"Seeded with set-based SQL (generate_series) in {scale['seconds']:.0f} s: "
            f"{c['users']:,} users, {c['messages']:,} messages, {c['meetings']:,} meetings, "
            f"{c['credit_transactions']:,} ledger rows; {100 // SCALE_OWN_EVERY} % of the "
            "messages, meetings and ledger rows belong to the measured user.",
            "",
            *rest_table(scale["rest"], r["order"], r["unavailable"]),
            "",
            "| endpoint | p50 ms empty | p50 ms at scale | at scale ÷ empty |",
            "|---|---:|---:|---:|",
        ]
        for name in r["order"]:
            if name in r["unavailable"] or name not in scale["rest"] or name not in r["rest"]:
                continue
            if r["rest"][name]["floor"] is None or name.startswith("fastapi"):
                continue
            empty, big = r["rest"][name]["p50"], scale["rest"][name]["p50"]
            lines.append(
                f"| {r['rest'][name]['label']} | {fmt(empty)} | {fmt(big)} | "
                f"{fmt(big / empty if empty and big else None)} |"
            )
        lines.append("")
    profile = r.get("profile")
    if profile:
        lines += [
            "## Profile: GET /api/users/me/",
            "",
            f"py-spy record, {profile['samples']} samples of the event-loop thread over "
            f"{profile['seconds']} s of the server under wrk ({profile['other_threads']} samples "
            "in other threads left out). Share of samples:",
            "",
            "| own time | where |",
            "|---:|---|",
            *[f"| {share * 100:.1f} % | {area} |" for area, share in profile["areas"]],
            "",
            "| own time | frame |",
            "|---:|---|",
            *[f"| {share * 100:.1f} % | `{frame}` |" for frame, share in profile["own"]],
            "",
            "| inclusive | frame |",
            "|---:|---|",
            *[f"| {share * 100:.1f} % | `{frame}` |" for frame, share in profile["inclusive"]],
            "",
        ]
    lines += targets_section(r)
    # The hand-kept log of what was changed for speed, and what each change measured.
    if CHANGES.exists():
        lines += ["", CHANGES.read_text().rstrip(), ""]
    OUTPUT.parent.mkdir(parents=True, exist_ok=True)
    OUTPUT.write_text("\n".join(lines))


# ---------------------------------------------------------------------- main
def main() -> int:
    started = time.monotonic()
    admin = admin_dsn()
    name = f"expertconnect_bench_{os.getpid()}_{uuid.uuid4().hex[:6]}"
    asyncio.run(ensure_database(admin, name))
    dsn = with_database(admin, name)
    processes: list[Process] = []
    report: dict = {
        "date": dt.datetime.now().astimezone().strftime("%Y-%m-%d %H:%M %Z"),
        "machine": machine(),
        "unavailable": {},
    }
    env_shown = " ".join(
        f"{k}={os.environ[k]}" for k in sorted(os.environ) if k.startswith("BENCH_")
    )
    report["command"] = f"{env_shown} make bench".strip()
    try:
        port, floor_port, fastapi_port = free_port(), free_port(), free_port()
        server = Process(
            "server",
            [sys.executable, str(ROOT / "server.py"), "--config", str(ROOT / "config.yaml")],
            {
                "EXPERTCONNECT_DATABASE_DSN": dsn,
                "EXPERTCONNECT_SERVER_PORT": str(port),
                "EXPERTCONNECT_AUTH_JWT_SECRET": JWT_SECRET,
                "EXPERTCONNECT_AUTH_BCRYPT_ROUNDS": str(BCRYPT_ROUNDS),
                "EXPERTCONNECT_RATE_LIMITS_DEFAULT_PER_MINUTE": "100000000",
                "EXPERTCONNECT_RATE_LIMITS_AUTH_PER_MINUTE": "100000000",
            },
        )
        processes.append(server)
        server.wait_ready(port, "/api/health/", None)
        report["postgres"] = run_sql(dsn, "SHOW server_version")[0][0]
        time.sleep(1.0)
        report["idle_rss_kb"] = rss_kb(server.pid)
        log(f"server pid {server.pid} on {port}, idle RSS {report['idle_rss_kb']} KB")

        tag = uuid.uuid4().hex[:6]
        with concurrent.futures.ThreadPoolExecutor(4) as pool:
            alice, bob, floor_peer = pool.map(
                lambda n: register(port, f"{n}_{tag}"), ["alice", "bob", "floorpeer"]
            )
        meeting_id, report["meeting_source"] = create_meeting(port, dsn, alice, bob)
        pool = asyncio.run(seed_pool(dsn, alice["id"], bob["id"], tag))
        log(
            f"seeded {len(pool['users'])} pool users, {len(pool['meetings'])} paid meetings, "
            f"{CONVERSATION_MESSAGES} conversation messages, {READER_MEETINGS} reader meetings"
        )
        # Enough credits for every transfer of the run, recorded in the ledger as a purchase.
        run_sql(
            dsn,
            """WITH t AS (INSERT INTO credit_transactions
                                       (user_id, transaction_type, amount, description)
                                   VALUES ($1, 'purchased', 1000000000, 'Bench credits'))
                        UPDATE credit_accounts SET balance = balance + 1000000000
                        WHERE user_id = $1""",
            alice["id"],
        )

        processes.append(
            Process(
                "floor-tornado",
                [sys.executable, str(BENCH / "floor_tornado.py"), str(floor_port), dsn, JWT_SECRET],
            )
        )
        processes.append(
            Process(
                "floor-fastapi",
                [
                    str(BENCH_PY),
                    str(BENCH / "floor_fastapi.py"),
                    str(fastapi_port),
                    dsn,
                    JWT_SECRET,
                ],
            )
        )
        processes[-2].wait_ready(floor_port, "/floor/get", alice["token"])
        processes[-1].wait_ready(fastapi_port, "/floor/get", alice["token"])

        token = alice["token"]
        post_body = {"receiver_id": floor_peer["id"], "content": "bench"}
        floors = {
            "floor_get": Target(
                "floor_get", "floor GET (Tornado)", floor_port, "GET", "/floor/get", token
            ),
            "floor_post": Target(
                "floor_post",
                "floor POST (Tornado)",
                floor_port,
                "POST",
                "/floor/post",
                token,
                post_body,
            ),
        }
        targets = [
            Target(
                "fastapi_get",
                "FastAPI GET",
                fastapi_port,
                "GET",
                "/floor/get",
                token,
                floor="floor_get",
            ),
            Target(
                "me", "GET /api/users/me/", port, "GET", "/api/users/me/", token, floor="floor_get"
            ),
            Target(
                "meetings",
                "GET /api/meetings/",
                port,
                "GET",
                "/api/meetings/",
                token,
                floor="floor_get",
            ),
            Target(
                "conversation",
                "GET /api/messages/?with_user=",
                port,
                "GET",
                f"/api/messages/?with_user={bob['id']}",
                token,
                floor="floor_get",
            ),
            Target(
                "fastapi_post",
                "FastAPI POST",
                fastapi_port,
                "POST",
                "/floor/post",
                token,
                post_body,
                floor="floor_post",
            ),
            Target(
                "send",
                f"POST /api/messages/ ({len(pool['users'])} users)",
                port,
                "POST",
                "/api/messages/",
                token,
                floor="floor_post",
                pool=message_pool(pool, POOL_MESSAGE_PAIRS),
            ),
            Target(
                "transfer",
                f"POST /api/credits/transfer/ ({len(pool['meetings'])} payers)",
                port,
                "POST",
                "/api/credits/transfer/",
                token,
                floor="floor_post",
                pool=transfer_pool(pool),
            ),
            # Every request on the same rows (event counters, credit accounts): the cost of
            # contention. The hot message pair is not the pair the conversation GET reads.
            Target(
                "send_hot",
                "POST /api/messages/ (one hot pair)",
                port,
                "POST",
                "/api/messages/",
                token,
                {"receiver_id": floor_peer["id"], "content": "bench"},
                floor="floor_post",
            ),
            Target(
                "transfer_hot",
                "POST /api/credits/transfer/ (one hot pair)",
                port,
                "POST",
                "/api/credits/transfer/",
                token,
                {"meeting_id": meeting_id, "amount": 1},
                floor="floor_post",
            ),
        ]
        for target in targets:
            status, reply = request(
                target.port, target.method, target.path, body=target.body, token=target.token
            )
            if status == 404 and target.name == "meetings":
                report["unavailable"][target.name] = f"{target.label} (answered 404: not merged)"
            elif status >= 300:
                raise RuntimeError(f"{target.label}: {status} {reply}")
        targets = [t for t in targets if t.name not in report["unavailable"]]
        report["order"] = [
            "floor_get",
            "fastapi_get",
            "me",
            "meetings",
            "conversation",
            "floor_post",
            "fastapi_post",
            "send",
            "transfer",
            "send_hot",
            "transfer_hot",
        ]

        report["rest"] = run_rounds(targets, floors, "REST")
        report["rest_rss_kb"] = rss_kb(server.pid)
        me = next(t for t in targets if t.name == "me")
        if PROFILE:
            log("profiling GET /api/users/me/ with py-spy")
            report["profile"] = profile_me(me, server.pid)
        log("login under load")
        report["login"] = login_under_load(me, port, alice["username"])
        log(f"WebSocket load: {WS_SOCKETS} sockets")
        report["ws"] = websocket_load(port, server.pid, dsn)
        log(f"WebSocket: paced {report['ws']['paced']}, burst {report['ws']['burst']}")
        if SCALE:
            log("scale: seeding")
            report["scale"] = asyncio.run(seed_scale(dsn, alice["id"], bob["id"]))
            project = [
                t
                for t in targets
                if not t.name.startswith("fastapi") and not t.name.endswith("_hot")
            ]
            report["scale"]["rest"] = run_rounds(project, floors, "scale")
    finally:
        for process in reversed(processes):
            process.stop()
        if os.environ.get("BENCH_KEEP_DB") != "1":
            asyncio.run(drop_database(admin, name))
    report["elapsed"] = time.monotonic() - started
    (ROOT / "var").mkdir(exist_ok=True)
    (ROOT / "var" / "bench-results.json").write_text(json.dumps(report, indent=2, default=str))
    write_report(report)
    log(f"wrote {OUTPUT.relative_to(ROOT)} in {report['elapsed']:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
