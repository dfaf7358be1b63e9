"""edmarl's front door: evaluate policies on one task and report them against the
clairvoyant oracle bound.

How to run::

    python experiments/run.py --task mass_casualty
    python experiments/run.py --task dynamic_queue --eval-episodes 200 --save-episodes
    python experiments/run.py --help

Every policy in ``--compare`` plays the same held-out episode seeds
(``--eval-seed-start`` …) through the Gymnasium env; the oracle's exact bound is
solved for each seed. Training of neural policies (RLlib) is not part of this version:
the run evaluates the registered heuristics and the oracle.

Results to expect (defaults, 50 episodes of mass_casualty, a few seconds): a table in
which the oracle reaches 100 % of its own bound, the heuristics 80–90 % of it and
random far less; grader scores are low for every policy on this task (Queue Doctor's
hard grader subtracts up to 0.55 for severity-1 patients waiting, which no policy can
avoid once the only ICU bed is used). Files under ``--output``: ``results.parquet``
(one row per episode and policy), ``summary.md``, ``summary.json``,
``comparison.png``, ``timeline.png``, ``config.json`` and, with ``--save-episodes``,
``episodes.parquet``.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import sys
from dataclasses import dataclass
from pathlib import Path

import tyro
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from agents import POLICIES
from agents.evaluation import evaluate
from envs.rulesets import RULESETS, UnknownRulesetError, get_ruleset
from envs.tasks import UnknownTaskError, get_task
from experiments import report

DEFAULT_COMPARE = ("random", "fifo", "severity_greedy", "deterioration_greedy", "oracle")


@dataclass
class RunConfig:
    """Evaluate policies on one edmarl task against the oracle bound."""

    task: str = "mass_casualty"
    """Task: basic_triage, dynamic_queue, mass_casualty (or task_1_easy … task_3_hard)."""
    ruleset: str = "classic"
    """Engine ruleset. classic = Queue Doctor's engine, bit for bit."""
    compare: tuple[str, ...] = DEFAULT_COMPARE
    """Policies to evaluate, by registered name (see agents.POLICIES)."""
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
    """Allow writing into an output directory that already holds results."""
    save_episodes: bool = False
    """Also write every evaluation step as episodes.parquet."""

    def validate(self) -> None:
        """Raise ValueError naming the fix for any bad field."""
        try:
            self.task = get_task(self.task).name
            get_ruleset(self.ruleset)
        except (UnknownTaskError, UnknownRulesetError) as e:
            raise ValueError(str(e)) from None
        unknown = [p for p in self.compare if p not in POLICIES]
        if unknown or not self.compare:
            raise ValueError(
                f"--compare: unknown policies {unknown}; registered: {', '.join(sorted(POLICIES))}"
            )
        if self.eval_episodes < 1:
            raise ValueError("--eval-episodes must be at least 1")
        if self.eval_seed_start < 0:
            raise ValueError("--eval-seed-start must be >= 0")

    def seeds(self) -> list[int | None]:
        extra: list[int | None] = [None] if self.include_unseeded else []
        return extra + list(range(self.eval_seed_start, self.eval_seed_start + self.eval_episodes))


def _output_dir(cfg: RunConfig) -> Path:
    if cfg.output is not None:
        out = cfg.output
    else:
        stamp = dt.datetime.now(dt.timezone.utc).strftime("%Y%m%d-%H%M%S")
        out = Path("runs") / f"{cfg.task}-{cfg.ruleset}-{stamp}"
    if (out / "results.parquet").exists() and not cfg.overwrite:
        raise ValueError(f"{out} already holds results; pass --overwrite or another --output")
    return out


def run(cfg: RunConfig, console: Console | None = None) -> dict:
    """Run the evaluation and write every output; return the summary dict."""
    # Rich wraps at 80 columns when not attached to a terminal; tables need more.
    console = console or Console(width=None if sys.stdout.isatty() else 120)
    cfg.validate()
    out = _output_dir(cfg)
    seeds = cfg.seeds()
    total = len(seeds) * len(cfg.compare)
    with Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("score {task.fields[score]}"),
        TimeElapsedColumn(),
        console=console,
        transient=False,
    ) as progress:
        bar = progress.add_task(f"evaluating on {cfg.task}", total=total, score="-")

        def tick(row: dict) -> None:
            progress.update(bar, advance=1, score=f"{row['policy']} {row['score']:.3f}")

        rows, step_rows = evaluate(
            cfg.compare, cfg.task, seeds, cfg.ruleset, log_steps=True, on_episode=tick
        )
    summary = report.summarise(rows, cfg.compare)
    report.write_parquet(out / "results.parquet", rows)
    if cfg.save_episodes:
        report.write_parquet(out / "episodes.parquet", step_rows)
    title = f"{cfg.task} ({cfg.ruleset}), {cfg.eval_episodes} held-out seeds"
    md = (
        f"# {title}\n\n"
        "Serve reward and % of oracle: Σ served rewards vs the clairvoyant bound of the "
        "same seed (agents.oracle). Score: the task's grader. ± = 95 % t-interval.\n\n"
        + report.markdown_table(summary)
    )
    report.write_text(out / "summary.md", md)
    doc = {"config": _config_dict(cfg), "summary": summary}
    report.write_json(out / "summary.json", doc)
    report.write_json(out / "config.json", _config_dict(cfg))
    report.plot_comparison(out / "comparison.png", summary, title)
    report.plot_timeline(out / "timeline.png", step_rows, seeds[0], f"{cfg.task}, seed {seeds[0]}")
    _print_table(console, summary, title)
    console.print(
        f"wrote {out}/: results.parquet summary.md summary.json comparison.png "
        f"timeline.png config.json" + (" episodes.parquet" if cfg.save_episodes else "")
    )
    return doc


def _config_dict(cfg: RunConfig) -> dict:
    d = dataclasses.asdict(cfg)
    d["output"] = str(cfg.output) if cfg.output else None
    d["compare"] = list(cfg.compare)
    d["rulesets_available"] = list(RULESETS)
    return d


def _print_table(console: Console, summary: list[dict], title: str) -> None:
    t = Table(title=title)
    for col in ("policy", "score ± 95% CI", "return", "% of oracle", "served", "missed emerg."):
        t.add_column(col, justify="left" if col == "policy" else "right")
    for s in summary:
        t.add_row(
            s["policy"],
            f"{s['score']:.3f} ± {s['score_ci95']:.3f}",
            f"{s['episode_return']:.2f}",
            f"{s['pct_of_oracle']:.1f}",
            f"{s['served']:.1f}",
            f"{s['missed_emergencies']:.1f}",
        )
    console.print(t)


def main(argv: list[str] | None = None) -> int:
    cfg = tyro.cli(RunConfig, args=argv)
    try:
        run(cfg)
    except ValueError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
