"""Every ``ed`` v1 task (the suite scenarios and a fixed task under v1) through the
adapters other than the tool API (tests/test_server_ed.py): the single-agent Gymnasium
env, the LLM players' prompts for all three roles, and the web console's API."""

from __future__ import annotations

import re

import numpy as np
import pytest
from fastapi.testclient import TestClient

import agents  # noqa: F401  (registers the policies)
from agents.ed_evaluation import evaluate_teams, team_context
from agents.roles import make_team
from envs.ed.config import AGENTS
from envs.ed.suite import SCENARIOS
from envs.ed_triage_v1 import ED_ENVS, ED_TASKS
from envs.gym_ed import EdConsultantEnv
from llm_policy import prompts
from llm_policy.data import INSTRUCTION
from llm_policy.policy import ed_players

V1_TASKS = [*SCENARIOS, "mass_casualty"]
LEGAL = re.compile(r"^Legal answers: (.*)\.$", re.M)


@pytest.mark.parametrize("task", V1_TASKS)
def test_gym_consultant_env_plays_v1(task):
    env = EdConsultantEnv(task=task, version="v1", normaliser="static")
    assert env.unwrapped.env.config.is_v1
    obs, info = env.reset(seed=2)
    rng = np.random.default_rng(0)
    for _ in range(12):  # a few decisions, each a legal choice of the consultant
        assert env.observation_space.contains(obs)
        legal = np.flatnonzero(obs["action_mask"])
        assert len(legal) > 1  # the wrapper only stops where there is a real choice
        obs, _, term, trunc, info = env.step(int(rng.choice(legal)))
        assert not info["illegal_action"] and not trunc
        if term:
            assert {"lwbs", "deaths"} <= set(info["kpis"])
            break


class LegalAnswers:
    """Chat backend answering every ed role with a legal answer read from its prompt
    (nurse: a category; consultant: the first legal answer; pharmacist: NONE); records
    the prompts."""

    name = "legal-answers"

    def __init__(self) -> None:
        self.prompts: dict[str, list[str]] = {"nurse": [], "consultant": [], "pharmacist": []}

    def chat(self, messages):
        system, text = messages[0]["content"], messages[-1]["content"]
        if system == INSTRUCTION:
            self.prompts["nurse"].append(text)
            return "CATEGORY 2"
        if system == prompts.ED_CONSULTANT_SYSTEM:
            self.prompts["consultant"].append(text)
            return LEGAL.search(text).group(1).split(", ")[0]
        self.prompts["pharmacist"].append(text)
        return "NONE"


@pytest.mark.parametrize("task", V1_TASKS)
def test_llm_prompts_render_for_every_role_under_v1(task):
    env = ED_ENVS["v1"](task=task, normaliser="static")
    backend = LegalAnswers()
    players = ed_players(backend=backend, mode="generate")
    team = make_team(",".join(f"{a}=llm" for a in AGENTS), team_context(env), 4, {"llm": players})
    obs, _ = env.reset(seed=4)
    for _ in range(80):  # until every role has been asked, or the episode ends
        actions = {a: int(team[a].act(obs[a])) for a in env.agents}
        assert all(obs[a]["action_mask"][actions[a]] for a in actions)
        obs, _, terms, _, infos = env.step(actions)
        assert not any(i["illegal_action"] for i in infos.values())
        if all(backend.prompts.values()) or any(terms.values()):
            break
    assert backend.prompts["nurse"] and backend.prompts["consultant"], task
    # the answers were legal and parsed: no fallback for the roles that answered
    assert players["triage_nurse"].stats()["fallbacks"] == 0
    assert players["consultant"].stats()["fallbacks"] == 0
    lines = [ln for text in backend.prompts["consultant"] for ln in text.splitlines()]
    assert not any("self-reported" in ln for ln in lines)  # v1: no self-report before triage
    untriaged = [ln for ln in lines if ln.startswith("- slot") and "untriaged" in ln]
    assert all("urgency unknown" in ln for ln in untriaged)
    if task == "misreporters":  # one triage per step: the consultant sees untriaged patients
        assert untriaged


def test_console_lists_and_plays_the_suite(tmp_path, monkeypatch):
    from envs.server.app import ServerConfig, create_app
    from envs.server.console import RESULTS_ROOT_ENV

    monkeypatch.setenv(RESULTS_ROOT_ENV, str(tmp_path / "runs"))
    with TestClient(create_app(ServerConfig()), base_url="http://127.0.0.1") as c:
        tasks = c.get("/console/api/options").json()["tasks"]
        assert set(ED_TASKS) <= set(tasks) and "generated" in tasks
        r = c.post("/reset", json={"task_id": "night_shift", "seed": 6, "ruleset": "ed"})
        assert r.status_code == 200 and r.json()["observation"]["version"] == "v1"
        sid = r.json()["session_id"]
        players = dict.fromkeys(AGENTS, "heuristic")
        out = c.post("/console/api/advance", json={"session_id": sid, "players": players,
                                                   "until": "end"}).json()  # fmt: skip
        assert out["done"]
        body = {"session_id": sid, "tool": "finalize_episode", "arguments": {}}
        final = c.post("/step", json=body).json()["result"]
        (row,) = evaluate_teams("night_shift", {"h": None}, [6], version="v1")
        assert final["score"] == row["score"] and final["normalised"] == row["normalised"]
        assert final["kpis"]["lwbs"] == row["lwbs"]
        cmp = c.post("/console/api/compare", json={"session_id": sid}).json()
        assert cmp["teams"][0]["score"] == row["score"]
        assert cmp["oracle"]["value"] == row["oracle_value"]
        outcomes = {p["outcome"] for p in c.get(f"/console/api/debrief?session_id={sid}").json()[
            "patients"]}  # fmt: skip
        assert "lwbs" in outcomes  # night_shift: someone left without being seen
