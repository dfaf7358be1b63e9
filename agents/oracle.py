"""Clairvoyant oracle: the exact maximum total serve reward of an episode.

It knows every patient's true severity, deterioration and future arrival, and solves
the serve schedule as an integer program with :func:`scipy.optimize.milp`:

* ``x[p, t] = 1`` if patient ``p`` is served at step ``t`` (only for ``arrival ≤ t <
  max_steps`` and patients the doctors can ever treat: a specialist needs 2 doctors);
* one serve per step (``classic``: one patient per step whatever the doctor count);
* each patient at most once; at most ``icu_beds`` ICU patients in the episode (beds
  are consumed for good);
* maximise Σ r(p, t)·x[p, t], where r is the serve reward (rounded to 4 places, as the
  graders sum it) of p's true severity at step t (deteriorated once its countdown ran
  out) and its wait at t.

A patient's reward depends only on when *it* is served, so the program is exact for
``classic``. Steps the program leaves idle are filled with patients that are not
scheduled and earn 0 (never an ICU patient), so the replay waits only when nobody else
can be served. ``value`` is Σ served rewards of the replay, which
:class:`~envs.tool_api.ToolSession` reproduces exactly from ``actions``.

How to run::

    python -m agents.oracle --task mass_casualty --seed 42
"""

from __future__ import annotations

import argparse
import json
from dataclasses import dataclass

import numpy as np
from scipy.optimize import Bounds, LinearConstraint, milp

from agents.base import Observation, Policy, PolicyContext
from envs import dynamics
from envs.graders import grade
from envs.reward import REWARD_DECIMALS, serve_reward
from envs.rulesets import single_agent_ruleset
from envs.scenario import build_scenario
from envs.tasks import get_task
from envs.types import EpisodePatient, Scenario

WAIT = "wait"
ILP_TOLERANCE = 1e-6


@dataclass(frozen=True)
class OracleResult:
    task: str
    seed: int | None
    ruleset: str
    value: float  # Σ served rewards (4-place rounded, grader order) of the replay
    actions: tuple[str, ...]  # one patient id or "wait" per step, replayable
    score: float  # the task grader's score of the replay
    grader: dict
    ilp_objective: float

    def as_dict(self) -> dict:
        return {
            "task": self.task,
            "seed": self.seed,
            "ruleset": self.ruleset,
            "value": self.value,
            "score": self.score,
            "actions": list(self.actions),
            "grader": self.grader,
        }


def _ticks(p: EpisodePatient, t: int) -> int:
    """Wait ticks of a waiting patient at step t (arrivals tick in their first step)."""
    return t - p.arrival_step + (1 if p.arrival_step > 0 else 0)


def reward_at(p: EpisodePatient, t: int) -> float:
    """Rounded serve reward of patient p if served at step t (p still waiting)."""
    w = _ticks(p, t)
    sev = p.severity
    c = p.deterioration_countdown
    if c > 0 and w >= c:
        sev = max(1, sev - 1)
    return round(serve_reward(sev, w), REWARD_DECIMALS)


def _schedule(scenario: Scenario) -> tuple[dict[int, int], float]:
    """Solve the ILP; return {step: slot} and the objective."""
    task = scenario.task
    horizon = task.max_steps
    var_p, var_t, coef = [], [], []
    for p in scenario.patients:
        if p.doctors_needed > task.num_doctors:
            continue
        for t in range(p.arrival_step, horizon):
            r = reward_at(p, t)
            if r > 0:
                var_p.append(p.slot)
                var_t.append(t)
                coef.append(r)
    if not coef:
        return {}, 0.0
    n_var = len(coef)
    cols = np.arange(n_var)
    rows_t = np.zeros((horizon, n_var))
    rows_t[var_t, cols] = 1
    n_pat = len(scenario.patients)
    rows_p = np.zeros((n_pat, n_var))
    rows_p[var_p, cols] = 1
    icu = np.array([scenario.patients[s].requires_icu for s in var_p], dtype=float)
    constraints = [
        LinearConstraint(rows_t, 0, 1),
        LinearConstraint(rows_p, 0, 1),
        LinearConstraint(icu[None, :], 0, task.icu_beds),
    ]
    res = milp(
        c=-np.asarray(coef),
        constraints=constraints,
        integrality=np.ones(n_var),
        bounds=Bounds(0, 1),
        # HiGHS stops at a 1e-4 relative gap by default; the bound must be exact.
        options={"mip_rel_gap": 0.0},
    )
    if not res.success:
        raise RuntimeError(f"oracle ILP failed: {res.message}")
    chosen = {var_t[i]: var_p[i] for i in np.flatnonzero(res.x > 0.5)}
    return chosen, float(-res.fun)


def solve(task: str, seed: int | None = None, ruleset: str = "classic") -> OracleResult:
    """Exact clairvoyant schedule for one episode of ``task`` (perturbed by ``seed``)."""
    spec = get_task(task)
    rules = single_agent_ruleset(ruleset)
    scenario = build_scenario(spec, seed)
    plan, objective = _schedule(scenario)
    scheduled = set(plan.values())
    state = rules.initial_state(scenario)
    pats = scenario.patients
    actions: list[str] = []
    while not state.done:
        slot = plan.get(state.step)
        if slot is None:  # idle step: serve someone who earns nothing anyway
            slot = next(
                (
                    s
                    for s in state.queue
                    if s not in scheduled
                    and not pats[s].requires_icu
                    and dynamics.can_serve(state, s)
                ),
                None,
            )
        if slot is None:
            actions.append(WAIT)
            dynamics.wait(state)
        else:
            tr = dynamics.serve(state, slot)
            if tr.outcome is not dynamics.Outcome.SERVED:
                raise AssertionError(f"oracle schedule infeasible at step {state.step}")
            actions.append(pats[slot].patient_id)
    value = sum(s.reward for s in state.served)
    if abs(value - objective) > ILP_TOLERANCE:
        raise AssertionError(f"replayed value {value} != ILP objective {objective}")
    g = grade(state)
    return OracleResult(
        task=spec.name,
        seed=seed,
        ruleset=rules.name,
        value=value,
        actions=tuple(actions),
        score=g["score"],
        grader=g,
        ilp_objective=objective,
    )


class OraclePolicy(Policy):
    """Plays the solved schedule of each episode: ``reset(seed)`` solves the episode the
    env was reset with (same task, same seed), ``act`` replays it slot by slot."""

    name = "oracle"

    def __init__(self, context: PolicyContext | None = None) -> None:
        if context is None:
            raise ValueError("the oracle needs a PolicyContext (task, ruleset, n_slots)")
        super().__init__(context)
        self.result: OracleResult | None = None
        self._plan: list[int] = []
        self._i = 0

    def reset(self, seed: int | None = None) -> None:
        ctx = self.context
        assert ctx is not None
        self.result = solve(ctx.task.name, seed, ctx.ruleset)
        slot_of = {p.patient_id: p.slot for p in build_scenario(ctx.task, seed).patients}
        self._plan = [ctx.n_slots if a == WAIT else slot_of[a] for a in self.result.actions]
        self._i = 0

    def act(self, observation: Observation) -> int:
        if self._i >= len(self._plan):
            raise RuntimeError("oracle: call reset(seed) with the env's episode seed first")
        a = self._plan[self._i]
        self._i += 1
        if not observation["action_mask"][a]:
            raise RuntimeError("oracle replay diverged: was the env reset with another seed?")
        return a


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description="Clairvoyant oracle: exact best serve schedule.")
    ap.add_argument("--task", default="mass_casualty", help="task name or Queue Doctor alias")
    ap.add_argument("--seed", type=int, default=None, help="episode seed (none: as written)")
    ap.add_argument("--ruleset", default="classic")
    ap.add_argument("--json", action="store_true", help="print the result as JSON")
    args = ap.parse_args(argv)
    try:
        r = solve(args.task, args.seed, args.ruleset)
    except ValueError as e:
        ap.error(str(e))
    if args.json:
        print(json.dumps(r.as_dict(), indent=2))
        return 0
    print(f"task {r.task}  seed {r.seed}  ruleset {r.ruleset}")
    print(f"value (max total serve reward): {r.value:.4f}")
    print(f"grader score of this schedule: {r.score:.4f}")
    print("schedule:")
    for t, a in enumerate(r.actions):
        print(f"  step {t:>2}: {a}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
