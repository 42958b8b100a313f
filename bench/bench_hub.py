"""The gym hub at scale, against a real mosquitto (and a real PostgreSQL when installed):

1. Live: one hub (`millctl gym serve`, its own process) follows `MACHINES` machines publishing
   telemetry at 2 Hz (a separate publisher process, realistic `TelemetryBatch` payloads) with
   a dashboard WebSocket open. Tile staleness = when the WebSocket push arrived − when the
   machine sent the batch (p50 / p99); the hub's CPU (share of one core) and memory (RSS).
2. Burst: `SESSIONS` finished sessions, each with a records chunk of `RECORDS` seconds and
   its summary (QoS 1), published as fast as the broker takes them; ingest rate = sessions /
   seconds from the first publish until the hub has committed the last one.

SQLite and PostgreSQL side by side, each with a fresh hub and database. Bounded: about a
minute per backend.

    .venv/bin/python bench/run.py hub
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
MACHINES = 1000
LIVE_SECONDS = 12.0
WARMUP_SECONDS = 3.0
SESSIONS = 1000
RECORDS = 60
PREFIX = "gym/v1"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _wait_port(port: int, proc: subprocess.Popen[bytes], what: str) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        if proc.poll() is not None:
            raise RuntimeError(f"{what} exited ({proc.returncode})")
        time.sleep(0.05)
    raise TimeoutError(f"{what} did not listen on {port}")


class _Mosquitto:
    def __init__(self, directory: Path) -> None:
        self.port = _free_port()
        conf = directory / "mosquitto.conf"
        user = "user root\n" if os.geteuid() == 0 else ""
        conf.write_text(f"{user}listener {self.port} 127.0.0.1\nallow_anonymous true\nset_tcp_nodelay true\n"
                        "max_queued_messages 1000000\nmax_inflight_messages 1000\nmax_connections -1\n"
                        f"persistence true\npersistence_location {directory}/\n")
        self.proc = subprocess.Popen([shutil.which("mosquitto") or "/usr/sbin/mosquitto", "-c", str(conf)],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        _wait_port(self.port, self.proc, "mosquitto")

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(10)


class _Postgres:
    """Debian's PostgreSQL in a temporary cluster (as in tests/pg_helpers.py)."""

    def __init__(self, directory: Path) -> None:
        found = sorted(Path("/usr/lib/postgresql").glob("*/bin/initdb"), key=lambda p: int(p.parts[4]))
        if not found:
            raise FileNotFoundError("PostgreSQL is not installed (scripts/setup.sh --dev)")
        self.bin = found[-1].parent
        self.directory = directory
        self.port = _free_port()
        if os.geteuid() == 0:
            shutil.chown(directory, "postgres", "postgres")
        self._run("initdb", "-D", str(directory / "data"), "-A", "trust", "-U", "postgres", "--no-sync")
        # Durable commits (fsync on), as a real hub's database would run.
        self._run("pg_ctl", "-D", str(directory / "data"), "-o",
                  f"-p {self.port} -k {directory} -c listen_addresses=127.0.0.1", "-l",
                  str(directory / "server.log"), "-w", "start")
        self.url = f"postgresql://postgres@127.0.0.1:{self.port}/postgres"

    def _run(self, tool: str, *args: str) -> None:
        cmd = [str(self.bin / tool), *args]
        if os.geteuid() == 0:
            cmd = ["runuser", "-u", "postgres", "--", *cmd]
        subprocess.run(cmd, check=True, capture_output=True, timeout=120)

    def stop(self) -> None:
        self._run("pg_ctl", "-D", str(self.directory / "data"), "-m", "immediate", "-w", "stop")


def _hub_cpu_s(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _hub_rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def _get(port: int, path: str) -> Any:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=10) as response:
        return json.loads(response.read())


# --- publisher processes ---------------------------------------------------------------
def _batch(name: str, seq: int) -> bytes:
    now = time.time()
    samples = [{"t_s": round(seq * 0.5 + i * 0.1, 3), "speed_mps": 2.5 + 0.1 * i, "distance_m": seq * 1.25,
                "forward_m": seq * 1.25, "backward_m": 0.0, "power_w": 150.0 + i, "force_n": 60.0,
                "brake_current_ma": 900, "setpoint_ma": 900, "saturated": False, "heart_rate_bpm": 130,
                "link_ok": True} for i in range(5)]
    return json.dumps({"v": 1, "machine": name, "site": "bench", "seq": seq, "sent_at": now,
                       "session_id": f"{name}-s", "session_state": "running", "mode": "level",
                       "dropped_batches": 0, "samples": samples}).encode()


async def _publish_live(port: int, machines: int, seconds: float) -> None:
    import aiomqtt
    async with aiomqtt.Client("127.0.0.1", port, max_queued_outgoing_messages=0) as client:
        client.pending_calls_threshold = 100_000
        names = [f"bench-{i:04d}" for i in range(machines)]
        for name in names:
            await client.publish(f"{PREFIX}/bench/{name}/status", "online", qos=1, retain=True)
        start = time.monotonic()
        seq = 0
        while time.monotonic() - start < seconds:
            seq += 1
            tick = start + seq * 0.5
            for i, name in enumerate(names):  # spread over the half second, as real machines are
                due = tick - 0.5 + 0.5 * i / machines
                if due > time.monotonic():
                    await asyncio.sleep(due - time.monotonic())
                await client.publish(f"{PREFIX}/bench/{name}/telemetry", _batch(name, seq), qos=0)
        for name in names:
            await client.publish(f"{PREFIX}/bench/{name}/status", "offline", qos=1, retain=True)


async def _publish_burst(port: int, sessions: int, records: int, tag: str) -> None:
    import aiomqtt
    async with aiomqtt.Client("127.0.0.1", port) as client:
        client.pending_calls_threshold = 100_000
        pending: list[Any] = []
        for n in range(sessions):
            machine = f"bench-{n % MACHINES:04d}"
            sid = f"{machine}-{tag}-{n:05d}"
            rows = [{"t_s": float(t), "speed_mps": 3.0, "distance_m": 3.0 * t, "forward_m": 3.0 * t,
                     "backward_m": 0.0, "power_w": 150.0, "force_n": 50.0, "heart_rate_bpm": 140,
                     "energy_kcal": 0.15 * t, "segment": None} for t in range(1, records + 1)]
            chunk = {"v": 1, "machine": machine, "site": "bench", "session_id": sid, "chunk": 0, "chunks": 1,
                     "records": rows, "laps": []}
            summary = {"session_id": sid, "machine": machine, "started_at": "2026-12-05T08:00:00+00:00",
                       "elapsed_s": float(records), "distance_m": 3.0 * records, "forward_m": 3.0 * records,
                       "work_j": 150.0 * records, "avg_power_w": 150.0, "max_power_w": 160.0,
                       "energy_kcal": 0.15 * records}
            pending.append(client.publish(f"{PREFIX}/bench/{machine}/records", json.dumps(chunk), qos=1))
            pending.append(client.publish(f"{PREFIX}/bench/{machine}/session", json.dumps(summary), qos=1))
            if len(pending) >= 200:  # pipelined, 200 PUBACKs outstanding at most
                await asyncio.gather(*pending)
                pending = []
        await asyncio.gather(*pending)


# --- the measurement ---------------------------------------------------------------------
async def _watch_dashboard(port: int, seconds: float, warmup_s: float) -> dict[str, Any]:
    import aiohttp
    staleness: list[float] = []
    at_hub: list[float] = []
    pushes = 0
    start = time.monotonic()
    async with aiohttp.ClientSession() as http, http.ws_connect(f"http://127.0.0.1:{port}/ws") as ws:
        while time.monotonic() - start < seconds:
            try:
                msg = await ws.receive(timeout=1.0)
            except TimeoutError:
                continue
            if msg.type != aiohttp.WSMsgType.TEXT:
                break
            now = time.time()
            pushes += 1
            if time.monotonic() - start < warmup_s:
                continue
            for m in json.loads(msg.data)["machines"]:
                if m["status"] == "online" and m["last_seen"] is not None:
                    # push arrival − batch sent = (push − hub received) + (hub received − sent)
                    staleness.append(now - m["last_seen"] + m["staleness_s"])
                    at_hub.append(m["staleness_s"])
    return {"pushes": pushes, "tile_updates": len(staleness), "staleness_p50_s": _quantile(staleness, 0.5),
            "staleness_p99_s": _quantile(staleness, 0.99), "at_hub_p50_s": _quantile(at_hub, 0.5),
            "at_hub_p99_s": _quantile(at_hub, 0.99)}


def _quantile(values: list[float], q: float) -> float | None:
    ordered = sorted(values)
    return round(ordered[min(len(ordered) - 1, int(q * len(ordered)))], 3) if ordered else None


def _backend(name: str, db: str | None, broker: _Mosquitto, work: Path) -> dict[str, Any]:
    data = work / f"hub-{name}"
    data.mkdir()
    web_port = _free_port()
    args = [sys.executable, "-m", "controller.cli", "gym", "serve", "--mqtt", f"mqtt://127.0.0.1:{broker.port}",
            "--web", f"127.0.0.1:{web_port}", "--data-dir", str(data), "--client-id", f"bench-hub-{name}"]
    args += ["--db", db] if db else []
    log = (work / f"hub-{name}.log").open("wb")
    hub = subprocess.Popen(args, cwd=ROOT, stdout=log, stderr=log)
    try:
        _wait_port(web_port, hub, "gym serve")
        time.sleep(0.5)
        publisher = subprocess.Popen([sys.executable, __file__, "live", str(broker.port), str(MACHINES),
                                      str(LIVE_SECONDS)], cwd=ROOT)
        cpu0, t0 = _hub_cpu_s(hub.pid), time.monotonic()
        live = asyncio.run(_watch_dashboard(web_port, LIVE_SECONDS, WARMUP_SECONDS))
        cpu_live = (_hub_cpu_s(hub.pid) - cpu0) / (time.monotonic() - t0) * 100
        rss_live = _hub_rss_mb(hub.pid)
        publisher.wait(60)
        followed = sum(1 for m in _get(web_port, "/api/machines") if m["name"].startswith("bench-"))
        cpu0, t0 = _hub_cpu_s(hub.pid), time.monotonic()
        burst = subprocess.Popen([sys.executable, __file__, "burst", str(broker.port), str(SESSIONS), str(RECORDS),
                                  name], cwd=ROOT)
        deadline = t0 + 240
        stored = 0
        while time.monotonic() < deadline:
            stored = _get(web_port, "/api/hub")["sessions_stored"]
            if stored >= SESSIONS:
                break
            time.sleep(0.1)
        burst_s = time.monotonic() - t0
        cpu_burst = (_hub_cpu_s(hub.pid) - cpu0) / burst_s * 100
        burst.wait(60)
        stats = _get(web_port, "/api/hub")
        return {"backend": name, "machines_followed": followed, **live, "cpu_live_pct": round(cpu_live, 1),
                "rss_live_mb": round(rss_live, 1), "sessions_stored": stored, "burst_s": round(burst_s, 2),
                "sessions_per_s": round(stored / burst_s, 1), "records_per_s": round(stored * RECORDS / burst_s),
                "cpu_burst_pct": round(cpu_burst, 1), "rss_after_mb": round(_hub_rss_mb(hub.pid), 1),
                "bad_messages": stats["bad_messages"], "duplicates": stats["duplicates"]}
    finally:
        hub.send_signal(signal.SIGTERM)
        with contextlib.suppress(subprocess.TimeoutExpired):
            hub.wait(15)
        hub.kill()


def run() -> str:
    work = Path(tempfile.mkdtemp(prefix="bench-hub-"))
    os.chmod(work, 0o755)
    broker = _Mosquitto(work)
    rows = []
    try:
        rows.append(_backend("sqlite", None, broker, work))
        (work / "pg").mkdir()
        try:
            pg = _Postgres(work / "pg")
        except (FileNotFoundError, subprocess.CalledProcessError) as exc:
            rows.append({"backend": "postgresql", "error": str(exc)})
        else:
            try:
                rows.append(_backend("postgresql", pg.url, broker, work))
            finally:
                pg.stop()
    finally:
        broker.stop()
        shutil.rmtree(work, ignore_errors=True)
    lines = ["## Gym hub (bench_hub.py)", "",
             f"Live: {MACHINES} machines' telemetry at 2 Hz for {LIVE_SECONDS:.0f} s (first {WARMUP_SECONDS:.0f} s "
             "left out), one dashboard WebSocket open; tile staleness = push received − batch sent. Burst: "
             f"{SESSIONS} finished sessions, each a records chunk of {RECORDS} s and a summary (QoS 1), published "
             "as fast as the broker takes them; time from the first publish to the last commit. The hub, the "
             "publisher, mosquitto (and PostgreSQL, fsync on) share the 2 cores.", "",
             "| database | machines followed | tile p50 s | tile p99 s | of which at the hub p50 / p99 s | "
             "hub CPU % live | hub RSS MB | burst s | sessions/s | records/s | hub CPU % burst | duplicates |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        if "error" in r:
            lines.append(f"| {r['backend']} | failed: {r['error'][:80]} | | | | | | | | | | |")
            continue
        lines.append(f"| {r['backend']} | {r['machines_followed']} | {r['staleness_p50_s']} | {r['staleness_p99_s']} "
                     f"| {r['at_hub_p50_s']} / {r['at_hub_p99_s']} | {r['cpu_live_pct']} | {r['rss_live_mb']} "
                     f"| {r['burst_s']} | {r['sessions_per_s']} | "
                     f"{r['records_per_s']} | {r['cpu_burst_pct']} | {r['duplicates']} |")
    lines += ["", "```json", json.dumps(rows, indent=1), "```"]
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "live":
        asyncio.run(_publish_live(int(sys.argv[2]), int(sys.argv[3]), float(sys.argv[4])))
    elif len(sys.argv) > 1 and sys.argv[1] == "burst":
        asyncio.run(_publish_burst(int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]), sys.argv[5]))
    else:
        print(run())
