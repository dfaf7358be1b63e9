"""Policies: the shared interface, heuristics, the clairvoyant oracle."""

from agents import heuristics as _heuristics  # noqa: F401  (registers the heuristics)
from agents.base import POLICIES, Policy, PolicyContext, make_policy, register


@register("oracle")
def _oracle(context: PolicyContext | None = None) -> Policy:
    # Imported lazily: scipy is only needed when the oracle plays, and
    # `python -m agents.oracle` must not import the module twice.
    from agents.oracle import OraclePolicy

    return OraclePolicy(context)


__all__ = ["POLICIES", "Policy", "PolicyContext", "make_policy"]
