"""How the front door plays each ruleset: the object a ruleset's registry entry names as
its ``front_door`` (:mod:`envs.rulesets`). :class:`Play` is a one-role ruleset
(``classic``: a single consultant, a --compare label is one policy); :class:`TeamPlay`
a team ruleset (``ed``: a label is a team spec, one policy per role). ``experiments/run.py``
and ``experiments/sweep.py`` call these methods instead of branching on the ruleset.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from agents import POLICIES
from agents.plots import ORACLE
from agents.results import bound_row
from agents.roles import parse_team, team_spec

if TYPE_CHECKING:
    from agents.frontdoor.config import RunConfig

TRAINED = "ppo"
"""Name under which the trained module appears in --compare and in the results."""
LLM = "llm"
"""The LLM policy (llm_policy.policy.LLMPolicy), configured by the --llm-* options."""
DEFAULT_COMPARE = ("ppo", "random", "fifo", "severity_greedy", "deterioration_greedy", "oracle")
ED_DEFAULT_COMPARE = (
    "ppo",
    "heuristic",
    "planner",
    "nurse=heuristic,consultant=ppo,pharmacist=heuristic",
    "nurse=ppo,consultant=heuristic,pharmacist=heuristic",
    "random",
)
"""``ed`` teams: a bare name plays every role; ``role=policy,...`` mixes."""


@dataclass(frozen=True)
class Evaluated:
    """What an evaluation hands to :func:`agents.frontdoor.outputs.write_outputs`."""

    rows: list[dict]
    labels: list[str]
    step_rows: list[dict]
    timeline: list[dict]
    intro: str


@dataclass(frozen=True)
class Job:
    """One front-door evaluation: what :meth:`Play.evaluate` plays and whom it tells."""

    seeds: list[int | None]
    """Evaluation seeds (None: the schedule as written, classic only)."""
    extra: dict
    """Players built outside the policy registry: the trained modules, the LLM."""
    on_episode: Callable[[dict], None]
    """Called with each finished episode's row (the rllib evaluators: a policy's or a
    team's rows once it has played all seeds)."""


@dataclass(frozen=True)
class Play:
    """A one-role ruleset: a --compare label is one registered policy (or ppo/llm)."""

    default_compare: tuple[str, ...] = DEFAULT_COMPARE
    """--compare when not given (the classic oracle plays as a policy)."""
    default_init: str = "none"
    """--init auto: how the trained module starts."""
    hints: bool = False
    """Whether --hints reaches training (role-heuristic hints exist for teams only)."""
    progress: str = "evaluating on"
    """Words before the task on the evaluation progress bar."""
    trained_name: str = "consultant"
    """What the trained modules are, in words (a sweep's selection note)."""
    intro: str = (
        "Serve reward and % of oracle: Σ served rewards vs the clairvoyant bound of the "
        "same seed (agents.oracle). Score: the task's grader. ± = 95 % t-interval."
    )

    def players(self, label: str) -> list[str]:
        """The policy names a --compare label plays."""
        return [label]

    def episodes(self, compare: Sequence[str], seeds: Sequence[int | None]) -> int:
        """Episodes :meth:`evaluate` plays (the progress bar's total)."""
        return len(seeds) * len(compare)

    def check_compare(self, compare: Sequence[str]) -> None:
        """ValueError naming the registered policies for an unknown name in --compare."""
        unknown = [p for p in compare if p not in POLICIES and p != TRAINED]
        if unknown:
            raise ValueError(
                f"--compare: unknown policies {unknown}; registered: {', '.join(sorted(POLICIES))}"
            )

    def is_scenario(self, task: str, version: str) -> bool:
        """Whether ``task`` names a scenario of the ruleset's env ``version`` (not a task)."""
        return False

    def scenario_hint(self) -> str:
        """Appended to an unknown-task error: the scenarios this ruleset also plays."""
        return ""

    def llm_player(self, cfg: RunConfig) -> Any:
        """The ``llm`` player (built here so the --llm-* options reach it; lazy load)."""
        from llm_policy.policy import LLMPolicy

        return LLMPolicy(config=cfg.llm_config())

    def trained_policy(self, source: Path) -> Any:
        """The trained module of a run directory, as a policy."""
        from agents.rllib.training import ModulePolicy, load_module

        return ModulePolicy(load_module(source), name=TRAINED)

    def trained_at(self, checkpoint: Path) -> Any:
        """The trained module of an RLlib checkpoint directory (a Tune trial's), as a policy."""
        from agents.rllib.training import ModulePolicy, load_module_at

        return ModulePolicy(load_module_at(checkpoint), name=TRAINED)

    def evaluate_trained(self, cfg: RunConfig, trained: Any, seeds: list[int]) -> list[dict]:
        """Rows of the trained policy alone on ``seeds`` (a sweep's held-out check)."""
        from agents.evaluation import evaluate

        rows, _ = evaluate([TRAINED], cfg.task, seeds, cfg.ruleset,
                           extra_policies={TRAINED: trained})  # fmt: skip
        return rows

    def evaluate(self, cfg: RunConfig, job: Job) -> Evaluated:
        """Every --compare policy on the job's seeds (the ruleset's --evaluator: our loop,
        or RLlib's SingleAgentEnvRunner, which takes the --llm-* settings itself)."""
        evaluate = cfg.rules.load(f"evaluators.{cfg.evaluator}")
        kw = {"llm_options": llm_options(cfg)} if cfg.evaluator == "rllib" else {}
        rows, step_rows = evaluate(cfg.compare, cfg.task, job.seeds, cfg.ruleset, log_steps=True,
                                   on_episode=job.on_episode, extra_policies=job.extra,
                                   **kw)  # fmt: skip
        return Evaluated(rows, list(cfg.compare), step_rows, step_rows, self.intro)


@dataclass(frozen=True)
class TeamPlay(Play):
    """A team ruleset: a --compare label is a team spec (a bare name plays every role,
    ``role=policy,...`` mixes); the clairvoyant bound is its own row, not a player."""

    def players(self, label: str) -> list[str]:
        return list(parse_team(team_spec(label)).values())

    def episodes(self, compare: Sequence[str], seeds: Sequence[int | None]) -> int:
        return len(seeds) * len(dict.fromkeys(compare))  # one team per distinct label

    def check_compare(self, compare: Sequence[str]) -> None:
        for label in compare:
            bad = [n for n in self.players(label) if n not in POLICIES and n != TRAINED]
            if bad:
                raise ValueError(
                    f"--compare {label!r}: unknown policies {bad}; registered: "
                    f"{', '.join(sorted(POLICIES))}"
                )

    def is_scenario(self, task: str, version: str) -> bool:
        from envs.ed.suite import SCENARIOS

        return version != "v0" and task in SCENARIOS  # v1's rules (v2: v1 + a bank)

    def scenario_hint(self) -> str:
        from envs.ed.suite import SCENARIOS

        return f"; ed v1/v2 scenarios: {', '.join(SCENARIOS)}"

    def llm_player(self, cfg: RunConfig) -> Any:
        from llm_policy.policy import ed_players

        return ed_players(cfg.llm_config())  # one policy per role, one backend (one model)

    def trained_policy(self, source: Path) -> Any:
        from agents.rllib.training import ModulePolicy
        from agents.rllib.variants import trained_team
        from envs.ed.config import AGENTS

        team = trained_team(source)  # any variant: one module per agent on its own observation
        return {a: ModulePolicy(team[a], name=TRAINED, agent=a) for a in AGENTS}

    def trained_at(self, checkpoint: Path) -> Any:
        from agents.rllib.training import ModulePolicy, load_module_at
        from envs.ed.config import AGENTS

        return {a: ModulePolicy(load_module_at(checkpoint, a), name=TRAINED, agent=a)
                for a in AGENTS}  # fmt: skip

    def evaluate_trained(self, cfg: RunConfig, trained: Any, seeds: list[int]) -> list[dict]:
        evaluate_teams = cfg.rules.load("evaluators.loop")
        return evaluate_teams(cfg.task, {TRAINED: team_spec(TRAINED)}, seeds,
                              extra={TRAINED: trained}, version=cfg.ed_version)  # fmt: skip

    def evaluate(self, cfg: RunConfig, job: Job) -> Evaluated:
        from envs.ed.observation import CONSULTANT_CONTEXT, CONSULTANT_FEATURES

        teams = {label: team_spec(label) for label in cfg.compare}
        step_rows: list[dict] = []
        if cfg.evaluator == "rllib":
            rows = _rllib_rows(cfg, teams, job, step_rows)
        else:
            evaluate_teams = cfg.rules.load("evaluators.loop")
            rows = evaluate_teams(cfg.task, teams, job.seeds, extra=job.extra,
                                  on_episode=job.on_episode, step_log=step_rows,
                                  version=cfg.ed_version)  # fmt: skip
        # The clairvoyant bound of each seed, reported as its own row (it is not played).
        firsts = [r for r in rows if r["policy"] == cfg.compare[0]]
        rows += [bound_row(cfg.task, cfg.ruleset, r, ORACLE) for r in firsts]
        # Team timeline: the consultant's rows carry the team reward (team reward mode);
        # its observation's "present" column counts the patients waiting.
        f = len(CONSULTANT_FEATURES)
        n_ctx = len(CONSULTANT_CONTEXT)
        n_cells = max((len(r["observation"]) - n_ctx for r in step_rows), default=0)
        timeline = [{**r, "queue_length": int(sum(r["observation"][0:n_cells:f]))}
                    for r in step_rows if r["agent"] == "consultant"]  # fmt: skip
        return Evaluated(rows, [*cfg.compare, ORACLE], step_rows, timeline, self.intro)


def llm_options(cfg: RunConfig) -> dict:
    """The --llm-* settings as the rllib evaluators' ``llm_options`` (the LLMModule
    builds its player from them in the EnvRunner)."""
    c = cfg.llm_config()
    out = {"mode": c.mode, "backend": c.backend, "model": c.model, "fallback": c.fallback}
    if cfg.llm_triage_threshold is not None:  # the triage nurse's; other roles ignore it
        out["triage_threshold"] = cfg.llm_triage_threshold
    return out


def _rllib_rows(cfg: RunConfig, teams: dict, job: Job, step_log: list[dict]) -> list[dict]:
    """Rows of every team played by RLlib's EnvRunner (agents.rllib.evaluation)."""
    evaluate_in_env_runner = cfg.rules.load("evaluators.rllib")
    extra = job.extra
    modules = (
        {TRAINED: {a: p.module for a, p in extra[TRAINED].items()}} if TRAINED in extra else None
    )
    return evaluate_in_env_runner(cfg.task, teams, list(job.seeds), modules=modules,
                                  llm_options=llm_options(cfg), version=cfg.ed_version,
                                  on_episode=job.on_episode, step_log=step_log)  # fmt: skip


CLASSIC_PLAY = Play()
TEAM_PLAY = TeamPlay(
    default_compare=ED_DEFAULT_COMPARE,
    default_init="bc",
    hints=True,
    progress="evaluating teams on",
    trained_name="team",
    intro="Teams: a bare name plays every role; role=policy mixes. "
    "% of oracle: Σ served rewards vs the ed clairvoyant bound of the same seed "
    "(envs.ed.bound). Score: v1, the same share as a fraction; v0, the grader. Grader: "
    "the task's grader with the ed fixes. ± = 95 % t-interval.",
)
