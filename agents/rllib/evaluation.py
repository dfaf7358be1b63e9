"""Evaluate ``ed`` teams inside RLlib's own ``MultiAgentEnvRunner``: every player is an
RLModule (one per agent), and the runner plays exactly the given episode seeds.

This is the RLlib-side twin of :func:`agents.ed_evaluation.evaluate_teams` (our own
Python loop), with the same core columns. Players, per agent (team specs as in
:func:`agents.roles.parse_team`):

* the role heuristic (``heuristic``, the default) — a :class:`HintModule`: an
  inference-only RLModule that plays the argmax of the observation's ``hint``. The
  heuristic itself is computed *in the env*, by :class:`agents.rllib.hints.HintedEdEnv`,
  in the same EnvRunner process: the nurse and pharmacist heuristics read the
  free-text presentations through the env's in-process ``presentation(slot)``
  callback, which a module in an EnvRunner never sees (its input is the numeric
  observation dict). So "the heuristic as an RLModule" is honestly "the env's
  heuristic, relayed by a module": the module is a pass-through, the decision is the
  unchanged policy code of :mod:`agents.roles`.
* ``oracle`` (whole team only) — the clairvoyant plan (:class:`agents.oracle_ed.EdOracleTeam`),
  computed the same way into an ``advice`` observation key (the three members share
  the plan and the nurse's current choice, so they are called together in agent
  order, as the evaluation loop does) and relayed by ``HintModule(key="advice")``.
* any other registered policy name (``random``, ``ed_planner``, ...) —
  :class:`agents.rllib.modules.PolicyModule`, bound to the env's context (the planner
  reads its rules) and rebuilt at every episode's reset with the episode seed, as
  :func:`agents.roles.make_team` does in the loop (``random``: seeded ``seed * 3 +
  agent index``): the same actions as in the loop, seed by seed.
* ``llm`` — :class:`agents.rllib.llm_module.LLMModule` in the agent's ``ed`` role
  (``llm_options``: :class:`llm_policy.policy.LLMConfig` fields such as ``mode``,
  ``model``, ``fallback``, or ``backend_factory``): one model per EnvRunner process,
  loaded on first use; the runner binds it to its env's context (the presentations the
  nurse and pharmacist read) and counts its fallbacks per episode in
  ``fallbacks_<agent>`` and ``illegal_actions``, as the loop does.
* a name in ``modules`` — an RLModule per agent (e.g. trained slot scorers,
  :func:`trained_modules`), rebuilt in the runner from its class and
  ``model_config`` and given the instance's weights (``set_state``, what RLlib's weight
  sync does). The evaluation env always carries ``hint``, so modules trained with or
  without hints both run (a module without hints reads only ``observation`` and
  ``action_mask``).

Seeds: the env registered as :data:`EVAL_ENV_NAME` plays ``env_config["episode_seeds"]``
in order (None: the schedule as written), one per ``reset()`` whatever seed RLlib
passes; the runner has one env (``num_envs_per_env_runner=1``) and samples one episode
per seed, so episode i is seed i — and every row is checked against the
``episode_seed`` the env reports.
Actions: ``sample(explore=False)``, i.e. ``forward_inference`` and, for modules that
return logits, RLlib's ``GetActions`` connector takes ``dist.to_deterministic()`` —
the argmax of the masked logits for the default ``TorchCategorical``.
Scores use the ``oracle`` normaliser (an ILP per episode), as in the loop. Step rows
(``step_log``) are rebuilt from the episodes (:mod:`agents.rllib.episode_logs`), with
the loop's columns. ``tests/test_evaluators.py`` checks rows and step rows against the
loop seed by seed.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any

import numpy as np
from gymnasium import spaces
from ray.rllib.core.columns import Columns
from ray.rllib.core.rl_module.rl_module import RLModule, RLModuleSpec
from ray.rllib.env.wrappers.pettingzoo_env import ParallelPettingZooEnv

from agents.rllib.episode_logs import SeedList
from agents.rllib.hints import HINT_KEY, HintedEdEnv, hint_space, one_hot
from agents.rllib.modules import FixedModule
from agents.roles import ORACLE_NAMES
from envs.ed.config import AGENTS, ROLE_OF

EVAL_ENV_NAME = "edmarl_ed_eval"
ADVICE_KEY = "advice"
ORACLE = "oracle"
HINT_PLAYER = "heuristic"
LLM_PLAYER = "llm"


# ------------------------------------------------------------------------ modules
class HintModule(FixedModule):
    """Inference-only RLModule that plays the argmax of an observation key
    (``model_config={"key": "hint"}``, the default; ``"advice"`` for the oracle).
    The decision is made in the env (:class:`AdvisedEdEnv`); this module relays it."""

    def setup(self) -> None:
        self.key = (self.model_config or {}).get("key", HINT_KEY)

    def _forward_inference(self, batch: dict[str, Any], **kwargs) -> dict[str, Any]:
        hint = batch[Columns.OBS][self.key]
        if hasattr(hint, "argmax") and not isinstance(hint, np.ndarray):
            return {Columns.ACTIONS: hint.argmax(-1)}  # torch
        return {Columns.ACTIONS: np.asarray(hint).argmax(-1)}

    def __str__(self) -> str:
        return f"HintModule({self.key!r}), relaying the env's advice,"


# ---------------------------------------------------------------------------- env
class AdvisedEdEnv(HintedEdEnv):
    """:class:`HintedEdEnv` (``hint``: the role heuristics) plus, with
    ``advice="oracle"``, an ``advice`` key: the ed oracle team's action per agent."""

    def __init__(self, env: Any, advice: str | None = None) -> None:
        super().__init__(env)
        self.advisors: dict[str, Any] = {}
        if advice is None:
            return
        if advice not in ORACLE_NAMES:
            raise ValueError(f"advice must be None or 'oracle', got {advice!r}")
        from agents.ed_evaluation import team_context
        from agents.oracle_ed import EdOracleTeam

        self.advisors = EdOracleTeam(team_context(env)).policies()
        self._spaces = {
            a: spaces.Dict(
                {**s.spaces, ADVICE_KEY: hint_space(env.observation_space(a)["action_mask"])}
            )
            for a, s in self._spaces.items()
        }

    def reset(self, seed: int | None = None, options: dict | None = None):
        obs, infos = self.env.reset(seed=seed, options=options)
        for p in (*self.heuristics.values(), *self.advisors.values()):
            p.reset(self.env.episode_seed)
        return self._hinted(obs), infos

    def _hinted(self, obs: dict[str, Any]) -> dict[str, dict[str, np.ndarray]]:
        out = super()._hinted(obs)
        if self.advisors:
            live = bool(self.env.agents)  # final observations: advise END, act on nothing
            for a, o in obs.items():  # agent order: the oracle nurse acts first
                size = len(o["action_mask"])
                action = self.advisors[a].act(o) if live else size - 1
                out[a][ADVICE_KEY] = one_hot(action, size)
        return out


class EpisodeSeedsEnv(ParallelPettingZooEnv):
    """RLlib multi-agent env that plays ``episode_seeds`` in order, one per ``reset``
    (the seed RLlib passes is ignored; None: the schedule as written); a reset past the
    end is an error. ``on_reset`` callbacks get each episode's seed before the env is
    reset; every info gains :data:`~agents.rllib.episode_logs.STEP_INFO` (the index of
    the parallel step just played, for the step rows)."""

    def __init__(self, env: Any, episode_seeds: Iterable[int | None]) -> None:
        super().__init__(env)  # resets the wrapped env once, outside the seed list
        self.seeds = SeedList(episode_seeds)
        self.parallel_step = 0
        self.on_reset = self.seeds.on_reset

    def reset(self, *, seed: int | None = None, options: dict | None = None):
        episode_seed = self.seeds.next()
        self.parallel_step = 0
        if episode_seed is None:
            return super().reset(options={**(options or {}), "episode_seed": None})
        return super().reset(seed=episode_seed, options=options)

    def step(self, action_dict: dict):
        from agents.rllib.episode_logs import STEP_INFO

        obs, rewards, terms, truncs, infos = super().step(action_dict)
        for info in infos.values():
            info[STEP_INFO] = {"parallel_step": self.parallel_step}
        self.parallel_step += 1
        if terms.get("__all__"):
            # The loop's row also has the bound's own score (cached: the env's
            # ``oracle`` normaliser just solved it) and the task's name.
            from envs.ed.bound import solve
            from envs.ed.graders import grader_score

            base = self.par_env.unwrapped
            bound = solve(base.task, base.episode_seed, base.config)
            for info in infos.values():
                info.update(
                    oracle_score=bound.score,
                    task_name=base.task.name,
                    oracle_grader_score=grader_score(bound.grader),
                )
        return obs, rewards, terms, truncs, infos


def _eval_env_creator(env_config: Mapping[str, Any]) -> EpisodeSeedsEnv:
    from envs.ed_triage_v1 import ED_ENVS

    env = ED_ENVS[env_config.get("version", "v0")](
        env_config["task"],
        normaliser="oracle",
        reward_mode=env_config.get("reward_mode", "team"),
    )
    return EpisodeSeedsEnv(AdvisedEdEnv(env, env_config.get("advice")), env_config["episode_seeds"])


def register_eval_env() -> None:
    from ray.tune.registry import register_env

    register_env(EVAL_ENV_NAME, _eval_env_creator)


# -------------------------------------------------------------------------- teams
def trained_modules(run_dir: str | Path) -> dict[str, RLModule]:
    """The trained module of every agent of an ``ed`` run directory (any variant: a
    shared module as one role view per agent, :func:`agents.rllib.variants.trained_team`)."""
    from agents.rllib.variants import trained_team

    return trained_team(Path(run_dir))


def player_specs(
    team: str | Mapping[str, str] | None,
    modules: Mapping[str, Mapping[str, RLModule | RLModuleSpec]] | None = None,
    llm_options: Mapping[str, Any] | None = None,
) -> tuple[dict[str, RLModuleSpec], dict[str, dict], str | None]:
    """(RLModuleSpec per agent, module state per agent to load after building, advice
    for the env) for a team spec."""
    from agents.rllib.llm_module import LLMModule
    from agents.rllib.modules import PolicyModule
    from agents.roles import ROLE_HEURISTICS, parse_team
    from llm_policy.policy import ED_ROLES

    names = parse_team(team)
    oracle = [a for a, n in names.items() if n in ORACLE_NAMES]
    if oracle and len(oracle) != len(AGENTS):
        raise ValueError("the ed oracle plays as a whole team (its members share one plan)")
    specs: dict[str, RLModuleSpec] = {}
    states: dict[str, dict] = {}
    for index, (agent, name) in enumerate(names.items()):
        if modules and name in modules:
            player = modules[name][agent]
            if isinstance(player, RLModuleSpec):
                specs[agent] = player
            else:
                specs[agent] = RLModuleSpec(
                    module_class=type(player), model_config=dict(player.model_config or {})
                )
                states[agent] = player.get_state()
        elif name in ORACLE_NAMES:
            specs[agent] = RLModuleSpec(module_class=HintModule, model_config={"key": ADVICE_KEY})
        elif name == LLM_PLAYER:
            config = {**(llm_options or {}), "role": ED_ROLES[agent]}
            specs[agent] = RLModuleSpec(module_class=LLMModule, model_config=config)
        elif name == ROLE_HEURISTICS[ROLE_OF[agent]]:
            specs[agent] = RLModuleSpec(module_class=HintModule, model_config={"key": HINT_KEY})
        else:
            # make_team's rule: a fresh policy per episode, random seeded by the agent index
            config = {"policy": name, "team_index": index}
            specs[agent] = RLModuleSpec(module_class=PolicyModule, model_config=config)
    return specs, states, ORACLE if oracle else None


def _map_agent_to_module(agent_id: str, episode: Any = None, **kwargs: Any) -> str:
    return agent_id


def runner_config(
    task: str,
    seeds: Iterable[int | None],
    specs: Mapping[str, RLModuleSpec],
    advice: str | None = None,
    reward_mode: str = "team",
    version: str = "v0",
) -> Any:
    """The AlgorithmConfig of an evaluation EnvRunner: the seeded eval env, one env per
    runner, greedy (``explore=False``), one module per agent."""
    from ray.rllib.algorithms.ppo import PPOConfig
    from ray.rllib.core.rl_module.multi_rl_module import MultiRLModuleSpec

    env_config = {
        "task": task,
        "episode_seeds": [_seed(s) for s in seeds],
        "advice": advice,
        "reward_mode": reward_mode,
        "version": version,
    }
    return (
        PPOConfig()
        .environment(EVAL_ENV_NAME, env_config=env_config, disable_env_checking=True)
        .env_runners(num_env_runners=0, num_envs_per_env_runner=1, explore=False)
        .multi_agent(policies=set(AGENTS), policy_mapping_fn=_map_agent_to_module)
        .rl_module(rl_module_spec=MultiRLModuleSpec(rl_module_specs=dict(specs)))
    )


def sample_episodes(*args: Any, **kwargs: Any) -> list[Any]:
    """Play ``team`` on ``seeds`` (in order) in a local ``MultiAgentEnvRunner``;
    return its ``MultiAgentEpisode`` objects, episode i on seed i (the arguments of
    :func:`played_episodes`)."""
    return played_episodes(*args, **kwargs)[0]


def played_episodes(
    task: str,
    team: str | Mapping[str, str] | None,
    seeds: Iterable[int | None],
    modules: Mapping[str, Mapping[str, RLModule | RLModuleSpec]] | None = None,
    reward_mode: str = "team",
    llm_options: Mapping[str, Any] | None = None,
    version: str = "v0",
) -> tuple[list[Any], list[dict[str, int]]]:
    """The ``MultiAgentEpisode`` objects of ``team`` played on ``seeds`` in order in a local
    ``MultiAgentEnvRunner`` (episode i on seed i; None: the schedule as written), and the
    fallbacks of every agent in every episode (0 for players without fallbacks). Policy
    players (:class:`~agents.rllib.modules.PolicyModule`, the LLM too) are bound to the
    env's context and reset with each episode's seed as the env resets, as in the loop;
    one ``sample`` call per episode."""
    from ray.rllib.env.multi_agent_env_runner import MultiAgentEnvRunner

    from agents.ed_evaluation import team_context
    from agents.rllib.modules import PolicyModule

    seeds = [None if s is None else int(s) for s in seeds]
    if not seeds:
        return [], []
    register_eval_env()
    specs, states, advice = player_specs(team, modules, llm_options)
    runner = MultiAgentEnvRunner(
        config=runner_config(
            task, seeds, specs, advice, reward_mode=reward_mode, version=version
        )  # fmt: skip
    )
    episodes, fallbacks = [], []
    try:
        for agent, state in states.items():
            runner.module[agent].set_state(state)
        players = {a: m for a in AGENTS if isinstance(m := runner.module[a], PolicyModule)}
        seeded_env = runner.env.envs[0].unwrapped
        # The runner's env and modules share this process: hand over the env's context.
        context = team_context(seeded_env.par_env.env)
        for m in players.values():
            m.bind(context)
            seeded_env.on_reset.append(m.reset)
        for _ in seeds:
            episodes += runner.sample(num_episodes=1, explore=False)
            fallbacks.append(
                {a: int(getattr(players.get(a), "episode_fallbacks", 0)) for a in AGENTS}
            )
    finally:
        runner.stop()
    played = [final_info(ep)["episode_seed"] for ep in episodes]
    if played != seeds:
        raise RuntimeError(f"the runner played seeds {played}, not {seeds}")
    return episodes, fallbacks


def final_info(episode: Any) -> dict:
    """The consultant's last info of a finished episode (score, grader, KPIs, ...)."""
    infos = episode.get_infos(-1)
    info = infos.get("consultant") or next(iter(infos.values()))
    if "score" not in info:
        raise RuntimeError("the episode did not terminate (no final info)")
    return info


def episode_row(
    task: str,
    label: str,
    names: Mapping[str, str],
    episode: Any,
    fallbacks: Mapping[str, int] | None = None,
    random_serve_reward: float | None = None,
) -> dict:
    """One evaluation row from a finished episode (:class:`agents.results.EpisodeResult`,
    as in ``evaluate_teams``); ``fallbacks``: per agent, the LLM players' fallback
    decisions in the episode; ``random_serve_reward``: the normalised score's 0."""
    from agents.results import EpisodeResult, team_illegal_actions
    from envs.ed.graders import normalised_score

    info = final_info(episode)
    serve = info["grader"]["cumulative_reward"]
    oracle_value = info["oracle_value"]
    fallbacks = {a: int((fallbacks or {}).get(a, 0)) for a in AGENTS}
    kpis = dict(info["kpis"])
    row = EpisodeResult(
        task=info.get("task_name", task), ruleset="ed", seed=_seed(info["episode_seed"]),
        policy=label, players={a: names[a] for a in AGENTS},
        score=info["score"], grader_score=info["grader_score"],
        episode_return=info["episode_return"], serve_reward=serve,
        served=info["grader"]["patients_served"],
        missed_emergencies=info["grader"]["missed_emergencies"],
        oracle_value=oracle_value, oracle_score=info.get("oracle_score"),
        oracle_grader_score=info.get("oracle_grader_score"),
        parallel_steps=int(episode.env_t), kpis=kpis, fallbacks=fallbacks,
        # An LLM player's failed answers went to its fallback: illegal, as in the loop.
        illegal_actions=int(team_illegal_actions({k: v or 0 for k, v in kpis.items()}, fallbacks)),
        extra={"evaluator": "rllib_env_runner",
               # RLlib's own bookkeeping of the same episode, per agent.
               **{f"rllib_return_{aid}": float(sa.get_return())
                  for aid, sa in episode.agent_episodes.items()}},
    ).to_row()  # fmt: skip
    if random_serve_reward is not None:  # last: where this evaluator's rows have them
        row["random_serve_reward"] = random_serve_reward
        row["normalised"] = normalised_score(serve, random_serve_reward, oracle_value)
    return row


def _seed(seed: int | None) -> int | None:
    return None if seed is None else int(seed)


def evaluate_in_env_runner(
    task: str,
    teams: Mapping[str, str | Mapping[str, str] | None],
    seeds: Iterable[int | None],
    modules: Mapping[str, Mapping[str, RLModule | RLModuleSpec]] | None = None,
    reward_mode: str = "team",
    num_workers: int = 0,
    llm_options: Mapping[str, Any] | None = None,
    version: str = "v0",
    on_episode: Callable[[dict], None] | None = None,
    step_log: list[dict] | None = None,
) -> list[dict]:
    """One row per (team, seed), as :func:`agents.ed_evaluation.evaluate_teams`, but
    played by RLlib's ``MultiAgentEnvRunner`` with one RLModule per agent.
    ``modules[name][agent]``: RLModules (or specs) for the players named ``name``
    (e.g. ``{"ppo": trained_modules(run_dir)}`` with team ``"nurse=ppo,..."``);
    ``llm_options``: the ``llm`` players' settings (:class:`llm_policy.policy.LLMConfig`
    fields, or ``backend_factory``). ``num_workers`` = 0: one local runner in this
    process; k > 0: the seeds split into k contiguous shards, each played by its own
    runner in a Ray worker (Ray must be initialised). ``version``: the ``ed`` env
    (:data:`envs.ed_triage_v1.ED_ENVS`). ``on_episode``: called with each row (a team's
    rows once the team has played); ``step_log``: extended with the loop's step rows
    (:func:`agents.rllib.episode_logs.ed_step_rows`, prefixed with task and policy)."""
    from envs.ed_triage_v1 import ED_ENVS

    if version not in ED_ENVS:
        raise ValueError(f"unknown ed env version {version!r}; choose one of {', '.join(ED_ENVS)}")
    seeds = [_seed(s) for s in seeds]
    logs = step_log is not None
    rows = []
    for label, team in teams.items():
        args = (task, label, team, seeds, modules, reward_mode, llm_options, version, logs)
        played = _in_ray_workers(*args, num_workers) if num_workers > 0 else _shard_rows(*args)
        rows += played[0]
        if step_log is not None:
            step_log.extend(played[1])
        for row in played[0]:
            if on_episode is not None:
                on_episode(row)
    return rows


def _shard_rows(
    task, label, team, seeds, modules, reward_mode, llm_options, version, logs=False
) -> tuple[list[dict], list[dict]]:
    from agents.ed_evaluation import random_team_reward
    from agents.rllib.episode_logs import ed_step_rows
    from agents.roles import parse_team
    from envs.ed_triage_v1 import ED_ENVS

    names = parse_team(team)
    episodes, fallbacks = played_episodes(
        task, team, seeds, modules, reward_mode, llm_options, version
    )
    # The normalised score's 0, as the loop computes it: the seeded random team's play.
    env = ED_ENVS[version](task=task, reward_mode=reward_mode)
    rows, steps = [], []
    for ep, fb in zip(episodes, fallbacks, strict=True):
        seed = _seed(final_info(ep)["episode_seed"])
        row = episode_row(task, label, names, ep, fb, random_team_reward(env, seed))
        rows.append(row)
        if logs:
            steps += ed_step_rows(ep, seed, AGENTS, {"task": row["task"], "policy": label})
    return rows, steps


def _in_ray_workers(
    task, label, team, seeds, modules, reward_mode, llm_options, version, logs, num_workers
) -> tuple[list[dict], list[dict]]:
    """Contiguous shards of ``seeds``, each played by its own MultiAgentEnvRunner in a
    Ray worker (one CPU each); (rows, step rows) come back in seed-list order."""
    import ray

    if not ray.is_initialized():
        raise RuntimeError("num_workers > 0 needs Ray: call ray.init() (or training.init_ray)")
    bounds = np.linspace(0, len(seeds), num_workers + 1).round().astype(int)
    shards = [seeds[lo:hi] for lo, hi in zip(bounds[:-1], bounds[1:], strict=True)]
    remote = ray.remote(num_cpus=1)(_shard_rows)
    refs = [
        remote.remote(task, label, team, shard, modules, reward_mode, llm_options, version, logs)
        for shard in shards
        if len(shard)
    ]
    done = ray.get(refs)
    return [r for rows, _ in done for r in rows], [r for _, steps in done for r in steps]


__all__ = [
    "ADVICE_KEY",
    "EVAL_ENV_NAME",
    "AdvisedEdEnv",
    "EpisodeSeedsEnv",
    "HintModule",
    "episode_row",
    "evaluate_in_env_runner",
    "final_info",
    "played_episodes",
    "player_specs",
    "register_eval_env",
    "runner_config",
    "sample_episodes",
    "trained_modules",
]
