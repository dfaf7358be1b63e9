"""Batched multi-agent ED: ``num_envs`` episodes of one ``ed`` task stepped together.

:class:`EdVectorEnv` runs the engine of :mod:`envs.ed.batch_engine` over a batch and
speaks a vectorised form of the PettingZoo parallel API. Episode ``i`` plays exactly
what ``envs.ed_triage_v1`` / ``v2`` plays for the same episode seed and actions
(observations, masks, rewards, terminations, the final ``score`` and returns are
equal; ``tests/test_ed_vector.py`` checks them step by step, illegal actions and the
pharmacist's same-sub-step dose included).

API (``B`` = ``num_envs``)
    ``reset(seed=s)`` → ``(obs, infos)``; ``step(actions)`` → ``(obs, rewards,
    terminations, truncations, infos)``, where ``obs[agent]`` is
    ``{"observation": (B, D) float32, "action_mask": (B, A) int8}`` (the agent's
    single spaces are the PettingZoo env's: :meth:`observation_space` /
    :meth:`action_space`), ``actions[agent]`` a ``(B,)`` integer array (a missing agent
    ENDs; an out-of-range or masked action is a counted no-op, as in the scalar env),
    ``rewards[agent]`` ``(B,)`` float64, ``terminations`` / ``truncations`` ``(B,)``
    bool (all agents of an episode end together; never truncated).

Resets
    ``reset(seed=s)`` gives episode ``i`` the seed ``s + i``; once an episode ends, the
    next ``step`` restarts it (Gymnasium's next-step autoreset: that row's actions are
    ignored, its rewards are 0, its observation is the new episode's first) with an
    episode seed drawn from the env's generator (reported in ``infos["episode_seed"]``
    with the mask ``infos["_episode_seed"]``). Never seeded: the schedules as written.

Episode end
    The step that ends an episode reports, masked by ``infos["_final"]``:
    ``score`` (the v1 score, the share of the bound's serve reward, against the
    static normaliser, as ``normaliser="static"``), ``serve_reward``, ``bound``,
    ``episode_return`` (B, 3; agents in :data:`~envs.ed.config.AGENTS` order),
    ``substeps``, ``deaths``, ``lwbs`` and ``illegal`` (B, 3). The grader dict, the
    KPIs and the exact bound stay with the PettingZoo env.

Arguments
    ``num_envs``, ``task`` (as the PettingZoo env, the suite included), ``version``
    (``"v1"`` | ``"v2"``: :data:`envs.ed.v1.ED_ENVS`), ``reward_mode``, ``config``,
    ``seed_range``, ``generator_params``. v0 rules (the Queue Doctor grader as score)
    are not batched: use ``envs.ed_triage_v0``.

Why: the PettingZoo env spends ~200 µs of Python per sub-step on a few dozen small
NumPy calls; here each call covers the whole batch (``experiments/bench_ed.py
--vector``, docs/benchmarks/bench_ed.md).
"""

from __future__ import annotations

from typing import Any

import numpy as np
from gymnasium import spaces

from envs.ed import batch_engine as be
from envs.ed.codec import COLUMNS, FEATURES
from envs.ed.config import AGENTS, DRUGS, EdConfig, Place, Role
from envs.ed.scenario import CHART_FEATURES, build_ed_scenario
from envs.ed.v1 import ED_ENVS
from envs.generator import GeneratorParams
from envs.reward import fast_serve_reward, serve_reward_arrays
from envs.seeding import EPISODE_SEED_BOUND
from envs.validation import check_action_array, check_seed

BATCHED_VERSIONS = ("v1", "v2")
_WAITING = int(Place.WAITING)
_FLOWCHART = CHART_FEATURES.index("flowchart")
_NC, _PC, _CC = (COLUMNS[r] for r in Role)
_ALLERGIES = slice(_PC[f"allergy_{DRUGS[0].value}"], _PC[f"allergy_{DRUGS[-1].value}"] + 1)
_GIVEN = slice(_PC[f"given_{DRUGS[0].value}"], _PC[f"given_{DRUGS[-1].value}"] + 1)
_NF, _PF, _CF = (len(FEATURES[r][0]) for r in range(3))
_WAIT0 = [0.0] + [round(fast_serve_reward(s, 0), 4) for s in range(1, 6)]


class EdVectorEnv:
    """``num_envs`` independent ``ed`` episodes of one task, stepped together."""

    metadata = {"name": "ed_triage_vector", "autoreset_mode": "next_step"}

    def __init__(
        self,
        num_envs: int,
        task: str = "mass_casualty",
        version: str = "v2",
        reward_mode: str = "team",
        config: EdConfig | None = None,
        seed_range: tuple[int, int] | None = None,
        generator_params: GeneratorParams | None = None,
    ) -> None:
        if num_envs < 1:
            raise ValueError("num_envs must be >= 1")
        if version not in BATCHED_VERSIONS:
            raise ValueError(
                f"version must be one of {BATCHED_VERSIONS} (v0 is not batched: use "
                f"envs.ed_triage_v0), got {version!r}"
            )
        # The scalar env validates the arguments and owns the spaces and task source.
        self.single = ED_ENVS[version](
            task=task, reward_mode=reward_mode, config=config, normaliser="static",
            seed_range=seed_range, generator_params=generator_params,
        )  # fmt: skip
        self.config = cfg = self.single.config
        if not cfg.is_v1:
            raise ValueError("EdVectorEnv plays v1 rules; this config turns every v1 "
                             "mechanism off (v0): use envs.ed_triage_v0")  # fmt: skip
        self.num_envs = B = num_envs
        self.version, self.task, self.reward_mode = version, task, reward_mode
        self.seed_range = seed_range
        self.possible_agents = list(AGENTS)
        self.n_slots = N = self.single.n_slots
        t = self.single.task
        self.max_steps = t.max_steps
        self.state = be.empty_state(cfg, B, N, t.max_steps)
        self._tables = serve_reward_arrays(t.max_steps + 1)  # every wait an episode can reach
        self._rows = np.arange(B)
        self._bound = np.zeros(B)
        self._returns = np.zeros((B, 3))
        self._seeds: list[int | None] = [None] * B
        self._needs_reset = np.zeros(B, dtype=bool)
        self._rng = np.random.default_rng()
        self._seeded = False
        # Episode-constant observation columns per role, (B, N, F), refilled per reset.
        self._static = [np.zeros((B, N, f), dtype=np.float32) for f in (_NF, _PF, _CF)]
        # The same times "waiting" (what the observation rows start from), kept up to
        # date where a patient's waiting flag changed: a copy per step instead of a
        # broadcast multiply (5x slower at these shapes).
        self._static_w = [np.zeros_like(a) for a in self._static]
        self._waiting = np.zeros((B, N), dtype=bool)
        self._obs_sizes = [self.single.observation_space(a)["observation"].shape[0]
                           for a in AGENTS]  # fmt: skip
        self._legal: be.Legal | None = None
        self._masks: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None

    def observation_space(self, agent: str) -> spaces.Dict:
        return self.single.observation_space(agent)

    def action_space(self, agent: str) -> spaces.Discrete:
        return self.single.action_space(agent)

    # ------------------------------------------------------------------ episodes
    def _draw_seeds(self, k: int) -> list[int | None]:
        if not self._seeded:
            return [None] * k
        seeds = self._rng.integers(EPISODE_SEED_BOUND, size=k)
        if self.seed_range is not None:
            lo, hi = self.seed_range
            seeds = lo + seeds % (hi - lo)
        return seeds.tolist()

    def _load(self, rows: np.ndarray, seeds: list[int | None]) -> None:
        """Start episode ``seeds[i]`` in row ``rows[i]``."""
        cfg, single = self.config, self.single
        scenarios = [build_ed_scenario(single.task_for(x), x, cfg) for x in seeds]
        be.load_rows(self.state, rows, scenarios)
        for b, x, sc in zip(rows.tolist(), seeds, scenarios, strict=True):
            self._seeds[b] = x
            # The static normaliser (as normaliser="static"), summed in slot order.
            self._bound[b] = sum(_WAIT0[p.severity] for p in sc.patients)
        self._returns[rows] = 0.0
        nurse, pharm, cons = self._static
        for a in (*self._static, *self._static_w):
            a[rows] = 0.0
        self._waiting[rows] = False  # static_w of these rows is rebuilt from 0
        counts = [len(sc.patients) for sc in scenarios]
        r = np.repeat(rows, counts)
        slot = np.arange(len(r)) - np.repeat(np.cumsum(counts) - counts, counts)
        charts = np.concatenate([sc.charts for sc in scenarios])
        nurse[r, slot, _NC["age"] :] = charts  # the chart columns close the nurse's rows
        pharm[r, slot, _PC["flowchart"]] = charts[:, _FLOWCHART]
        pharm[r, slot, _ALLERGIES] = self.state.allergies[r, slot]
        cons[r, slot, _CC["requires_icu"]] = self.state.icu[r, slot]
        cons[r, slot, _CC["requires_specialist"]] = self.state.need[r, slot] > 1

    def reset(
        self, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[dict[str, dict[str, np.ndarray]], dict[str, Any]]:
        seed = check_seed(seed)
        if seed is not None:
            self._rng = np.random.default_rng(seed)
            self._seeded = True
            seeds: list[int | None] = [seed + i for i in range(self.num_envs)]
            if self.seed_range is not None:
                lo, hi = self.seed_range
                seeds = [lo + x % (hi - lo) for x in seeds]  # type: ignore[operator]
        else:
            seeds = self._draw_seeds(self.num_envs)
        self._load(self._rows, seeds)
        self._needs_reset[:] = False
        self._refresh(be.legal(self.state))
        return self._observations(), {"episode_seed": np.array(seeds, dtype=object)}

    def _refresh(self, lg: be.Legal) -> None:
        self._legal, self._masks = lg, be.masks(lg)

    # ------------------------------------------------------------------ stepping
    def step(self, actions: dict[str, Any]):
        if self._legal is None:
            raise RuntimeError("call reset() before step()")
        B = self.num_envs
        unknown = set(actions) - set(self.possible_agents)
        if unknown:
            raise ValueError(f"unknown agent(s) {sorted(unknown)}; agents: {self.possible_agents}")
        joint = np.empty((B, 3), dtype=np.int64)
        for i, agent in enumerate(self.possible_agents):
            end = self._masks[i].shape[1] - 1
            if agent in actions:
                joint[:, i] = check_action_array(
                    actions[agent], B, f"each in 0..{end}, {end} = END", f"{agent}'s actions"
                )
            else:
                joint[:, i] = end
        live = ~self._needs_reset
        res = be.substep(self.state, joint, self._legal, self._masks, self._rows,
                         self._tables, live)  # fmt: skip
        roles = res.role
        if self.reward_mode == "team":
            team = res.shared + ((roles[:, 0] + roles[:, 1]) + roles[:, 2])
            rew = np.repeat(team[:, None], 3, axis=1)
        else:
            rew = res.shared[:, None] + roles
        rew[~live] = 0.0
        self._returns += rew
        infos: dict[str, Any] = {}
        restart = np.flatnonzero(~live)
        if restart.size:
            self._load(restart, self._draw_seeds(restart.size))
        self._needs_reset[restart] = False
        lg = res.legal if not restart.size else be.legal(self.state)
        self._refresh(lg)
        if restart.size:
            seeds = np.array([None] * B, dtype=object)
            seeds[restart] = [self._seeds[b] for b in restart.tolist()]
            infos["episode_seed"], infos["_episode_seed"] = seeds, ~live
        terminated = live & self.state.done
        if terminated.any():
            infos.update(self._final(terminated))
            self._needs_reset |= terminated
        rewards = {a: rew[:, i] for i, a in enumerate(self.possible_agents)}
        truncated = np.zeros(B, dtype=bool)
        return self._observations(), rewards, terminated, truncated, infos

    def _final(self, done: np.ndarray) -> dict[str, Any]:
        s = self.state
        bound = self._bound
        score = np.divide(s.served_reward, bound, out=np.ones(self.num_envs), where=bound > 0)

        def masked(x: np.ndarray) -> np.ndarray:
            out = np.zeros_like(x)
            out[done] = x[done]
            return out

        return {
            "_final": done, "score": masked(score), "serve_reward": masked(s.served_reward),
            "bound": masked(bound), "episode_return": masked(self._returns),
            "substeps": masked(s.substep), "deaths": masked(s.deaths), "lwbs": masked(s.lwbs),
            "illegal": masked(s.illegal),
        }  # fmt: skip

    # ------------------------------------------------------------------ observations
    def _observations(self) -> dict[str, dict[str, np.ndarray]]:
        """The three roles' observations (:mod:`envs.ed.observation`'s encoders over
        the batch): rows = static columns and the dynamic ones, times "waiting"."""
        s, lg, cfg = self.state, self._legal, self.config
        B, N = s.batch, s.n_slots
        w = s.place == _WAITING
        wf = w.astype(np.float32)
        tri = s.triaged > 0
        wait = s.step[:, None] - s.arrival
        countdown = np.maximum(s.countdown, 0)
        queue = w.sum(1)
        untriaged = queue - (tri & w).sum(1)
        step, left = s.step, s.max_steps - s.step
        seen = s.reported if cfg.consultant_sees_self_report else 0
        nc, pc, cc = _NC, _PC, _CC
        columns = (  # (column, value) of the dynamic columns, by the codec's names
            ((nc["present"], w), (nc["triaged"], tri), (nc["assigned_category"], s.triaged),
             (nc["retriage_allowed"], lg.nurse & tri), (nc["condition"], s.condition),
             (nc["wait"], wait), (nc["self_reported_urgency"], s.reported)),
            ((pc["present"], w), (pc["triaged"], tri), (pc["category"], s.triaged),
             (pc["condition"], s.condition), (pc["countdown"], countdown), (pc["wait"], wait),
             (_GIVEN, s.given)),
            ((cc["present"], w), (cc["visible_category"], np.where(tri, s.triaged, seen)),
             (cc["triaged"], tri), (cc["wait"], wait), (cc["condition"], s.condition),
             (cc["countdown"], countdown), (cc["servable"], lg.consultant),
             (cc["medicated"], s.given.any(2))),
        )  # fmt: skip
        contexts = (
            (step, left, s.budget[:, 0], cfg.triage_capacity, untriaged, queue),
            (step, left, s.budget[:, 1], cfg.dispense_capacity),
            (step, left, s.budget[:, 2], s.doctors, s.icu_available, s.icu_beds, queue,
             untriaged),
        )  # fmt: skip
        changed = np.nonzero(w != self._waiting)
        if changed[0].size:
            self._waiting = w
            for static, static_w in zip(self._static, self._static_w, strict=True):
                static_w[changed] = static[changed] * wf[changed][:, None]
        out = {}
        for i, agent in enumerate(self.possible_agents):
            f = self._static[i].shape[2]
            obs = np.empty((B, self._obs_sizes[i]), dtype=np.float32)
            rows = obs[:, : N * f].reshape(B, N, f)
            np.copyto(rows, self._static_w[i])
            for k, x in columns[i]:
                np.multiply(x, wf if x.ndim == 2 else wf[:, :, None], out=rows[:, :, k])
            ctx = obs[:, N * f :]
            for j, x in enumerate(contexts[i]):
                ctx[:, j] = x
            if i == 1:
                ctx[:, 4:] = s.stock
            out[agent] = {"observation": obs, "action_mask": self._masks[i]}
        return out

    def close(self) -> None:
        pass


__all__ = ["BATCHED_VERSIONS", "EdVectorEnv"]
