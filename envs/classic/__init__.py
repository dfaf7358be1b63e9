"""The ``classic`` engine: Queue Doctor's MDP, bit for bit, and its adapters.

Engine (pure functions over :class:`~envs.classic.dynamics.ClassicState`):
``dynamics`` (transitions), ``scenario`` (seeded schedule perturbation),
``observation`` (numeric encoding), ``graders`` (the three task scores), ``kpis``.
Adapters: ``gym_env`` (Gymnasium ``edmarl/*-v0``), ``vector_env`` (batched),
``tool_session`` (the Queue Doctor tool API the server serves).

Imports nothing on import, so ``envs.classic.x`` costs only ``x``.
"""
