"""Single-agent Gymnasium ``ed`` envs: the consultant of the multi-agent ED, with the
triage nurse and the pharmacist played by heuristics.

Ids: ``edmarl/BasicTriageED-v0``, ``edmarl/DynamicQueueED-v0``,
``edmarl/MassCasualtyED-v0``; also ``gym.make("edmarl/MassCasualty-v0", ruleset="ed")``
(the queue ids' entry point :func:`envs.classic.gym_env.make_queue_env` dispatches on the
ruleset).

Description
    :class:`EdConsultantEnv` wraps :class:`envs.ed.parallel_env.EdTriageParallelEnv`
    (docs/spec.md §2.2). The agent is the ``consultant``; every ``step(action)`` submits its
    action together with the nurse's and the pharmacist's policy actions (registry
    names ``nurse`` / ``pharmacist``, built like :func:`agents.roles.make_team` with a
    :class:`~agents.base.PolicyContext` whose ``presentation`` is the wrapped env's).
    Sub-steps in which the consultant has no choice (its mask allows only END, i.e. a
    pass) are then played on automatically until it has a choice or the episode ends,
    so every observation the agent sees offers a real decision.

Action space
    The consultant's: ``Discrete(N + 1)``, serve ``slot`` or END (last); N = patient
    slots (6 / 29 / 21; ``generated``: ``GeneratorParams.max_patients``). An illegal
    action is the parallel env's counted no-op (−0.01, one doctor slot spent).

Observation space
    The consultant's ``Dict(observation=Box(N*10 + 8), action_mask=Box(N + 1))`` of
    :mod:`envs.ed.observation`.

Rewards
    The consultant's reward of every sub-step played (``reward_mode="team"``: the
    team reward; ``"individual"``: shared terms + consultant terms), summed.

Episode end
    ``terminated`` when the PettingZoo episode ends (never truncated); the final info
    carries ``score``, ``grader_score``, ``grader``, ``kpis``, ``oracle_value``,
    ``episode_return`` (v1: ``score`` is the share of the bound, :mod:`envs.ed_triage_v1`).
    Every info has ``episode_seed``, ``step``, ``substep``; step infos add
    ``illegal_action`` (the agent's action) and ``substeps`` (sub-steps played).

Arguments
    ``task`` (a fixed task, alias or ``"generated"``), ``ruleset`` (``"ed"`` only),
    ``nurse`` (default ``"ed_nurse"``), ``pharmacist`` (default ``"ed_pharmacist"``),
    ``reward_mode``, ``config``, ``normaliser``, ``render_mode`` (``"ansi"`` | None),
    ``seed_range``, ``generator_params`` — as in :mod:`envs.ed.parallel_env`; ``version``
    (``"v0"`` | ``"v1"``: :mod:`envs.ed.v1`, whose suite scenarios are tasks too).
    ``reset(seed=s)`` plays the parallel env's episode seed s; the heuristics are reset
    with per-role seeds derived from the episode seed (a ``random`` nurse is
    reproducible).

Version history
    v0: first release.
"""

from __future__ import annotations

from typing import Any, SupportsFloat

import gymnasium as gym
import numpy as np

from agents.base import Policy, PolicyContext
from agents.roles import make_team
from envs.ed.config import AGENTS, EdConfig
from envs.ed.parallel_env import EdTriageParallelEnv
from envs.generator import GeneratorParams
from envs.validation import check_seed

AGENT = "consultant"
DEFAULT_NURSE = "ed_nurse"
DEFAULT_PHARMACIST = "ed_pharmacist"
SUMMARY_KEYS = (
    "score",
    "grader_score",
    "grader",
    "kpis",
    "oracle_value",
    "normaliser",
    "episode_return",
)


class EdConsultantEnv(gym.Env[dict[str, np.ndarray], np.int64]):
    metadata = {"render_modes": ["ansi"], "render_fps": 4}

    def __init__(
        self,
        task: str = "mass_casualty",
        ruleset: str = "ed",
        nurse: str = DEFAULT_NURSE,
        pharmacist: str = DEFAULT_PHARMACIST,
        reward_mode: str = "team",
        config: EdConfig | None = None,
        normaliser: str = "oracle",
        render_mode: str | None = None,
        seed_range: tuple[int, int] | None = None,
        generator_params: GeneratorParams | None = None,
        version: str = "v0",
    ) -> None:
        from envs.ed.v1 import ED_ENVS  # v1 imports this module's neighbours

        if version not in ED_ENVS:
            raise ValueError(f"version must be one of {', '.join(ED_ENVS)}, got {version!r}")
        self.env: EdTriageParallelEnv = ED_ENVS[version](
            task=task,
            ruleset=ruleset,
            reward_mode=reward_mode,
            config=config,
            normaliser=normaliser,
            render_mode=render_mode,
            seed_range=seed_range,
            generator_params=generator_params,
        )
        self.render_mode = render_mode
        self.observation_space = self.env.observation_space(AGENT)
        self.action_space = self.env.action_space(AGENT)
        self.end_action = int(self.action_space.n) - 1
        context = PolicyContext(
            task=self.env.task,
            ruleset="ed",
            n_slots=self.env.n_slots,
            presentation=self.env.presentation,
            config=self.env.config,
        )
        team = make_team({"nurse": nurse, "pharmacist": pharmacist}, context)
        self.others: dict[str, Policy] = {a: p for a, p in team.items() if a != AGENT}
        self._obs: dict[str, dict[str, np.ndarray]] | None = None
        self.episode_return = 0.0

    @property
    def task(self):
        """The current episode's task (see :attr:`EdTriageParallelEnv.task`)."""
        return self.env.task

    @property
    def episode_seed(self) -> int | None:
        return self.env.episode_seed

    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
        seed = check_seed(seed)
        super().reset(seed=seed)
        obs, infos = self.env.reset(seed=seed, options=options)
        s = self.env.episode_seed
        for i, agent in enumerate(AGENTS):
            if agent in self.others:
                self.others[agent].reset(None if s is None else s * len(AGENTS) + i)
        self._obs = obs
        self.episode_return = 0.0
        reward, terminated, info = self._play_forced()
        self.episode_return += reward  # forced passes before the first decision
        info = {**infos[AGENT], **info}
        return self._obs[AGENT], info

    def step(
        self, action: Any
    ) -> tuple[dict[str, np.ndarray], SupportsFloat, bool, bool, dict[str, Any]]:
        if self._obs is None or not self.env.agents:
            raise RuntimeError("call reset() before step() (the episode is over)")
        reward, info = self._substep(action)
        illegal = info["illegal_action"]
        substeps = 1
        if self.env.agents:
            more, _, forced = self._play_forced()
            reward += more
            substeps += forced["substeps"]
            info = {**info, **{k: v for k, v in forced.items() if k != "substeps"}}
        info["illegal_action"] = illegal
        info["substeps"] = substeps
        self.episode_return += reward
        terminated = not self.env.agents
        if terminated:
            info["episode_return"] = self.episode_return
        return self._obs[AGENT], reward, terminated, False, info

    # ------------------------------------------------------------------ internals
    def _substep(self, action: Any) -> tuple[float, dict[str, Any]]:
        obs = self._obs
        assert obs is not None
        actions = {a: p.act(obs[a]) for a, p in self.others.items()}
        actions[AGENT] = action
        self._obs, rewards, _, _, infos = self.env.step(actions)
        info = infos[AGENT]
        out = {k: info[k] for k in ("episode_seed", "step", "substep", "illegal_action")}
        out.update({k: info[k] for k in SUMMARY_KEYS if k in info})
        return float(rewards[AGENT]), out

    def _play_forced(self) -> tuple[float, bool, dict[str, Any]]:
        """Play sub-steps whose only legal consultant action is END (a pass)."""
        total, n, info = 0.0, 0, {}
        while self.env.agents and not self._obs[AGENT]["action_mask"][: self.end_action].any():
            r, info = self._substep(self.end_action)
            total += r
            n += 1
        info.pop("illegal_action", None)
        info["substeps"] = n
        return total, not self.env.agents, info

    def render(self) -> str | None:
        return self.env.render()

    def close(self) -> None:
        self.env.close()


EdConsultantEnv.__doc__ = __doc__
__all__ = ["EdConsultantEnv"]
