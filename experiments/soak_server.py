"""Bounded soak of the environment server: N clients play episodes without pause for a
fixed time over HTTP, WebSocket and MCP (loopback only), some abandoning their sessions
so that expiry and LRU eviction run too; the server process's memory (RSS) and open
file descriptors are sampled from /proc throughout. Flat figures mean no leak.

How to run (what docs/server.md reports)::

    nice -n 5 python experiments/soak_server.py --minutes 10 --clients 16 \\
        --out docs/benchmarks/server_soak.json

The server is started here (``python -m envs.server``, 127.0.0.1, a free port,
``--max-sessions 32 --idle-timeout 20``, so abandoned sessions expire or are evicted
within the run). Written atomically as JSON: the samples and a summary (RSS and fds
over the first and the last minute, episodes, errors by code).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import socket
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from envs.server.client import AsyncEnv, ServerError  # noqa: E402

HOST = "127.0.0.1"
TASKS = ("basic_triage", "dynamic_queue", "mass_casualty")
SERVER_ARGS = ("--max-sessions", "32", "--idle-timeout", "20", "--log-level", "warning")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind((HOST, 0))
        return s.getsockname()[1]


def _proc_figures(pid: int) -> tuple[int, int]:
    """(RSS in KiB, open file descriptors) of a process, from /proc."""
    rss = 0
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            rss = int(line.split()[1])
    return rss, len(os.listdir(f"/proc/{pid}/fd"))


async def _episode(url: str, transport: str, seed: int, abandon: bool) -> None:
    env = AsyncEnv(url, transport=transport)
    await env.open()
    try:
        await env.reset(task_id=TASKS[seed % 3], seed=seed)
        while True:
            state = await env.call_tool_json("get_queue_state")
            if state["done"]:
                break
            ready = [p["patient_id"] for p in state["queue"] if p["can_serve_now"]]
            await (
                env.call_tool_json("serve_patient", patient_id=ready[0])
                if ready
                else env.call_tool_json("wait")
            )
        await env.call_tool_json("finalize_episode")
    finally:
        if abandon and transport == "http":
            env._owned = False  # leave the session behind: expiry/eviction must free it
        await env.close()


async def _mcp_episode(http: httpx.AsyncClient, seed: int) -> None:
    def rpc(i: int, method: str, params: dict) -> dict:
        return {"jsonrpc": "2.0", "id": i, "method": method, "params": params}

    r = await http.post("/mcp", json=rpc(0, "initialize", {}))
    sid = r.headers["mcp-session-id"]
    h = {"Mcp-Session-Id": sid}
    args = {"task_id": TASKS[seed % 3], "seed": seed}
    await http.post(
        "/mcp", json=rpc(1, "tools/call", {"name": "start_task", "arguments": args}), headers=h
    )
    for i in range(2, 200):
        r = await http.post(
            "/mcp", json=rpc(i, "tools/call", {"name": "wait", "arguments": {}}), headers=h
        )
        if r.json()["result"].get("isError"):
            break  # the episode is over
    await http.request("DELETE", "/mcp", headers=h)


async def _client(k: int, url: str, until: float, counts: Counter) -> None:
    transport = ("http", "ws", "mcp")[k % 3]
    seed = 1000 * k
    async with httpx.AsyncClient(base_url=url, timeout=30) as http:
        while time.monotonic() < until:
            seed += 1
            try:
                if transport == "mcp":
                    await _mcp_episode(http, seed)
                else:
                    await _episode(url, transport, seed, abandon=seed % 5 == 0)
                counts["episodes"] += 1
            except ServerError as e:  # evicted/expired sessions are expected, counted
                counts[f"error:{e.code}"] += 1
            except (httpx.HTTPError, OSError) as e:
                counts[f"error:{type(e).__name__}"] += 1


async def _sampler(pid: int, url: str, until: float, every: float, samples: list) -> None:
    t0 = time.monotonic()
    async with httpx.AsyncClient(base_url=url, timeout=10) as http:
        while True:
            rss, fds = _proc_figures(pid)
            health = (await http.get("/health")).json()
            samples.append({"t_s": round(time.monotonic() - t0, 1), "rss_kib": rss, "open_fds": fds,
                            "active_sessions": health["active_sessions"],
                            "created_total": health["created_total"]})  # fmt: skip
            if time.monotonic() >= until:
                return
            await asyncio.sleep(min(every, max(0.0, until - time.monotonic())))


def _summary(samples: list[dict], minute: float) -> dict:
    end = samples[-1]["t_s"]
    first = [s for s in samples if s["t_s"] <= minute]
    last = [s for s in samples if s["t_s"] >= end - minute]

    def span(rows: list[dict], key: str) -> list[int]:
        return [min(r[key] for r in rows), max(r[key] for r in rows)]

    return {
        "first_minute_rss_kib": span(first, "rss_kib"),
        "last_minute_rss_kib": span(last, "rss_kib"),
        "first_minute_fds": span(first, "open_fds"),
        "last_minute_fds": span(last, "open_fds"),
        "max_rss_kib": max(s["rss_kib"] for s in samples),
        "max_fds": max(s["open_fds"] for s in samples),
    }


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--minutes", type=float, default=10.0)
    p.add_argument("--clients", type=int, default=16)
    p.add_argument("--sample-every", type=float, default=10.0, help="seconds between samples")
    p.add_argument("--out", type=Path, default=Path("runs/server_soak.json"))
    a = p.parse_args(argv)
    port = _free_port()
    url = f"http://{HOST}:{port}"
    cmd = [sys.executable, "-m", "envs.server", "--host", HOST, "--port", str(port), *SERVER_ARGS]
    server = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.DEVNULL)
    try:
        for _ in range(300):
            try:
                httpx.get(f"{url}/health", timeout=1)
                break
            except httpx.HTTPError:
                time.sleep(0.1)
        counts: Counter = Counter()
        samples: list[dict] = []

        async def run() -> None:
            until = time.monotonic() + a.minutes * 60
            clients = [_client(k, url, until, counts) for k in range(a.clients)]
            await asyncio.gather(
                _sampler(server.pid, url, until, a.sample_every, samples), *clients
            )

        asyncio.run(run())
    finally:
        server.terminate()
        server.wait(10)
    from agents.report import run_record, write_json

    doc = {**run_record("soak_server.py", argv),
           "date": time.strftime("%Y-%m-%d", time.gmtime()), "minutes": a.minutes,
           "clients": a.clients, "server_args": list(SERVER_ARGS), "counts": dict(counts),
           "summary": _summary(samples, min(60.0, a.minutes * 30)), "samples": samples}  # fmt: skip

    write_json(a.out, doc)
    print(json.dumps({k: doc[k] for k in ("counts", "summary")}, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
