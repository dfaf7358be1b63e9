"""What defines a training run: :class:`TrainingFlags`, the knobs the front door
(``experiments/run.py``) exposes as flags with the same defaults, declared once, and
:class:`TrainSettings`, a whole training run's settings (those knobs plus the task,
the ruleset and the library defaults that the front door overrides)."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Any, Literal

from agents.rllib.hints import HINT_WEIGHT

ALGOS = ("ppo", "appo")
CRITIC_CHOICES = ("local", "central")
"""``--critic`` values (:data:`agents.rllib.variants.CRITICS` maps them to modules)."""
DEFAULT_CRITIC = "local"
ENVS_PER_RUNNER, TEAM_ENVS_PER_RUNNER = 8, 16
"""--envs-per-runner's defaults: classic, and the ed team rulesets (whose three role
modules each run one forward pass per vector step: more envs share that cost)."""


@dataclass(frozen=True)
class TrainingFlags:
    """Training knobs shared by :class:`TrainSettings` and the front door's
    :class:`agents.frontdoor.config.RunConfig` (each field is a run.py flag)."""

    algo: Literal[ALGOS] = "ppo"  # type: ignore[valid-type]
    """RLlib algorithm: ppo, or appo for asynchronous (distributed) sampling."""
    train_iters: int = 40
    """Training iterations (each samples train_batch_size env steps)."""
    timesteps: int | None = None
    """Stop at this many sampled env steps instead of --train-iters."""
    num_env_runners: int = 2
    """RLlib EnvRunner actors sampling in parallel (0: sample in the driver). Two, one per
    core of a 2-core machine: both cores sample, and with --sample-ahead they sample
    the next batch while the learner trains."""
    envs_per_runner: int | None = None
    """Environments stepped by each EnvRunner, one batched module forward for all (default:
    16 on the ed team rulesets — 17 % less sampling time per env step than 8 on
    mass_casualty, docs/benchmarks/bench_rllib.md — and 8 on classic)."""
    num_learners: int = 0
    """Learner actors (0: learn in the driver). With several, each learns on its share of
    the train batch and minibatch (RLlib's sizes are per learner), so the iteration's
    batch and minibatch stay the sizes given here."""
    address: str | None = None
    """Ray cluster address (default: RAY_ADDRESS, else a local Ray instance)."""
    seed: int = 0
    """Training seed (RLlib and the env runners' episode draws)."""
    lr: float = 1e-3
    """Learning rate."""
    entropy_coeff: float = 0.01
    """Entropy bonus."""
    width: int = 64
    """Hidden width of the slot scorer."""
    clip_param: float = 0.2
    """PPO clip range."""
    train_batch_size: int = 2000
    """Env steps sampled per training iteration."""
    minibatch_size: int = 250
    """SGD minibatch size (PPO), in env steps."""
    hint_weight: float = HINT_WEIGHT
    """ed with hints: logit prior added to the hinted action (0: the hint is only an input
    feature; > 0 starts the policy at the heuristic's play, residual learning)."""
    bc_episodes: int | None = None
    """With --init bc: teacher episodes recorded on training seeds (teacher_episodes.parquet;
    default 40 for the heuristic team, 100 for the planner)."""
    teacher_coeff: float = 1.0
    """With --init bc: initial weight of the KL(teacher ‖ policy) term (0: warm start only)."""
    teacher_decay: int | None = None
    """With --init bc: env steps over which the teacher term decays to 0 (default: half the
    run)."""
    critic: Literal[CRITIC_CHOICES] = DEFAULT_CRITIC  # type: ignore[valid-type]
    """ed: the trained team's value function. local: each role's reads its own
    observation; central: MAPPO-style, every role's observation (the actors still act
    on their own: agents.rllib.central_critic)."""
    decision_steps: bool = False
    """ed: RLlib sees an agent only at the sub-steps where it has a choice (more than END
    legal; agents.rllib.decisions): the same episodes with half the agent-steps, ~1.1-1.5x
    the training episodes/s, but its trained teams scored 0.6-0.9 % of the bound lower on
    mass_casualty (docs/benchmarks/front_door_speed.md), so it is off by default."""
    sample_ahead: bool = True
    """ppo with EnvRunners: the runners sample the next batch while the learner trains on
    this one (:mod:`agents.rllib.sample_ahead`; each batch is then one update older than
    the policy that trains on it). --no-sample-ahead: RLlib's PPO, sampling and learning
    in turn."""
    share_params: bool = False
    """ed: one module plays all three roles (a padded common layout with a role one-hot;
    agents.rllib.sharing says what is shared and what the spaces do not allow)."""


@dataclass(frozen=True)
class TrainSettings(TrainingFlags):
    """Everything that defines a training run (hyperparameters included): the
    :class:`TrainingFlags`, and these, whose library defaults the front door overrides."""

    task: str = "mass_casualty"
    ruleset: str = "classic"
    gamma: float = 0.99
    num_epochs: int = 6
    """PPO epochs over each train batch (3: ~1.5× the episodes per second with
    --decision-steps, but lower-scoring teams: docs/benchmarks/front_door_speed.md)."""
    hints: bool = False
    """``ed``: observations carry each role heuristic's action, which the modules start
    from and learn to improve on (residual learning, :mod:`agents.rllib.hints`)."""
    ed_version: str = "v0"
    """``ed``: the env version trained on (:data:`envs.ed_triage_v1.ED_ENVS`)."""
    init: str = "none"
    """``ed``: ``bc`` starts every role's module from a behaviour clone of the teacher
    team (:mod:`agents.rllib.imitation`); ``none`` from random weights."""
    teacher: str = "heuristic"
    """With ``init=bc``: the team cloned, ``heuristic``, ``planner`` or ``auto`` (the
    better of the two on validation seeds, :mod:`agents.rllib.selection`)."""
    validation_episodes: int = 0
    """With ``init=bc``: validation seeds on which ``teacher=auto`` picks the teacher and,
    after training, each role keeps its trained module or its clone, the best mix
    (:mod:`agents.rllib.selection`; 0: neither — the trained modules ship as trained)."""
    extra: dict[str, Any] = field(default_factory=dict)

    def _check_local_cpus(self) -> None:
        """On a local Ray instance (``init_ray``: one CPU per core), refuse settings whose
        actors cannot all start: each EnvRunner and learner actor asks Ray for one CPU,
        and an actor without one waits forever (the run would hang before its first
        iteration). A cluster may add nodes, so it is not checked there."""
        if self.address or os.environ.get("RAY_ADDRESS"):
            return
        have = os.cpu_count() or 2
        need = self.num_env_runners + self.num_learners
        if need > have:
            raise ValueError(
                f"--num-env-runners {self.num_env_runners} and --num-learners "
                f"{self.num_learners} need {need} CPUs (one per Ray actor); this machine "
                f"has {have}: lower them (--num-learners 0 learns in the driver), or run on "
                "a Ray cluster (--address)"
            )

    def validate(self) -> None:
        if self.algo not in ALGOS:
            raise ValueError(f"--algo must be one of {ALGOS}, got {self.algo!r}")
        if self.train_iters < 1 and not self.timesteps:
            raise ValueError("--train-iters must be >= 1 (or give --timesteps)")
        envs = self.envs_per_runner
        if self.num_env_runners < 0 or (envs is not None and envs < 1) or self.num_learners < 0:
            raise ValueError("--num-env-runners >= 0, --envs-per-runner >= 1, --num-learners >= 0")
        if self.minibatch_size > self.train_batch_size:
            raise ValueError("minibatch_size must not exceed train_batch_size")
        self._check_local_cpus()
        n = self.num_learners
        if n > 1 and (self.train_batch_size % n or self.minibatch_size % n):
            raise ValueError(
                f"--num-learners {n} splits each batch and minibatch among the "
                f"learners: give a --train-batch-size ({self.train_batch_size}) "
                f"and --minibatch-size ({self.minibatch_size}) divisible by {n}"
            )
        if not 0.0 <= self.hint_weight < float("inf"):
            raise ValueError(f"--hint-weight must be a finite number >= 0, got {self.hint_weight}")
        from agents.rllib.imitation import INITS, TEACHER_CHOICES
        from agents.rllib.variants import check_variant

        check_variant(self.critic, self.share_params, self.ruleset)

        if self.init not in INITS:
            raise ValueError(f"--init {self.init!r}: use one of {', '.join(INITS)}")
        from envs.rulesets import MULTI_AGENT_RULESETS

        if self.init == "bc" and self.ruleset not in MULTI_AGENT_RULESETS:
            raise ValueError("--init bc clones the ed role heuristics: use --init none on classic")
        if self.teacher not in TEACHER_CHOICES:
            raise ValueError(f"--teacher {self.teacher!r}: use one of {', '.join(TEACHER_CHOICES)}")
        if self.bc_episodes is not None and self.bc_episodes < 2:
            raise ValueError("--bc-episodes must be >= 2 (a fifth is held out)")
        if self.validation_episodes < 0:
            raise ValueError("--validation-episodes must be >= 0 (0: no validation choices)")
        if self.init == "bc" and self.teacher == "auto" and self.validation_episodes < 1:
            raise ValueError("--teacher auto picks the teacher on validation seeds: give "
                             "--validation-episodes > 0 or name the teacher")  # fmt: skip
        if not 0.0 <= self.teacher_coeff < float("inf"):
            raise ValueError(
                f"--teacher-coeff must be a finite number >= 0, got {self.teacher_coeff}"
            )
        if self.teacher_decay is not None and self.teacher_decay < 0:
            raise ValueError("--teacher-decay must be >= 0 env steps")
        if self.init == "bc" and (self.critic != "local" or self.share_params):
            raise ValueError("--init bc clones one local-critic module per role: with "
                             "--critic central or --share-params use --init none")  # fmt: skip

    @property
    def total_env_steps(self) -> int:
        """Env steps the run samples (``timesteps``, else iterations × batch)."""
        return int(self.timesteps or self.train_iters * self.train_batch_size)

    @property
    def runner_envs(self) -> int:
        """Envs per EnvRunner: ``envs_per_runner``, else the ruleset's default."""
        from envs.rulesets import MULTI_AGENT_RULESETS

        if self.envs_per_runner is not None:
            return self.envs_per_runner
        return TEAM_ENVS_PER_RUNNER if self.ruleset in MULTI_AGENT_RULESETS else ENVS_PER_RUNNER

    @property
    def teacher_term(self) -> bool:
        """Whether PPO adds the decaying teacher KL term."""
        return self.init == "bc" and self.algo == "ppo" and self.teacher_coeff > 0
