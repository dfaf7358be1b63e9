"""Role heuristics, team specs and the pharmacist's protocol table."""

from __future__ import annotations

import pytest

from agents.base import POLICIES, make_policy
from agents.roles import EdConsultant, parse_team, protocol_drug, team_spec, upgrade
from envs.clinical import PatientGenerator
from envs.ed.config import HIGH_ALERT_DRUGS
from envs.rulesets import MULTI_AGENT_RULESETS
from envs.types import Condition


def test_registry_and_team_specs():
    for name in ("ed_nurse", "ed_consultant", "ed_pharmacist", "random", "ed_oracle"):
        assert name in POLICIES
    assert parse_team("nurse=heuristic,consultant=random,pharmacist=heuristic") == {
        "triage_nurse": "ed_nurse", "pharmacist": "ed_pharmacist", "consultant": "random",
    }  # fmt: skip
    assert parse_team(None)["consultant"] == "ed_consultant"
    assert parse_team({"triage_nurse": "random"})["triage_nurse"] == "random"
    with pytest.raises(ValueError, match="unknown role"):
        parse_team("surgeon=random")
    with pytest.raises(ValueError, match="role=policy"):
        parse_team("random")
    assert isinstance(make_policy("ed_consultant"), EdConsultant)
    assert MULTI_AGENT_RULESETS["ed"].envs["v0"] == "envs.ed_triage_v0"


def test_team_labels_become_team_specs():
    assert team_spec("heuristic") is None
    assert team_spec("nurse=random") == "nurse=random"
    assert parse_team(team_spec("random")) == dict.fromkeys(parse_team(None), "random")
    # a bare name for some roles only: the others play their heuristics
    nurse_only = parse_team(team_spec("random", agents=("triage_nurse",)))
    assert nurse_only == {**parse_team(None), "triage_nurse": "random"}


def test_upgrade_on_worsened_condition():
    assert upgrade(3, Condition.CRITICAL) == 1
    assert upgrade(3, Condition.AT_RISK) == 2
    assert upgrade(1, Condition.AT_RISK) == 1
    assert upgrade(4, Condition.STABLE) == 4


def test_protocol_never_gives_an_unindicated_high_alert_drug():
    gen = PatientGenerator(123)
    right = given = 0
    for _ in range(3000):
        p = gen.sample().presentation
        d = protocol_drug(p)
        if d is None:
            continue
        given += 1
        right += d == p.indicated_drug
        assert d not in HIGH_ALERT_DRUGS or d == p.indicated_drug, (p.complaint, d)
    assert right / given > 0.8
