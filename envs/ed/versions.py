"""The ``ed`` env versions: ``--ed-version`` → PettingZoo parallel env class.

Also importable as ``envs.ed.v1.ED_ENVS`` (its old home)."""

from __future__ import annotations

from envs.ed.parallel_env import EdTriageParallelEnv
from envs.ed.v1 import EdTriageV1ParallelEnv
from envs.ed.v2 import EdTriageV2ParallelEnv

ED_ENVS: dict[str, type[EdTriageParallelEnv]] = {
    "v0": EdTriageParallelEnv,
    "v1": EdTriageV1ParallelEnv,
    "v2": EdTriageV2ParallelEnv,
}
"""``ed`` env version → class (the CLIs' ``--ed-version``; v2: :mod:`envs.ed.v2`)."""
