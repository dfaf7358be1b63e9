"""edmarl environments: one engine (``envs.dynamics``) behind thin adapters.

Importing ``envs`` registers the Gymnasium ids::

    edmarl/BasicTriage-v0, edmarl/DynamicQueue-v0, edmarl/MassCasualty-v0
        (``ruleset="ed"``: the ``ed`` consultant env of ``envs.gym_ed``)
    edmarl/BasicTriageED-v0, edmarl/DynamicQueueED-v0, edmarl/MassCasualtyED-v0
    NurseSim-Triage-v0 (also edmarl/NurseSim-Triage-v0)
"""

from __future__ import annotations

import gymnasium as gym

from envs.gym_queue import GYM_IDS, QueueEnv
from envs.tasks import TASKS, get_task
from envs.tool_api import ToolError, ToolSession

NURSESIM_IDS = ("NurseSim-Triage-v0", "edmarl/NurseSim-Triage-v0")
NURSESIM_ENTRY_POINT = "envs.nursesim:NurseSimTriageEnv"
QUEUE_ENTRY_POINT = "envs.gym_queue:make_queue_env"
ED_ENTRY_POINT = "envs.gym_ed:EdConsultantEnv"
ED_GYM_IDS = {f"{env_id.removesuffix('-v0')}ED-v0": task for env_id, task in GYM_IDS.items()}
"""The ``ed`` consultant envs (nurse and pharmacist played by heuristics)."""


def _register() -> None:
    for env_id, task in GYM_IDS.items():
        if env_id not in gym.registry:
            gym.register(
                id=env_id,
                entry_point=QUEUE_ENTRY_POINT,
                vector_entry_point="envs.vector_queue:QueueVectorEnv",
                kwargs={"task": task},
            )
    for env_id, task in ED_GYM_IDS.items():
        if env_id not in gym.registry:
            gym.register(id=env_id, entry_point=ED_ENTRY_POINT, kwargs={"task": task})
    for env_id in NURSESIM_IDS:
        if env_id not in gym.registry:
            gym.register(id=env_id, entry_point=NURSESIM_ENTRY_POINT)


_register()

__all__ = ["ED_GYM_IDS", "GYM_IDS", "TASKS", "QueueEnv", "ToolError", "ToolSession", "get_task"]
