"""Compare trained teams of several front-door runs on the same held-out seeds, paired
by seed: each run's ``ppo`` team against the reference team (``heuristic``) and against
the first run's ``ppo`` (e.g. ``--critic central`` − the default local critic).

How to run::

    python experiments/compare_runs.py local=runs/a central=runs/b shared=runs/c \\
        --out docs/benchmarks/variants_v1/dynamic_queue

Reads each run's ``results.parquet``; writes ``<out>.md`` and ``<out>.json``
(atomically) and prints the table. Every run must have played the same seeds, and the
reference team's rows must agree across runs (it is the same deterministic team).
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import pyarrow.parquet as pq
import tyro

from agents.report import paired, paired_markdown, summarise, write_json, write_text

TRAINED = "ppo"


@dataclass
class CompareConfig:
    runs: tyro.conf.Positional[tuple[str, ...]]
    """label=run_dir, ... (the first is the baseline the others are paired with)."""
    out: Path | None = None
    """Write <out>.md and <out>.json (default: print only)."""
    reference: str = "heuristic"
    """The team every run's trained team is paired with."""


def labelled(item: str) -> tuple[str, Path]:
    """``label=run_dir`` → (label, run directory); ValueError naming the form otherwise."""
    label, sep, path = item.partition("=")
    if not sep or not label or not path:
        raise ValueError(f"{item!r}: give label=run_dir")
    return label, Path(path)


def load(runs: tuple[str, ...], reference: str) -> tuple[list[dict], list[str]]:
    """All runs' trained rows (relabelled with the run's label) and the reference rows."""
    rows: list[dict] = []
    labels: list[str] = []
    ref: dict | None = None
    for item in runs:
        label, path = labelled(item)
        results = path / "results.parquet"
        if not results.is_file():
            raise ValueError(f"{results}: no such file (run experiments/run.py there first)")
        table = pq.read_table(results).to_pylist()
        mine = [{**r, "policy": label} for r in table if r["policy"] == TRAINED]
        theirs = {r["seed"]: r["score"] for r in table if r["policy"] == reference}
        if not mine or not theirs:
            raise ValueError(f"{path}: needs {TRAINED!r} and {reference!r} rows")
        if ref is None:
            ref = theirs
            rows += [r for r in table if r["policy"] == reference]
        elif theirs != ref:
            raise ValueError(f"{path}: its {reference!r} rows differ from the first run's: "
                             "not the same seeds or task")  # fmt: skip
        rows += mine
        labels.append(label)
    return rows, labels


def markdown(rows: list[dict], labels: list[str], reference: str) -> tuple[str, dict]:
    summary = summarise(rows, [*labels, reference])
    pairs = [p for label in labels for p in paired(rows, label, [reference])]
    pairs += [p for label in labels[1:] for p in paired(rows, label, labels[:1])]
    lines = ["| team | seeds | % of bound | normalised | score |", "|---|---:|---:|---:|---:|"]
    for s in summary:
        lines.append(f"| {s['policy']} | {s['episodes']} | {s['pct_of_oracle']:.1f} | "
                     f"{s['normalised']:.3f} | {s['score']:.3f} |")  # fmt: skip
    md = "\n".join(lines) + "\n\n" + paired_markdown(pairs)
    return md, {"summary": summary, "paired": pairs}


def main(argv: list[str] | None = None) -> int:
    cfg = tyro.cli(CompareConfig, args=argv)
    try:
        rows, labels = load(cfg.runs, cfg.reference)
    except ValueError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    md, doc = markdown(rows, labels, cfg.reference)
    print(md)
    if cfg.out is not None:
        cfg.out.parent.mkdir(parents=True, exist_ok=True)
        write_text(cfg.out.with_suffix(".md"), md)
        write_json(cfg.out.with_suffix(".json"), {"runs": list(cfg.runs), **doc})
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
