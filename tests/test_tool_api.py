"""ToolSession: Queue Doctor's seven tools, same keys, no hidden truth, clear errors."""

from __future__ import annotations

import json

import pytest

from envs.tool_api import ToolError, ToolSession

HIDDEN_KEYS = {"true_severity", "missed_emergencies"}


def _keys(obj) -> set[str]:
    if isinstance(obj, dict):
        return set(obj) | {k for v in obj.values() for k in _keys(v)}
    if isinstance(obj, list):
        return {k for v in obj for k in _keys(v)}
    return set()


def test_list_tasks():
    tasks = ToolSession().list_tasks()
    assert [t["task_id"] for t in tasks] == ["basic_triage", "dynamic_queue", "mass_casualty"]
    assert [t["total_patients"] for t in tasks] == [6, 29, 21]
    assert tasks[2]["aliases"] == ["task_3_hard"]
    json.dumps(tasks)


def test_full_episode_keys_and_no_true_severity_during_play():
    s = ToolSession()
    start = s.start_task("task_1_easy", seed=None)
    assert start["task_id"] == "basic_triage" and start["ruleset"] == "classic"
    seen = [start, s.get_queue_state()]
    p001 = next(p for p in start["initial_queue"] if p["patient_id"] == "P001")
    assert p001["severity"] == 4 and p001["severity_name"] == "LESS_URGENT"  # reported only
    out = s.serve_patient("P001")
    assert set(out) == {"action", "step_reward", "events", "state", "done", "hint"}
    assert out["action"] == "serve_patient(P001)" and out["step_reward"] == 1.0
    assert "true=" not in " ".join(out["events"])
    seen.append(out)
    while not s.get_queue_state()["done"]:
        seen.append(s.wait())
    assert set(seen[-1]) == {"action", "step_reward", "events", "state", "done"}
    assert not _keys(seen) & HIDDEN_KEYS
    state_keys = set(seen[1])
    assert state_keys == {
        "step", "max_steps", "steps_remaining", "queue", "queue_length", "available_doctors",
        "patients_served", "cumulative_reward", "done", "triage_advisory",
    }  # fmt: skip
    final = s.finalize_episode()
    assert final["score"] == round(1.0 / 3.96, 4)
    assert final["served_detail"][0]["true_severity"] == 1  # revealed after the episode
    assert final["tasks_completed"] == 1 and final["all_done"] is False
    cur = s.get_current_state()
    assert cur["active_task"] == "basic_triage"
    assert cur["finalized_scores"] == {"basic_triage": final["score"]}
    json.dumps([seen, final, cur])


def test_icu_fields_and_resource_error():
    s = ToolSession()
    s.start_task("mass_casualty")
    st = s.get_queue_state()
    assert (st["available_icu_beds"], st["total_icu_beds"]) == (1, 1)
    s.serve_patient("P001")
    for _ in range(11):
        s.wait()
    before = s.get_queue_state()
    assert before["step"] == 12
    p012 = next(p for p in before["queue"] if p["patient_id"] == "P012")
    assert p012["can_serve_now"] is False and p012["cannot_serve_reason"] == "No ICU beds available"
    assert "ICU FULL" in before["triage_advisory"]
    out = s.serve_patient("P012")
    assert out["step_reward"] == 0.0 and out["state"]["step"] == 12  # time did not move
    assert out["events"] == ["Cannot admit P012: no ICU beds available. Choose a non-ICU patient."]


def test_unknown_patient_advances_with_penalty():
    s = ToolSession()
    s.start_task("basic_triage", seed=3)
    out = s.serve_patient("P777")
    assert out["step_reward"] == -0.1 and out["state"]["step"] == 1
    assert out["events"] == ["Error: Patient P777 not found in queue."]


def test_queue_sorted_by_reported_then_wait():
    s = ToolSession()
    s.start_task("dynamic_queue")
    for _ in range(3):
        s.wait()
    q = s.get_queue_state()["queue"]
    keys = [(p["severity"], -p["wait_time"]) for p in q]
    assert keys == sorted(keys)


def test_errors_name_the_fix():
    s = ToolSession()
    with pytest.raises(ToolError, match="start_task") as e:
        s.get_queue_state()
    assert e.value.code == "no_active_task"
    with pytest.raises(ToolError, match="basic_triage") as e:
        s.start_task("easy")
    assert e.value.code == "bad_argument"
    with pytest.raises(ToolError, match="EdToolSession"):
        s.start_task("basic_triage", ruleset="ed")
    with pytest.raises(ToolError, match="seed must be a non-negative integer"):
        s.start_task("basic_triage", seed="42")
    s.start_task("basic_triage")
    with pytest.raises(ToolError, match="must be a string"):
        s.serve_patient(1)
    for _ in range(10):
        s.wait()
    with pytest.raises(ToolError, match="finalize_episode") as e:
        s.wait()
    assert e.value.code == "episode_finished"
    with pytest.raises(ToolError):
        s.serve_patient("P001")
    assert s.finalize_episode()["episode_steps"] == 10
    assert ToolError("x", "msg").as_dict() == {"error": "msg", "code": "x"}


def test_same_seed_same_episode():
    def play(seed):
        s = ToolSession()
        s.start_task("mass_casualty", seed=seed)
        rewards = []
        while not s.get_queue_state()["done"]:
            q = [p for p in s.get_queue_state()["queue"] if p["can_serve_now"]]
            out = s.serve_patient(q[-1]["patient_id"]) if q else s.wait()
            rewards.append(out["step_reward"])
        return rewards, s.finalize_episode()["score"]

    assert play(11) == play(11)
    assert play(11) != play(12)
