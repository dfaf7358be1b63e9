"""Real charts: the KTAS loader, the shared triage metrics, the chart evaluation and the
KTAS rule nurse on the development file (Moon S-H et al., PLoS ONE 14(9): e0216972,
2019, doi:10.1371/journal.pone.0216972)."""

from __future__ import annotations

import json
import math
import os
from pathlib import Path

import numpy as np
import pytest

from agents.nurse import RuleBasedNurse
from envs.clinical import AVPU, ArrivalMode, Presentation, Sex, format_presentation
from envs.clinical.charts import (
    UNREADABLE_COMPLAINT,
    ChartFormatError,
    load_ktas,
)
from envs.clinical.triage_metrics import quadratic_weighted_kappa, triage_metrics

REPO = Path(__file__).resolve().parents[1]
FIXTURE = REPO / "tests" / "data" / "ktas_fixture.csv"
KTAS_DEV = Path(
    os.environ.get("EDMARL_KTAS_DEV", REPO.parent / "shared" / "data" / "ktas" / "ktas_dev.csv")
)
"""The development file: ``../shared/data/ktas/ktas_dev.csv`` from the repository root
(present in CI); ``EDMARL_KTAS_DEV`` points elsewhere (a git worktree)."""


@pytest.fixture(scope="module")
def dev_charts():
    if not KTAS_DEV.is_file():
        pytest.fail(
            f"the KTAS development file is missing: expected {KTAS_DEV} "
            f"(../shared/data/ktas/ktas_dev.csv beside the repository, or set EDMARL_KTAS_DEV)"
        )
    return load_ktas(KTAS_DEV)


# -- Presentation: what real charts have -------------------------------------------------
def test_presentation_without_urgency_flowchart_history_or_vitals():
    p = Presentation(
        presentation_id="x", age=70, sex="male", arrival_mode="ambulance", injury=False,
        complaint="abd pain, Lt", flowchart=None, history="", hr=None, rr=float("nan"),
        sbp=None, dbp=None, spo2=None, temp=None, avpu="verbal", pain=None,
    )  # fmt: skip
    assert p.self_reported_urgency is None and p.rr is None and p.avpu is AVPU.VOICE
    card = format_presentation(p)
    assert "urgency" not in card.lower() and "Flowchart" not in card
    assert "HR not recorded" in card and "Complaint: abd pain, Lt" in card
    q = Presentation(**{**_fields(p), "self_reported_urgency": float("nan")})
    assert q.self_reported_urgency is None  # NaN from a table: not charted
    with pytest.raises(ValueError, match="not in 1..5"):
        Presentation(**{**_fields(p), "self_reported_urgency": 2.5})
    assert "Self-reported urgency: 2/5" in format_presentation(
        Presentation(**{**_fields(p), "self_reported_urgency": 2})
    )


def _fields(p: Presentation) -> dict:
    return {name: getattr(p, name) for name in p.__dataclass_fields__}


def test_nursesim_observation_of_a_chart_without_urgency():
    from dataclasses import replace

    from envs.clinical import PatientGenerator
    from envs.nursesim import NurseSimTriageEnv
    from llm_policy.policy import presentation_from_nursesim

    chart = load_ktas(FIXTURE)[1].presentation
    patient = PatientGenerator(0).sample()
    patient = replace(patient, presentation=chart)
    env = NurseSimTriageEnv(n_patients=1)
    obs, _ = env.reset(seed=0, options={"patients": [patient]})
    assert obs["demographics"][4] == 0  # not charted
    assert presentation_from_nursesim(obs).self_reported_urgency is None


# -- the loader ------------------------------------------------------------------------------
def test_fixture_rows_map_to_nurse_visible_fields():
    charts = load_ktas(FIXTURE)
    assert len(charts) == 8 and [c.row for c in charts] == list(range(1, 9))
    chest, finger, mental, no_obs, illegible, abd, _, fever = (c.presentation for c in charts)
    assert (chest.sex, chest.arrival_mode, chest.injury, chest.pain) == (
        Sex.MALE, ArrivalMode.WALK_IN, False, 6)  # fmt: skip
    assert chest.flowchart is None and chest.history == "" and chest.self_reported_urgency is None
    assert (finger.sex, finger.injury, finger.spo2, finger.pain) == (Sex.FEMALE, True, None, 2)
    assert mental.avpu is AVPU.PAIN and mental.arrival_mode is ArrivalMode.AMBULANCE
    assert mental.pain == 0  # Pain 0, NRS empty: no pain, not "unscored"
    assert (mental.sbp, mental.hr, mental.temp, mental.spo2) == (85, 128, 38.6, 89)
    assert all(v is None for v in no_obs.vitals) and no_obs.pain == 0
    assert illegible.complaint == UNREADABLE_COMPLAINT and illegible.pain is None  # unscored
    assert illegible.arrival_mode is ArrivalMode.OTHER
    assert abd.complaint == "distension, abd"
    assert (charts[0].expert, charts[0].nurse, charts[2].expert) == (2, 2, 1)
    assert fever.presentation_id == "ktas-8"


def test_loader_errors_name_the_fix(tmp_path):
    with pytest.raises(FileNotFoundError, match="shared/data/ktas"):
        load_ktas(tmp_path / "absent.csv")
    text = FIXTURE.read_text(encoding="utf-8")
    (tmp_path / "nocol.csv").write_text(text.replace("KTAS_expert", "expert"), encoding="utf-8")
    with pytest.raises(ChartFormatError, match="missing column.*KTAS_expert"):
        load_ktas(tmp_path / "nocol.csv")
    lines = text.splitlines()
    lines[3] = lines[3].replace(",mental change,3,", ",mental change,7,")
    (tmp_path / "bad.csv").write_text("\n".join(lines) + "\n", encoding="utf-8")
    with pytest.raises(ChartFormatError, match=r"data row 3: Mental='7'"):
        load_ktas(tmp_path / "bad.csv")


def test_dev_file_loads_and_nurse_figures_match_its_readme(dev_charts):
    assert len(dev_charts) == 632
    rn = triage_metrics([c.expert for c in dev_charts], [c.nurse for c in dev_charts])
    # The README's figures for the triage nurses on this half: 84.8 %, 10.4 %, 14.6 %.
    assert rn["accuracy"] == pytest.approx(0.848, abs=5e-4)
    assert rn["under_triage_all"] == pytest.approx(0.104, abs=5e-4)
    assert rn["true_1_2_assigned_3_to_5"] == pytest.approx(0.146, abs=5e-4)
    missing_spo2 = sum(c.presentation.spo2 is None for c in dev_charts)
    assert missing_spo2 > len(dev_charts) / 2  # "missing on over half the visits"


# -- one metrics code path ---------------------------------------------------------------------
def test_triage_metrics_by_hand():
    m = triage_metrics([1, 1, 2, 3, 5], [1, 2, 3, 3, 4])
    assert m["confusion_matrix"][0] == [1, 1, 0, 0, 0, 0] and m["confusion_matrix"][4][3] == 1
    assert m["accuracy"] == pytest.approx(2 / 5)
    assert m["within_one"] == pytest.approx(1.0)
    assert m["under_triage_true_1_2"] == pytest.approx(2 / 3)  # 1->2 and 2->3
    assert m["true_1_2_assigned_3_to_5"] == pytest.approx(1 / 3)
    assert m["over_triage_all"] == pytest.approx(1 / 5)  # 5->4
    # Quadratic kappa by hand for true (1, 2, 3), assigned (1, 3, 3): observed weighted
    # disagreement 1/16 / 3; expected from the margins (1,1,1) x (1,0,2) / 3.
    w = lambda i, j: (i - j) ** 2 / 16  # noqa: E731
    expected = sum(w(i, j) * r * c / 3 for i, r in ((1, 1), (2, 1), (3, 1))
                   for j, c in ((1, 1), (3, 2)))  # fmt: skip
    assert quadratic_weighted_kappa([1, 2, 3], [1, 3, 3]) == pytest.approx(
        1 - (w(2, 3) / 1) / expected
    )
    assert quadratic_weighted_kappa([1, 2, 5], [1, 2, 5]) == pytest.approx(1.0)
    assert math.isnan(quadratic_weighted_kappa([3, 3], [3, 3]))


def test_unparsed_answers_are_wrong_but_not_under_or_over_triage():
    m = triage_metrics([1, 2, 4], [None, 2, None])
    assert m["parse_failures"] == 2 and m["accuracy"] == pytest.approx(1 / 3)
    assert m["under_triage_all"] == 0 and m["within_one"] == pytest.approx(1 / 3)
    assert m["confusion_matrix"][0][5] == 1 and m["kappa_n"] == 1
    with pytest.raises(ValueError, match="categories are 1..5"):
        triage_metrics([1, 6], [1, 2])


# -- the rule nurse on real charts -------------------------------------------------------------
def test_ktas_rule_nurse_meets_the_targets_on_the_dev_file(dev_charts):
    """Issue 16's acceptance figures, in-sample on the development half."""
    nurse = RuleBasedNurse(scale="ktas")
    m = triage_metrics([c.expert for c in dev_charts],
                       [nurse.triage(c.presentation) for c in dev_charts])  # fmt: skip
    assert m["accuracy"] >= 0.70
    assert m["quadratic_weighted_kappa"] >= 0.70
    assert m["true_1_2_assigned_3_to_5"] <= 0.146  # the nurses' own figure


def test_every_chart_is_triaged_on_both_scales(dev_charts):
    for scale in ("mts", "ktas"):
        nurse = RuleBasedNurse(scale=scale)
        cats = [nurse.decide(c.presentation)[0] for c in dev_charts]
        assert set(cats) <= {1, 2, 3, 4, 5}
    with pytest.raises(ValueError, match="scale"):
        RuleBasedNurse(scale="ats")


def test_ktas_nurse_reads_only_nurse_visible_fields():
    nurse = RuleBasedNurse(scale="ktas")
    for c in load_ktas(FIXTURE):
        p = c.presentation
        changes = {"presentation_id": "other", "needs_icu": True, "indicated_drug": "aspirin",
                   "self_reported_urgency": 1}  # fmt: skip
        hidden = Presentation(**{**_fields(p), **changes})
        assert nurse.triage(hidden) == nurse.triage(p)


def test_ktas_modifiers_on_fixture_charts():
    nurse = RuleBasedNurse(scale="ktas")
    got = {c.presentation.complaint: nurse.assess(c.presentation) for c in load_ktas(FIXTURE)}
    assert got["mental change"].category == 1  # responds to pain only, hypotension, SpO2 89
    assert got["Finger Injury"].category == 5  # mild peripheral pain on a minor complaint
    assert got["ant. chest pain"].category == 2  # chest pain: cardiac until shown otherwise
    assert got["dyspnea"].category == 2  # ambulance patient with no observations charted
    assert got["Lt. hemiparesis"].category == 2  # focal motor deficit
    assert got["fever"].category == 2  # reported fever + HR > 90 + RR > 20 (SIRS)
    assert got["distension, abd"].category == 4


# -- the evaluation CLI ------------------------------------------------------------------------
def _raise_on_fever(p: Presentation) -> int:
    if p.complaint == "fever":
        raise RuntimeError("cannot read this chart")
    return 3


def test_eval_nurse_on_charts_writes_json_and_png(tmp_path, capsys):
    from experiments.eval_nurse import main

    out = tmp_path / "r.json"
    assert main(["--charts", str(FIXTURE), "--out", str(out)]) == 0
    doc = json.loads(out.read_text())
    assert doc["n"] == 8 and doc["source"].startswith("Moon S-H")
    pol, rn = doc["metrics"]["policy"], doc["metrics"]["nurses_ktas_rn"]
    assert rn["accuracy"] == pytest.approx(6 / 8)  # two made-up rows disagree
    for key in ("accuracy", "quadratic_weighted_kappa", "within_one", "under_triage_all",
                "over_triage_all", "true_1_2_assigned_3_to_5"):  # fmt: skip
        assert key in pol and key in rn
    assert doc["halves"]["tune"]["policy"]["n"] + doc["halves"]["check"]["policy"]["n"] == 8
    png = Path(doc["confusion_png"])
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    printed = capsys.readouterr().out
    assert "nurses (KTAS_RN)" in printed and "quadratic-weighted kappa" in printed

    # module:callable, and a policy that fails on one chart: counted, never a crash
    out2 = tmp_path / "f.json"
    assert main(["--charts", str(FIXTURE), "--policy", "tests.test_charts:_raise_on_fever",
                 "--out", str(out2)]) == 0  # fmt: skip
    doc2 = json.loads(out2.read_text())
    assert doc2["n_policy_errors"] == 1 and doc2["policy_errors"][0]["row"] == 8
    assert doc2["metrics"]["policy"]["parse_failures"] == 1
    assert main(["--charts", str(FIXTURE), "--policy", "agents.nurse:RuleBasedNurse",
                 "--out", str(tmp_path / "c.json")]) == 0  # fmt: skip
    assert main(["--charts", str(FIXTURE), "--policy", "nope", "--out", str(out)]) == 2
    assert main(["--charts", str(tmp_path / "absent.csv"), "--out", str(out)]) == 2


def test_rule_policy_matches_the_nurse_on_the_dev_file(dev_charts):
    from agents.triage_policies import load_policy

    policy = load_policy("rule", scale="ktas")
    nurse = RuleBasedNurse(scale="ktas")
    ps = [c.presentation for c in dev_charts[:50]]
    assert policy(ps) == [nurse.triage(p) for p in ps]
    assert np.all(np.isin(policy(ps), [1, 2, 3, 4, 5]))


def test_llm_policy_reads_the_sft_card_of_every_chart():
    """The ``llm`` policy (score mode) on charts, with a tiny random model: one category
    per chart, and the prompt is the SFT instruction + the nurse-visible card."""
    pytest.importorskip("transformers")
    from agents.triage_policies import load_policy
    from llm_policy.backends import TransformersChatBackend
    from llm_policy.data import INSTRUCTION
    from tests.llm_helpers import tiny_llama

    model, tok = tiny_llama()
    backend = TransformersChatBackend.from_model(model, tok)
    seen: list[str] = []
    render = backend.render
    backend.render = lambda messages: seen.append(messages) or render(messages)  # type: ignore[method-assign]
    charts = load_ktas(FIXTURE)
    cats = load_policy("llm", backend=backend)([c.presentation for c in charts])
    assert len(cats) == 8 and set(cats) <= {1, 2, 3, 4, 5}
    assert seen[0][0]["content"] == INSTRUCTION
    assert seen[0][1]["content"] == format_presentation(charts[0].presentation)


def test_any_missing_observation_is_handled_on_both_scales():
    """Blank any optional column (or all at once) of any fixture chart: it still loads,
    and both readings triage it (missing values are read as a nurse would, never fail)."""
    import csv

    from envs.clinical.charts import presentation_from_ktas

    optional = ("NRS_pain", "SBP", "DBP", "HR", "RR", "BT", "Saturation", "Chief_complain")
    nurses = [RuleBasedNurse(scale="mts"), RuleBasedNurse(scale="ktas")]
    with FIXTURE.open(newline="", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    for row in rows:
        for blank in [(c,) for c in optional] + [optional]:
            p = presentation_from_ktas({**row, **dict.fromkeys(blank, "")})
            assert all(n.triage(p) in (1, 2, 3, 4, 5) for n in nurses)
