"""Evaluate ``classic`` consultants inside RLlib's own ``SingleAgentEnvRunner``: every
player is an RLModule, and the runner plays exactly the given episode seeds.

The RLlib-side twin of :func:`agents.evaluation.evaluate` (our loop), with the same
signature and the same rows and step rows, so that the front door calls either one
(``evaluators.rllib`` of the classic ruleset, :mod:`envs.rulesets`). Players:

* a registered policy (``severity_greedy``, ``fifo``, ``random``, ``oracle``, ...) — a
  :class:`agents.rllib.modules.PolicyModule`, bound to the env's
  :class:`~agents.base.PolicyContext` (the classic oracle solves each episode from it)
  and reset with each episode's seed (``random`` reseeds from it), as the loop does;
* a trained module (``extra_policies[name]`` a :class:`agents.rllib.module_policy.ModulePolicy`,
  e.g. ``ppo``) — its RLModule, rebuilt in the runner from its class and
  ``model_config`` and given the instance's weights (``set_state``); greedy
  (``explore=False``: the argmax of the masked logits);
* ``llm`` — :class:`agents.rllib.llm_module.LLMModule` as the consultant (``llm_options``:
  :class:`llm_policy.policy.LLMConfig` fields or ``backend_factory``; default: the
  config of an :class:`~llm_policy.policy.LLMPolicy` in ``extra_policies["llm"]``),
  one model per EnvRunner process, loaded on first use; its fallbacks per episode count
  in ``illegal_actions`` as in the loop.

Seeds: the env registered as :data:`CLASSIC_EVAL_ENV_NAME` plays ``episode_seeds`` in
order (None: the schedule as written), one per ``reset()`` whatever seed RLlib passes;
one ``sample(num_episodes=1)`` per seed, and every row is checked against the seed the
env reports. The env adds to its infos what the rows need (the served patients, the
KPIs, the queue length): everything else — return, illegal, invalid and wait counts,
the step rows — is read from RLlib's ``SingleAgentEpisode`` objects
(:mod:`agents.rllib.episode_logs`).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

import gymnasium as gym
import numpy as np
from ray.rllib.core.rl_module.rl_module import RLModuleSpec

from agents.rllib.episode_logs import STEP_INFO, SeedList, classic_step_rows

CLASSIC_EVAL_ENV_NAME = "edmarl_queue_eval"
LLM_PLAYER = "llm"
_LLM_FIELDS = ("mode", "backend", "model", "fallback", "max_new_tokens", "batch_size", "threads")


class SeededQueueEnv(gym.Wrapper):
    """A classic queue env that plays ``episode_seeds`` in order, one per ``reset`` (the
    seed RLlib passes is ignored; None plays the schedule as written); a reset past the
    end is an error. Infos gain :data:`STEP_INFO` (engine step, queue length) every step
    and, at the end, ``served``, ``serve_reward`` and ``kpis``. ``on_reset`` callbacks
    get each episode's seed before its first observation is returned."""

    def __init__(self, env: Any, episode_seeds: Iterable[int | None]) -> None:
        super().__init__(env)
        self.seeds = SeedList(episode_seeds)
        self.on_reset = self.seeds.on_reset

    def reset(self, *, seed: int | None = None, options: dict | None = None):
        episode_seed = self.seeds.next()
        if episode_seed is None:
            return self.env.reset(options={"episode_seed": None})
        return self.env.reset(seed=episode_seed)

    def step(self, action: Any):
        from envs.kpis import episode_kpis

        obs, reward, terminated, truncated, info = self.env.step(action)
        state = self.env.unwrapped.state
        info[STEP_INFO] = {"step": state.step, "queue_length": len(state.queue)}
        if terminated or truncated:
            info.update(
                served=len(state.served),
                serve_reward=sum(s.reward for s in state.served),
                kpis=episode_kpis(state),
            )
        return obs, reward, terminated, truncated, info


def _eval_env_creator(env_config: Mapping[str, Any]) -> SeededQueueEnv:
    from agents.evaluation import _make_env

    env = _make_env(env_config["task"], env_config.get("ruleset", "classic"))
    return SeededQueueEnv(env, env_config["episode_seeds"])


def register_eval_env() -> None:
    from ray.tune.registry import register_env

    register_env(CLASSIC_EVAL_ENV_NAME, _eval_env_creator)


def _llm_options(
    extra: Mapping[str, Any] | None, llm_options: Mapping[str, Any] | None
) -> dict[str, Any]:
    if llm_options is not None:
        return dict(llm_options)
    player = (extra or {}).get(LLM_PLAYER)
    config = getattr(player, "config", None)
    if config is None:
        return {}
    if getattr(player, "_backend", None) is not None:  # a model built outside the runner
        raise ValueError(
            "the rllib evaluator builds the llm player in its EnvRunner from settings: pass "
            "llm_options (LLMConfig fields or backend_factory='module:function'), not an "
            "LLMPolicy holding a built backend"
        )
    return {f: getattr(config, f) for f in _LLM_FIELDS}


def player_spec(
    name: str,
    extra: Mapping[str, Any] | None = None,
    llm_options: Mapping[str, Any] | None = None,
) -> tuple[RLModuleSpec, dict | None]:
    """(RLModuleSpec, module state to load after building, or None) of the classic
    consultant called ``name``."""
    from agents.base import POLICIES
    from agents.rllib.llm_module import LLMModule
    from agents.rllib.modules import PolicyModule

    player = (extra or {}).get(name)
    if name == LLM_PLAYER and (player is None or hasattr(player, "config")):
        config = {**_llm_options(extra, llm_options), "role": "consultant"}
        return RLModuleSpec(module_class=LLMModule, model_config=config), None
    if player is not None:
        module = getattr(player, "module", None)
        if module is None:
            raise ValueError(
                f"player {name!r} ({type(player).__name__}): the rllib evaluator plays "
                "registered policies, trained modules (ModulePolicy) and llm; use "
                "--evaluator loop for other players"
            )
        spec = RLModuleSpec(module_class=type(module), model_config=dict(module.model_config or {}))
        return spec, module.get_state()
    if name not in POLICIES:
        raise ValueError(f"unknown policy {name!r}; registered: {', '.join(sorted(POLICIES))}")
    return RLModuleSpec(module_class=PolicyModule, model_config={"policy": name}), None


def runner_config(
    task: str, seeds: Sequence[int | None], spec: RLModuleSpec, ruleset: str = "classic"
) -> Any:
    """The AlgorithmConfig of a classic evaluation EnvRunner: the seeded eval env, one env
    per runner, greedy (``explore=False``), one module."""
    from ray.rllib.algorithms.ppo import PPOConfig

    env_config = {"task": task, "ruleset": ruleset, "episode_seeds": list(seeds)}
    return (
        PPOConfig()
        .environment(CLASSIC_EVAL_ENV_NAME, env_config=env_config, disable_env_checking=True)
        .env_runners(num_env_runners=0, num_envs_per_env_runner=1, explore=False)
        .rl_module(rl_module_spec=spec)
    )


def _seeded_env(runner: Any) -> SeededQueueEnv:
    """The runner's (only) env, under the vector env and gymnasium's wrappers."""
    env = runner.env.unwrapped.envs[0] if hasattr(runner.env.unwrapped, "envs") else runner.env
    while not isinstance(env, SeededQueueEnv):
        if not hasattr(env, "env"):
            raise RuntimeError("no SeededQueueEnv in the EnvRunner's env")
        env = env.env
    return env


def played_episodes(
    name: str,
    task: str,
    seeds: Iterable[int | None],
    ruleset: str = "classic",
    extra: Mapping[str, Any] | None = None,
    llm_options: Mapping[str, Any] | None = None,
) -> tuple[list[Any], list[int]]:
    """The ``SingleAgentEpisode`` objects of ``name`` played on ``seeds`` in order in a
    local ``SingleAgentEnvRunner`` (episode i on seed i), and the player's fallbacks in
    each episode (an LLM's; 0 for others)."""
    from ray.rllib.env.single_agent_env_runner import SingleAgentEnvRunner

    from agents.base import PolicyContext
    from agents.rllib.modules import PolicyModule

    seeds = [None if s is None else int(s) for s in seeds]
    if not seeds:
        return [], []
    register_eval_env()
    spec, state = player_spec(name, extra, llm_options)
    runner = SingleAgentEnvRunner(config=runner_config(task, seeds, spec, ruleset))
    episodes: list[Any] = []
    fallbacks: list[int] = []
    try:
        module = runner.module
        if state is not None:
            module.set_state(state)
        env = _seeded_env(runner)
        if isinstance(module, PolicyModule):  # in-process: the runner's env is right here
            base = env.unwrapped
            module.bind(PolicyContext(task=base.task, ruleset=ruleset, n_slots=base.n_slots))
            env.on_reset.append(module.reset)
        for _ in seeds:
            episodes += runner.sample(num_episodes=1, explore=False)
            fallbacks.append(int(getattr(module, "episode_fallbacks", 0)))
    finally:
        runner.stop()
    played = [ep.get_infos(0)["episode_seed"] for ep in episodes]
    if played != seeds:
        raise RuntimeError(f"the runner played seeds {played}, not {seeds}")
    return episodes, fallbacks


def episode_row(
    task: str,
    ruleset: str,
    name: str,
    seed: int | None,
    episode: Any,
    fallbacks: int,
    bound: Any,
) -> dict:
    """The loop's row of one finished episode (:class:`agents.results.EpisodeResult`):
    illegal actions (against the mask; an LLM's ``fallbacks`` added), invalid actions
    and waits counted from the episode, the rest from the env's final info."""
    from agents.results import EpisodeResult

    info = episode.get_infos(-1)
    if "score" not in info:
        raise RuntimeError("the episode did not terminate (no final info)")
    wait = int(np.asarray(episode.get_observations(0)["action_mask"]).shape[0]) - 1
    masks = np.asarray(episode.get_observations()["action_mask"])[:-1]
    actions = np.asarray(episode.get_actions(), dtype=np.int64)
    legal = masks[np.arange(len(actions)), np.clip(actions, 0, wait)] != 0
    legal &= (actions >= 0) & (actions <= wait)
    infos = episode.get_infos()[1:]
    return EpisodeResult(
        task=task, ruleset=ruleset, seed=seed, policy=name,
        score=info["score"], episode_return=float(sum(float(r) for r in episode.get_rewards())),
        serve_reward=info["serve_reward"], served=info["served"],
        missed_emergencies=info["missed_emergencies"], oracle_value=bound.value,
        oracle_score=bound.score,
        illegal_actions=int((~legal).sum()) + int(fallbacks),
        invalid_actions=sum("invalid_action" in i for i in infos),
        waits=int((actions == wait).sum()), kpis=info["kpis"],
    ).to_row()  # fmt: skip


def evaluate_in_env_runner(
    policies: Sequence[str],
    task: str,
    seeds: Iterable[int | None],
    ruleset: str = "classic",
    log_steps: bool = False,
    on_episode: Callable[[dict], None] | None = None,
    extra_policies: Mapping[str, Any] | None = None,
    llm_options: Mapping[str, Any] | None = None,
) -> tuple[list[dict], list[dict]]:
    """Play every policy on every seed in RLlib's ``SingleAgentEnvRunner``; return
    (episode rows, step rows) as :func:`agents.evaluation.evaluate` does, row for row.
    ``extra_policies``: players outside the registry (``ppo``: a ModulePolicy; ``llm``:
    an LLMPolicy whose settings are used unless ``llm_options`` is given)."""
    from agents.evaluation import _make_env
    from agents.oracle import solve

    seeds = [None if s is None else int(s) for s in seeds]
    task_name = _make_env(task, ruleset).task.name
    bounds = {s: solve(task_name, s, ruleset) for s in seeds}
    rows: list[dict] = []
    step_rows: list[dict] = []
    for name in policies:
        episodes, fallbacks = played_episodes(name, task, seeds, ruleset, extra_policies,
                                              llm_options)  # fmt: skip
        for seed, ep, fb in zip(seeds, episodes, fallbacks, strict=True):
            if log_steps:
                keys = {"task": task_name, "ruleset": ruleset, "seed": seed, "policy": name}
                step_rows += classic_step_rows(ep, keys)
            row = episode_row(task_name, ruleset, name, seed, ep, fb, bounds[seed])
            rows.append(row)
            if on_episode is not None:
                on_episode(row)
    return rows, step_rows


__all__ = [
    "CLASSIC_EVAL_ENV_NAME",
    "SeededQueueEnv",
    "episode_row",
    "evaluate_in_env_runner",
    "played_episodes",
    "player_spec",
    "register_eval_env",
    "runner_config",
]
