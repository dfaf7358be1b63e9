"""Load benchmark of the environment server: ``serve_patient`` requests/s and latency
(p50, p99) at 1 and 16 concurrent clients, over HTTP and WebSocket, on loopback only.

How to run::

    python experiments/bench_server.py                   # starts its own server process
    python experiments/bench_server.py --url http://127.0.0.1:7860   # a running server
    python experiments/bench_server.py --requests 500 --time-cap 5 --transports http

Bounded: each (transport, concurrency) level stops after ``--requests`` timed
``serve_patient`` calls or ``--time-cap`` seconds, whichever comes first; only loopback
URLs are accepted. Every client owns a session and plays dynamic_queue episodes (a
servable patient exists at every step); when an episode ends it starts the next one,
which is not timed. A client is one ``envs.server.client.AsyncEnv``, so the figures
include the client library's own cost; all clients share one asyncio loop in this
process, and the server is one uvicorn process, so on 2 cores they take a core each.

Results to expect on a 2-core machine (measured with other jobs running): HTTP, one
client ~1.1-1.3 k serve/s at p50 0.7-0.8 ms / p99 0.9-1.3 ms; 16 clients ~1.7-1.9 k/s,
p50 7-8 ms / p99 14-19 ms (the two processes saturate their cores, so concurrency adds
queueing more than throughput). WebSocket, one client ~3.7-4.1 k/s at p50 0.22-0.24 ms;
16 clients ~9-10 k/s, p50 ~1.5 ms / p99 ~3 ms (no per-request HTTP parsing on either side).
Printed as a table and written as JSON (``--out``, atomically).
"""

from __future__ import annotations

import asyncio
import importlib.metadata as md
import os
import platform
import statistics
import subprocess
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Annotated, Any, Literal
from urllib.parse import urlsplit

import httpx
import tyro

from envs.server.client import AsyncEnv

TASK = "dynamic_queue"
ROOT = Path(__file__).resolve().parent.parent


@dataclass(frozen=True)
class BenchConfig:
    """Load benchmark of the environment server (loopback only)."""

    url: str | None = None
    """A running server (loopback); default: start one."""
    requests: int = 10000
    """Timed serve_patient calls per (transport, concurrency) level at most."""
    time_cap_s: Annotated[float, tyro.conf.arg(name="time-cap")] = 20.0
    """Seconds per level at most."""
    concurrency: tuple[int, ...] = (1, 16)
    """Concurrent clients per level."""
    transports: tuple[Literal["http", "ws"], ...] = ("http", "ws")
    """Transports measured."""
    warmup: int = 200
    """Untimed calls per level first."""
    out: Path = Path("runs/bench_server.json")
    """JSON written (atomically)."""


def _percentile(sorted_xs: list[float], q: float) -> float:
    """Nearest-rank percentile of an ascending list."""
    k = max(0, min(len(sorted_xs) - 1, round(q / 100 * len(sorted_xs) + 0.5) - 1))
    return sorted_xs[k]


async def _client(
    url: str,
    transport: str,
    budget: list[int],
    deadline: float,
    latencies: list[float],
    counts: dict[str, int],
) -> None:
    async with AsyncEnv(url, transport) as env:  # type: ignore[arg-type]
        await env.reset()
        seed = 0
        while budget[0] > 0 and time.perf_counter() < deadline:
            state = (await env.step("start_task", {"task_id": TASK, "seed": seed}))["result"]
            counts["other"] += 1
            seed += 1
            queue = state["initial_queue"]
            done = False
            while not done and budget[0] > 0 and time.perf_counter() < deadline:
                servable = [p["patient_id"] for p in queue if p["can_serve_now"]]
                if not servable:
                    out = await env.step("wait")
                    counts["other"] += 1
                else:
                    budget[0] -= 1
                    t0 = time.perf_counter()
                    out = await env.step("serve_patient", {"patient_id": servable[0]})
                    latencies.append(time.perf_counter() - t0)
                queue, done = out["result"]["state"]["queue"], out["done"]


async def _level(url: str, transport: str, clients: int, n: int, cap: float) -> dict[str, Any]:
    latencies: list[float] = []
    counts = {"other": 0}
    budget = [n]
    t0 = time.perf_counter()
    await asyncio.gather(
        *(_client(url, transport, budget, t0 + cap, latencies, counts) for _ in range(clients))
    )
    wall = time.perf_counter() - t0
    lat = sorted(latencies)
    if not lat:  # a machine too loaded to finish one call (sessions open first)
        raise SystemExit(f"error: no serve_patient call finished in {cap} s with {clients} "
                         f"{transport} client(s): raise --time-cap")  # fmt: skip
    ms = 1000.0
    return {
        "transport": transport,
        "clients": clients,
        "serve_requests": len(lat),
        "other_requests": counts["other"],
        "seconds": round(wall, 3),
        "serve_rps": round(len(lat) / wall, 1),
        "total_rps": round((len(lat) + counts["other"]) / wall, 1),
        "p50_ms": round(_percentile(lat, 50) * ms, 3),
        "p99_ms": round(_percentile(lat, 99) * ms, 3),
        "mean_ms": round(statistics.fmean(lat) * ms, 3),
        "max_ms": round(lat[-1] * ms, 3),
        "hit_time_cap": len(lat) < n,
    }


def _loopback_only(url: str) -> None:
    host = urlsplit(url).hostname or ""
    if host not in ("127.0.0.1", "localhost", "::1"):
        raise SystemExit(f"error: --url must be a loopback address (got {host!r})")


def _start_server() -> tuple[subprocess.Popen, str]:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    cmd = [sys.executable, "-m", "envs.server.app", "--port", str(port), "--log-level", "warning"]
    proc = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"error: server exited with {proc.returncode}")
        try:
            if httpx.get(f"{url}/health", timeout=1).status_code == 200:
                return proc, url
        except httpx.HTTPError:
            time.sleep(0.05)
    proc.kill()
    raise SystemExit("error: server did not start in 30 s")


def _versions() -> dict[str, str]:
    out = {"python": platform.python_version()}
    for pkg in ("fastapi", "starlette", "uvicorn", "httpx", "websockets"):
        try:
            out[pkg] = md.version(pkg)
        except md.PackageNotFoundError:
            out[pkg] = "absent"
    return out


def run(cfg: BenchConfig) -> dict[str, Any]:
    proc = None
    url = cfg.url
    if url is None:
        proc, url = _start_server()
    else:
        _loopback_only(url)
    try:
        results = []
        for transport in cfg.transports:
            if cfg.warmup > 0:  # first calls pay for imports and connection set-up
                asyncio.run(_level(url, transport, 1, cfg.warmup, cfg.time_cap_s))
            for clients in cfg.concurrency:
                row = asyncio.run(_level(url, transport, clients, cfg.requests, cfg.time_cap_s))
                results.append(row)
                print(
                    f"{transport:>4} {clients:>3} clients: {row['serve_rps']:>8.1f} serve/s  "
                    f"p50 {row['p50_ms']:.3f} ms  p99 {row['p99_ms']:.3f} ms  "
                    f"({row['serve_requests']} calls, {row['seconds']:.1f} s)",
                    flush=True,
                )
    finally:
        if proc is not None:
            proc.terminate()
            proc.wait(10)
    return {
        "config": {**asdict(cfg), "out": str(cfg.out), "url": url},
        "task": TASK,
        "machine": {"platform": platform.platform(), "cpus": os.cpu_count(), **_versions()},
        "results": results,
    }


def main(argv: list[str] | None = None) -> int:
    try:
        cfg = tyro.cli(BenchConfig, args=argv, config=(tyro.conf.FlagCreatePairsOff,))
    except SystemExit as e:  # --help (0) or a bad flag (2, tyro said why)
        return e.code if isinstance(e.code, int) else 2
    if cfg.requests < 1 or cfg.time_cap_s <= 0 or min(cfg.concurrency, default=0) < 1:
        raise SystemExit("error: --requests, --time-cap and --concurrency must be positive")
    doc = run(cfg)
    from agents.report import save_json

    save_json(cfg.out, doc)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
