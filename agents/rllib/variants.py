"""The ``ed`` team's training variants, one place: which critic (``--critic
local|central``, :data:`CRITICS`) and whether the three roles share one module
(``--share-params``). The hooks that training and evaluation call:

* :func:`wrap_training_env` — the training env's adapters (``state`` for the central
  critic, the padded layout for sharing); the default variant is the env unchanged;
* :func:`team_modules` — the policies, the agent → module mapping and the module
  specs of :func:`agents.rllib.training.team_config` (the default variant: exactly
  one :class:`~agents.rllib.modules.SlotScorerModule` per role, as before);
* :func:`trained_team` — the trained team of a run directory or checkpoint, one
  RLModule per agent that reads that agent's ordinary observation (a shared module is
  wrapped in a :class:`~agents.rllib.sharing.RoleViewModule` per role), which both
  evaluators play like any per-role module.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ray.rllib.core import COMPONENT_LEARNER, COMPONENT_LEARNER_GROUP, COMPONENT_RL_MODULE

from agents.rllib.central_critic import CentralCriticScorer, GlobalStateEnv, state_layout
from agents.rllib.modules import SlotScorerModule
from agents.rllib.settings import CRITIC_CHOICES, DEFAULT_CRITIC
from agents.rllib.sharing import SharedLayout, SharedSpacesEnv
from envs.ed.config import AGENTS

if TYPE_CHECKING:
    from agents.rllib.training import TrainSettings

CRITICS: dict[str, type] = dict(
    zip(CRITIC_CHOICES, (SlotScorerModule, CentralCriticScorer), strict=True)
)
"""``--critic`` → the trained module class (local: the value reads the agent's own
observation; central: every role's, :mod:`agents.rllib.central_critic`)."""
SHARED_MODULE_ID = "shared"
"""The module id of the one module all roles play with ``--share-params``."""
MODULES_DIR = Path(COMPONENT_LEARNER_GROUP, COMPONENT_LEARNER, COMPONENT_RL_MODULE)
"""Where an Algorithm checkpoint keeps its modules."""


def critic_of(module: Any) -> str:
    """The :data:`CRITICS` key of a trained module's class."""
    for name, cls in CRITICS.items():
        if type(module) is cls:
            return name
    raise ValueError(f"{type(module).__name__} is none of the critics {sorted(CRITICS)}")


def check_variant(critic: str, share_params: bool, ruleset: str) -> None:
    """ValueError naming the fix for an unknown critic or a variant outside ``ed``."""
    if critic not in CRITICS:
        raise ValueError(f"--critic must be one of {', '.join(CRITICS)}, got {critic!r}")
    from envs.rulesets import MULTI_AGENT_RULESETS

    if ruleset not in MULTI_AGENT_RULESETS and (critic != DEFAULT_CRITIC or share_params):
        raise ValueError("--critic central and --share-params train the ed team: use "
                         "--ruleset ed (classic trains a single agent)")  # fmt: skip


def wrap_training_env(env: Any, env_config: dict) -> Any:
    """The training env of the variant in ``env_config`` (``critic``, ``share_params``)."""
    if env_config.get("critic", DEFAULT_CRITIC) == "central":
        env = GlobalStateEnv(env)
    if env_config.get("share_params", False):
        env = SharedSpacesEnv(env)  # passes the state through
    return env


def _to_shared(agent_id: str, episode: Any = None, **kwargs: Any) -> str:
    return SHARED_MODULE_ID


def team_modules(
    s: TrainSettings, map_agent: Callable[..., str]
) -> tuple[list[str], Callable[..., str], dict[str, Any]]:
    """(module ids, policy_mapping_fn, module specs) of TrainSettings ``s``;
    ``map_agent`` is the default per-role mapping function."""
    from ray.rllib.core.rl_module.rl_module import RLModuleSpec

    from agents.rllib.training import ed_module_specs
    from envs.ed_triage_v1 import ED_ENVS

    cls = CRITICS[s.critic]
    central = {"state_layout": state_layout()} if s.critic == "central" else {}
    if s.share_params:
        layout = SharedLayout(ED_ENVS[s.ed_version](task=s.task).n_slots)
        config = {**layout.model_config(), "hints": s.hints, "hint_weight": s.hint_weight,
                  **central}  # fmt: skip
        spec = RLModuleSpec(module_class=cls, model_config=config)
        return [SHARED_MODULE_ID], _to_shared, {SHARED_MODULE_ID: spec}
    specs = ed_module_specs(s.task, None, s.hints, s.hint_weight, s.ed_version)
    if central:
        for spec in specs.values():
            spec.module_class = cls
            spec.model_config = {**spec.model_config, **central}
    return list(AGENTS), map_agent, specs


def trained_team(source: Path) -> dict[str, Any]:
    """agent → trained RLModule reading that agent's own observation, from a run
    directory's checkpoint (any variant)."""
    from agents.rllib.training import _read_state, load_module_at

    prev = _read_state(Path(source))
    if prev is None:
        raise FileNotFoundError(f"no checkpoint under {source}: train first (without --no-train)")
    path = Path(prev["path"])
    if not (path / MODULES_DIR / SHARED_MODULE_ID).is_dir():
        from agents.rllib.imitation import BC_DIR
        from agents.rllib.selection import CLONE, load_clones

        # Roles that kept their behaviour clone (agents.rllib.selection) load it instead.
        roles = (prev.get("selection") or {}).get("roles", {})
        kept = [a for a in AGENTS if roles.get(a) == CLONE]
        team = load_clones(Path(source) / BC_DIR, kept)
        return {a: team[a] if a in team else load_module_at(path, a) for a in AGENTS}
    settings = prev.get("settings") or {}
    from agents.rllib.sharing import RoleViewModule
    from envs.ed_triage_v1 import ED_ENVS

    shared = load_module_at(path, SHARED_MODULE_ID)
    env = ED_ENVS[settings.get("ed_version", "v0")](task=settings["task"])
    return {
        a: RoleViewModule.from_shared(shared, a, env.observation_space(a), env.action_space(a))
        for a in AGENTS
    }


__all__ = [
    "CRITICS",
    "DEFAULT_CRITIC",
    "SHARED_MODULE_ID",
    "check_variant",
    "critic_of",
    "team_modules",
    "trained_team",
    "wrap_training_env",
]
