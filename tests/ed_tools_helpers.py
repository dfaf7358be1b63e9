"""Helpers of the ``ed`` tool tests (tests/test_server_ed.py in-process,
tests/test_server_ed_http.py over the server): the heuristic team's reference episode on
the PettingZoo env, replayed through tool calls with bad calls injected."""

from __future__ import annotations

import json
from collections.abc import Callable
from functools import lru_cache
from typing import Any

import numpy as np
import pytest

from agents.ed_evaluation import team_context
from agents.roles import make_team
from envs.ed.config import AGENTS, DRUGS, N_CATEGORIES, N_DRUGS
from envs.ed.engine import action_sizes
from envs.ed_tool_api import default_version
from envs.ed_triage_v1 import ED_ENVS
from envs.server.client import ServerError
from envs.tool_api import ToolError

ED_ARGS = ("--rulesets", "classic,ed")
Call = Callable[..., Any]


# -- the reference: the heuristic team on the PettingZoo env --------------------------------


@lru_cache(maxsize=16)
def reference(task: str, seed: int | None, version: str | None = None):
    """(patient ids by slot, n_slots, [(actions, masks, team reward, done)], final info)
    of the heuristic team on the PettingZoo env of ``version`` (None: the tools' default)."""
    env = ED_ENVS[version or default_version(task)](task=task)
    team = make_team(None, team_context(env), seed)
    for p in team.values():
        p.reset(seed)
    obs, _ = env.reset(seed=seed) if seed is not None else env.reset()
    steps = []
    infos: dict = {}
    while env.agents:
        actions = {a: int(team[a].act(obs[a])) for a in env.agents}
        masks = {a: obs[a]["action_mask"].copy() for a in AGENTS}
        obs, rewards, terms, _, infos = env.step(actions)
        assert len(set(rewards.values())) == 1  # team mode
        steps.append((actions, masks, rewards["consultant"], terms["consultant"]))
    ids = tuple(p.patient_id for p in env.state.scenario.patients)
    return ids, env.n_slots, steps, infos["consultant"]


def tool_calls(ids, n_slots: int, actions: dict[str, int]) -> list[tuple[str, dict]]:
    """The env's discrete actions as tool calls (END: no call)."""
    end = {r.agent: size - 1 for r, size in action_sizes(n_slots).items()}
    out = []
    if (a := actions["triage_nurse"]) != end["triage_nurse"]:
        slot, c = divmod(a, N_CATEGORIES)
        out.append(("triage_patient", {"patient_id": ids[slot], "category": c + 1}))
    if (a := actions["pharmacist"]) != end["pharmacist"]:
        slot, d = divmod(a, N_DRUGS)
        out.append(("dispense_drug", {"patient_id": ids[slot], "drug": DRUGS[d].value}))
    if (a := actions["consultant"]) != end["consultant"]:
        out.append(("serve_patient", {"patient_id": ids[a]}))
    return out


def refused(call: Call, code: str, text: str, tool: str, **args: Any) -> None:
    with pytest.raises(ToolError) as e:
        call(tool, **args)
    assert e.value.code == code, (tool, args, e.value.code, e.value.message)
    assert text in e.value.message, (tool, e.value.message)
    if isinstance(e.value, ServerError):
        want = {"bad_argument": (400, 422)}.get(code, (409,))
        assert e.value.status in want and e.value.payload["code"] == code


def bad_calls(view: dict, ids, i: int) -> list[tuple[str, str, str, dict]]:
    """Wrong calls for sub-step ``i`` of an episode: (code, text, tool, arguments)."""
    waiting = [p["patient_id"] for p in view["consultant"]["patients"]]
    blocked = [p["patient_id"] for p in view["consultant"]["patients"] if not p["can_serve"]]
    absent = [pid for pid in ids if pid not in waiting]
    someone = waiting[0] if waiting else ids[0]
    cases = [
        ("bad_argument", "unknown patient 'P999'", "triage_patient", {"patient_id": "P999"}),
        ("bad_argument", "category", "triage_patient", {"patient_id": someone, "category": 0}),
        ("bad_argument", "category", "triage_patient", {"patient_id": someone, "category": 6}),
        ("bad_argument", "category", "triage_patient", {"patient_id": someone, "category": "2"}),
        ("bad_argument", "unknown drug", "dispense_drug", {"patient_id": someone, "drug": "xyz"}),
        ("wrong_ruleset", "end_step()", "wait", {}),
        ("bad_argument", "role", "get_queue_state", {"role": "janitor"}),
        ("bad_argument", "unknown patient", "serve_patient", {"patient_id": "p001"}),
    ]
    if blocked or absent:
        cases.append(("illegal_action", "serve_patient:", "serve_patient",
                      {"patient_id": (blocked or absent)[i % len(blocked or absent)]}))  # fmt: skip
    if absent:
        cases.append(("illegal_action", absent[0], "triage_patient",
                      {"patient_id": absent[0], "category": 3}))  # fmt: skip
    for c in cases:
        if c[2] == "triage_patient":
            c[3].setdefault("category", 2)
    return [cases[i % len(cases)], cases[(i * 5 + 3) % len(cases)]]


def play(
    call: Call, task: str, seed: int | None, inject: bool = True, version: str | None = None
) -> dict:
    """Replay the reference episode through ``call(tool, **args)``; returns the final
    grade. Asserts every sub-step's reward, and (with ``inject``) that wrong calls are
    refused without effect. ``version`` None: the tools' default (v1 for the suite)."""
    ids, n_slots, steps, final = reference(task, seed, version)
    v1 = (version or default_version(task)) == "v1"
    start_args = {} if version is None else {"version": version}
    start = call("start_task", task_id=task, seed=seed, ruleset="ed", **start_args)
    assert start["ruleset"] == "ed" and start["state"]["step"] == 0 and not start["state"]["done"]
    assert start["version"] == (version or default_version(task))
    departures = {"left without being seen": 0, "died waiting": 0}
    for i, (actions, masks, reward, done) in enumerate(steps):
        view = call("get_queue_state")
        assert not view["done"]
        check_view(view, ids, masks, v1)
        if inject:
            for code, text, tool, args in bad_calls(view, ids, i):
                refused(call, code, text, tool, **args)
            assert call("get_queue_state") == view  # nothing changed
        for tool, args in tool_calls(ids, n_slots, actions):
            out = call(tool, **args)
            assert out["role"] in AGENTS and args["patient_id"] in out["action"]
            if inject and tool == "triage_patient":
                refused(call, "already_acted", "already acted", tool, **args)
        out = call("end_step")
        assert out["step_reward"] == reward and out["done"] == done, (i, out["step_reward"])
        assert all(r == reward for r in out["rewards"].values())
        terms = out["reward_terms"]["consultant"]
        want = {"serve", "waiting_immediate", "idle_doctors", "illegal_action"}
        assert set(terms) == (want | {"lwbs", "death"} if v1 else want)
        assert terms["illegal_action"] == 0.0  # the API never lets an illegal action through
        for what in departures:
            departures[what] += sum(e.endswith(what) for e in out["events"])
    if inject:
        refused(call, "episode_finished", "finalize_episode", "triage_patient",
                patient_id=ids[0], category=2)  # fmt: skip
        refused(call, "episode_finished", "finalize_episode", "end_step")
    graded = call("finalize_episode")
    assert graded["score"] == final["score"] and 0.0 < graded["score"] < 1.0
    assert graded["kpis"] == final["kpis"] and graded["grader"] == final["grader"]
    assert graded["oracle_value"] == final["oracle_value"]
    assert graded["team_return"] == final["episode_return"]
    assert graded["parallel_steps"] == len(steps) and graded["episode_complete"]
    if v1:  # the departures the tools announced are the env's KPIs
        assert departures["left without being seen"] == graded["kpis"]["lwbs"]
        assert departures["died waiting"] == graded["kpis"]["deaths"]
        last = call("get_queue_state")
        assert len(last["left_without_being_seen"]) == graded["kpis"]["lwbs"]
        assert len(last["died"]) == graded["kpis"]["deaths"]
    else:
        assert "lwbs" not in graded["kpis"] and sum(departures.values()) == 0
    return graded


def check_view(view: dict, ids, masks: dict[str, np.ndarray], v1: bool = False) -> None:
    """Each role's ``can_*`` flags are exactly its action mask; no true severity; under
    v1 the consultant sees no self-report before triage."""
    nurse = {p["patient_id"] for p in view["triage_nurse"]["patients"] if p["can_triage"]}
    m = masks["triage_nurse"][:-1].reshape(-1, N_CATEGORIES)
    assert nurse == {ids[s] for s in np.flatnonzero(m[:, 0]) if s < len(ids)}
    doc = {p["patient_id"] for p in view["consultant"]["patients"] if p["can_serve"]}
    assert doc == {ids[s] for s in np.flatnonzero(masks["consultant"][:-1]) if s < len(ids)}
    pairs = {
        (p["patient_id"], d) for p in view["pharmacist"]["patients"] for d in p["can_dispense"]
    }
    m = masks["pharmacist"][:-1].reshape(-1, N_DRUGS)
    assert pairs == {(ids[s], DRUGS[d].value) for s, d in zip(*np.nonzero(m), strict=True)}
    assert "severity" not in json.dumps(view)
    for p in view["consultant"]["patients"]:
        assert (p["category"] is None) == (v1 and not p["triaged"]), p


# -- in-process --------------------------------------------------------------------------


def session_call(s: Any) -> Call:
    return lambda tool, **args: getattr(s, tool)(**args)
