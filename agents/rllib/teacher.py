"""PPO with a teacher term: ``loss = PPO loss + c(t) · KL(π_teacher ‖ π)`` on the
student's own states (kickstarting: Schmitt et al. 2018, "Kickstarting deep
reinforcement learning"), where π_teacher is the frozen behaviour-cloned module
(:mod:`agents.rllib.imitation`) and ``c(t)`` decays linearly from ``teacher_coeff`` to 0
over the first ``teacher_decay`` sampled env steps, so the team keeps what it cloned
early and improves where the reward says so later.

Configured through ``learner_config_dict[TEACHER_KEY] = {"path": <bc dir>, "schedule":
[[0, c0], [T, 0]]}``; without it the learner is RLlib's PPO learner unchanged.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ray.rllib.connectors.connector_v2 import ConnectorV2
from ray.rllib.core.columns import Columns
from ray.rllib.utils.metrics import NUM_ENV_STEPS_SAMPLED_LIFETIME
from ray.rllib.utils.schedules.scheduler import Scheduler

from agents.rllib.learner import LeanPPOTorchLearner
from agents.rllib.training import TEACHER_COEFF, TEACHER_KL

TEACHER_KEY = "teacher"
TEACHER_PROBS, TEACHER_NEG_ENTROPY = "teacher_probs", "teacher_neg_entropy"
"""Train-batch columns of the teacher's action probabilities and Σ p log p per state
(:class:`TeacherLogits`)."""


def teacher_schedule(coeff: float, decay_steps: int) -> list[list[float]]:
    """RLlib piecewise-linear schedule: ``coeff`` at step 0, 0 from ``decay_steps`` on
    (a constant 0 when ``coeff`` is 0)."""
    if coeff < 0 or decay_steps < 0:
        raise ValueError("the teacher coefficient and its decay must be >= 0")
    if coeff == 0 or decay_steps == 0:
        return [[0, 0.0], [1, 0.0]]
    return [[0, float(coeff)], [int(decay_steps), 0.0]]


def schedule_value(schedule: list[list[float]], timestep: int) -> float:
    """The schedule's value at ``timestep`` (as the learner computes it)."""
    return float(Scheduler(schedule, framework="torch").update(timestep))


def teacher_target(teacher_logits: Any) -> tuple[Any, Any]:
    """The teacher's side of :func:`teacher_kl`, which does not change during an update:
    its probabilities p and Σ p log p per state (illegal actions, at RLlib's
    ``FLOAT_MIN``, have p = 0 and add nothing)."""
    import torch

    p_log = torch.log_softmax(teacher_logits, -1)
    p = p_log.exp()
    return p, torch.where(p > 0, p * p_log, torch.zeros_like(p)).sum(-1)


def kl_to_target(target: tuple[Any, Any], logits: Any) -> Any:
    """Per-state KL(teacher ‖ student) = Σ p log p − Σ p log q from the teacher's
    :func:`teacher_target` and the student's masked logits (the same masks: the
    student's illegal actions have p = 0)."""
    import torch

    p, neg_entropy = target
    return neg_entropy - (p * torch.log_softmax(logits, -1)).sum(-1)


def teacher_kl(teacher_logits: Any, logits: Any) -> Any:
    """Per-state KL(teacher ‖ student) of two masked logit rows."""
    return kl_to_target(teacher_target(teacher_logits), logits)


class TeacherLogits(ConnectorV2):
    """Learner connector piece: the frozen teachers' side of the KL term
    (:func:`teacher_target` of its logits) on each module's whole train batch, once per
    update, as columns that the minibatches slice like the others. The teacher does not
    change, so its forward pass per minibatch and epoch (6 epochs) gave the same values
    each time. Skipped for a module whose coefficient is 0."""

    def __init__(self, teachers: dict[str, Any], schedulers: dict[str, Scheduler]) -> None:
        super().__init__()
        self.teachers, self.schedulers = teachers, schedulers

    def __call__(self, *, rl_module: Any, batch: dict, episodes: Any, **kwargs: Any) -> Any:
        import torch

        for module_id, teacher in self.teachers.items():
            coeff = float(self.schedulers[module_id].get_current_value())
            if module_id in batch and coeff != 0.0:
                b = batch[module_id]
                with torch.no_grad():
                    out = teacher.forward_train({Columns.OBS: b[Columns.OBS]})
                    p, neg_entropy = teacher_target(out[Columns.ACTION_DIST_INPUTS])
                b[TEACHER_PROBS], b[TEACHER_NEG_ENTROPY] = p, neg_entropy
        return batch


class TeacherPPOTorchLearner(LeanPPOTorchLearner):
    """The PPO torch learner (:mod:`agents.rllib.learner`) plus the decaying teacher KL
    term."""

    def build(self) -> None:
        super().build()
        from ray.rllib.core.rl_module.rl_module import RLModule

        cfg = (self.config.learner_config_dict or {}).get(TEACHER_KEY)
        self.teachers: dict[str, Any] = {}
        self.teacher_schedulers: dict[str, Scheduler] = {}
        if not cfg:
            return
        root = Path(cfg["path"])
        for module_id in self.module.keys():
            path = root / module_id
            if not path.is_dir():
                raise FileNotFoundError(f"teacher module {module_id!r} missing under {root}")
            teacher = RLModule.from_checkpoint(str(path.resolve()))
            teacher.eval()
            for p in teacher.parameters():
                p.requires_grad_(False)
            self.teachers[module_id] = teacher
            self.teacher_schedulers[module_id] = Scheduler(
                cfg["schedule"], framework="torch", device=self._device
            )
        if self._learner_connector is not None:
            self._learner_connector.append(TeacherLogits(self.teachers, self.teacher_schedulers))

    def compute_loss_for_module(self, *, module_id, config, batch, fwd_out):
        import torch

        loss = super().compute_loss_for_module(
            module_id=module_id, config=config, batch=batch, fwd_out=fwd_out
        )
        teacher = self.teachers.get(module_id)
        if teacher is None:
            return loss
        coeff = self.teacher_schedulers[module_id].get_current_value()
        if float(coeff) == 0.0:  # decayed: the term adds nothing, skip the teacher's forward
            return loss
        if TEACHER_PROBS in batch:  # TeacherLogits' columns, else computed here
            target = batch[TEACHER_PROBS], batch[TEACHER_NEG_ENTROPY]
        else:
            with torch.no_grad():
                out = teacher.forward_train({Columns.OBS: batch[Columns.OBS]})
                target = teacher_target(out[Columns.ACTION_DIST_INPUTS])
        kl = kl_to_target(target, fwd_out[Columns.ACTION_DIST_INPUTS]).mean()
        self.metrics.log_value((module_id, TEACHER_KL), kl.detach(), window=1)
        return loss + coeff * kl

    def after_gradient_based_update(self, *, timesteps: dict[str, Any]) -> None:
        super().after_gradient_based_update(timesteps=timesteps)
        step = timesteps.get(NUM_ENV_STEPS_SAMPLED_LIFETIME, 0)
        for module_id, scheduler in self.teacher_schedulers.items():
            value = scheduler.update(timestep=step)
            self.metrics.log_value((module_id, TEACHER_COEFF), value, window=1)


def teacher_training(s: Any, bc_dir: Path | None = None) -> dict[str, Any]:
    """``.learners()`` options of the teacher term for the settings ``s`` (a
    :class:`agents.rllib.training.TrainSettings`): our learner and its schedule. The
    cloned modules are read from ``bc_dir``."""
    decay = s.teacher_decay if s.teacher_decay is not None else s.total_env_steps // 2
    teacher = {"schedule": teacher_schedule(s.teacher_coeff, decay)}
    if bc_dir is not None:
        teacher["path"] = str(Path(bc_dir).resolve())
    return {
        "learner_class": TeacherPPOTorchLearner,
        "learner_config_dict": {TEACHER_KEY: teacher},
    }
