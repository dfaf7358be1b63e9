"""The slot-scorer RLModule: permutation invariance, masking, values; the policy
wrapper module. Pure module tests, no Ray cluster."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest
import torch

pytest.importorskip("ray.rllib")

from ray.rllib.core.columns import Columns  # noqa: E402
from ray.rllib.core.rl_module.rl_module import RLModuleSpec  # noqa: E402
from ray.rllib.utils.torch_utils import FLOAT_MIN  # noqa: E402

import envs  # noqa: E402,F401
from agents import make_policy  # noqa: E402
from agents.rllib.modules import PolicyModule, SlotScorerModule  # noqa: E402
from envs.observation import F  # noqa: E402


def _module(env, **config):
    spec = RLModuleSpec(
        module_class=SlotScorerModule,
        observation_space=env.observation_space,
        action_space=env.action_space,
        model_config={"width": 16, **config},
    )
    torch.manual_seed(0)
    return spec.build()


def _batch(obs_list):
    return {Columns.OBS: {k: torch.as_tensor(np.stack([o[k] for o in obs_list]))
                          for k in obs_list[0]}}  # fmt: skip


def test_slot_permutation_permutes_logits_and_keeps_value():
    env = gym.make("edmarl/DynamicQueue-v0").unwrapped
    obs, _ = env.reset(seed=3)
    for _ in range(6):
        obs, *_ = env.step(env.n_slots)  # wait: let patients arrive
    mod = _module(env, slot_position=False)  # position features are the only order signal
    n = env.n_slots
    perm = np.random.default_rng(0).permutation(n)
    rows = obs["observation"][: n * F].reshape(n, F)
    permuted = {
        "observation": np.concatenate([rows[perm].ravel(), obs["observation"][n * F :]]),
        "action_mask": np.concatenate([obs["action_mask"][:n][perm], obs["action_mask"][n:]]),
    }
    out = mod.forward_inference(_batch([obs, permuted]))[Columns.ACTION_DIST_INPUTS]
    a, b = out[0].detach().numpy(), out[1].detach().numpy()
    np.testing.assert_allclose(a[:n][perm], b[:n], rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(a[n], b[n], rtol=1e-5, atol=1e-5)
    values = mod.compute_values(_batch([obs, permuted]))
    assert values.shape == (2,)
    np.testing.assert_allclose(values[0].item(), values[1].item(), rtol=1e-5, atol=1e-5)


def test_slot_position_feature_breaks_ties_between_identical_patients():
    env = gym.make("edmarl/BasicTriage-v0").unwrapped
    obs, _ = env.reset()  # P001 (true 1) and P005 both report 4 and have waited 0
    rows = obs["observation"][: 6 * F].reshape(6, F)
    assert (rows[0] == rows[4]).all()
    logits = _module(env).forward_inference(_batch([obs]))[Columns.ACTION_DIST_INPUTS][0]
    assert logits[0] != logits[4]
    flat = _module(env, slot_position=False).forward_inference(_batch([obs]))
    assert flat[Columns.ACTION_DIST_INPUTS][0][0] == flat[Columns.ACTION_DIST_INPUTS][0][4]


def test_illegal_actions_get_float_min_logits():
    env = gym.make("edmarl/MassCasualty-v0").unwrapped
    obs, _ = env.reset(seed=1)
    logits = _module(env).forward_inference(_batch([obs]))[Columns.ACTION_DIST_INPUTS][0]
    illegal = obs["action_mask"] == 0
    assert illegal.any()
    assert (logits[torch.as_tensor(illegal)] <= FLOAT_MIN / 2).all()
    assert (logits[torch.as_tensor(~illegal)] > FLOAT_MIN / 2).all()


def test_bad_layout_is_a_clear_error():
    space = gym.spaces.Dict({
        "observation": gym.spaces.Box(0, 1, (12,), np.float32),
        "action_mask": gym.spaces.Box(0, 1, (4,), np.int8),
    })  # fmt: skip
    spec = RLModuleSpec(module_class=SlotScorerModule, observation_space=space,
                        action_space=gym.spaces.Discrete(4))  # fmt: skip
    with pytest.raises(ValueError, match="does not split"):
        spec.build()


def test_policy_module_plays_the_registered_heuristic():
    env = gym.make("edmarl/MassCasualty-v0").unwrapped
    spec = RLModuleSpec(module_class=PolicyModule, observation_space=env.observation_space,
                        action_space=env.action_space,
                        model_config={"policy": "severity_greedy"})  # fmt: skip
    mod = spec.build()
    obs_list = []
    obs, _ = env.reset(seed=2)
    for _ in range(5):
        obs_list.append(obs)
        obs, *_ = env.step(env.n_slots)
    got = mod.forward_inference(_batch(obs_list))[Columns.ACTIONS]
    want = [make_policy("severity_greedy").act(o) for o in obs_list]
    assert list(got) == want
    assert mod.get_state() == {}
    with pytest.raises(NotImplementedError, match="does not train"):
        mod.forward_train(_batch(obs_list))


def test_heuristic_module_acts_inside_a_real_env_runner():
    from tests.rllib_helpers import assert_episodes_follow, classic_env_runner

    config = {"policy": "severity_greedy"}
    runner = classic_env_runner("mass_casualty", PolicyModule, config)
    episodes = runner.sample(num_episodes=3, explore=False)
    assert len(episodes) >= 3
    # mass_casualty: every action legal, so every step advances
    assert all(len(ep) == 30 for ep in episodes)
    # the registered heuristic, unchanged
    assert_episodes_follow(episodes, make_policy("severity_greedy").act)
    runner.stop()


def _dense_reference(mod, obs):
    """The scorer computed on every slot, empty ones included (the module's code
    before 2026-12-03): the legal logits and the value must not depend on the skip."""
    from agents.rllib.hints import HINT_KEY

    x = obs["observation"] / mod._scale
    n, f, k = mod.n_slots, mod.n_feat, mod.per_slot
    slots = x[:, : n * f].reshape(-1, n, f)
    present = slots[..., mod.present : mod.present + 1] > 0
    ctx_in = x[:, n * f :]
    slots = torch.cat([slots, mod._rank.expand(slots.shape[0], -1, -1)], -1)
    if mod.hints:
        hint = obs[HINT_KEY].float()
        slots = torch.cat([slots, hint[:, :-1].reshape(-1, n, k)], -1)
        ctx_in = torch.cat([ctx_in, hint[:, -1:]], -1)
    h = torch.relu(mod.slot_enc(slots))
    mean = (h * present).sum(1) / present.sum(1).clamp(min=1)
    hmax = torch.where(present, h, torch.zeros_like(h)).amax(1)
    c = torch.relu(mod.pool(torch.cat([mean, hmax, torch.relu(mod.ctx_enc(ctx_in))], -1)))
    per_slot = mod.slot_head(torch.cat([h, c[:, None, :].expand_as(h)], -1))
    logits = torch.cat([per_slot.reshape(h.shape[0], -1), mod.end_head(c)], -1)
    if mod.hints:
        logits = logits + mod.hint_weight * obs[HINT_KEY].float()
    return logits, mod.value_head(c).squeeze(-1)


@pytest.mark.parametrize("hints", [False, True])
def test_empty_slots_skipped_give_the_dense_scorers_legal_logits_and_values(hints):
    """The scorer computes only slots with a patient or a legal action; on real ed
    observations (most slots empty) its legal logits, values and gradients equal the
    dense computation's."""
    from agents.rllib.hints import HintedEdEnv, role_heuristic
    from agents.rllib.training import ed_module_specs
    from envs.ed_triage_v1 import ED_ENVS

    env = ED_ENVS["v1"]("mass_casualty", normaliser="static")
    env = HintedEdEnv(env) if hints else env
    heuristics = {a: role_heuristic(a, None) for a in env.possible_agents}
    seen: dict[str, list] = {a: [] for a in env.possible_agents}
    obs, _ = env.reset(seed=4)
    while env.agents:
        for a, o in obs.items():
            seen[a].append(o)
        obs, *_ = env.step({a: heuristics[a].act(o) for a, o in obs.items()})
    specs = ed_module_specs("mass_casualty", 16, hints, 0.5 if hints else 0.0, "v1")
    for agent, spec in specs.items():
        spec.observation_space = env.observation_space(agent)
        spec.action_space = env.action_space(agent)
        torch.manual_seed(1)
        mod = spec.build()
        for rows in (seen[agent], seen[agent][:4]):  # a learner's batch, then an actor's
            _check_against_dense(mod, rows)


def _check_against_dense(mod, rows):
    from agents.rllib.modules import SPARSE_MIN_SLOTS

    batch = _batch(rows)
    obs_t = {k: v.float() if k != "action_mask" else v for k, v in batch[Columns.OBS].items()}
    sparse = len(rows) * mod.n_slots >= SPARSE_MIN_SLOTS
    assert (mod._embed(obs_t)[2] is not None) == sparse
    present = (obs_t["observation"][:, : mod.n_slots * mod.n_feat]
               .reshape(-1, mod.n_slots, mod.n_feat)[..., 0] > 0)  # fmt: skip
    assert present.float().mean() < 0.5  # the case the skip is for
    out = mod.forward_train({Columns.OBS: obs_t})
    logits = out[Columns.ACTION_DIST_INPUTS]
    values = mod.compute_values({Columns.OBS: obs_t}, out[Columns.EMBEDDINGS])
    ref_logits, ref_values = _dense_reference(mod, obs_t)
    legal = obs_t["action_mask"] > 0
    torch.testing.assert_close(logits[legal], ref_logits[legal], rtol=1e-5, atol=1e-5)
    assert (logits[~legal] <= FLOAT_MIN / 2).all()
    torch.testing.assert_close(values, ref_values, rtol=1e-5, atol=1e-5)

    # Same gradients: a loss on the legal log-probabilities and the values.
    def loss_of(lg, v, legal=legal):
        lp = torch.log_softmax(torch.where(legal, lg, torch.full_like(lg, FLOAT_MIN)), -1)
        return (lp * legal).sum() + v.sum()

    params = [p for p in mod.parameters() if p.requires_grad]
    g_new = torch.autograd.grad(loss_of(logits, values), params, allow_unused=True)
    ref_logits, ref_values = _dense_reference(mod, obs_t)
    g_ref = torch.autograd.grad(loss_of(ref_logits, ref_values), params, allow_unused=True)
    for a, b in zip(g_new, g_ref, strict=True):
        if a is None or b is None:
            assert a is None or not a.abs().any()
            assert b is None or not b.abs().any()
        else:
            torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-5)
