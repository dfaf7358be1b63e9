"""PettingZoo multi-agent ED, version 1: ``envs.ed_triage_v1`` (the code lives here).

The same three agents, spaces, API and arguments as :mod:`envs.ed.parallel_env` (its
docstring is the reference), on the ``ed`` engine with the v1 mechanisms on
(:data:`envs.ed.config.V1`; ``EdConfig()`` is exactly v0). v0 is a task with no
decision problem a greedy rule does not already solve (heuristic team at 99.7-99.9 %
of the clairvoyant bound); v1 adds consequences that real EDs show:

Mechanisms (pure rules in :mod:`envs.ed.engine`, constants in :class:`EdConfig`)
    * **Triage is the consultant's only view of urgency** (``consultant_sees_self_report
      =False``): an untriaged patient's visible category is 0 (unknown); the triaged
      category, the visible condition and countdown are all the consultant sees.
      Rationale: in the Manchester Triage System the triage category sets the order in
      which patients are seen, so under-triage delays care (Mackway-Jones et al.,
      *Emergency Triage*, 3rd ed., 2014; Zachariasse et al., BMJ Open 2019, triage
      performance and its outcomes).
    * **No doctor before triage** (``serve_requires_triage``): only triaged patients
      are servable, and while the nurse can still triage, END by the pharmacist or
      consultant is a *pass* (they wait for her). So the nurse's throughput and
      accuracy bound everything downstream. Rationale: triage precedes medical
      assessment in MTS and ESI departments (same sources).
    * **Treatment occupies doctors** (``treatment_steps=(2, 2, 2, 2, 2)``): a serve holds
      its doctor(s) for 20 minutes (``mass_casualty``: 40, major trauma). Uniform on
      purpose: with Queue Doctor's serve table, longer treatments for sicker patients
      would make critical patients worth less per doctor-minute and reward neglecting
      them. Rationale: treatment time, not the 10-minute tick, limits throughput
      (Hoot & Aronsky, Ann Emerg Med 2008, causes of crowding).
    * **Left without being seen** (``lwbs_patience=(0, 0, 8, 5, 4)``): a waiting patient
      of true category 3/4/5 leaves once the wait reaches 8/5/4 steps (80/50/40 min);
      term ``lwbs`` −0.1; KPI ``lwbs``. Rationale: LWBS is a standard ED quality measure
      (CMS OP-22; NHS A&E quality indicators) and rises with the wait (Hsia et al., Ann
      Emerg Med 2011).
    * **Death of untreated critical patients** (``death_wait=3``): a true category-1
      patient (at arrival, or once deteriorated) who waits 3 steps dies; term ``death``
      −1.0; KPI ``deaths``. Rationale: time-critical conditions (sepsis, major trauma)
      where each hour of delay raises mortality (Kumar et al., Crit Care Med 2006;
      Seymour et al., NEJM 2017).
    * Optional, **off** in ``V1``: the *critical clock* (``critical_clock``): a patient
      who turns category 1 while waiting is valued on the category-1 cliff from that
      moment (still capped by the arrival value). It makes a deterioration nearly free
      in serve reward, and with it a random pharmacist cost under 2 % of the bound on
      sepsis_wave (6.7 % without), so v1 keeps Queue Doctor's arrival clock: a
      deteriorated category 2 left waiting 3+ steps is worth nothing.
    * Kept from v0: deterioration countdowns stopped only by the indicated drug, finite
      drug stock (no restock), ICU beds consumed for good, under-triage events.

    Departures happen at the time advance, after the deterioration ticks; a departed
    patient is ``Place.LWBS`` / ``Place.DIED``. The bound (:mod:`envs.ed.bound`) stays
    the exact ILP: every mechanism depends only on a patient's own trajectory and the
    doctor-steps it uses, both linear in the serve variables.

Score
    The final infos' ``score`` (also ``grader["score"]``) is the share of the
    clairvoyant bound's serve reward the team earned, ``R / R_bound``
    (:func:`envs.ed.graders.serve_share`; R = Σ served rewards, R_bound = the exact
    bound of the same episode, ``oracle_value``): in [0, 1], 1 exactly for the bound's
    schedule, and 1.0 when the bound is 0 (nothing to earn). Queue Doctor's grader with
    the ``ed`` fixes stays as ``grader_score`` (info and ``grader["grader_score"]``).
    With ``normaliser="static"`` (training, benchmarks: no ILP) R_bound is replaced by
    Σ each patient's wait-0 serve reward, an upper bound of the exact one, so that
    score is a lower bound of the exact share; compare policies with ``"oracle"``.
    The rule follows the config: a v1 env played with a v0 config (``EdConfig()``)
    reports the grader as ``score``, as v0 does.

Tasks
    The three Queue Doctor tasks (with the v1 mechanisms), ``generated``, and the suite
    of :mod:`envs.ed.suite` (``icu_surge``, ``sepsis_wave``, ``night_shift``,
    ``misreporters``, ``drug_shortage``, ``long_shift``), each played with its own
    config unless ``config`` is given.

Version history
    v0: first release (``ed`` ruleset, three roles, four tasks).
    v1: the five mechanisms above (plus the optional critical clock); the scenario
    suite; final infos add the ``lwbs`` and ``death`` terms and KPIs.
    v1, 2026-12-02 (same env id, same dynamics): ``score`` becomes the share of the
    bound's serve reward (*Score* above) and the grader moves to ``grader_score``.
    Why: on mass_casualty the grader ranked the clairvoyant schedule (0.377) below the
    heuristic team (0.392) and the trained team that served +3.7 % more of the bound
    0.018 below it, so it did not move with decision quality (README, front door).
"""

from __future__ import annotations

from typing import Any

from pettingzoo.utils import parallel_to_aec

from envs.ed.config import V1, EdConfig
from envs.ed.parallel_env import EdTriageParallelEnv
from envs.ed.suite import SCENARIOS, TASK_CONFIGS
from envs.generator import GeneratorParams, task_source


class EdTriageV1ParallelEnv(EdTriageParallelEnv):
    metadata = {"name": "ed_triage_v1", "render_modes": ["ansi"], "is_parallelizable": True}

    @staticmethod
    def _resolve(task: str, generator_params: GeneratorParams | None, config: EdConfig | None):
        scenario = SCENARIOS.get(task)
        if scenario is None:
            src = task_source(task, generator_params)
            return src, config or TASK_CONFIGS.get(src.template.name, V1)
        if generator_params is not None:
            raise ValueError(f"scenario {task!r} fixes its generator_params; use 'generated'")
        return scenario.source, config or scenario.config


def parallel_env(**kwargs: Any) -> EdTriageV1ParallelEnv:
    """The v1 parallel env (arguments as :func:`envs.ed.parallel_env.parallel_env`)."""
    return EdTriageV1ParallelEnv(**kwargs)


def env(**kwargs: Any):
    return parallel_to_aec(parallel_env(**kwargs))


def vector_env(num_envs: int, **kwargs: Any):
    """``num_envs`` v1 episodes stepped together: :class:`envs.ed.vector_env.EdVectorEnv`
    (same arguments as :func:`parallel_env` but ``normaliser``, ``text_observations``
    and ``render_mode``)."""
    from envs.ed.vector_env import EdVectorEnv  # it imports the version registry

    return EdVectorEnv(num_envs, version="v1", **kwargs)


def __getattr__(name: str):
    # The version registry lives in envs.ed.versions: it imports v2, which subclasses
    # this module's env, so importing it here would make `import envs.ed_triage_v2`
    # (before v1) circular. Old imports `from envs.ed.v1 import ED_ENVS` resolve here.
    if name == "ED_ENVS":
        from envs.ed.versions import ED_ENVS

        return ED_ENVS
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


ED_TASKS: tuple[str, ...] = ("basic_triage", "dynamic_queue", "mass_casualty", *SCENARIOS)
"""Every named task of v1: the three fixed ones, then the suite."""

raw_env = EdTriageV1ParallelEnv
EdTriageV1ParallelEnv.__doc__ = __doc__
__all__ = ["ED_TASKS", "EdTriageV1ParallelEnv", "env", "parallel_env", "raw_env", "vector_env"]
