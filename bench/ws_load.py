"""WebSocket load generator, run by bench/run.py in a process of its own.

Run once per target: the server, or the WebSocket floor in bench/floor_tornado.py (same URLs).
Reads a JSON job on stdin: {"url", "server_pid", "users": [[id, token], ...], "senders", "rate",
"seconds", "burst", "connect_concurrency"}. Opens one /ws/ socket per user, measures the server's
RSS before and after, opens `senders` /ws/chat/{peer}/ sockets for random (user, peer) pairs,
then sends message.send frames on random chat sockets at `rate` per second for `seconds`, then
`burst` frames at once. Latency is send -> the receiver's /ws/ socket getting message.receive.
Prints one JSON object with the results. Every wait is bounded.
"""

from __future__ import annotations

import asyncio
import json
import random
import resource
import statistics
import sys
import time

import tornado.httpclient
import tornado.websocket

CONNECT_TIMEOUT = 20.0
DRAIN_TIMEOUT = 20.0
PREFIX = "bench:"


def rss_kb(pid: int) -> int:
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise RuntimeError("no VmRSS")


def raise_fd_limit(wanted: int) -> int:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = wanted if hard == resource.RLIM_INFINITY else min(wanted, hard)
    if soft < target:
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
    return resource.getrlimit(resource.RLIMIT_NOFILE)[0]


def percentile(values: list[float], q: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q / 100 * (len(ordered) - 1)))]


class Phase:
    def __init__(self, name: str):
        self.name = name
        self.sent: dict[int, float] = {}
        self.latencies: list[float] = []
        self.first_send = None
        self.last_receive = None

    def summary(self) -> dict:
        lat = [x * 1000 for x in self.latencies]
        span = (self.last_receive - self.first_send) if self.latencies else None
        return {
            "sent": len(self.sent),
            "received": len(lat),
            "lost": len(self.sent) - len(lat),
            "p50_ms": percentile(lat, 50),
            "p99_ms": percentile(lat, 99),
            "max_ms": max(lat) if lat else None,
            "mean_ms": statistics.fmean(lat) if lat else None,
            "messages_per_s": len(lat) / span if span else None,
            # First frame sent -> last message received: for the burst, the time until the
            # whole burst is delivered.
            "last_delivered_s": span,
        }


class Generator:
    def __init__(self, job: dict):
        self.job = job
        self.base = job["url"].replace("http://", "ws://")
        self.phase: Phase | None = None
        self.phases: dict[int, Phase] = {}  # seq -> phase it was sent in
        self.pending: set[int] = set()
        self.done = asyncio.Event()
        self.error_frames = 0
        self.closed_early = 0
        self.seq = 0

    async def connect(self, path: str, token: str):
        request = tornado.httpclient.HTTPRequest(f"{self.base}{path}?token={token}")
        return await asyncio.wait_for(tornado.websocket.websocket_connect(request), CONNECT_TIMEOUT)

    async def read_stream(self, conn, user_id: int) -> None:
        while True:
            raw = await conn.read_message()
            if raw is None:
                self.closed_early += 1
                return
            now = time.perf_counter()
            frame = json.loads(raw)
            if frame.get("type") != "message.receive":
                continue
            message = frame["message"]
            content = message.get("content", "")
            if message.get("receiver_id") != user_id or not content.startswith(PREFIX):
                continue
            seq = int(content[len(PREFIX) :])
            phase = self.phases.get(seq)
            if phase is None or seq not in self.pending:
                continue
            self.pending.discard(seq)
            phase.latencies.append(now - phase.sent[seq])
            phase.last_receive = now
            if not self.pending:
                self.done.set()

    async def drain_chat(self, conn) -> None:
        while True:
            raw = await conn.read_message()
            if raw is None:
                self.closed_early += 1
                return
            if '"type":"error"' in raw:
                self.error_frames += 1

    def send(self, chat, phase: Phase) -> None:
        self.seq += 1
        seq = self.seq
        now = time.perf_counter()
        phase.sent[seq] = now
        phase.first_send = phase.first_send or now
        self.phases[seq] = phase
        self.pending.add(seq)
        self.done.clear()
        chat.write_message(json.dumps({"type": "message.send", "content": f"{PREFIX}{seq}"}))

    async def drain(self) -> None:
        if self.pending:
            try:
                await asyncio.wait_for(self.done.wait(), DRAIN_TIMEOUT)
            except TimeoutError:
                pass
        self.pending.clear()

    async def run(self) -> dict:
        job = self.job
        users = job["users"]
        pid = job["server_pid"]
        fd_limit = raise_fd_limit(len(users) + job["senders"] + 1024)
        rng = random.Random(1)
        readers = []
        rss_before = rss_kb(pid)
        gate = asyncio.Semaphore(job["connect_concurrency"])
        t0 = time.perf_counter()

        async def open_stream(user_id: int, token: str):
            async with gate:
                conn = await self.connect("/ws/", token)
            readers.append(asyncio.ensure_future(self.read_stream(conn, user_id)))
            return conn

        streams = await asyncio.gather(*(open_stream(uid, tok) for uid, tok in users))
        connect_seconds = time.perf_counter() - t0
        await asyncio.sleep(2.0)
        rss_after = rss_kb(pid)

        chats = []
        for _ in range(job["senders"]):
            (_uid, tok), (peer, _) = rng.sample(users, 2)
            async with gate:
                conn = await self.connect(f"/ws/chat/{peer}/", tok)
            readers.append(asyncio.ensure_future(self.drain_chat(conn)))
            chats.append(conn)
        await asyncio.sleep(1.0)

        # Paced: one frame every 1/rate s on the schedule; a late tick sends at once.
        paced = Phase("paced")
        count = int(job["rate"] * job["seconds"])
        start = time.perf_counter()
        for k in range(count):
            delay = start + k / job["rate"] - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            self.send(rng.choice(chats), paced)
        paced_send_seconds = time.perf_counter() - start
        await self.drain()

        burst = Phase("burst")
        for _ in range(job["burst"]):
            self.send(rng.choice(chats), burst)
        burst_send_seconds = time.perf_counter() - burst.first_send
        await self.drain()
        rss_loaded = rss_kb(pid)
        closed_early = self.closed_early

        for conn in streams + chats:
            conn.close()
        await asyncio.sleep(0.5)
        for task in readers:
            task.cancel()
        return {
            "sockets": len(streams),
            "chat_sockets": len(chats),
            "fd_limit": fd_limit,
            "connect_seconds": connect_seconds,
            "rss_before_kb": rss_before,
            "rss_after_kb": rss_after,
            "rss_loaded_kb": rss_loaded,
            "kb_per_socket": (rss_after - rss_before) / len(streams),
            "paced": {**paced.summary(), "rate": job["rate"], "send_seconds": paced_send_seconds},
            "burst": {**burst.summary(), "send_seconds": burst_send_seconds},
            "error_frames": self.error_frames,
            "closed_early": closed_early,
        }


def main() -> None:
    job = json.load(sys.stdin)
    result = asyncio.run(Generator(job).run())
    json.dump(result, sys.stdout)


if __name__ == "__main__":
    main()
