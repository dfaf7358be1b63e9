"""Single-agent Gymnasium queue envs: ``edmarl/BasicTriage-v0``,
``edmarl/DynamicQueue-v0``, ``edmarl/MassCasualty-v0``.

Description
    The agent is the ED consultant of Queue Doctor's MDP: every step it serves one
    waiting patient or waits (``ruleset="classic"``, the engine of
    :mod:`envs.classic.dynamics`, bit for bit). It sees reported severities only; the reward
    uses the true ones.

Action space
    ``Discrete(N + 1)``: ``a < N`` serves the patient in slot ``a`` (slots are arrival
    order, see :mod:`envs.classic.observation`); ``a == N`` waits. N = patients in the task
    (6 / 29 / 21). Illegal actions keep Queue Doctor's semantics and are reported in
    ``info["invalid_action"]``: an empty slot is an unknown patient (−0.1, time
    advances); a waiting but resource-blocked patient returns 0 and time does *not*
    advance. ``action_mask`` marks the legal ones.

Observation space
    ``Dict(observation=Box(0, high, (N*8 + 7,), float32), action_mask=Box(0, 1, (N+1,),
    int8))``; the layout, features and sentinels are documented in
    :mod:`envs.classic.observation`.

Rewards
    Per step: the serve reward of docs/spec.md §2.1 (MTS decay on true severity and wait), the
    ``wait()`` penalty (−0.3 per servable reported-1 patient, else −0.10 if any
    servable reported 2–3, else −0.05 if any servable), −0.1 for an unknown patient.
    Bounds per step: [−0.3·N, 1].

Episode end
    ``terminated`` when the step counter reaches ``max_steps`` (10 / 20 / 30); never
    truncated. At the end ``info["score"]`` is the task's grader score and
    ``info["grader"]`` the full grader dict.

Arguments
    ``task`` (name or Queue Doctor alias), ``ruleset`` (``"classic"``; the registered
    ids' entry point :func:`make_queue_env` sends ``"ed"`` to
    :class:`envs.ed.gym_env.EdConsultantEnv`, the consultant of the multi-agent ED),
    ``render_mode`` (``"ansi"`` or None),
    ``seed_range`` (``(lo, hi)`` or None): when set, every episode seed, drawn or
    passed to ``reset``, is mapped into ``[lo, hi)`` — training envs use it so that
    evaluation seeds outside the range stay held out.
    ``reset(seed=s)`` plays the episode perturbed with ``random.Random(s)`` exactly as
    Queue Doctor's ``start_task(task, seed=s)``; ``reset()`` after a seeded reset draws
    the next episode seed from the env's generator; ``reset()`` on a never-seeded env,
    or ``options={"episode_seed": None}``, plays the schedule as written.

Version history
    v0: first release (classic ruleset); ``gym.make(id, ruleset="ed")`` gives the
    ``ed`` consultant env (:mod:`envs.ed.gym_env`), the classic env is unchanged.
"""

from __future__ import annotations

import random
from collections import OrderedDict
from typing import Any, NamedTuple, SupportsFloat

import gymnasium as gym
import numpy as np
from gymnasium import spaces
from gymnasium.envs.registration import load_env_creator
from gymnasium.utils import seeding

from envs.classic import dynamics
from envs.classic.graders import grade
from envs.classic.observation import (
    MASK_DTYPE,
    OBS_DTYPE,
    EpisodeEncoder,
    episode_tables,
    feature_highs,
    obs_size,
)
from envs.classic.scenario import perturb_schedule, scenario_from_draws
from envs.classic.tool_session import queue_state
from envs.rulesets import RULESETS, single_agent_ruleset
from envs.seeding import check_seed_range
from envs.seeding import episode_seed as next_episode_seed
from envs.tasks import get_task
from envs.types import EpisodePatient, Scenario
from envs.validation import check_action, check_seed

EPISODE_CACHE_SIZE = 512
"""Episodes (patients, encoder tables and step-0 state: ~5 kB on basic_triage, where
seeds 0–1999 draw ~240 distinct schedules and 0–19999 draw 684) an env keeps for seeds
that redraw a schedule it has played; past this it starts over."""
EPISODE_CACHE_PROBE = 64
"""Resets after which an env whose seeds rarely redraw a schedule stops keeping them."""
SEED_CACHE_SIZE = 512
"""Episode seeds an env remembers the drawn schedule of (least recently used dropped
first; a few hundred bytes each): replaying a seed skips seeding ``random.Random`` and
its draws, e.g. when :func:`agents.evaluation.evaluate` plays several policies on the
same seeds; the episode itself then comes from the per-schedule cache when kept."""


class _Episode(NamedTuple):
    """What a reset needs of a drawn schedule, kept for replays: the patients, the
    encoder tables and the step-0 state (templates: only copies are played), the
    latter two None when the env no longer keeps episodes (see ``QueueEnv._episode``)."""

    patients: tuple[EpisodePatient, ...]
    tables: tuple[np.ndarray, np.ndarray] | None
    start: dynamics.ClassicState | None


_INVALID = {
    dynamics.Outcome.UNKNOWN_PATIENT: "unknown_patient",
    dynamics.Outcome.BLOCKED: "blocked",
}
# Hot-path aliases (module globals: one dict lookup each).
_SERVED, _WAITED = dynamics.SERVED, dynamics.WAITED
_serve, _wait = dynamics.serve, dynamics.wait


class QueueEnv(gym.Env[dict[str, np.ndarray], np.int64]):
    metadata = {"render_modes": ["ansi"], "render_fps": 4}
    _pending_seed: int | None = None
    _rng: np.random.Generator | None = None
    _rng_seed: int | None = None

    def __init__(
        self,
        task: str = "mass_casualty",
        ruleset: str = "classic",
        render_mode: str | None = None,
        seed_range: tuple[int, int] | None = None,
    ) -> None:
        check_seed_range(seed_range)
        self.seed_range = seed_range
        self.task = get_task(task)
        self.rules = single_agent_ruleset(ruleset)
        if render_mode not in (None, *self.metadata["render_modes"]):
            raise ValueError(f"render_mode must be one of {self.metadata['render_modes']} or None")
        self.render_mode = render_mode
        self.n_slots = self.task.num_patients
        self.wait_action = self.n_slots
        self._max_steps = self.task.max_steps
        self._action_form = f"an int in 0..{self.n_slots} ({self.n_slots} waits)"
        self.action_space = spaces.Discrete(self.n_slots + 1)
        self.observation_space = spaces.Dict(
            {
                "observation": spaces.Box(
                    0.0,
                    feature_highs(self.task, self.n_slots),
                    shape=(obs_size(self.n_slots),),
                    dtype=OBS_DTYPE,
                ),
                "action_mask": spaces.Box(0, 1, shape=(self.n_slots + 1,), dtype=MASK_DTYPE),
            }
        )
        self._seeded = False
        self._episodes: dict[tuple, _Episode] | None = {}
        self._by_seed: OrderedDict[int, tuple[tuple[int, int, int], ...]] = OrderedDict()
        self._resets = self._hits = 0
        self._draw_rng = random.Random()  # re-seeded per episode (perturb_schedule)
        self.state: dynamics.ClassicState | None = None
        self._enc: EpisodeEncoder | None = None
        self.episode_seed: int | None = None
        self.episode_return = 0.0

    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
        seed = check_seed(seed)
        if seed is not None:  # super().reset(seed), deferred (see _np_random)
            self._pending_seed = seed
            self._seeded = True
        # The generator is only drawn from when no seed is given (seeding.episode_seed).
        rng = self.np_random if seed is None and self._seeded else None
        episode_seed = next_episode_seed(
            seed,
            rng,  # type: ignore[arg-type]
            self._seeded,
            self.seed_range,
            options,
        )
        self.episode_seed = episode_seed
        by_seed = self._by_seed
        draws = by_seed.get(episode_seed) if episode_seed is not None else None
        if draws is None:
            draws = tuple(perturb_schedule(self.task, episode_seed, self._draw_rng))
            if episode_seed is not None:
                by_seed[episode_seed] = draws
                if len(by_seed) > SEED_CACHE_SIZE:
                    by_seed.popitem(last=False)
        else:
            by_seed.move_to_end(episode_seed)
        episode = self._episode(draws)
        scenario = Scenario(self.task, episode_seed, episode.patients)
        start = episode.start
        self.state = self.rules.initial_state(scenario) if start is None else start.copy(scenario)
        if self._enc is None:
            self._enc = EpisodeEncoder(scenario, self.n_slots, episode.tables)
        else:
            self._enc.start(scenario, episode.tables)
        self.episode_return = 0.0
        return self._obs(), {"task": self.task.name, "episode_seed": episode_seed}

    def _episode(self, draws: tuple[tuple[int, int, int], ...]) -> _Episode:
        """The episode of ``draws``, with its encoder tables and step-0 state when kept.
        Seeds often redraw a schedule already played (basic_triage: ~10 % of seeds
        draw a new one), so its patients, tables and step-0 state are kept, keyed by
        the draws — while at least a quarter of the first :data:`EPISODE_CACHE_PROBE`
        resets hit (on mass_casualty almost every seed draws a new schedule and keeping
        them costs more than it saves)."""
        cache = self._episodes
        if cache is None:
            return _Episode(scenario_from_draws(self.task, None, draws).patients, None, None)
        known = cache.get(draws)
        self._resets += 1
        if known is not None:
            self._hits += 1
            return known
        scenario = scenario_from_draws(self.task, None, draws)
        if self._resets == EPISODE_CACHE_PROBE and 4 * self._hits < self._resets:
            self._episodes = None
            return _Episode(scenario.patients, None, None)
        if len(cache) >= EPISODE_CACHE_SIZE:
            cache.clear()
        episode = cache[draws] = _Episode(
            scenario.patients,
            episode_tables(scenario, self.n_slots),
            self.rules.initial_state(scenario),
        )
        return episode

    # Gymnasium's reset(seed) builds the generator at once, which costs as much as a
    # whole episode's steps; only a later unseeded reset reads it, so it is built from
    # the same seed on first read of ``_np_random`` / ``_np_random_seed`` (Gymnasium's
    # np_random, np_random_seed and its env checker all go through these two).
    def _materialise_rng(self) -> None:
        seed, self._pending_seed = self._pending_seed, None
        self._rng, self._rng_seed = seeding.np_random(seed)

    @property  # type: ignore[override]
    def _np_random(self) -> np.random.Generator | None:
        if self._pending_seed is not None:
            self._materialise_rng()
        return self._rng

    @_np_random.setter
    def _np_random(self, value: np.random.Generator | None) -> None:
        self._pending_seed, self._rng = None, value

    @property  # type: ignore[override]
    def _np_random_seed(self) -> int | None:
        if self._pending_seed is not None:
            self._materialise_rng()
        return self._rng_seed

    @_np_random_seed.setter
    def _np_random_seed(self, value: int | None) -> None:
        self._pending_seed, self._rng_seed = None, value

    def step(
        self, action: Any
    ) -> tuple[dict[str, np.ndarray], SupportsFloat, bool, bool, dict[str, Any]]:
        state = self.state
        if state is None:
            raise RuntimeError("call reset() before step()")
        if state.step >= self._max_steps:
            raise RuntimeError("the episode is over (terminated=True); call reset()")
        a = action if type(action) is int else check_action(action, self._action_form)
        if not 0 <= a <= self.n_slots:
            raise ValueError(
                f"action {a} out of range: 0..{self.n_slots - 1} serve, {self.n_slots} waits"
            )
        if a == self.wait_action:
            tr = _wait(state)
        else:
            tr = _serve(state, a)
            if tr.outcome is _SERVED:
                self._enc.mark_served(a)  # type: ignore[union-attr]
        self.episode_return += tr.reward
        info: dict[str, Any] = {}
        # Identity tests: an Enum's hash is a Python-level call, a dict lookup costs one.
        outcome = tr.outcome
        if outcome is not _SERVED and outcome is not _WAITED:
            info["invalid_action"] = _INVALID[outcome]
        terminated = state.step >= self._max_steps
        if terminated:
            g = grade(state)
            info["score"] = g["score"]
            info["grader"] = g
            info["episode_return"] = self.episode_return
            info["missed_emergencies"] = state.missed_emergencies
        return self._enc.observe(state), tr.reward, terminated, False, info  # type: ignore[union-attr]

    def _obs(self) -> dict[str, np.ndarray]:
        return self._enc.observe(self.state)  # type: ignore[union-attr, arg-type]

    def render(self) -> str | None:
        if self.render_mode != "ansi" or self.state is None:
            return None
        q = queue_state(self.state)
        lines = [
            f"{self.task.title}  step {q['step']}/{q['max_steps']}  "
            f"served {q['patients_served']}  return {self.episode_return:.3f}"
        ]
        for p in q["queue"]:
            flags = "".join(
                f for f, on in (("I", p["requires_icu"]), ("S", p["requires_specialist"])) if on
            )
            cd = p.get("deterioration_countdown")
            lines.append(
                f"  {p['patient_id']} reported {p['severity']} waited {p['wait_time']:>2} "
                f"{p['condition']:<8} {flags:<2} {'' if cd is None else f'd{cd}':<3} "
                f"{'' if p['can_serve_now'] else 'BLOCKED'}"
            )
        return "\n".join(lines)


QueueEnv.__doc__ = __doc__

GYM_IDS = {
    "edmarl/BasicTriage-v0": "basic_triage",
    "edmarl/DynamicQueue-v0": "dynamic_queue",
    "edmarl/MassCasualty-v0": "mass_casualty",
}


def make_queue_env(task: str = "mass_casualty", ruleset: str = "classic", **kwargs: Any) -> gym.Env:
    """Entry point of the queue ids: the ruleset's single-agent env (its registry entry's
    ``gym_env``: :class:`QueueEnv` for ``classic``, loaded lazily otherwise, as
    ``envs.ed.gym_env`` imports the agents package); unknown rulesets go to
    :class:`QueueEnv`, which refuses them."""
    entry = RULESETS.get(ruleset) if isinstance(ruleset, str) else None
    cls = QueueEnv if entry is None else load_env_creator(entry.gym_env)
    return cls(task=task, ruleset=ruleset, **kwargs)
