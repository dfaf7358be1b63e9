"""PettingZoo multi-agent ED: ``envs.ed_triage_v0`` (docs/spec.md §2.2, §3); the code lives here.

Description
    Three agents run an emergency department on the ``ed`` ruleset
    (:mod:`envs.ed.engine`): ``triage_nurse`` assigns MTS categories, ``pharmacist``
    gives time-critical drugs, ``consultant`` allocates the doctors and the ICU bed.
    Patients follow a task's schedule (``basic_triage``, ``dynamic_queue``,
    ``mass_casualty``; Queue Doctor's ids accepted) or the seeded ``generated`` task;
    each has a charted presentation (:mod:`envs.ed.scenario`).

    One ``step(actions)`` is one *sub-step*: every live agent submits one action,
    applied nurse → pharmacist → consultant; a 10-minute time step ends when all
    three are done (chose END, spent their capacity, or have nothing legal), so an
    episode is ``max_steps`` time steps of 1 to ``max(capacities) + 1`` sub-steps.

Spaces (N = patient slots: 6 / 29 / 21, ``generated``: ``GeneratorParams.max_patients``)

    ==============  ===============================  =====================================
    agent           action (Discrete)                observation["observation"]
    ==============  ===============================  =====================================
    triage_nurse    N*5 + 1: ``slot*5 + cat-1``;     N x 26 (chart, self-report, triage
                    last = END                       state) + 6 context
    pharmacist      N*15 + 1: ``slot*15 + drug``;    N x 37 (flowchart, category,
                    last = END                       allergies, given) + 19 (stock …)
    consultant      N + 1: serve ``slot``;           N x 10 (visible category, wait,
                    last = END                       flags, servable) + 8 context
    ==============  ===============================  =====================================

    Every observation is ``Dict(observation=Box(0, high, float32),
    action_mask=Box(0, 1, int8))``; column names are in :mod:`envs.ed.observation`.
    END is always legal, so a mask is never empty and a masked policy always has a
    legal sample. An illegal action (mask 0, or out of range) is a counted no-op:
    ``infos[agent]["illegal_action"]`` is True, the role's ``illegal_action`` term is
    −0.01 and it spends one unit of the role's capacity — never an exception.

    Presentations: the numeric spaces carry the chart's numbers only; the complaint
    text and history are reached in-process through :meth:`EdTriageParallelEnv.presentation`
    (``PolicyContext.presentation`` hands it to policies) or, with
    ``text_observations=True``, as ``infos[agent]["charts"]`` (slot → text card) —
    the spaces stay numeric for RLlib either way.

Rewards
    Named terms (``envs.ed.config``), reported every step in
    ``infos[agent]["reward_terms"]`` (shared terms + that role's terms):
    ``serve`` (Queue Doctor's table on true severity and wait, capped by the arrival
    severity's: deterioration never pays), ``waiting_immediate`` (−0.03 per true
    category-1 patient left waiting at the end of a time step) — shared; nurse:
    ``under_triage`` (−0.3, a true 1–2 triaged ≥ 2 levels low), ``idle_triage``
    (−0.02 per unused triage slot while untriaged patients wait); pharmacist:
    ``adverse_event`` (−0.5: an allergy or an unindicated high-alert drug; the
    patient deteriorates at once), ``prevented_deterioration`` (+0.2: the indicated
    drug stopped a countdown); consultant: ``idle_doctors`` (−0.02 per unused doctor
    slot while someone was servable); each: ``illegal_action`` (−0.01).
    ``reward_mode="team"``: every agent gets the sum of all terms. ``"individual"``:
    every agent gets the shared terms (their joint outcome) plus its own role terms.
    Team reward bounds per step: ``EdConfig.reward_bounds(N, doctors)`` =
    [−0.03·N − 0.3 − 0.5 − 0.02·(doctors + 2) − 0.03, 1.2] with the defaults.

Episode end
    All agents are ``terminated`` together when the time step reaches ``max_steps``
    (never truncated); each gets a final observation and reward. The final infos
    carry ``score`` and ``grader`` (the task's formula with the ``ed`` fixes,
    normalised by the episode's clairvoyant bound; ``grader_score`` repeats it — in
    ``ed_triage_v1`` ``score`` is the share of the bound instead), ``kpis`` (clinical
    KPIs; None where undefined), ``oracle_value``, ``episode_return`` and
    ``episode_terms``.

Arguments
    ``task`` (name or alias, or ``"generated"``), ``generator_params``
    (:class:`~envs.generator.GeneratorParams`, ``generated`` only; horizon, doctors and
    ICU beds fix the spaces, ``max_patients`` the slot count), ``ruleset`` (``"ed"``, the
    only one with three roles), ``reward_mode`` (``"team"`` | ``"individual"``), ``config``
    (:class:`~envs.ed.config.EdConfig`: capacities, stock, reward constants),
    ``normaliser`` (``"oracle"``: the exact bound, an ILP solved once per episode and
    cached; ``"static"``: Σ wait-0 serve rewards, a cheap loose bound for throughput
    runs), ``text_observations`` (bool), ``render_mode`` (``"ansi"`` | None),
    ``seed_range`` (as in the Gymnasium queue envs).
    ``reset(seed=s)`` plays episode seed s (Queue Doctor's perturbation with
    ``random.Random(s)``, presentations from ``numpy.random.default_rng(s)``); a later
    ``reset()`` draws the next episode seed from the env's generator; a never-seeded
    env plays the schedule as written with presentations of seed 0;
    ``options={"episode_seed": s}`` forces one.
    ``generated``: episode seed s plays ``generate_task(s, generator_params)`` as drawn
    (no classic perturbation on top; presentations from ``default_rng(s)``); an
    unseeded episode plays generator seed 0. ``env.task`` is the current episode's
    task (before the first reset: generator seed 0's).

Version history
    v0: first release (``ed`` ruleset, three roles, four tasks; ``generated`` with
    ``generator_params`` and ``max_patients`` padded slots).
"""

from __future__ import annotations

from typing import Any

import numpy as np
from gymnasium import spaces
from gymnasium.utils import seeding
from pettingzoo import ParallelEnv
from pettingzoo.utils.conversions import parallel_to_aec_wrapper
from pettingzoo.utils.wrappers import OrderEnforcingWrapper

from envs.clinical import Presentation, format_presentation
from envs.ed.config import (
    AGENTS,
    ROLE_OF,
    ROLE_TERMS,
    SHARED_TERMS,
    V1_SHARED_TERMS,
    EdConfig,
    Place,
    Role,
)
from envs.ed.engine import EdState, action_sizes, initial_state, masks, substep
from envs.ed.graders import episode_kpis, grade, grader_score
from envs.ed.observation import ENCODERS, MASK_DTYPE, OBS_DTYPE, encode_all, highs, obs_size
from envs.ed.scenario import build_ed_scenario
from envs.generator import GeneratorParams, task_source
from envs.reward import fast_serve_reward
from envs.seeding import check_seed_range
from envs.seeding import episode_seed as next_episode_seed
from envs.types import TaskSpec
from envs.validation import check_action, check_agent_ids, check_seed

_ROLES = tuple(Role)
_WAITING = int(Place.WAITING)  # plain int: enum class lookups are slow on hot paths
REWARD_MODES = ("team", "individual")
NORMALISERS = ("oracle", "static")
ED_RULESETS = ("ed",)


def _static_optimum(state: EdState) -> float:
    return sum(round(fast_serve_reward(int(s), 0), 4) for s in state.arrival_severity)


class EdTriageParallelEnv(ParallelEnv):
    metadata = {"name": "ed_triage_v0", "render_modes": ["ansi"], "is_parallelizable": True}

    def __init__(
        self,
        task: str = "mass_casualty",
        ruleset: str = "ed",
        reward_mode: str = "team",
        config: EdConfig | None = None,
        normaliser: str = "oracle",
        text_observations: bool = False,
        render_mode: str | None = None,
        seed_range: tuple[int, int] | None = None,
        generator_params: GeneratorParams | None = None,
    ) -> None:
        if ruleset not in ED_RULESETS:
            raise ValueError(f"ed_triage_v0 needs ruleset 'ed' (three roles), got {ruleset!r}")
        if reward_mode not in REWARD_MODES:
            raise ValueError(f"reward_mode must be one of {REWARD_MODES}, got {reward_mode!r}")
        if normaliser not in NORMALISERS:
            raise ValueError(f"normaliser must be one of {NORMALISERS}, got {normaliser!r}")
        if render_mode not in (None, *self.metadata["render_modes"]):
            raise ValueError(f"render_mode must be 'ansi' or None, got {render_mode!r}")
        check_seed_range(seed_range)
        self._tasks, self.config = self._resolve(task, generator_params, config)
        self.task = self._tasks.template
        self.ruleset = ruleset
        self.reward_mode = reward_mode
        self.normaliser = normaliser
        self.text_observations = text_observations
        self.render_mode = render_mode
        self.seed_range = seed_range
        self.n_slots = self._tasks.n_slots
        self.possible_agents = list(AGENTS)
        self.agents: list[str] = []
        sizes = action_sizes(self.n_slots)
        t = self.task
        self._action_spaces = {a: spaces.Discrete(sizes[ROLE_OF[a]]) for a in AGENTS}
        self._observation_spaces = {
            a: spaces.Dict(
                {
                    "observation": spaces.Box(
                        0.0,
                        highs(ROLE_OF[a], self.n_slots, t.max_steps, t.num_doctors,
                              t.icu_beds, self.config),
                        shape=(obs_size(ROLE_OF[a], self.n_slots),),
                        dtype=OBS_DTYPE,
                    ),
                    "action_mask": spaces.Box(0, 1, shape=(sizes[ROLE_OF[a]],), dtype=MASK_DTYPE),
                }
            )
            for a in AGENTS
        }  # fmt: skip
        self.state: EdState | None = None
        self.episode_seed: int | None = None
        self._np_random, _ = seeding.np_random(None)
        self._seeded = False
        self._returns: dict[str, float] = {}
        self._episode_terms: dict[str, dict[str, float]] = {}
        self._masks: dict[Role, np.ndarray] = {}
        self._end_actions = tuple((r.agent, sizes[r] - 1) for r in Role)
        # check_action's messages, built once (f-strings per agent per step add up).
        self._action_checks = tuple(
            (agent, end, f"an int in 0..{end} ({end} = END)", f"{agent}'s action")
            for agent, end in self._end_actions
        )
        shared = V1_SHARED_TERMS if self.config.is_v1 else SHARED_TERMS
        self._info_terms = {r: (*shared, *ROLE_TERMS[r]) for r in Role}
        self._base = self._base_info

    @staticmethod
    def _resolve(task: str, generator_params: GeneratorParams | None, config: EdConfig | None):
        """(task source, config) of the env (``ed_triage_v1`` adds its scenarios)."""
        return task_source(task, generator_params), config or EdConfig()

    # PettingZoo wants the same space object on every call.
    def observation_space(self, agent: str) -> spaces.Dict:
        return self._observation_spaces[agent]

    def action_space(self, agent: str) -> spaces.Discrete:
        return self._action_spaces[agent]

    # ------------------------------------------------------------------ episode
    def reset(
        self, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[dict[str, dict], dict[str, dict]]:
        seed = check_seed(seed)
        if seed is not None:
            self._np_random, _ = seeding.np_random(seed)
            self._seeded = True
        episode_seed = next_episode_seed(
            seed, self._np_random, self._seeded, self.seed_range, options
        )
        self.episode_seed = episode_seed
        self.task = self._tasks.task_for(episode_seed)
        scenario = build_ed_scenario(self.task, episode_seed, self.config)
        self.state = initial_state(scenario, self.config, self.n_slots)
        self.agents = list(self.possible_agents)
        self._returns = dict.fromkeys(self.agents, 0.0)
        self._episode_terms = {a: {} for a in self.agents}
        m = self._masks = masks(self.state)
        infos = {a: self._base_info(a) for a in self.agents}
        return self._observations(m), infos

    def step(self, actions: dict[str, Any]):
        s = self.state
        if s is None or not self.agents:
            raise RuntimeError("call reset() before step() (the episode is over)")
        check_agent_ids(actions, self.possible_agents)
        joint = []
        for agent, end, expected, name in self._action_checks:
            a = actions.get(agent, end)  # a missing agent ENDs
            # Refused before the state changes; an out-of-range int stays a counted no-op.
            joint.append(a if type(a) is int else check_action(a, expected, name))
        res = substep(s, tuple(joint), start_masks=self._masks)
        m = self._masks = res.masks
        shared = res.shared
        shared_total = sum(shared.values())
        role_totals = [sum(res.terms[role].values()) for role in _ROLES]
        team = shared_total + sum(role_totals)
        individual = self.reward_mode != "team"
        rewards, infos = {}, {}
        base = self._base
        for agent in self.agents:
            role = ROLE_OF[agent]
            role_terms = res.terms[role]
            r = float(shared_total + role_totals[role] if individual else team)
            rewards[agent] = r
            self._returns[agent] += r
            acc = self._episode_terms[agent]
            # The terms are dict(shared) updated with the role's, in that key order.
            for k, v in shared.items():
                acc[k] = acc.get(k, 0.0) + (role_terms[k] if k in role_terms else v)
            for k, v in role_terms.items():
                if k not in shared:
                    acc[k] = acc.get(k, 0.0) + v
            info = base(agent)
            info["reward_terms"] = {k: role_terms[k] if k in role_terms else shared.get(k, 0.0)
                                    for k in self._info_terms[role]}  # fmt: skip
            info["illegal_action"] = res.illegal[role]
            info["time_advanced"] = res.advanced
            infos[agent] = info
        obs = self._observations(m)
        done = s.done
        terminations = dict.fromkeys(self.agents, done)
        truncations = dict.fromkeys(self.agents, False)
        if done:
            final = self.episode_summary()
            for agent in self.agents:
                infos[agent].update(final)
                infos[agent]["episode_return"] = self._returns[agent]
                infos[agent]["episode_terms"] = dict(self._episode_terms[agent])
            self.agents = []
        return obs, rewards, terminations, truncations, infos

    def episode_summary(self) -> dict[str, Any]:
        """Score, grader dict, KPIs and the oracle value of the episode so far."""
        s = self.state
        assert s is not None
        if self.normaliser == "oracle":
            from envs.ed.bound import solve  # scipy only when an episode is graded

            optimum = solve(s.scenario.task, self.episode_seed, self.config).value
        else:
            optimum = _static_optimum(s)
        g = grade(s, optimum)
        kpis = {k: (None if v != v else v) for k, v in episode_kpis(s).items()}  # NaN → None
        return {"score": g["score"], "grader_score": grader_score(g), "grader": g, "kpis": kpis,
                "oracle_value": optimum, "normaliser": self.normaliser}  # fmt: skip

    # ------------------------------------------------------------------ views
    def _base_info(self, agent: str) -> dict[str, Any]:
        s = self.state
        info: dict[str, Any] = {
            "step": s.step,
            "substep": s.substep,
            "episode_seed": self.episode_seed,
        }
        if self.text_observations:
            info["charts"] = self.charts(agent)
        return info

    def _observations(self, m) -> dict[str, dict[str, np.ndarray]]:
        enc = encode_all(self.state, m)  # one pass; m = the current masks
        return {
            a: {"observation": enc[ROLE_OF[a]], "action_mask": m[ROLE_OF[a]]}
            for a in self.possible_agents
        }

    def observe(self, agent: str) -> dict[str, np.ndarray]:
        role = ROLE_OF[agent]
        return {"observation": ENCODERS[role](self.state), "action_mask": masks(self.state)[role]}

    def task_for(self, episode_seed: int | None) -> TaskSpec:
        """The task episode seed ``episode_seed`` plays (``reset`` sets ``env.task`` to
        it): the fixed task, or the seed's draw of ``generated`` / a suite scenario."""
        return self._tasks.task_for(episode_seed)

    def presentation(self, slot: int) -> Presentation | None:
        """The charted presentation of a waiting patient (None if the slot is empty).
        Policies reach it through ``PolicyContext.presentation``."""
        s = self.state
        if s is None or not 0 <= slot < s.n or s.place[slot] != _WAITING:
            return None
        return s.scenario.presentations[slot]

    def charts(self, agent: str) -> dict[int, str]:
        """Text cards of the waiting patients as ``agent`` may see them (the nurse and
        pharmacist read the chart; the consultant only the triage line)."""
        s = self.state
        out = {}
        for slot in s.waiting():
            slot = int(slot)
            cat = int(s.triaged[slot])
            line = f"category {cat}" if cat else f"untriaged, self-reported {int(s.reported[slot])}"
            if agent == "consultant" and not cat and not self.config.consultant_sees_self_report:
                line = "untriaged"
            if agent == "consultant":
                out[slot] = f"{s.scenario.patients[slot].patient_id}: {line}"
            else:
                out[slot] = f"{line}\n{format_presentation(s.scenario.presentations[slot])}"
        return out

    def render(self) -> str | None:
        if self.render_mode != "ansi" or self.state is None:
            return None
        s = self.state
        lines = [f"{self.task.name} step {s.step}/{s.max_steps} sub-step {s.substep} "
                 f"served {len(s.served)} ICU {s.icu_available}/{self.task.icu_beds}"]  # fmt: skip
        for slot in s.waiting():
            p = s.scenario.patients[slot]
            lines.append(
                f"  {p.patient_id} reported {s.reported[slot]} triaged {s.triaged[slot] or '-'} "
                f"waited {s.step - s.arrival[slot]} cond {s.condition[slot]}"
            )
        return "\n".join(lines)

    def close(self) -> None:
        pass


def parallel_env(**kwargs: Any) -> EdTriageParallelEnv:
    """The parallel env (see the module docstring for the arguments)."""
    return EdTriageParallelEnv(**kwargs)


class _StrictAEC(parallel_to_aec_wrapper):
    """PettingZoo's AEC conversion, checking each action when it is given rather than
    when the last agent's turn flushes the joint action (a bad action would otherwise
    leave the other agents' queued actions behind)."""

    def step(self, action: Any) -> None:
        agent = self.agent_selection
        if action is not None or not (self.terminations[agent] or self.truncations[agent]):
            end = int(self.env.action_space(agent).n) - 1
            action = check_action(action, f"an int in 0..{end} ({end} = END)", f"{agent}'s action")
        super().step(action)


def env(**kwargs: Any):
    """The AEC env: PettingZoo's ``parallel_to_aec`` over :func:`parallel_env`."""
    return OrderEnforcingWrapper(_StrictAEC(parallel_env(**kwargs)))


raw_env = EdTriageParallelEnv
EdTriageParallelEnv.__doc__ = __doc__
__all__ = ["EdTriageParallelEnv", "env", "parallel_env", "raw_env"]
