"""Policies: the shared interface, heuristics, the clairvoyant oracle."""

from agents import heuristics as _heuristics  # noqa: F401  (registers the heuristics)
from agents.base import POLICIES, Policy, make_policy, register


@register("oracle")
def _oracle(**kwargs) -> Policy:
    # Imported lazily: scipy is only needed when the oracle plays, and
    # `python -m agents.oracle` must not import the module twice.
    from agents.oracle import OraclePolicy

    return OraclePolicy(**kwargs)


__all__ = ["POLICIES", "Policy", "make_policy"]
