"""Training variants of the ed team: the MAPPO critic (``--critic central``) and
parameter sharing (``--share-params``): actors independent of the global state, the
padded layout's action translation, role views equal to the shared module, and both
variants trained and evaluated end to end through the front door on tiny budgets."""

from __future__ import annotations

import json

import gymnasium as gym
import numpy as np
import pyarrow.parquet as pq
import pytest
import torch

pytest.importorskip("ray.rllib")

from ray.rllib.core.columns import Columns  # noqa: E402

from agents.rllib.central_critic import STATE_KEY, CentralCriticScorer, GlobalStateEnv, state_layout  # noqa: E402
from agents.rllib.hints import HintedEdEnv  # noqa: E402
from agents.rllib.modules import SlotScorerModule  # noqa: E402
from agents.rllib.sharing import RoleViewModule, SharedLayout, SharedSpacesEnv  # noqa: E402
from envs.ed.config import AGENTS  # noqa: E402
from envs.ed_triage_v1 import ED_ENVS  # noqa: E402


def _env(task: str = "basic_triage"):
    return HintedEdEnv(ED_ENVS["v1"](task, normaliser="static"))


def _batch(obs: dict) -> dict:
    return {Columns.OBS: {k: torch.as_tensor(np.asarray(v))[None] for k, v in obs.items()}}


def _legal_random(obs: dict, rng: np.random.Generator) -> dict[str, int]:
    return {a: int(rng.choice(np.flatnonzero(o["action_mask"]))) for a, o in obs.items()}


def test_central_critic_acts_without_the_state_and_values_with_it():
    env = GlobalStateEnv(_env())
    obs, _ = env.reset(seed=3)
    obs, *_ = env.step(_legal_random(obs, np.random.default_rng(0)))
    agent = "consultant"
    torch.manual_seed(0)
    module = CentralCriticScorer(
        observation_space=env.observation_space(agent), action_space=env.action_space(agent),
        model_config={"n_slots": env.unwrapped.n_slots, "context_features": 8, "hints": True,
                      "state_layout": state_layout(), "width": 16},
    )  # fmt: skip
    o = obs[agent]
    assert o[STATE_KEY].shape == (sum(len(obs[a]["observation"]) for a in AGENTS),)
    other = {**o, STATE_KEY: np.random.default_rng(1).uniform(0, 50, o[STATE_KEY].shape)}
    with torch.no_grad():
        logits = module.forward_inference(_batch(o))[Columns.ACTION_DIST_INPUTS]
        changed = module.forward_inference(_batch(other))[Columns.ACTION_DIST_INPUTS]
        no_state = {k: v for k, v in o.items() if k != STATE_KEY}
        without = module.forward_inference(_batch(no_state))[Columns.ACTION_DIST_INPUTS]
        values = module.compute_values(_batch(o)), module.compute_values(_batch(other))
    assert torch.equal(logits, changed) and torch.equal(logits, without)  # decentralised actor
    assert not torch.allclose(values[0], values[1])  # the critic reads the global state
    with pytest.raises(KeyError, match="state"):
        module.compute_values(_batch(no_state))


@pytest.mark.parametrize("task", ["basic_triage", "dynamic_queue"])
def test_padded_actions_round_trip_and_play_the_same_episode(task):
    shared, plain = SharedSpacesEnv(_env(task)), _env(task)
    layout = shared.layout
    assert layout.k_max == max(k for _, _, k in layout.roles) and layout.n_actions > 1
    rng = np.random.default_rng(7)
    obs, _ = shared.reset(seed=11)
    ref, _ = plain.reset(seed=11)
    steps = 0
    while plain.agents:
        actions = _legal_random(ref, rng)
        padded_actions = {}
        for a in AGENTS:
            idx, back = layout.action_index(a), layout.env_actions(a)
            mask, pmask = ref[a]["action_mask"], obs[a]["action_mask"]
            assert pmask.sum() == mask.sum() and pmask.shape == (layout.n_actions,)
            for legal in np.flatnonzero(mask):  # every legal env action ↔ a legal padded one
                assert pmask[idx[legal]] == 1 and back[idx[legal]] == legal
            outside = np.setdiff1d(np.arange(layout.n_actions), idx)
            assert (pmask[outside] == 0).all() and (back[outside] == len(idx)).all()
            assert obs[a]["hint"].argmax() == idx[ref[a]["hint"].argmax()]
            x = obs[a]["observation"]
            assert x.shape == (layout.obs_size,) and 0 <= x.min() and x.max() <= 1
            padded_actions[a] = int(idx[actions[a]])
        obs, rewards, *_ = shared.step(padded_actions)
        ref, ref_rewards, *_ = plain.step(actions)
        assert rewards == ref_rewards
        steps += 1
    assert steps > 3 and not shared.agents


def test_an_action_outside_the_role_is_a_counted_illegal_no_op():
    env = SharedSpacesEnv(_env())
    obs, _ = env.reset(seed=2)
    ends = {a: env.layout.n_actions - 1 for a in AGENTS}
    outside = env.layout.k_max - 1  # slot 0's last padded action: no consultant action
    _, _, _, _, infos = env.step({**ends, "consultant": outside})
    assert infos["consultant"]["illegal_action"]


def test_role_view_plays_the_shared_module_on_the_role_observation():
    env = SharedSpacesEnv(GlobalStateEnv(_env("dynamic_queue")))
    layout = env.layout
    torch.manual_seed(0)
    config = {**layout.model_config(), "hints": True, "width": 16, "state_layout": state_layout()}
    shared = CentralCriticScorer(observation_space=env.observation_space("consultant"),
                                 action_space=env.action_space("consultant"),
                                 model_config=config)  # fmt: skip
    base = env.env
    role_obs, _ = base.reset(seed=5)
    rng = np.random.default_rng(3)
    for _ in range(4):
        role_obs, *_ = base.step(_legal_random(role_obs, rng))
    for a in AGENTS:
        spaces = base.observation_space(a), base.action_space(a)
        view = RoleViewModule.from_shared(shared, a, *spaces)
        o = {k: v for k, v in role_obs[a].items() if k != STATE_KEY}
        with torch.no_grad():
            mine = view.forward_inference(_batch(o))[Columns.ACTION_DIST_INPUTS]
            padded = shared.forward_inference(_batch(env.padded(a, role_obs[a])))
        want = padded[Columns.ACTION_DIST_INPUTS][:, layout.action_index(a)]
        assert mine.shape == (1, base.action_space(a).n)
        assert torch.equal(mine, want)


def test_a_shared_module_of_another_task_is_refused():
    small = SharedLayout(ED_ENVS["v1"]("basic_triage").n_slots)
    env = ED_ENVS["v1"]("dynamic_queue")
    shared = SlotScorerModule(observation_space=small.space(False),
                              action_space=gym.spaces.Discrete(small.n_actions),
                              model_config=small.model_config())  # fmt: skip
    with pytest.raises(ValueError, match="task it was trained on"):
        RoleViewModule.from_shared(shared, "consultant", env.observation_space("consultant"),
                                   env.action_space("consultant"))  # fmt: skip


# ------------------------------------------------------------------ front door, tiny budgets
TINY = ["--task", "basic_triage", "--train-iters", "1", "--train-batch-size", "200",
        "--minibatch-size", "100", "--envs-per-runner", "2", "--num-env-runners", "0",
        "--eval-episodes", "2", "--compare", "ppo", "heuristic",
        "--validation-episodes", "2"]  # fmt: skip
MODULES = ("checkpoint", "learner_group", "learner", "rl_module")


@pytest.fixture(scope="module")
def _ray():
    import ray

    yield
    ray.shutdown()


def _rows(out) -> dict:
    return {(r["policy"], r["seed"]): r for r in pq.read_table(out / "results.parquet").to_pylist()}


@pytest.mark.parametrize(
    ("flags", "module_ids"),
    [(["--critic", "central"], set(AGENTS)), (["--share-params"], {"shared"})],
    ids=["central", "shared"],
)
def test_variant_trains_and_both_evaluators_play_it(flags, module_ids, tmp_path, _ray):
    from experiments.run import main

    out = tmp_path / "run"
    assert main([*TINY, *flags, "--output", str(out)]) == 0
    assert {p.name for p in out.joinpath(*MODULES).iterdir() if p.is_dir()} == module_ids
    claim = json.loads((out / "run.json").read_text())
    assert (claim["critic"], claim["share_params"]) == (
        "central" if "--critic" in flags else "local", "--share-params" in flags,
    )  # fmt: skip
    loop = _rows(out)
    ppo = [r for r in loop.values() if r["policy"] == "ppo"]
    assert len(ppo) == 2 and all(r["illegal_actions"] == 0 for r in ppo)
    assert json.loads((out / "summary.json").read_text())["paired"][0]["versus"] == "heuristic"
    # The saved team, played by RLlib's EnvRunner: the loop's rows, seed by seed.
    again = tmp_path / "rllib"
    assert main([*TINY, "--no-train", "--checkpoint", str(out), "--output", str(again),
                 "--evaluator", "rllib"]) == 0  # fmt: skip
    for key, r in _rows(again).items():
        assert r["score"] == loop[key]["score"], key
    # A resume must keep the variant, and continues from the variant's checkpoint.
    other = ["--share-params"] if "--critic" in flags else ["--critic", "central"]
    assert main([*TINY, *flags, *other, "--output", str(out), "--resume"]) == 2
    if "--share-params" in flags:
        tiny2 = [*TINY, "--train-iters", "2"]  # the later flag wins
        assert main([*tiny2, *flags, "--output", str(out), "--resume"]) == 0
        history = json.loads((out / "summary.json").read_text())["training"]
        assert [h["iteration"] for h in history] == [1, 2]


def test_variants_are_refused_outside_ed(tmp_path, capsys):
    from experiments.run import main

    args = ["--ruleset", "classic", "--task", "basic_triage", "--output", str(tmp_path / "o")]
    assert main([*args, "--share-params"]) == 2
    assert "--ruleset ed" in capsys.readouterr().err


def test_compare_runs_pairs_each_trained_team_by_seed(tmp_path, capsys):
    from experiments.compare_runs import main
    from experiments.report import write_parquet

    def run(name: str, ppo: list[float], heuristic: list[float]) -> str:
        (tmp_path / name).mkdir()
        rows = [{"policy": p, "seed": 10_000 + i, "score": v, "pct_of_oracle": 100 * v,
                 "normalised": v, "episode_return": v}
                for p, vals in (("ppo", ppo), ("heuristic", heuristic))
                for i, v in enumerate(vals)]  # fmt: skip
        write_parquet(tmp_path / name / "results.parquet", rows)
        return f"{name}={tmp_path / name}"

    a = run("local", [0.5, 0.6, 0.7], [0.5, 0.5, 0.5])
    b = run("central", [0.6, 0.6, 0.9], [0.5, 0.5, 0.5])
    assert main([a, b, "--out", str(tmp_path / "cmp")]) == 0
    doc = json.loads((tmp_path / "cmp.json").read_text())
    pairs = {(p["policy"], p["versus"]): p for p in doc["paired"]}
    assert pairs["central", "local"]["score"]["mean_diff"] == pytest.approx(0.1)
    assert pairs["central", "local"]["score"]["wins"] == 2
    assert pairs["local", "heuristic"]["score"]["mean_diff"] == pytest.approx(0.1)
    other = run("other", [0.5, 0.5, 0.5], [0.4, 0.5, 0.5])
    assert main([a, other]) == 2
    assert "differ from the first run" in capsys.readouterr().err
