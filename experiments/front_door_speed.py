"""Training speed of front-door runs: simulated ED episodes per second of training wall
time, from each run's ``summary.json`` training records, and each run's ratio to the
first (issue 18's measure: episodes, so that a run whose env steps are fewer sub-steps
per episode counts fairly).

How to run::

    python experiments/front_door_speed.py before=runs/a after=runs/b \\
        --out docs/benchmarks/front_door_speed.json

Episodes: the last record's ``episodes`` (RLlib's count of finished episodes, recorded
since 2026-12-03), else Σ per iteration ``Δtimesteps / episode_len_mean`` (the env steps
of the iteration over RLlib's mean episode length: an estimate); ``--estimate`` uses the
estimate for every run, so that old and new runs are counted alike. Training wall time:
the last record's ``time_s`` (from the first ``train()`` call to the end of the last
iteration's checkpoint; warm start, validation and evaluation excluded). Prints a
table; ``--out`` writes the figures as JSON (atomically).

Results to expect: docs/benchmarks/front_door_speed.md.
"""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import tyro

from agents.report import run_record, save_json


@dataclass
class SpeedConfig:
    runs: tyro.conf.Positional[tuple[str, ...]]
    """label=run_dir, ... (the first is the baseline of the ratios)."""
    out: Path | None = None
    """Write the figures here as JSON."""
    estimate: bool = False
    """Estimate the episodes from timesteps / episode_len_mean even where counted."""


def training_speed(run_dir: Path, estimate: bool = False) -> dict:
    """Episodes, env steps and seconds of a run's training records."""
    path = Path(run_dir) / "summary.json"
    if not path.is_file():
        raise FileNotFoundError(f"{path} not found: give a front-door run directory")
    records = json.loads(path.read_text()).get("training") or []
    if not records:
        raise ValueError(f"{path} has no training records (a --no-train run?)")
    exact = records[-1].get("episodes") is not None and not estimate
    if exact:
        episodes = float(records[-1]["episodes"])
    else:  # runs before 2026-12-03: estimate from each iteration's steps and mean length
        episodes, prev = 0.0, 0
        for r in records:
            episodes += (r["timesteps"] - prev) / r["episode_len_mean"]
            prev = r["timesteps"]
    seconds = float(records[-1]["time_s"])
    return {
        "run": str(run_dir),
        "iterations": len(records),
        "env_steps": int(records[-1]["timesteps"]),
        "episodes": episodes,
        "episodes_exact": exact,
        "training_s": seconds,
        "episodes_per_s": episodes / seconds,
        "env_steps_per_s": records[-1]["timesteps"] / seconds,
    }


def main(argv: list[str] | None = None) -> int:
    cfg = tyro.cli(SpeedConfig, args=argv)
    rows = []
    try:
        for item in cfg.runs:
            label, sep, path = item.partition("=")
            if not sep:
                raise ValueError(f"{item!r}: give label=run_dir")
            rows.append({"label": label, **training_speed(Path(path), cfg.estimate)})
    except (OSError, ValueError, KeyError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    base = rows[0]["episodes_per_s"]
    print(f"{'run':<12} {'iters':>5} {'env steps':>9} {'episodes':>9} {'train s':>8} "
          f"{'episodes/s':>10} {'× first':>7}")  # fmt: skip
    for r in rows:
        r["ratio_to_first"] = r["episodes_per_s"] / base
        print(f"{r['label']:<12} {r['iterations']:>5} {r['env_steps']:>9} "
              f"{r['episodes']:>9.0f} {r['training_s']:>8.1f} {r['episodes_per_s']:>10.2f} "
              f"{r['ratio_to_first']:>6.2f}×")  # fmt: skip
    if cfg.out is not None:
        save_json(cfg.out, {**run_record("front_door_speed.py", argv), "runs": rows})
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
