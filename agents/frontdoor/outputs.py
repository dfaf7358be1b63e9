"""The front door's outputs: results.parquet, summary.md/json (with the paired table
and a one-sentence :func:`verdict`), config.json, the plots, and the console tables."""

from __future__ import annotations

import dataclasses
from pathlib import Path

from rich.console import Console
from rich.table import Table

from agents import plots, report
from agents.frontdoor.config import LLM, ORACLE, TRAINED, RunConfig
from agents.rllib.training import TRAIN_SEED_LIMIT
from envs.rulesets import RULESETS


def write_outputs(
    cfg: RunConfig,
    out: Path,
    rows: list[dict],
    labels: list[str],
    step_rows: list[dict],
    timeline: list[dict],
    history: list[dict],
    intro: str,
    console: Console,
    trained_from: dict | None = None,
) -> dict:
    """Write results.parquet, summary.md/json, config.json, the plots (and with
    --save-episodes episodes.parquet), print the table and the list; return the summary
    document. ``timeline``: the step rows plotted for the first seed; ``trained_from``:
    the trained team's warm start (``bc``) and validation ``selection``, if any."""
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
    sel = (trained_from or {}).get("selection")
    if sel:
        md += f"\nShipped modules (agents.rllib.selection): {sel['description']}.\n"
    report.write_text(out / "summary.md", f"# {title}\n\n{intro}\n\n" + md)
    doc = {"config": config_dict(cfg), "summary": summary, "paired": pairs,
           "verdict": said, "training": history,
           "warm_start": (trained_from or {}).get("bc"), "selection": sel}  # fmt: skip
    if history:
        curve_title = (
            f"{cfg.task} ({cfg.ruleset}): training on seeds < {TRAIN_SEED_LIMIT:,} "
            f"(stochastic policy); levels: {cfg.eval_episodes} held-out seeds"
        )
        levels = plots.reference_levels(rows, summary, TRAINED, not_heuristics=("random", LLM))
        plots.plot_learning_curve(out / "learning_curve.png", history, curve_title, levels)
    report.write_json(out / "summary.json", doc)
    report.write_json(out / "config.json", config_dict(cfg))
    plots.plot_comparison(out / "comparison.png", summary, title, plots.bound_score(rows))
    written = ["results.parquet", "summary.md", "summary.json", "comparison.png", "config.json"]
    if timeline:
        title_t = f"{cfg.task} ({cfg.ruleset}), one held-out episode: seed {seeds[0]}"
        plots.plot_timeline(out / "timeline.png", timeline, seeds[0], title_t)
        written.append("timeline.png")
    print_table(console, summary, title)
    if pairs:
        print_paired(console, pairs)
    if said:
        console.print(said)
    if history:
        written += ["learning_curve.png", "checkpoint/"]
    if cfg.save_episodes:
        written.append("episodes.parquet")
    console.print(f"wrote {out}/: " + " ".join(written))
    return doc


NOT_HEURISTIC = (TRAINED, LLM, "random", ORACLE, "ed_planner")
"""Players that disqualify a team from being "the best heuristic team"."""


def verdict(cfg: RunConfig, summary: list[dict], pairs: list[dict]) -> str | None:
    """One sentence: the trained team against the best heuristic team (highest mean
    score among teams of heuristics only), and against the ``planner`` reference when it
    played, paired by seed on the score."""

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

    heuristics = [s for s in summary if not set(cfg.play.players(s["policy"])) & set(NOT_HEURISTIC)]
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


def config_dict(cfg: RunConfig) -> dict:
    d = dataclasses.asdict(cfg)
    d["output"] = str(cfg.output) if cfg.output else None
    d["compare"] = list(cfg.compare)
    d["rulesets_available"] = list(RULESETS)
    return d


def print_table(console: Console, summary: list[dict], title: str) -> None:
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


def print_paired(console: Console, pairs: list[dict]) -> None:
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
