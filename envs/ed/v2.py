"""PettingZoo multi-agent ED, version 2: ``envs.ed_triage_v2`` (the code lives here).

v1's rules, agents, spaces, tasks, arguments and score (:mod:`envs.ed.v1`, whose
docstring is the reference), with the presentations picked from a bank instead of
drawn fresh: ``EdConfig.presentations="bank"`` (:class:`envs.ed.scenario.PresentationBank`).

Presentations
    The bank is drawn once per process from a fixed seed (``BANK_SEED``): 512
    presentations per (pool, true category), the same two generator pools v1 draws
    from (any template; templates with an indicated drug for a patient with a
    deterioration countdown). A reset picks one row per patient with a single
    ``integers`` draw of the episode's generator, then sets the schedule's
    self-report and ICU / specialist flags on it as v1 does. The schedule (Queue
    Doctor's perturbation, or ``generated``'s draw) is v1's for the same seed; only
    the presentations, and so the charts, allergies and indicated drugs, differ.
    Why: in v1 a reset draws every presentation from the clinical generator (about
    60 µs each, a quarter to a third of a random team's time on this machine:
    ``experiments/bench_ed.py``); the bank makes resets several times cheaper.
    The cost: 512 presentations per category and pool instead of an unbounded
    stream, so a policy sees fewer distinct charts in training.

Score and bound
    As v1. The clairvoyant bound (``normaliser="oracle"``) and the ``ed`` oracle team
    solve the v2 episode, since the bank choice travels in the env's ``config``.

Version history
    v0: first release (``ed`` ruleset, three roles, four tasks).
    v1: the five mechanisms of :mod:`envs.ed.v1`; ``score`` = share of the bound.
    v2, 2026-12-02: v1 with banked presentations (above); every seeded episode's
    presentations differ from v1's, its schedule and rules do not. v0 and v1 are
    unchanged (``experiments/behaviour_hash.py``, ``--ed-version v1``).
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from pettingzoo.utils import parallel_to_aec

from envs.ed.config import EdConfig
from envs.ed.v1 import EdTriageV1ParallelEnv
from envs.generator import GeneratorParams

PRESENTATIONS = "bank"


class EdTriageV2ParallelEnv(EdTriageV1ParallelEnv):
    metadata = {"name": "ed_triage_v2", "render_modes": ["ansi"], "is_parallelizable": True}

    @staticmethod
    def _resolve(task: str, generator_params: GeneratorParams | None, config: EdConfig | None):
        source, cfg = EdTriageV1ParallelEnv._resolve(task, generator_params, config)
        return source, replace(cfg, presentations=PRESENTATIONS)


def parallel_env(**kwargs: Any) -> EdTriageV2ParallelEnv:
    """The v2 parallel env (arguments as :func:`envs.ed.parallel_env.parallel_env`)."""
    return EdTriageV2ParallelEnv(**kwargs)


def env(**kwargs: Any):
    return parallel_to_aec(parallel_env(**kwargs))


def vector_env(num_envs: int, **kwargs: Any):
    """``num_envs`` v2 episodes stepped together: :class:`envs.ed.vector_env.EdVectorEnv`
    (same arguments as :func:`parallel_env` but ``normaliser``, ``text_observations``
    and ``render_mode``)."""
    from envs.ed.vector_env import EdVectorEnv  # it imports the version registry

    return EdVectorEnv(num_envs, version="v2", **kwargs)


raw_env = EdTriageV2ParallelEnv
EdTriageV2ParallelEnv.__doc__ = __doc__
__all__ = ["EdTriageV2ParallelEnv", "env", "parallel_env", "raw_env", "vector_env"]
