"""Batched ``classic`` queue env: many episodes stepped at once with NumPy.

``gym.make_vec("edmarl/MassCasualty-v0", num_envs=256, vectorization_mode="vector_entry_point")``
returns a :class:`QueueVectorEnv`: a native Gymnasium ``VectorEnv`` whose sub-env ``i``
plays exactly the episode that ``QueueEnv`` plays for the same episode seed (rewards,
observations, masks and grader scores are equal; ``tests/test_vector_env.py`` checks
them step by step), but with the whole batch advanced by a few array operations.

How it stays exact: a waiting patient's visible state depends only on the step (see
:class:`envs.classic.observation.EpisodeEncoder`), so the per-step state is
``(step, served mask, ICU beds left, missed emergencies)`` per env and everything else
is derived from the episode's static arrays. Rewards come from the same table as the
scalar engine; scores come from :func:`envs.classic.graders.batch_scores` (the scalar graders'
formulas over arrays, checked equal to :func:`envs.classic.graders.grade_records`), and
:meth:`QueueVectorEnv.served_records` gives any env's records for the full grader dict.

Seeding: ``reset(seed=s)`` gives sub-env ``i`` the episode seed ``s + i``; automatic
resets (Gymnasium's next-step autoreset) draw further episode seeds from the vector
env's generator; ``info["episode_seed"]`` reports them. Without any seed the schedule
is played as written. At episode end ``info["score"]`` (with mask ``info["_score"]``)
holds the grader score and ``info["episode_return"]`` the return.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from gymnasium import spaces
from gymnasium.vector import AutoresetMode, VectorEnv
from gymnasium.vector.utils import batch_space

from envs.classic.dynamics import ServedRecord
from envs.classic.graders import batch_scores
from envs.classic.observation import (
    CAN_SERVE,
    CONDITION,
    COUNTDOWN,
    ICU,
    MASK_DTYPE,
    OBS_DTYPE,
    PRESENT,
    REPORTED,
    SPECIALIST,
    WAIT,
    F,
    G,
    feature_highs,
    obs_size,
)
from envs.classic.scenario import perturb_schedule
from envs.reward import (
    UNKNOWN_PATIENT_PENALTY,
    WAIT_PENALTY_ANY,
    WAIT_PENALTY_PER_IMMEDIATE,
    WAIT_PENALTY_URGENT,
    serve_reward_arrays,
)
from envs.rulesets import single_agent_ruleset
from envs.seeding import EPISODE_SEED_BOUND
from envs.tasks import get_task
from envs.types import Condition
from envs.validation import check_action_array, check_seed

_MAX_TABLE_WAIT = 63  # every serve reward is 0 from wait 20 on, so clipping is exact
_REWARD, _REWARD_ROUNDED = serve_reward_arrays(_MAX_TABLE_WAIT)


class QueueVectorEnv(VectorEnv):
    """``num_envs`` independent ``classic`` episodes of one task, stepped together."""

    metadata = {"autoreset_mode": AutoresetMode.NEXT_STEP}

    def __init__(self, num_envs: int, task: str = "mass_casualty", ruleset: str = "classic"):
        if num_envs < 1:
            raise ValueError("num_envs must be >= 1")
        self.task = get_task(task)
        single_agent_ruleset(ruleset)  # validates: the classic engine's rulesets only
        self.ruleset = ruleset
        self.num_envs = B = num_envs
        self.n_slots = N = self.task.num_patients
        self.single_action_space = spaces.Discrete(N + 1)
        self.single_observation_space = spaces.Dict(
            {
                "observation": spaces.Box(
                    0.0, feature_highs(self.task, N), shape=(obs_size(N),), dtype=OBS_DTYPE
                ),
                "action_mask": spaces.Box(0, 1, shape=(N + 1,), dtype=MASK_DTYPE),
            }
        )
        self.action_space = batch_space(self.single_action_space, B)
        self.observation_space = batch_space(self.single_observation_space, B)
        shape = (B, N)
        # Static per-episode arrays (refilled on reset).
        self._a = np.zeros(shape, np.int64)
        self._a_pos = np.zeros(shape, np.int64)
        self._c = np.zeros(shape, np.int64)
        self._sev0 = np.zeros(shape, np.int64)
        self._rep0 = np.zeros(shape, np.int64)
        self._icu = np.zeros(shape, bool)
        self._spec = np.zeros(shape, bool)
        self._pid = np.zeros(shape, np.int64)  # index into task.arrivals
        arr = self.task.arrivals
        self._task_c = np.array([a.deterioration_countdown for a in arr], np.int64)
        self._task_icu = np.array([a.requires_icu for a in arr], bool)
        self._task_spec = np.array([a.requires_specialist for a in arr], bool)
        self._need_ok = np.zeros(shape, bool)
        # Dynamic state.
        self._t = np.zeros(B, np.int64)
        self._served = np.zeros(shape, bool)
        self._icu_left = np.zeros(B, np.int64)
        self._missed = np.zeros(B, np.int64)
        self._return = np.zeros(B)
        self._served_step = np.zeros(shape, np.int64)
        self._served_wait = np.zeros(shape, np.int64)
        self._served_sev = np.zeros(shape, np.int64)
        self._served_rep = np.zeros(shape, np.int64)
        self._served_reward = np.zeros(shape)
        self._episode_seed: list[int | None] = [None] * B
        self._needs_reset = np.zeros(B, bool)
        self._seeded = False
        self._rows = np.arange(B)
        self._obs = np.zeros((B, obs_size(N)), OBS_DTYPE)
        self._mask = np.zeros((B, N + 1), MASK_DTYPE)

    # -- episodes ------------------------------------------------------------------------
    def _reset_envs(self, idx: np.ndarray, seeds: list[int | None]) -> None:
        # Python only for the seeded draws (they must come from random.Random, as in
        # Queue Doctor); ordering and gathering are array operations over all restarts.
        draws = np.array([perturb_schedule(self.task, s) for s in seeds], dtype=np.int64)
        n = self.n_slots
        arrival = draws[..., 0]
        order = np.argsort(arrival * (n + 1) + np.arange(n), axis=1)  # (arrival, schedule)
        self._a[idx] = np.take_along_axis(arrival, order, 1)
        self._sev0[idx] = np.take_along_axis(draws[..., 1], order, 1)
        self._rep0[idx] = np.take_along_axis(draws[..., 2], order, 1)
        self._pid[idx] = order
        self._c[idx] = self._task_c[order]
        self._icu[idx] = self._task_icu[order]
        self._spec[idx] = self._task_spec[order]
        for b, s in zip(idx.tolist(), seeds, strict=True):
            self._episode_seed[b] = s
        self._a_pos[idx] = self._a[idx] > 0
        self._need_ok[idx] = self.task.num_doctors >= np.where(self._spec[idx], 2, 1)
        self._t[idx] = 0
        self._served[idx] = False
        self._icu_left[idx] = self.task.icu_beds
        self._missed[idx] = 0
        self._return[idx] = 0.0
        self._needs_reset[idx] = False

    def _draw_seeds(self, n: int) -> list[int | None]:
        if not self._seeded:
            return [None] * n
        return [int(s) for s in self.np_random.integers(EPISODE_SEED_BOUND, size=n)]

    def reset(
        self, *, seed: int | list[int] | None = None, options: dict[str, Any] | None = None
    ) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
        B = self.num_envs
        if isinstance(seed, (list, tuple)):
            if len(seed) != B:
                raise ValueError(f"reset(seed=list) needs {B} seeds, got {len(seed)}")
            seeds: list[int | None] = [check_seed(s, f"seed[{i}]") for i, s in enumerate(seed)]
            self._np_random, self._np_random_seed = np.random.default_rng(seeds[0]), seeds[0]
            self._seeded = True
        elif check_seed(seed) is not None:
            seed = int(seed)
            self._np_random, self._np_random_seed = np.random.default_rng(seed), seed
            self._seeded = True
            seeds = [int(seed) + i for i in range(B)]
        else:
            seeds = self._draw_seeds(B)
        self._reset_envs(self._rows, seeds)
        self._derive()
        return self._observe(), {"episode_seed": np.array(self._episode_seed, dtype=object)}

    # -- dynamics ------------------------------------------------------------------------
    def _derive(self) -> None:
        """Visible and true per-patient state at each env's current step."""
        t = self._t[:, None]
        arrived = self._a <= t
        ticks = (t - self._a + self._a_pos) * arrived
        det = (self._c > 0) & (ticks >= self._c)
        worse = np.maximum(1, self._sev0 - 1)
        self._present = present = arrived & ~self._served
        self._ticks = ticks
        self._sev = np.where(det, worse, self._sev0)
        self._rep = np.where(det, worse, self._rep0)
        self._cond = np.where(
            det, np.where(worse == 1, int(Condition.CRITICAL), int(Condition.AT_RISK)), 0
        )
        self._cd = np.where((self._c > 0) & ~det, self._c - ticks, 0)
        self._can = self._need_ok & (~self._icu | (self._icu_left[:, None] >= 1))
        self._servable = present & self._can

    def _observe(self) -> dict[str, np.ndarray]:
        B, N = self.num_envs, self.n_slots
        obs = self._obs
        rows = obs[:, : N * F].reshape(B, N, F)
        p = self._present
        rows[..., PRESENT] = p
        rows[..., REPORTED] = self._rep * p
        rows[..., WAIT] = self._ticks * p
        rows[..., CONDITION] = self._cond * p
        rows[..., COUNTDOWN] = self._cd * p
        rows[..., ICU] = self._icu & p
        rows[..., SPECIALIST] = self._spec & p
        rows[..., CAN_SERVE] = self._servable
        ctx = obs[:, N * F :]
        ctx[:, 0] = self._t
        ctx[:, 1] = self.task.max_steps - self._t
        ctx[:, 2] = self.task.num_doctors
        ctx[:, 3] = self._icu_left
        ctx[:, 4] = self.task.icu_beds
        ctx[:, 5] = p.sum(1)
        ctx[:, 6] = self._served.sum(1)
        assert ctx.shape[1] == G
        self._mask[:, :N] = self._servable
        self._mask[:, N] = 1
        return {"observation": obs.copy(), "action_mask": self._mask.copy()}

    def step(self, actions: Any):
        B, N = self.num_envs, self.n_slots
        act = check_action_array(actions, B, f"each in 0..{N}, {N} = wait")
        if ((act < 0) | (act > N)).any():
            raise ValueError(f"actions must be in 0..{N} ({N} = wait), got {act}")
        rows = self._rows
        live = ~self._needs_reset
        is_wait = act == N
        sl = np.minimum(act, N - 1)
        chosen_present = self._present[rows, sl] & ~is_wait & live
        chosen_can = self._can[rows, sl]
        ok = chosen_present & chosen_can
        blocked = chosen_present & ~chosen_can
        unknown = ~is_wait & ~chosen_present & live
        sev = self._sev[rows, sl]
        w = np.minimum(self._ticks[rows, sl], _MAX_TABLE_WAIT)
        reward = np.where(ok, _REWARD[sev, w], 0.0)
        servable = self._servable
        em = (servable & (self._rep == 1)).sum(1)
        urgent = (servable & (self._rep >= 2) & (self._rep <= 3)).any(1)
        anyone = servable.any(1)
        pen = np.where(
            em > 0,
            WAIT_PENALTY_PER_IMMEDIATE * em,
            np.where(urgent, WAIT_PENALTY_URGENT, np.where(anyone, WAIT_PENALTY_ANY, 0.0)),
        )
        reward = np.where(is_wait & live, pen, reward)
        reward = np.where(unknown, UNKNOWN_PATIENT_PENALTY, reward)
        if ok.any():
            b, s = rows[ok], sl[ok]
            self._served[b, s] = True
            self._served_step[b, s] = self._t[b]
            self._served_wait[b, s] = self._ticks[b, s]
            self._served_sev[b, s] = sev[ok]
            self._served_rep[b, s] = self._rep[b, s]
            self._served_reward[b, s] = _REWARD_ROUNDED[sev[ok], w[ok]]
            self._icu_left[b] -= self._icu[b, s]
        advance = live & ~blocked
        self._t += advance
        self._return += reward
        # Envs that ended last step start a new episode now (next-step autoreset).
        restart = np.flatnonzero(~live)
        if restart.size:
            self._reset_envs(restart, self._draw_seeds(restart.size))
        self._derive()
        self._missed += (self._present & (self._sev == 1)).sum(1) * advance
        terminated = advance & (self._t >= self.task.max_steps)
        info: dict[str, Any] = {}
        if terminated.any():
            info = self._final_info(np.flatnonzero(terminated))
            self._needs_reset |= terminated
        if restart.size:
            seeds = np.array([None] * B, dtype=object)
            seeds[restart] = [self._episode_seed[b] for b in restart.tolist()]
            info["episode_seed"] = seeds
            info["_episode_seed"] = ~live
        truncated = np.zeros(B, bool)
        return self._observe(), reward, terminated, truncated, info

    def served_records(self, b: int) -> list[ServedRecord]:
        """Served patients of env ``b`` in service order (what the graders read)."""
        slots = np.flatnonzero(self._served[b])
        slots = slots[np.argsort(self._served_step[b, slots], kind="stable")]
        arr = self.task.arrivals
        return [
            ServedRecord(
                slot=int(s),
                patient_id=arr[self._pid[b, s]].patient_id,
                true_severity=int(self._served_sev[b, s]),
                reported_severity=int(self._served_rep[b, s]),
                wait_time=int(self._served_wait[b, s]),
                reward=float(self._served_reward[b, s]),
                served_step=int(self._served_step[b, s]),
            )
            for s in slots
        ]

    def _final_info(self, done: np.ndarray) -> dict[str, Any]:
        B = self.num_envs
        score = np.zeros(B)
        score[done] = batch_scores(
            self.task,
            self._served[done],
            self._served_step[done],
            self._served_reward[done],
            self._served_wait[done],
            self._served_sev[done],
            self._icu[done] | self._spec[done],
            self._missed[done],
        )
        ret = np.where(np.isin(self._rows, done), self._return, 0.0)
        mask = np.zeros(B, bool)
        mask[done] = True
        return {"score": score, "_score": mask, "episode_return": ret, "_episode_return": mask}

    @property
    def missed_emergencies(self) -> np.ndarray:
        return self._missed.copy()
