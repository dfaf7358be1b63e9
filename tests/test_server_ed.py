"""The multi-agent ``ed`` tools in-process: ``envs.ed_tool_api.EdToolSession`` and the
classic/ed router. Every episode is the heuristic team's episode on
``EdTriageParallelEnv`` replayed through tool calls, with bad calls injected: every
per-step team reward, the final score, grader and KPIs must be equal exactly. The same
over the server: tests/test_server_ed_http.py."""

from __future__ import annotations

import pytest
from ed_tools_helpers import (
    play,
    reference,
    refused,
    session_call,
)

from envs.ed_tool_api import EdToolSession, MultiRulesetSession
from envs.tool_api import ToolError, ToolSession


@pytest.mark.parametrize(
    "task,seed",
    [("basic_triage", 42), ("dynamic_queue", None), ("mass_casualty", 42), ("generated", 3)],
)
def test_session_episode_equals_env(task, seed):
    play(session_call(MultiRulesetSession()), task, seed)


def test_session_plain_episode_and_views():
    s = EdToolSession()
    play(session_call(s), "mass_casualty", 7, inject=False)
    state = s.get_current_state()
    assert state["ruleset"] == "ed" and state["episode_done"] and state["active_task"]
    assert state["finalized_scores"] == {"mass_casualty": reference("mass_casualty", 7)[3]["score"]}
    view = s.get_queue_state(role="nurse")
    assert "triage_nurse" in view and "consultant" not in view and "pharmacist" not in view


def test_session_refusals_change_nothing():
    s = EdToolSession()
    call = session_call(s)
    refused(call, "no_active_task", "start_task", "triage_patient", patient_id="P001", category=2)
    refused(call, "no_active_task", "start_task", "end_step")
    refused(call, "no_active_task", "start_task", "get_queue_state")
    refused(call, "bad_argument", "unknown task", "start_task", task_id="surgery")
    refused(call, "bad_argument", "'ed' only", "start_task", task_id="basic_triage",
            ruleset="classic")  # fmt: skip
    s.start_task("basic_triage", seed=42)
    before = s.get_queue_state()
    refused(call, "bad_argument", "seed", "start_task", task_id="basic_triage", seed=-1)
    refused(call, "bad_argument", "unknown task", "start_task", task_id="surgery")
    waiting = {q["patient_id"] for q in before["consultant"]["patients"]}
    pending = [p.patient_id for p in s.env.state.scenario.patients if p.patient_id not in waiting]
    assert pending
    refused(call, "illegal_action", "has not arrived", "serve_patient", patient_id=pending[0])
    refused(call, "illegal_action", "not triaged", "dispense_drug", patient_id="P001",
            drug="aspirin")  # fmt: skip
    assert s.get_queue_state() == before
    # A dose for a patient the nurse triages in the same sub-step is legal (the env's rule).
    s.triage_patient("P001", 2)
    assert "aspirin" in s.get_queue_state("pharmacist")["pharmacist"]["patients"][0]["can_dispense"]
    s.dispense_drug("P001", "Aspirin")  # loose spellings, as the Drug enum parses them
    refused(call, "already_acted", "already acted", "dispense_drug", patient_id="P002",
            drug="aspirin")  # fmt: skip
    out = s.end_step()
    assert out["applied"]["consultant"] == "END" and not out["time_advanced"]
    assert out["events"][:2] == ["triage P001 -> 2", "aspirin -> P001: given"]
    refused(
        call, "illegal_action", "turn is over", "dispense_drug", patient_id="P001", drug="aspirin"
    )  # fmt: skip (capacity 1 per time step, spent)
    refused(call, "illegal_action", "already triaged", "triage_patient", patient_id="P001",
            category=1)  # fmt: skip


def test_router_keeps_classic_bit_for_bit():
    router, ref = MultiRulesetSession(), ToolSession()
    assert router.ruleset is None
    call = session_call(router)
    refused(call, "no_active_task", "start_task", "get_queue_state")
    refused(call, "bad_argument", "available: classic, ed", "start_task", task_id="basic_triage",
            ruleset="nope")  # fmt: skip
    for tool, args in [
        ("start_task", {"task_id": "dynamic_queue", "seed": 3}),
        ("get_queue_state", {}),
        ("serve_patient", {"patient_id": "P001"}),
        ("wait", {}),
        ("serve_patient", {"patient_id": "P999"}),
        ("finalize_episode", {}),
    ]:
        assert call(tool, **args) == getattr(ref, tool)(**args), tool
    refused(call, "bad_argument", "ed ruleset only", "get_queue_state", role="consultant")
    router.start_task("basic_triage", seed=1, ruleset="ed")
    assert router.ruleset == "ed" and router.active is router.ed
    refused(call, "bad_argument", "unknown task", "start_task", task_id="surgery")
    assert router.ruleset == "ed"  # a refused start changes nothing
    router.start_task("basic_triage")
    fresh = ToolSession().start_task("basic_triage")["initial_queue"]
    assert router.ruleset == "classic" and router.get_queue_state()["queue"] == fresh


# -- v1: the suite scenarios and the version argument --------------------------------------

V1_EPISODES = [("night_shift", 3, None), ("misreporters", 5, None), ("mass_casualty", 42, "v1")]


@pytest.mark.parametrize("task,seed,version", V1_EPISODES)
def test_session_v1_episode_equals_env(task, seed, version):
    graded = play(session_call(MultiRulesetSession()), task, seed, version=version)
    assert graded["version"] == "v1" and {"lwbs", "deaths"} <= set(graded["kpis"])


def test_v1_normalised_is_evaluate_teams():
    from agents.ed_evaluation import evaluate_teams

    s = EdToolSession()
    graded = play(session_call(s), "night_shift", 3, inject=False)
    (row,) = evaluate_teams("night_shift", {"heuristic": None}, [3], version="v1")
    assert graded["normalised"] == row["normalised"] and graded["score"] == row["score"]
    assert graded["normalised"] < 1.0  # below the bound on this seed (and here below random)
    assert s.finalize_episode()["normalised"] == graded["normalised"]  # cached, same value
    s.start_task("night_shift")  # unseeded: no random-team anchor on the same episode
    assert s.finalize_episode()["normalised"] is None


def test_v1_consultant_never_sees_a_self_report():
    s = EdToolSession()
    s.start_task("misreporters", seed=5)
    for _ in range(6):  # a few steps with a waiting room that grows faster than triage
        view = s.get_queue_state("consultant")["consultant"]
        nurse = s.get_queue_state("nurse")["triage_nurse"]["patients"]
        untriaged = [p for p in view["patients"] if not p["triaged"]]
        assert all(p["category"] is None for p in untriaged)
        assert all("self_reported" not in k for p in view["patients"] for k in p)
        assert all(not p["can_serve"] for p in untriaged)  # v1: no doctor before triage
        if untriaged:
            pid = untriaged[0]["patient_id"]
            with pytest.raises(ToolError, match="not triaged yet"):
                s.serve_patient(pid)
        todo = [p for p in nurse if p["can_triage"]]
        if todo:
            s.triage_patient(todo[0]["patient_id"], 2)
            s.end_step()
            mine = {
                p["patient_id"]: p
                for p in s.get_queue_state("consultant")["consultant"]["patients"]
            }
            assert mine[todo[0]["patient_id"]]["category"] == 2  # the nurse's, not the truth
        else:
            s.end_step()
    # v0 keeps showing the self-report (today's behaviour)
    s.start_task("basic_triage", seed=1)
    assert s.version == "v0"
    assert all(p["category"] for p in s.get_queue_state()["consultant"]["patients"])


def test_v1_doctors_busy_with_treatments():
    s = EdToolSession()
    s.start_task("night_shift", seed=3)  # one doctor; a serve holds it for 2 steps
    busy_seen = False
    while not s.get_queue_state()["done"]:
        view = s.get_queue_state()
        doc = view["consultant"]
        assert doc["doctors_left"] + doc["doctors_busy"] <= doc["doctors_total"]
        busy_seen |= doc["doctors_busy"] > 0
        nurse = [p for p in view["triage_nurse"]["patients"] if p["can_triage"]]
        if nurse:
            s.triage_patient(nurse[0]["patient_id"], nurse[0]["self_reported_urgency"])
        serve = [p for p in doc["patients"] if p["can_serve"]]
        if serve:
            s.serve_patient(serve[0]["patient_id"])
        s.end_step()
    assert busy_seen


def test_version_argument_refusals():
    s = MultiRulesetSession()
    call = session_call(s)
    for version, text in [("v9", "unknown version 'v9'; choose one of v0, v1, v2"),
                          (1, "unknown version 1"), (["v1"], "unknown version")]:  # fmt: skip
        refused(call, "bad_argument", text, "start_task", task_id="basic_triage", ruleset="ed",
                version=version)  # fmt: skip
    refused(call, "bad_argument", "exists in version v1 only", "start_task",
            task_id="night_shift", ruleset="ed", version="v0")  # fmt: skip
    refused(call, "bad_argument", "ed ruleset only", "start_task", task_id="basic_triage",
            version="v1")  # fmt: skip
    refused(call, "bad_argument", "unknown task", "start_task", task_id="night_shift")  # classic
    assert s.ruleset is None  # nothing started
    assert s.start_task("generated", seed=2, ruleset="ed", version="v1")["version"] == "v1"
    assert s.ed.config.is_v1


def test_list_tasks_has_the_suite():
    from envs.ed.suite import SCENARIOS

    tasks = {t["task_id"]: t for t in MultiRulesetSession().list_tasks()}
    assert list(tasks) == ["basic_triage", "dynamic_queue", "mass_casualty", *SCENARIOS]
    for name, sc in SCENARIOS.items():
        t = tasks[name]
        assert t["versions"] == ["v1"] and t["rulesets"] == ["ed"]
        assert t["description"] == t["challenge"] == sc.challenge
        assert t["num_doctors"] == sc.params.doctors and t["max_steps"] == sc.params.horizon
    assert tasks["mass_casualty"]["versions"] == ["v0", "v1", "v2"]
    assert "classic" in tasks["mass_casualty"]["rulesets"]
