"""edmarl's front door: train the three-role ED team with RLlib (PPO, one module per
role), then evaluate it with the heuristic, mixed and random teams on held-out seeds
against the clairvoyant oracle bound.

How to run::

    python experiments/run.py --task mass_casualty
    python experiments/run.py --task dynamic_queue --train-iters 80 --eval-episodes 200
    python experiments/run.py --task basic_triage --no-train          # heuristics only
    python experiments/run.py --output runs/a --resume                 # continue a run
    python experiments/run.py --task basic_triage --evaluator loop     # our loop, not EnvRunners
    python experiments/run.py --task night_shift --critic central      # MAPPO critic
    python experiments/run.py --task night_shift --share-params        # one module, 3 roles
    python experiments/run.py --ruleset classic --task dynamic_queue   # Queue Doctor's engine
    python experiments/run.py --help
    python experiments/run.py --task basic_triage --no-train \
        --compare "nurse=llm,consultant=heuristic,pharmacist=heuristic" heuristic

``ed`` (default): PPO trains one permutation-invariant slot scorer per role
(``agents.rllib.modules``; with ``--hints``, the default, each also reads its role
heuristic's action, ``agents.rllib.hints``) on the PettingZoo env ``envs.ed_triage_v1``
on episode seeds below 10,000, starting from a behaviour clone of the ``--teacher``
team (``--init bc``: ``agents.rllib.imitation``; ``auto``: the heuristic team or the
planner, the better on validation seeds) with a decaying KL term towards it
(``agents.rllib.teacher``), each role then keeping its trained module or its clone,
the better mix on validation seeds (``agents.rllib.selection``); every team in
``--compare`` then plays the same held-out seeds (``--eval-seed-start`` …) in RLlib's
own EnvRunners, one RLModule per player (``--evaluator rllib``, the default; or
``--evaluator loop``, our Python loop: the same episodes, faster) and the
``ed`` oracle's exact bound is solved for each seed. ``classic``: a single PPO
consultant on Queue Doctor's engine against the classic heuristics and ILP oracle.
``llm`` (``llm_policy``, configured by the ``--llm-*`` options) plays the classic
consultant or any ``ed`` role (one policy per role, one model loaded per run).

Results to expect (defaults on a 2-core machine: about 8 minutes of training alone,
under a minute each for the teacher choice, the validation selection and the
evaluation — timed with the loop evaluator; the rllib evaluator, now the default, took
1.7× the loop's time on heuristic teams (README, *Evaluators*); README, *Trained teams
against their teachers*): on mass_casualty the
heuristic team teaches and the trained team ties it (89.6 % of the bound's serve
reward against 89.7 %, paired −0.06 ± 0.40; random team 74.5 %); where the planner
teaches it beats the heuristic team (dynamic_queue +13.7 ± 1.4, night_shift
+12.8 ± 3.2 % of the bound). The closing sentence states the paired result against the
best heuristic team and the planner. Files under ``--output``:
``results.parquet`` (one row per episode and team), ``summary.md``, ``summary.json``,
``comparison.png``, ``timeline.png``, ``learning_curve.png``, ``config.json``,
``run.json`` (the directory's claim: this run's settings, written first),
``checkpoint/`` and, with ``--save-episodes``, ``episodes.parquet``.
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime as dt
import sys
from collections.abc import Callable
from pathlib import Path

# Runnable as a script from a bare checkout too (e.g. a Ray job's working_dir copy).
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import tyro
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from agents import plots
from agents.frontdoor.config import (  # noqa: F401  (re-exported: run.py's public names)
    CLI_CONFIG,
    DEFAULT_COMPARE,
    DEFAULT_COMPARE_BY_RULESET,
    ED_DEFAULT_COMPARE,
    EVALUATORS,
    LLM,
    ORACLE,
    TRAINED,
    RunConfig,
    load_config_file,
)
from agents.frontdoor.outputs import config_dict as _config_dict  # noqa: F401
from agents.frontdoor.outputs import verdict, write_outputs  # noqa: F401
from agents.frontdoor.plays import Job
from agents.rllib.quiet import silence_harmless_logs
from agents.rllib.rundir import RunDir, claim
from agents.rllib.training import SERVE_REWARD_MEAN


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
    cfg = cfg.validate()
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
    play = cfg.play  # the ruleset's front door (agents.frontdoor.plays)
    history: list[dict] = []
    extra: dict = {}
    if cfg.trains:
        history = _train(cfg, out, console)
    trained_from = None
    if cfg.uses_trained:
        extra[TRAINED] = _trained_policy(cfg, out)
        trained_from = _trained_from(cfg, out, console)
    if cfg.uses_llm:  # built here so the --llm-* options reach it (lazy model load)
        extra[LLM] = play.llm_player(cfg)
    if cfg.uses_trained and not cfg.uses_llm:
        import torch

        # Evaluation runs the modules one observation at a time: tiny forwards that extra
        # intra-op threads only slow down (~10× on 2 shared cores).
        torch.set_num_threads(1)
    with _progress(console, "{task.fields[score]}") as progress:
        total = play.episodes(cfg.compare, seeds)
        bar = progress.add_task(f"{play.progress} {cfg.task}", total=total, score="")
        tick = _running_mean_ticker(progress, bar)
        job = Job(seeds, extra, on_episode=tick)
        done = play.evaluate(cfg, job)
    return write_outputs(cfg, out, done.rows, done.labels, done.step_rows, done.timeline,
                         history, done.intro, console, trained_from)  # fmt: skip


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


def _trained_source(cfg: RunConfig, out: Path) -> Path:
    """Where the trained policy is read: this run, or --checkpoint's run with --no-train."""
    return out if cfg.trains or cfg.checkpoint is None else cfg.checkpoint


def _trained_policy(cfg: RunConfig, out: Path):
    """The trained module (single agent), or {agent: module policy} for a team."""
    try:
        return cfg.play.trained_policy(_trained_source(cfg, out))
    except FileNotFoundError as e:
        raise ValueError(f"{e}; or drop 'ppo' from --compare") from None


def _trained_from(cfg: RunConfig, out: Path, console: Console) -> dict | None:
    """The trained team's warm start and validation selection (its train state), with
    the selection said on the console."""
    from agents.rllib.training import _read_state

    state = _read_state(_trained_source(cfg, out))
    if state is None:
        return None
    if state.get("selection"):
        console.print(f"shipped modules: {state['selection']['description']}")
    return {"bc": state.get("bc"), "selection": state.get("selection")}


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
