"""The multi-agent ``ed`` engine (triage nurse, pharmacist, consultant) and its adapters.

Engine (pure functions over :class:`~envs.ed.engine.EdState`): ``config``
(frozen :class:`~envs.ed.config.EdConfig`, roles, drugs), ``scenario`` (presentations on
the schedule), ``suite`` (named v1 scenarios), ``engine`` (masks, sub-steps),
``observation`` (per-role numeric rows), ``graders``, ``bound`` (the clairvoyant ILP).
Adapters: ``parallel_env`` (PettingZoo ``envs.ed_triage_v0``), ``v1``
(``envs.ed_triage_v1`` and the version registry ``ED_ENVS``), ``gym_env`` (the
single-agent consultant env), ``tool_session`` / ``tool_views`` (the ``ed`` tool API).

Imports nothing on import, so ``envs.ed.x`` costs only ``x``.
"""
