"""Policies: the shared interface, heuristics, the clairvoyant oracle."""

from agents import heuristics as _heuristics  # noqa: F401  (registers the heuristics)
from agents import planner as _planner  # noqa: F401  (registers the ed planner)
from agents import roles as _roles  # noqa: F401  (registers the ed role heuristics)
from agents.base import POLICIES, Policy, PolicyContext, make_policy, register


@register("oracle")
def _oracle(context: PolicyContext | None = None) -> Policy:
    # Imported lazily: scipy is only needed when the oracle plays, and
    # `python -m agents.oracle` must not import the module twice.
    from agents.oracle import OraclePolicy

    return OraclePolicy(context)


@register("ed_oracle")
def _ed_oracle(context: PolicyContext | None = None, role: str = "consultant") -> Policy:
    # Lazy for the same reason as the classic oracle (scipy).
    from agents.oracle_ed import ed_oracle_member

    return ed_oracle_member(context, role)


@register("llm")
def _llm(context: PolicyContext | None = None, **options) -> Policy:
    # Lazy: llm_policy's backends load torch/transformers and a model on first use.
    from llm_policy.policy import LLMPolicy

    return LLMPolicy(context, **options)


__all__ = ["POLICIES", "Policy", "PolicyContext", "make_policy"]
