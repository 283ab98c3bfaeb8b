"""`make bench`: measure the server against a bare Tornado floor and a FastAPI peer, and write
docs/performance.md.

Creates a throwaway database, starts the real server (rate limits lifted, bcrypt at its default
cost), the floor app (bench/floor_tornado.py: REST and WebSocket floor), the FastAPI peer
(bench/floor_fastapi.py) and wrk. Seeds a pool of users (seed_pool) so that the POST load
spreads over many users as real traffic does, and 10k experts with skills for the search.
Sections, each selectable with BENCH_ONLY:

  rest     every endpoint under wrk, in groups: per round, the group's floor run, then its
           targets in an order rotated each round; ratios are to that round's floor run, and
           project ÷ peer for the endpoints the FastAPI peer also serves (same round).
  profile  py-spy samples the server's event-loop thread under wrk on each main endpoint.
  login    GET /api/users/me/ alone, then during concurrent logins.
  ws       bench/ws_load.py against the WebSocket floor and the server, alternately.
  scale    the lists again on a database seeded to 1M rows (with BENCH_SCALE=1, or named in
           BENCH_ONLY); without the rest section it measures the lists empty first.

Environment (all optional):
  BENCH_ONLY=rest,profile,login,ws,scale   sections to run (default: all)
  BENCH_TARGETS=send,transfer      rest and profile: only these targets (names in make_targets)
  BENCH_SECONDS=4 BENCH_ROUNDS=3   length of one wrk run, rounds
  BENCH_CONNECTIONS=64 BENCH_THREADS=2
  BENCH_SCALE=1                    also seed 10k users / 1M messages / 200k meetings / 1M ledger
  BENCH_SCALE_ROWS=1000000         messages and ledger rows at scale (meetings: a fifth)
  BENCH_WS_SOCKETS=1000 BENCH_WS_RATE=500 BENCH_WS_SECONDS=10 BENCH_WS_BURST=1000
  BENCH_WS_ROUNDS=1                rounds of (floor, server) WebSocket runs
  BENCH_POOL_USERS=500             users the POST load spreads over
  BENCH_EXPERTS=10000              experts (users with skills) the search runs over
  BENCH_LOGINS=20                  concurrent logins during the login-under-load runs
  BENCH_BCRYPT_ROUNDS=12
  BENCH_PROFILE=1                  0: skip the profile section
  BENCH_PROFILE_SECONDS=4          py-spy recording per endpoint
  BENCH_OUTPUT=docs/performance.md
  BENCH_KEEP_DB=1                  keep the throwaway database
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
WS_ROUNDS = max(1, env_int("BENCH_WS_ROUNDS", 1))
LOGINS = env_int("BENCH_LOGINS", 20)
BCRYPT_ROUNDS = env_int("BENCH_BCRYPT_ROUNDS", 12)
PROFILE = os.environ.get("BENCH_PROFILE", "1") == "1"
PROFILE_SECONDS = max(2, env_int("BENCH_PROFILE_SECONDS", 4))
PROFILE_RATE = 200
SECTIONS = ("rest", "profile", "login", "ws", "scale")
ONLY = {s.strip() for s in os.environ.get("BENCH_ONLY", "").split(",") if s.strip()}
if ONLY - set(SECTIONS):
    sys.exit(f"BENCH_ONLY: unknown section(s) {sorted(ONLY - set(SECTIONS))}; know {SECTIONS}")
OUTPUT = ROOT / os.environ.get("BENCH_OUTPUT", "docs/performance.md")
# A focused A/B of a few endpoints; their floor still runs in every round.
TARGETS = {t.strip() for t in os.environ.get("BENCH_TARGETS", "").split(",") if t.strip()}
WARMUP_SECONDS = 1

# BENCH_SCALE_ROWS only to try the scale section quickly: the targets are stated at 1M.
SCALE_ROWS = max(1000, env_int("BENCH_SCALE_ROWS", 1_000_000))
SCALE_USERS, SCALE_MESSAGES, SCALE_MEETINGS, SCALE_LEDGER = (
    10_000,
    SCALE_ROWS,
    SCALE_ROWS // 5,
    SCALE_ROWS,
)
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
# The reader's own ledger rows and notifications, for the same reason.
READER_LEDGER_ROWS = READER_NOTIFICATIONS = 60
# Expert search: EXPERTS users with two skills each out of EXPERT_SKILLS, so SEARCH_WORD (the
# first) matches 2/len(EXPERT_SKILLS) of them (500 of 10k) and the page of SEARCH_LIMIT is full.
EXPERTS = max(100, env_int("BENCH_EXPERTS", 10_000))
EXPERT_SKILLS = [
    "Python", "Go", "Rust", "Java", "Kotlin", "Swift", "TypeScript", "React", "Vue", "Angular",
    "PostgreSQL", "MySQL", "Redis", "Kafka", "Docker", "Kubernetes", "Terraform", "AWS", "Azure",
    "GCP", "Linux", "Networking", "Security", "Pandas", "PyTorch", "TensorFlow", "Statistics",
    "Figma", "Branding", "Copywriting", "SEO", "Marketing", "Sales", "Negotiation", "Leadership",
    "Hiring", "Accounting", "Tax", "Law", "Product",
]  # fmt: skip
SEARCH_WORD, SEARCH_LIMIT = "python", 20

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
                # The bench's own EXPERTCONNECT_BENCH_* settings are no config keys (the server
                # refuses unknown ones): a child gets only the settings given here.
                env={
                    **{k: v for k, v in os.environ.items() if not k.startswith("EXPERTCONNECT_")},
                    **(env or {}),
                },
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
    random (many users); otherwise every request is `token` and `body` (one user).
    `floor`: the floor target it is compared with; `peer`: the FastAPI peer's target for the
    same endpoint; `group`: targets of one group run between the same floor runs."""

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
        peer: str | None = None,
        group: str | None = None,
    ):
        self.name, self.label, self.port = name, label, port
        self.method, self.path, self.token, self.body = method, path, token, body
        self.floor = floor
        self.peer = peer
        self.group = group or floor
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


def ratio(a, b):
    return a / b if a is not None and b else None


def run_rounds(targets: list[Target], floors: dict[str, Target], label: str) -> dict:
    """ROUNDS rounds; in each, every group runs its floor once and then its targets, in an
    order rotated by one each round (no target always runs first or last). Returns per target
    the medians of its figures, of its per-round ratios to that round's floor run and, where
    it has a peer, of its per-round ratios to the peer."""
    groups: dict[str, list[Target]] = {}
    for target in targets:
        groups.setdefault(target.group, []).append(target)
    log(f"{label}: warm-up")
    for target in [*floors.values(), *targets]:
        target.wrk(WARMUP_SECONDS)
    runs: dict[str, list[dict]] = collections.defaultdict(list)
    floor_of: dict[str, list[dict]] = collections.defaultdict(list)
    floor_runs: dict[str, list[dict]] = collections.defaultdict(list)
    for r in range(ROUNDS):
        for group in groups.values():
            floor_name = group[0].floor
            floor_result = floors[floor_name].wrk(SECONDS)
            floor_runs[floor_name].append(floor_result)
            k = r % len(group)
            for target in group[k:] + group[:k]:
                result = target.wrk(SECONDS)
                runs[target.name].append(result)
                floor_of[target.name].append(floor_result)
                log(
                    f"{label} round {r + 1}/{ROUNDS} {target.label}: {result['rps']:.0f} req/s "
                    f"p50 {result['p50']:.2f} ms p99 {result['p99']:.2f} ms "
                    f"(floor {floor_result['rps']:.0f} req/s)"
                )
    summary = {}
    for target in targets:
        results, floor_results = runs[target.name], floor_of[target.name]
        peer_results = runs.get(target.peer) if target.peer else None
        summary[target.name] = {
            "label": target.label,
            "floor": target.floor,
            "peer": target.peer if peer_results else None,
            "rps": median([p["rps"] for p in results]),
            "p50": median([p["p50"] for p in results]),
            "p99": median([p["p99"] for p in results]),
            "rps_ratio": median(
                [ratio(p["rps"], f["rps"]) for p, f in zip(results, floor_results, strict=True)]
            ),
            "p50_ratio": median(
                [ratio(p["p50"], f["p50"]) for p, f in zip(results, floor_results, strict=True)]
            ),
            "p99_ratio": median(
                [ratio(p["p99"], f["p99"]) for p, f in zip(results, floor_results, strict=True)]
            ),
            "peer_rps_ratio": median(
                [ratio(p["rps"], q["rps"]) for p, q in zip(results, peer_results, strict=True)]
            )
            if peer_results
            else None,
            "peer_p99_ratio": median(
                [ratio(p["p99"], q["p99"]) for p, q in zip(results, peer_results, strict=True)]
            )
            if peer_results
            else None,
            "non2xx": sum(p["non2xx"] for p in results),
            "socket_errors": sum(p["socket_errors"] for p in results),
            "sample_error": next((p["sample_error"] for p in results if "sample_error" in p), None),
            "by_round": [p["rps"] for p in results],
        }
    for name, floor in floors.items():
        results = floor_runs.get(name)
        if results:
            summary[name] = {
                "label": floor.label,
                "floor": None,
                "peer": None,
                "rps": median([f["rps"] for f in results]),
                "p50": median([f["p50"] for f in results]),
                "p99": median([f["p99"] for f in results]),
                "non2xx": sum(f["non2xx"] for f in results),
                "socket_errors": sum(f["socket_errors"] for f in results),
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
        """INSERT INTO users (username, email, password_hash, first_name, last_name,
                            username_normalized, email_normalized)
                 SELECT 'scale_' || g, 'scale_' || g || '@example.com', $1, 'Scale', 'User ' || g,
                        'scale_' || g, 'scale_' || g || '@example.com'
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
    # The replica role (seed_scale) also skips the triggers that keep the conversations
    # summary (0011): count it again from the messages, as after any load that bypassed them.
    ("conversations", "SELECT rebuild_conversations()"),
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
    # VACUUM too: what autovacuum would have done by now in production (and may never do
    # here: a test cluster can run with autovacuum off). It fills the visibility map that the
    # lists' index-only scans rely on.
    ("vacuum analyze", "VACUUM ANALYZE"),
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
      meeting of theirs, pending (starting tomorrow: the expiry task leaves it alone) or
      confirmed (ended an hour ago, so no scale-seeded meeting can overlap it). Each payer holds
      POOL_CREDITS bought in one 'purchased' ledger row; experts start at 0 with no rows, so
      balance == signed sum of the ledger for everyone.
    - CONVERSATION_MESSAGES messages between the reader and its peer, alternating directions.
    - READER_MEETINGS meetings of the reader, half as requester, half as expert, in the past
      (confirmed/completed/cancelled: nothing for the expiry task).
    - READER_LEDGER_ROWS ledger rows and READER_NOTIFICATIONS notifications of the reader."""
    conn = await asyncpg.connect(dsn, command_timeout=120)
    try:
        async with conn.transaction():
            users = [
                r["id"]
                for r in await conn.fetch(
                    """INSERT INTO users (username, email, password_hash, first_name, last_name,
                                        username_normalized, email_normalized)
                   SELECT 'pool_' || $2 || '_' || g, 'pool_' || $2 || '_' || g || '@example.com',
                          'x', 'Pool', 'User ' || g,
                          'pool_' || $2 || '_' || g, 'pool_' || $2 || '_' || g || '@example.com'
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
            # Pending (tomorrow) and confirmed (ended an hour ago: no auto-completion for a
            # day) alternately: with escrow both hold the payment, the path users take most.
            meetings = await conn.fetch(
                """INSERT INTO meetings (title, requester_id, expert_id, category_id, status,
                                         scheduled_start, scheduled_end)
                   SELECT 'Pool meeting', p, e, (SELECT min(id) FROM categories),
                          CASE WHEN o % 2 = 0 THEN 'confirmed' ELSE 'pending' END,
                          CASE WHEN o % 2 = 0
                               THEN date_trunc('minute', now()) - interval '2 hours'
                               ELSE date_trunc('minute', now()) + interval '1 day' END,
                          CASE WHEN o % 2 = 0
                               THEN date_trunc('minute', now()) - interval '1 hour'
                               ELSE date_trunc('minute', now()) + interval '25 hours' END
                   FROM unnest($1::bigint[], $2::bigint[]) WITH ORDINALITY AS t(p, e, o)
                   RETURNING id, requester_id, expert_id""",
                payers,
                experts,
            )
            # The reader's ledger (1 credit bought READER_LEDGER_ROWS times: the balance stays
            # the signed sum of the ledger) and notifications: full pages on an empty database.
            await conn.execute(
                """WITH t AS (INSERT INTO credit_transactions
                                  (user_id, transaction_type, amount, description)
                              SELECT $1, 'purchased', 1, 'Bench ledger row ' || g
                              FROM generate_series(1, $2) g)
                   UPDATE credit_accounts SET balance = balance + $2 WHERE user_id = $1""",
                reader_id,
                READER_LEDGER_ROWS,
            )
            await conn.execute(
                """INSERT INTO notifications (user_id, notification_type, title, content,
                                              related_id)
                   SELECT $1, 'new_message', 'New Message', 'Bench notification ' || g, NULL
                   FROM generate_series(1, $2) g""",
                reader_id,
                READER_NOTIFICATIONS,
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
        # statistics of empty tables; VACUUM as autovacuum would have (see SCALE_SQL).
        await conn.execute("VACUUM ANALYZE")
    finally:
        await conn.close()
    return {
        "users": users,
        "payers": payers,
        "experts": experts,
        "meetings": [(r["requester_id"], r["id"], r["expert_id"]) for r in meetings],
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


def transfer_mode(port: int) -> tuple[str, str | None]:
    """How POST /api/credits/transfer/ names what is paid, from the server's OpenAPI document:
    ("meeting", "meeting_id") while it pays for a meeting (today, and with escrow), or
    ("plain", <recipient field>) if it ever takes a user instead."""
    _status, doc = request(port, "GET", "/api/openapi.json")
    try:
        body = doc["paths"]["/api/credits/transfer/"]["post"]["requestBody"]
        schema = body["content"]["application/json"]["schema"]
        if "$ref" in schema:
            schema = doc["components"]["schemas"][schema["$ref"].rsplit("/", 1)[-1]]
        fields = set(schema.get("properties", {}))
    except (KeyError, TypeError):
        return "meeting", "meeting_id"  # no document: the spec's request
    if "meeting_id" in fields:
        return "meeting", "meeting_id"
    for field in ("receiver_id", "recipient_id", "to_user_id", "expert_id", "user_id"):
        if field in fields:
            return "plain", field
    return "meeting", "meeting_id"


def transfer_pool(pool: dict, mode: tuple[str, str | None]) -> list[tuple[str, dict]]:
    """One request per payer: 1 credit for its own meeting (half pending, half confirmed),
    or, for plain transfers, 1 credit to the expert of that meeting."""
    kind, field = mode
    return [
        (
            mint_token(payer),
            {"meeting_id": meeting_id, "amount": 1}
            if kind == "meeting"
            else {field: expert_id, "amount": 1},
        )
        for payer, meeting_id, expert_id in pool["meetings"]
    ]


async def seed_experts(dsn: str, tag: str) -> dict:
    """EXPERTS users with two skills each (names from EXPERT_SKILLS, categories in turn),
    unless the database has that many experts already. The skills go in through
    user_skills so that its trigger fills users.skill_names and the search document."""
    conn = await asyncpg.connect(dsn, command_timeout=300)
    started = time.monotonic()
    try:
        have = await conn.fetchval("SELECT count(DISTINCT user_id) FROM user_skills")
        if have < EXPERTS:
            async with conn.transaction():
                ids = await conn.fetch(
                    """INSERT INTO users (username, email, password_hash, first_name,
                                          last_name, bio, username_normalized,
                                          email_normalized)
                       SELECT 'expert_' || $2 || '_' || g,
                              'expert_' || $2 || '_' || g || '@example.com', 'x',
                              (ARRAY['Ada', 'Grace', 'Alan', 'Edsger', 'Barbara', 'Ken',
                                     'Linus', 'Margaret', 'Donald', 'Frances'])[1 + g % 10],
                              'Expert ' || g,
                              'Consultant for ' || (1 + g % 20) || ' years.',
                              'expert_' || $2 || '_' || g,
                              'expert_' || $2 || '_' || g || '@example.com'
                       FROM generate_series(1, $1) g
                       ORDER BY g
                       RETURNING id""",
                    EXPERTS - have,
                    tag,
                )
                await conn.execute(
                    """INSERT INTO user_skills (user_id, category_id, skill_name,
                                                proficiency_level)
                       SELECT u, cat.ids[1 + (o + k) % cardinality(cat.ids)],
                              ($2::text[])[1 + (CASE WHEN k = 0 THEN o ELSE o * 7 + 3 END)
                                               % cardinality($2::text[])],
                              (ARRAY['beginner', 'intermediate', 'advanced', 'expert'])
                                  [1 + (o + k) % 4]
                       FROM unnest($1::bigint[]) WITH ORDINALITY AS t(u, o),
                            generate_series(0, 1) k,
                            (SELECT array_agg(id ORDER BY id) AS ids FROM categories) cat""",
                    [r["id"] for r in ids],
                    EXPERT_SKILLS,
                )
            # VACUUM flushes the GIN pending list of users_search_document_idx, as autovacuum
            # would have in production: a full list prices the index out and the search reads
            # every user (tests/test_query_plans.py does the same).
            await conn.execute("VACUUM ANALYZE users, user_skills")
        count = await conn.fetchval("SELECT count(DISTINCT user_id) FROM user_skills")
        matches = await conn.fetchval(
            """SELECT count(*) FROM users
               WHERE search_document @@ websearch_to_tsquery('simple', $1)""",
            SEARCH_WORD,
        )
    finally:
        await conn.close()
    return {"experts": count, "matches": matches, "seconds": time.monotonic() - started}


def websocket_load(dsn: str, targets: list[tuple[str, int, int]]) -> dict:
    """bench/ws_load.py against each (name, port, pid) of `targets` in turn, WS_ROUNDS times,
    with the same users, tokens and load. Per round, the server's paced p99 ÷ the floor's."""
    rows = run_sql(
        dsn,
        """INSERT INTO users (username, email, password_hash, first_name,
                                              username_normalized, email_normalized)
                           SELECT 'ws_' || g, 'ws_' || g || '@example.com', 'x', 'Socket',
                                  'ws_' || g, 'ws_' || g || '@example.com'
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
    users = [[i, mint_token(i)] for i in ids]
    rounds = []
    for r in range(WS_ROUNDS):
        results = {}
        # Floor first in odd rounds, server first in even ones: neither always runs warm.
        for name, port, pid in targets if r % 2 == 0 else targets[::-1]:
            job = {
                "url": f"http://127.0.0.1:{port}",
                "server_pid": pid,
                "users": users,
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
                raise RuntimeError(f"ws_load failed against {name}:\n{done.stderr[-3000:]}")
            results[name] = json.loads(done.stdout)
            p, b = results[name]["paced"], results[name]["burst"]
            log(
                f"WebSocket round {r + 1}/{WS_ROUNDS} {name}: paced p50 {fmt(p['p50_ms'])} ms "
                f"p99 {fmt(p['p99_ms'])} ms lost {p['lost']}; burst of {b['sent']} delivered "
                f"in {fmt(b['last_delivered_s'], '.3f')} s, lost {b['lost']}"
            )
        rounds.append(results)
    server = [r["server"] for r in rounds]
    floor = [r["floor"] for r in rounds if "floor" in r]
    return {
        "rounds": rounds,
        "p99_ratio": median(
            [ratio(r["server"]["paced"]["p99_ms"], r["floor"]["paced"]["p99_ms"]) for r in rounds]
        )
        if floor
        else None,
        "lost": sum(x["paced"]["lost"] + x["burst"]["lost"] for x in server),
        "floor_lost": sum(x["paced"]["lost"] + x["burst"]["lost"] for x in floor),
        "burst_s": median([x["burst"]["last_delivered_s"] for x in server]),
        "floor_burst_s": median([x["burst"]["last_delivered_s"] for x in floor]),
        "p99_ms": median([x["paced"]["p99_ms"] for x in server]),
        "floor_p99_ms": median([x["paced"]["p99_ms"] for x in floor]),
        # The server's memory figures, from its first round.
        **{k: server[0][k] for k in server[0] if k not in ("paced", "burst")},
    }


# Own samples by package, first match on the leaf frame's module. A leaf that is one of the
# loop's entry frames means the thread was in no Python code: inside uvloop/libuv (C: epoll
# wait, socket reads and writes, callbacks' scheduling) or idle; py-spy cannot tell which
# without --native, which cannot run with --nonblocking.
PROFILE_PACKAGES = [
    ("expertconnect.", "expertconnect (project code)"),
    ("tornado.", "tornado (HTTP, routing, iostream, websocket)"),
    # asyncpg's protocol is Cython without frames of its own: its C time (I/O, encoding
    # parameters, decoding rows into Records) counts to the Python frame that called it.
    ("asyncpg.", "asyncpg (the driver, its C protocol included)"),
    ("jwt.", "pyjwt"),
    ("json.", "json"),
    ("logging.", "logging"),
    ("asyncio.", "asyncio (Python parts)"),
    ("uvloop.", "uvloop (Python parts)"),
    ("selectors", "epoll wait (idle, asyncio loop)"),
]
LOOP_C = "uvloop/libuv C code or idle (no Python frame)"
ENTRY_FUNCTIONS = {"<module>", "main", "run", "Runner.run", "run_until_complete", "run_forever"}


def frame_key(frame: str) -> tuple[str, str]:
    """py-spy's 'function (path/to/module.py:line)' -> (function, dotted module)."""
    match = re.fullmatch(r"(.*) \((.*?)(?::\d+)?\)", frame)
    if not match:
        return frame, ""
    function, path = match.groups()
    module = re.sub(r"\.pyx?$", "", path).replace("/", ".").lstrip(".")
    return function, module


def profile_package(module: str) -> str:
    for prefix, package in PROFILE_PACKAGES:
        if module.startswith(prefix):
            return package
    return "other (stdlib, builtins)"


def summarize_profile(path: Path, pid: int) -> dict:
    """The event-loop thread's samples (py-spy raw format, --threads: each stack starts with
    'thread (<os tid>): <name>'; the loop runs on the main thread, whose tid is the pid).
    Own samples by function and by package; total (inclusive) samples by function."""
    own, total, package = collections.Counter(), collections.Counter(), collections.Counter()
    loop_samples = other_samples = under_project = 0
    entry_depth = None
    for line in path.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack or not count.isdigit():
            continue
        n = int(count)
        head, *frames = stack.split(";")
        # By OS thread id; by name where py-spy could only give a pthread id.
        if not (head.startswith(f"thread ({pid})") or head.endswith(": MainThread")):
            other_samples += n
            continue
        loop_samples += n
        keys = [frame_key(f) for f in frames]
        # The loop's entry frames (server.py's <module>, main, the runner...) are in every
        # stack: the shortest run of them is where the loop hands over to callbacks.
        depth = 0
        while depth < len(keys) and keys[depth][0] in ENTRY_FUNCTIONS:
            depth += 1
        entry_depth = depth if entry_depth is None else min(entry_depth, depth)
        if depth == len(keys):
            own[(LOOP_C, "")] += n
            package[LOOP_C] += n
            continue
        leaf = keys[-1]
        own[leaf] += n
        package[profile_package(leaf[1])] += n
        for key in set(keys[depth:]):
            total[key] += n
        if any(module.startswith("expertconnect.") for _, module in keys):
            under_project += n
    return {
        "samples": loop_samples,
        "other_threads": other_samples,
        "under_project": under_project,
        "packages": package.most_common(),
        # (function, module), own samples, total samples
        "own": [(key, n, total.get(key, n)) for key, n in own.most_common(12)],
        "total": [(key, own.get(key, 0), n) for key, n in total.most_common(15)],
    }


def py_spy(pid: int, seconds: int, out: Path) -> tuple[int, str]:
    """py-spy record of every thread of `pid`, idle samples included (so a sample is 1/rate s of
    wall time), without pausing the process (--nonblocking: the server keeps its pace)."""
    argv = [
        str(PY_SPY),
        "record",
        "--pid",
        str(pid),
        "--duration",
        str(seconds),
        "--rate",
        str(PROFILE_RATE),
        "--format",
        "raw",
        "--threads",
        "--idle",
        "--nonblocking",
        "--output",
        str(out),
    ]
    done = subprocess.run(argv, capture_output=True, text=True, timeout=seconds + 60)
    return done.returncode, done.stderr


def profile_endpoint(target: Target, server_pid: int) -> dict | None:
    """py-spy records the server for PROFILE_SECONDS while wrk drives `target` for a second
    longer on each side, so the loop is under load for the whole recording."""
    out = ROOT / "var" / f"bench-profile-{target.name}.txt"
    out.unlink(missing_ok=True)
    load: dict = {}
    thread = threading.Thread(
        target=lambda: load.update(target.wrk(PROFILE_SECONDS + 2)), daemon=True
    )
    thread.start()
    time.sleep(1.0)
    for attempt in range(2):  # py-spy can fail to attach to a busy process: once more
        code, err = py_spy(server_pid, PROFILE_SECONDS, out)
        if code == 0 and out.exists():
            break
        log(f"py-spy attempt {attempt + 1} failed ({code}): {err.strip()[-300:]}")
    thread.join(timeout=PROFILE_SECONDS + 90)
    if not out.exists():
        return None
    summary = summarize_profile(out, server_pid)
    summary.update(
        label=target.label,
        seconds=PROFILE_SECONDS,
        expected=PROFILE_SECONDS * PROFILE_RATE,
        rps=load.get("rps"),
        raw=str(out.relative_to(ROOT)),
    )
    if not summary["samples"]:
        log(f"py-spy: no sample of thread {server_pid} in {out}: {err.strip()[-300:]}")
    return summary


# ---------------------------------------------------------------------- the report
def fmt(value, spec=".2f", suffix=""):
    return "n/a" if value is None else f"{value:{spec}}{suffix}"


def rest_table(summary: dict, order: list[str], unavailable: dict[str, str]) -> list[str]:
    lines = [
        "| endpoint | req/s | p50 ms | p99 ms | req/s ÷ floor | p50 ÷ floor | p99 ÷ floor "
        "| req/s ÷ peer | req/s by round |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---|",
    ]
    for name in order:
        if name in unavailable:
            lines.append(f"| {unavailable[name]} | n/a | n/a | n/a | n/a | n/a | n/a | n/a | |")
            continue
        if name not in summary:
            continue
        s = summary[name]
        errors = ""
        if s["non2xx"] or s["socket_errors"]:
            errors = f" ({s['non2xx']} non-2xx, {s['socket_errors']} socket errors)"
            if s.get("sample_error"):
                errors += f", e.g. `{s['sample_error'][:80]}`"
        lines.append(
            f"| {s['label']}{errors} | {fmt(s['rps'], '.0f')} | {fmt(s['p50'])} | "
            f"{fmt(s['p99'])} | {fmt(s.get('rps_ratio'))} | {fmt(s.get('p50_ratio'))} | "
            f"{fmt(s.get('p99_ratio'))} | {fmt(s.get('peer_rps_ratio'))} | "
            f"{', '.join(f'{x:.0f}' for x in s.get('by_round', []))} |"
        )
    return lines


def peer_table(rest: dict, differences: dict[str, str]) -> list[str]:
    """Project ÷ FastAPI peer, same round, for every endpoint both serve."""
    rows = [
        f"| {s['label']} | {fmt(s['rps'], '.0f')} | {fmt(rest[s['peer']]['rps'], '.0f')} | "
        f"{fmt(s['peer_rps_ratio'])} | {fmt(s['p99'])} | {fmt(rest[s['peer']]['p99'])} | "
        f"{fmt(s['peer_p99_ratio'])} | {'ahead' if (s['peer_rps_ratio'] or 0) >= 1 else 'behind'} |"
        for s in rest.values()
        if s.get("peer") and s["peer"] in rest
    ]
    if not rows:
        return []
    return [
        "## Side by side with the FastAPI peer",
        "",
        "The same endpoint in bench/floor_fastapi.py (a `Depends` that decodes the JWT and reads "
        "the user with the revocation check, pydantic request and response models, the SQL of "
        "the project's query modules as copied on 2026-11-28), measured in the same round. "
        "The peer's POST /api/messages/ stores the message and the notification in one "
        "statement, like the project, but writes no event log and pushes nothing live.",
        "",
        "| endpoint | project req/s | peer req/s | project ÷ peer | project p99 ms "
        "| peer p99 ms | p99 project ÷ peer | |",
        "|---|---:|---:|---:|---:|---:|---:|---|",
        *rows,
        "",
        *[f"- The peer's answer differs for {name}: {text}" for name, text in differences.items()],
        ""
        if differences
        else "Every GET above answers the same JSON from the project and the peer.",
        "",
    ]


def scale_ratio(r: dict, name: str) -> float | None:
    """A list's p50 at scale ÷ its p50 on the empty database, each phase's p50 first divided
    by the floor GET's p50 of the same round (the median of those per-round ratios)."""
    empty = (r.get("rest") or {}).get(name, {}).get("p50_ratio")
    big = (r.get("scale") or {}).get("rest", {}).get(name, {}).get("p50_ratio")
    return ratio(big, empty)


# The issue's targets (issue 14): (label, how to read it from the run, limit, higher is better).
def targets_section(r: dict) -> list[str]:
    rows = []

    def add(what: str, value, target: str, met: bool | None, spec: str = ".2f", unit="") -> None:
        now = "n/a" if value is None else f"{value:{spec}}{unit}"
        verdict = "n/a" if value is None or met is None else ("met" if met else "missed")
        rows.append(f"| {what} | {now} | {target} | {verdict} |")

    rest = r.get("rest") or {}

    def floor_ratio(name: str, what: str, limit: float) -> None:
        value = rest.get(name, {}).get("rps_ratio")
        add(what, value, f">= {limit}x", value is not None and value >= limit, unit="x")

    me = rest.get("me", {})
    add(
        "GET /api/users/me/ ÷ FastAPI peer (req/s, same round)",
        me.get("peer_rps_ratio"),
        ">= 1.1x",
        (me.get("peer_rps_ratio") or 0) >= 1.1,
        unit="x",
    )
    # What metrics cost: /me with metrics ÷ /me on the same server with metrics off, per round.
    with_metrics = rest.get("me", {}).get("by_round") or []
    without = rest.get("me_metrics_off", {}).get("by_round") or []
    metrics_ratio = median([ratio(a, b) for a, b in zip(with_metrics, without, strict=False)])
    add(
        "GET /api/users/me/ with metrics ÷ metrics off (req/s, same round)",
        metrics_ratio,
        ">= 0.95x",
        metrics_ratio is not None and metrics_ratio >= 0.95,
        unit="x",
    )
    floor_ratio("meetings", "GET /api/meetings/ (page of 50) ÷ floor GET", 0.6)
    floor_ratio("conversation", "GET /api/messages/?with_user= (page of 50) ÷ floor GET", 0.7)
    floor_ratio(
        "experts",
        f"GET /api/experts/?q= (page of {SEARCH_LIMIT}, {EXPERTS:,} experts) ÷ floor GET",
        0.5,
    )
    floor_ratio("send", f"POST /api/messages/ ({POOL_USERS} users) ÷ floor POST", 0.8)
    floor_ratio(
        "transfer", f"POST /api/credits/transfer/ ({POOL_USERS // 2} payers) ÷ floor POST", 0.6
    )
    ws = r.get("ws")
    if ws:
        value = ws["p99_ratio"]
        add(
            f"WebSocket delivery p99 at {WS_RATE} msg/s, {WS_SOCKETS:,} sockets ÷ the floor's p99 "
            f"(server {fmt(ws['p99_ms'])} ms, floor {fmt(ws['floor_p99_ms'])} ms), "
            f"lost: {ws['lost']}",
            value,
            "<= 2x, 0 lost",
            value is not None and value <= 2 and ws["lost"] == 0,
            unit="x",
        )
        add(
            f"burst of {WS_BURST:,} chat messages: time until the last is delivered "
            f"(floor {fmt(ws['floor_burst_s'], '.3f')} s)",
            ws["burst_s"],
            "< 0.3 s, 0 lost",
            ws["burst_s"] is not None and ws["burst_s"] < 0.3 and ws["lost"] == 0,
            ".3f",
            " s",
        )
    else:
        add("WebSocket delivery p99 ÷ floor's (ws section not run)", None, "<= 2x, 0 lost", None)
        add("burst of 1,000 chat messages (ws section not run)", None, "< 0.3 s, 0 lost", None)
    for name in LISTS:
        label = r.get("labels", {}).get(name, name)
        value = scale_ratio(r, name)
        add(
            f"{label} p50 at {SCALE_ROWS:,} rows ÷ empty (each ÷ floor p50)",
            value,
            "<= 1.2",
            value is not None and value <= 1.2,
        )
    standing = []
    if r.get("idle_rss_kb"):
        standing.append(
            f"| idle server memory | {r['idle_rss_kb'] / 1024:.1f} MB | < 80 MB | "
            f"{'met' if r['idle_rss_kb'] / 1024 < 80 else 'missed'} |"
        )
    if ws:
        standing.append(
            f"| memory per idle WebSocket | {ws['kb_per_socket']:.1f} KB | < 20 KB | "
            f"{'met' if ws['kb_per_socket'] < 20 else 'missed'} |"
        )
    if r.get("login"):
        value = r["login"]["p99_ratio"]
        standing.append(
            f"| GET /api/users/me/ p99 with logins ÷ alone | {fmt(value)} | <= 2 | "
            f"{'n/a' if value is None else 'met' if value <= 2 else 'missed'} |"
        )
    return [
        "## Targets (issue 14)",
        "",
        "Every ratio from this run (req/s ratios: medians of per-round ratios).",
        "",
        "| what | now | target | met |",
        "|---|---:|---:|---|",
        *rows,
        "",
        *(
            [
                "Standing targets (issue 6):",
                "",
                "| what | now | target | met |",
                "|---|---:|---:|---|",
                *standing,
                "",
            ]
            if standing
            else []
        ),
    ]


def profile_section(profiles: dict) -> list[str]:
    """Where each endpoint's time goes on the event loop: one table of own time by package
    across endpoints, then per endpoint the top functions by own and by total samples."""
    profiles = {k: v for k, v in profiles.items() if v and v["samples"]}
    if not profiles:
        return ["## Profile", "", "py-spy produced no sample (see the log).", ""]
    names = list(profiles)
    packages = []
    for p in profiles.values():
        for package, _ in p["packages"]:
            if package not in packages:
                packages.append(package)
    lines = [
        "## Profile: where the event loop's time goes",
        "",
        f"py-spy {PROFILE_RATE} Hz (`record --threads --idle --nonblocking`, raw stacks in "
        "var/bench-profile-*.txt) of the server's main thread, which runs the event loop, for "
        f"{PROFILE_SECONDS} s while wrk drives one endpoint (same settings as above). Idle samples "
        "are kept, so a share is a share of wall time; other threads (bcrypt, executor) are left "
        f'out. "{LOOP_C}" is the time the thread spent outside Python: the C event loop '
        "reading and writing sockets, or waiting for work (idle).",
        "",
        "Own time by package (share of the loop thread's samples):",
        "",
        "| package | " + " | ".join(profiles[n]["label"] for n in names) + " |",
        "|---|" + "---:|" * len(names),
    ]
    for package in packages:
        cells = []
        for n in names:
            got = dict(profiles[n]["packages"]).get(package, 0)
            cells.append(f"{100 * got / profiles[n]['samples']:.1f} %")
        lines.append(f"| {package} | " + " | ".join(cells) + " |")
    cells = [f"{100 * profiles[n]['under_project'] / profiles[n]['samples']:.1f} %" for n in names]
    lines.append("| *inside any expertconnect function (inclusive)* | " + " | ".join(cells) + " |")
    cells = [
        f"{p['samples']} of {p['expected']}, {fmt(p['rps'], '.0f')} req/s"
        for p in (profiles[n] for n in names)
    ]
    lines += [
        "| *samples of the loop thread, load during the recording* | " + " | ".join(cells) + " |",
        "",
    ]
    for n in names:
        p = profiles[n]
        samples = p["samples"]

        def share(count: int, samples: int = samples) -> str:
            return f"{100 * count / samples:.1f} %" if count else ""

        lines += [
            f"### {p['label']}",
            "",
            "| own | total | function | module |",
            "|---:|---:|---|---|",
            *[
                f"| {share(own)} | {share(total)} | `{function}` | {module} |"
                for (function, module), own, total in p["own"]
            ],
            "",
            "Largest total (inclusive) time, below the loop's entry frames:",
            "",
            "| total | own | function | module |",
            "|---:|---:|---|---|",
            *[
                f"| {share(total)} | {share(own)} | `{function}` | {module} |"
                for (function, module), own, total in p["total"]
            ],
        ]
        lines.append("")
    return lines


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
    rest = r.get("rest") or {}
    lines = [
        "# Performance",
        "",
        "Written by `make bench` (bench/run.py); rerun it to refresh. Figures are medians over "
        "rounds. In each round every group of endpoints runs its floor once, then its endpoints "
        "in an order rotated each round; a ratio is the median of the per-round ratios to that "
        "round's floor run (or, ÷ peer, to the FastAPI peer's run of the same endpoint).",
        "",
        f"- Date: {r['date']}",
        f"- Machine: {m['nproc']} cores (nproc), {m['model']}, {m['mem_gib']:.1f} GiB RAM, "
        f"Linux {m['kernel']}",
        f"- Software: Python {m['python']}, PostgreSQL {r.get('postgres', '?')}, wrk {m['wrk']}",
        f"- Command: `{r['command']}`; sections: {', '.join(r['sections'])}",
        f"- Load: wrk -t{THREADS} -c{CONNECTIONS} --latency, {ROUNDS} rounds x {SECONDS} s per "
        f"figure; server at bcrypt cost {BCRYPT_ROUNDS}, rate limits lifted by config",
        f"- Whole run: {r['elapsed']:.0f} s",
        "",
        "Floor: bench/floor_tornado.py (bare Tornado, same pool settings, JWT decode, one "
        "primary-key SELECT for GET, one INSERT for POST). FastAPI peer: bench/floor_fastapi.py "
        "(uvicorn with uvloop and httptools, one worker): the floor's two endpoints (the "
        '"FastAPI GET/POST" rows) and the project\'s endpoints written the FastAPI way (the '
        '"FastAPI ..." rows with a path). GET rows are compared with the floor\'s GET, POST rows '
        "with the floor's POST.",
        "",
    ]
    if rest:
        experts = r.get("experts", {})
        lines += [
            "## REST, empty database",
            "",
            *rest_table(rest, r["order"], r["unavailable"]),
            "",
            f"Write load: each POST /api/messages/ request is one of {POOL_MESSAGE_PAIRS} random "
            f"pairs of {POOL_USERS} seeded users; each POST /api/credits/transfer/ one of "
            f"{POOL_USERS // 2} payers paying 1 credit ({r['transfer_mode']}), half of the "
            "meetings pending, half confirmed (each request picks an entry at random, "
            'bench/wrk/request.lua). The "(one hot pair)" rows send every request between the '
            "same two users, so each waits for the previous one's row locks. GET "
            f"/api/messages/?with_user= reads a conversation of {CONVERSATION_MESSAGES} seeded "
            f"messages that no POST adds to; GET /api/meetings/ lists {READER_MEETINGS + 1} "
            f"meetings of the reader; GET /api/experts/?q={SEARCH_WORD}&limit={SEARCH_LIMIT} "
            f"ranks {experts.get('matches', '?')} matching experts of "
            f"{experts.get('experts', '?')} (two skills each). Statistics: VACUUM ANALYZE after "
            f"every seeding. Meeting for the hot-pair transfer: {r.get('meeting_source')}.",
            "",
            *peer_table(rest, r.get("peer_differences", {})),
        ]
    lines += [
        "## Memory",
        "",
        f"- Idle server RSS after start-up: {r['idle_rss_kb'] / 1024:.1f} MB",
    ]
    if r.get("rest_rss_kb"):
        lines.append(f"- Server RSS after the REST runs: {r['rest_rss_kb'] / 1024:.1f} MB")
    lines.append("")
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
            "/ws/chat/{id}/ sockets for random pairs, from bench/ws_load.py in its own process, "
            "against the WebSocket floor (bench/floor_tornado.py: insert the message, then push "
            "it to the receiver's sockets) and the server, with the same users and load, "
            f"{WS_ROUNDS} round(s), the floor first in odd rounds. Latency: message.send frame "
            "written on a chat socket -> message.receive read on the receiver's /ws/ socket. "
            'Burst: all frames written at once; "last delivered" is the first send to the last '
            "receipt.",
            "",
            "| round | target | phase | sent | received | lost | p50 ms | p99 ms | max ms "
            "| last delivered s | delivered msg/s |",
            "|---:|---|---|---:|---:|---:|---:|---:|---:|---:|---:|",
        ]
        for i, rnd in enumerate(ws["rounds"], 1):
            for target, res in rnd.items():
                for phase in ("paced", "burst"):
                    p = res[phase]
                    title = f"paced {p['rate']}/s" if phase == "paced" else f"burst of {p['sent']}"
                    lines.append(
                        f"| {i} | {target} | {title} | {p['sent']} | {p['received']} | "
                        f"{p['lost']} | {fmt(p['p50_ms'])} | {fmt(p['p99_ms'])} | "
                        f"{fmt(p['max_ms'])} | {fmt(p['last_delivered_s'], '.3f')} | "
                        f"{fmt(p['messages_per_s'], '.0f')} |"
                    )
        lines += [
            "",
            f"- Paced p99, server ÷ floor (median of rounds): {fmt(ws['p99_ratio'])}",
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
            "The last column divides each phase's p50 by its own floor GET p50 first, so that "
            "a machine busier in one phase than the other does not count; the target uses it.",
            "",
            "| list | p50 ms empty | p50 ms at scale | at scale ÷ empty | the same, each ÷ floor |",
            "|---|---:|---:|---:|---:|",
        ]
        for name in LISTS:
            if name not in scale["rest"] or name not in rest:
                continue
            empty, big = rest[name]["p50"], scale["rest"][name]["p50"]
            lines.append(
                f"| {rest[name]['label']} | {fmt(empty)} | {fmt(big)} | {fmt(ratio(big, empty))} "
                f"| {fmt(scale_ratio(r, name))} |"
            )
        lines.append("")
    if r.get("profile") is not None:
        lines += profile_section(r["profile"])
    lines += targets_section(r)
    # The hand-kept log of what was changed for speed, and what each change measured.
    if CHANGES.exists():
        lines += ["", CHANGES.read_text().rstrip(), ""]
    OUTPUT.parent.mkdir(parents=True, exist_ok=True)
    OUTPUT.write_text("\n".join(lines))


# ---------------------------------------------------------------------- main
# The lists compared at scale (every list endpoint the reader has rows in).
LISTS = [
    "meetings",
    "conversation",
    "experts",
    "inbox",
    "conversations",
    "transactions",
    "notifications",
]
# The endpoints the profile section samples.
PROFILED = ["me", "meetings", "conversation", "experts", "send", "transfer"]


def sections() -> list[str]:
    chosen = [s for s in SECTIONS if s in ONLY] if ONLY else list(SECTIONS)
    if not ONLY:
        if not SCALE:
            chosen.remove("scale")
        if not PROFILE:
            chosen.remove("profile")
    return chosen


def make_targets(ports: dict[str, int], people: dict, pool: dict, mode):
    port, floor_port, fastapi_port = ports["server"], ports["floor"], ports["fastapi"]
    alice, bob, floor_peer = people["alice"], people["bob"], people["floor_peer"]
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
    conversation = f"/api/messages/?with_user={bob['id']}"
    search = f"/api/experts/?q={SEARCH_WORD}&limit={SEARCH_LIMIT}"
    messages = message_pool(pool, POOL_MESSAGE_PAIRS)

    def get(name, label, path, *, peer_port=None, peer=None, group="floor_get"):
        return Target(
            name,
            label,
            peer_port or port,
            "GET",
            path,
            token,
            floor="floor_get",
            peer=peer,
            group=group,
        )

    targets = [
        get("fastapi_get", "FastAPI GET", "/floor/get", peer_port=fastapi_port),
        get("me", "GET /api/users/me/", "/api/users/me/", peer="fastapi_me"),
        get(
            "me_metrics_off",
            "GET /api/users/me/ (metrics off)",
            "/api/users/me/",
            peer_port=ports["plain"],
        ),
        get("fastapi_me", "FastAPI GET /api/users/me/", "/api/users/me/", peer_port=fastapi_port),
        get("meetings", "GET /api/meetings/", "/api/meetings/", peer="fastapi_meetings"),
        get(
            "fastapi_meetings",
            "FastAPI GET /api/meetings/",
            "/api/meetings/",
            peer_port=fastapi_port,
        ),
        get(
            "conversation",
            "GET /api/messages/?with_user=",
            conversation,
            peer="fastapi_conversation",
        ),
        get(
            "fastapi_conversation",
            "FastAPI GET /api/messages/?with_user=",
            conversation,
            peer_port=fastapi_port,
        ),
        get(
            "experts",
            f"GET /api/experts/?q= (page of {SEARCH_LIMIT})",
            search,
            peer="fastapi_experts",
        ),
        get(
            "fastapi_experts",
            f"FastAPI GET /api/experts/?q= (page of {SEARCH_LIMIT})",
            search,
            peer_port=fastapi_port,
        ),
        # Lists measured for the scale comparison; a group of their own (own floor run).
        get("inbox", "GET /api/messages/", "/api/messages/", group="lists"),
        get("conversations", "GET /api/conversations/", "/api/conversations/", group="lists"),
        get(
            "transactions",
            "GET /api/credit-transactions/",
            "/api/credit-transactions/",
            group="lists",
        ),
        get("notifications", "GET /api/notifications/", "/api/notifications/", group="lists"),
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
            pool=messages,
            peer="fastapi_send",
        ),
        Target(
            "fastapi_send",
            f"FastAPI POST /api/messages/ ({len(pool['users'])} users)",
            fastapi_port,
            "POST",
            "/api/messages/",
            token,
            floor="floor_post",
            pool=messages,
        ),
        Target(
            "transfer",
            f"POST /api/credits/transfer/ ({len(pool['meetings'])} payers)",
            port,
            "POST",
            "/api/credits/transfer/",
            token,
            floor="floor_post",
            pool=transfer_pool(pool, mode),
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
            {"meeting_id": people["meeting_id"], "amount": 1}
            if mode[0] == "meeting"
            else {mode[1]: bob["id"], "amount": 1},
            floor="floor_post",
        ),
    ]
    return floors, targets


def compare_with_peers(targets: list[Target], by_name: dict[str, Target]) -> dict[str, str]:
    """For each GET both serve, does the peer answer the same JSON as the project? A
    difference is reported next to the ratios (the peer may be doing less work)."""
    differences = {}
    for target in targets:
        if target.method != "GET" or not target.peer:
            continue
        peer = by_name[target.peer]
        _, ours = request(target.port, "GET", target.path, token=target.token)
        _, theirs = request(peer.port, "GET", peer.path, token=peer.token)
        first_ours = ours[0] if isinstance(ours, list) and ours else ours
        first_theirs = theirs[0] if isinstance(theirs, list) and theirs else theirs
        if ours == theirs:
            continue
        if isinstance(first_ours, dict) and isinstance(first_theirs, dict):
            only_ours = sorted(set(first_ours) - set(first_theirs))
            only_theirs = sorted(set(first_theirs) - set(first_ours))
            changed = sorted(
                k for k in set(first_ours) & set(first_theirs) if first_ours[k] != first_theirs[k]
            )
            differences[target.name] = (
                f"project-only keys {only_ours}, peer-only keys {only_theirs}, "
                f"different values {changed}"
                + (
                    f", {len(ours)} vs {len(theirs)} items"
                    if isinstance(ours, list) and isinstance(theirs, list)
                    else ""
                )
            )
        else:
            differences[target.name] = f"{str(ours)[:80]} vs {str(theirs)[:80]}"
        log(f"peer answers {target.label} differently: {differences[target.name]}")
    return differences


def main() -> int:
    started = time.monotonic()
    chosen = sections()
    admin = admin_dsn()
    name = f"expertconnect_bench_{os.getpid()}_{uuid.uuid4().hex[:6]}"
    asyncio.run(ensure_database(admin, name))
    dsn = with_database(admin, name)
    processes: list[Process] = []
    report: dict = {
        "date": dt.datetime.now().astimezone().strftime("%Y-%m-%d %H:%M %Z"),
        "machine": machine(),
        "unavailable": {},
        "sections": chosen,
    }
    env_shown = " ".join(
        f"{k}={os.environ[k]}" for k in sorted(os.environ) if k.startswith("BENCH_")
    )
    report["command"] = f"{env_shown} make bench".strip()
    log(f"sections: {', '.join(chosen)}")
    try:
        port, floor_port, fastapi_port = free_port(), free_port(), free_port()
        server_env = {
            "EXPERTCONNECT_DATABASE_DSN": dsn,
            "EXPERTCONNECT_SERVER_PORT": str(port),
            "EXPERTCONNECT_AUTH_JWT_SECRET": JWT_SECRET,
            "EXPERTCONNECT_AUTH_BCRYPT_ROUNDS": str(BCRYPT_ROUNDS),
            "EXPERTCONNECT_RATE_LIMITS_DEFAULT_PER_MINUTE": "100000000",
            "EXPERTCONNECT_RATE_LIMITS_AUTH_PER_MINUTE": "100000000",
        }
        server_argv = [
            sys.executable,
            str(ROOT / "server.py"),
            "--config",
            str(ROOT / "config.yaml"),
        ]
        server = Process("server", server_argv, server_env)
        processes.append(server)
        server.wait_ready(port, "/api/health/", None)
        report["postgres"] = run_sql(dsn, "SHOW server_version")[0][0]
        time.sleep(1.0)
        report["idle_rss_kb"] = rss_kb(server.pid)
        log(f"server pid {server.pid} on {port}, idle RSS {report['idle_rss_kb']} KB")

        tag = uuid.uuid4().hex[:6]
        with concurrent.futures.ThreadPoolExecutor(4) as executor:
            alice, bob, floor_peer = executor.map(
                lambda n: register(port, f"{n}_{tag}"), ["alice", "bob", "floorpeer"]
            )
        meeting_id, report["meeting_source"] = create_meeting(port, dsn, alice, bob)
        pool = asyncio.run(seed_pool(dsn, alice["id"], bob["id"], tag))
        report["experts"] = asyncio.run(seed_experts(dsn, tag))
        log(
            f"seeded {len(pool['users'])} pool users, {len(pool['meetings'])} paid meetings, "
            f"{CONVERSATION_MESSAGES} conversation messages, {READER_MEETINGS} reader meetings, "
            f"{report['experts']['experts']} experts ({report['experts']['matches']} match "
            f"{SEARCH_WORD!r}) in {report['experts']['seconds']:.1f} s"
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
        mode = transfer_mode(port)
        report["transfer_mode"] = (
            "for its own meeting" if mode[0] == "meeting" else f"to a user ({mode[1]})"
        )
        log(f"POST /api/credits/transfer/ takes {mode[1]}: {mode[0]} payments")

        processes.append(
            Process(
                "floor-tornado",
                [sys.executable, str(BENCH / "floor_tornado.py"), str(floor_port), dsn, JWT_SECRET],
            )
        )
        floor_process = processes[-1]
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
        floor_process.wait_ready(floor_port, "/floor/get", alice["token"])
        processes[-1].wait_ready(fastapi_port, "/floor/get", alice["token"])

        # The same server with metrics off (server.metrics_allow empty), to price them: GET /me
        # on both in the same rounds.
        plain_port = free_port()
        processes.append(
            Process(
                "server-metrics-off",
                server_argv,
                {
                    **server_env,
                    "EXPERTCONNECT_SERVER_PORT": str(plain_port),
                    "EXPERTCONNECT_SERVER_METRICS_ALLOW": "",
                },
            )
        )
        processes[-1].wait_ready(plain_port, "/api/health/", None)

        people = {"alice": alice, "bob": bob, "floor_peer": floor_peer, "meeting_id": meeting_id}
        ports = {"server": port, "floor": floor_port, "fastapi": fastapi_port, "plain": plain_port}
        floors, targets = make_targets(ports, people, pool, mode)
        for target in [*floors.values(), *targets]:
            status, reply = request(
                target.port, target.method, target.path, body=target.body, token=target.token
            )
            if status >= 300:
                raise RuntimeError(f"{target.label}: {status} {str(reply)[:500]}")
        by_name = {t.name: t for t in targets}
        report["peer_differences"] = compare_with_peers(targets, by_name)
        report["labels"] = {t.name: t.label for t in targets}
        report["order"] = ["floor_get", *[t.name for t in targets if t.floor == "floor_get"]]
        report["order"] += ["floor_post", *[t.name for t in targets if t.floor == "floor_post"]]

        measured = [t for t in targets if not TARGETS or t.name in TARGETS]
        if "rest" in chosen:
            report["rest"] = run_rounds(measured, floors, "REST")
            report["rest_rss_kb"] = rss_kb(server.pid)
        if "profile" in chosen:
            if not PY_SPY.exists():
                log(f"profile: {PY_SPY} missing (make bench installs it)")
            else:
                report["profile"] = {}
                for name_ in [n for n in PROFILED if not TARGETS or n in TARGETS]:
                    log(f"profile: py-spy on {by_name[name_].label}")
                    report["profile"][name_] = profile_endpoint(by_name[name_], server.pid)
        if "login" in chosen:
            log("login under load")
            report["login"] = login_under_load(by_name["me"], port, alice["username"])
        if "ws" in chosen:
            log(f"WebSocket load: {WS_SOCKETS} sockets, floor then server")
            report["ws"] = websocket_load(
                dsn, [("floor", floor_port, floor_process.pid), ("server", port, server.pid)]
            )
        if "scale" in chosen:
            lists = [by_name[n] for n in LISTS]
            if "rest" not in report:
                report["rest"] = run_rounds(lists, floors, "lists, empty")
            log("scale: seeding")
            report["scale"] = asyncio.run(seed_scale(dsn, alice["id"], bob["id"]))
            report["scale"]["rest"] = run_rounds(lists, floors, "scale")
    finally:
        for process in reversed(processes):
            process.stop()
        if os.environ.get("BENCH_KEEP_DB") != "1":
            asyncio.run(drop_database(admin, name))
    report["elapsed"] = time.monotonic() - started
    (ROOT / "var").mkdir(exist_ok=True)
    (ROOT / "var" / "bench-results.json").write_text(json.dumps(report, indent=2, default=str))
    write_report(report)
    log(f"wrote {OUTPUT} in {report['elapsed']:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
