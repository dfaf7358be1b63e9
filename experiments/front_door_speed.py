"""Training speed of front-door runs — simulated ED episodes per second of training wall
time, from each run's ``summary.json`` training records — and their trained teams'
evaluation, paired by seed (issue 18's measure: episodes, so that a run whose env steps
are fewer sub-steps per episode counts fairly; and an equal or better evaluation).

How to run::

    python experiments/front_door_speed.py before=runs/a after=runs/b \\
        --out docs/benchmarks/front_door_speed.json
    python experiments/front_door_speed.py before=runs/a before=runs/b after=runs/c ...

Runs with the same label are replicates of one version: the ratio is of the groups'
mean episodes/s (to the first label's), with a 95 % interval for the ratio of geometric
means (Welch's interval on log episodes/s); ``--paired`` also pairs the k-th run of each
label with the k-th run of the first (runs alternated in time: a machine whose speed
drifts during the session slows both runs of a pair alike) and gives the geometric mean
of the pairs' ratios with a t-interval over pairs. The evaluation compares the groups' ``ppo``
score averaged per held-out seed over the replicates, paired by seed (mean difference
and 95 % t-interval; every run must have played the same seeds), and the groups' mean
run scores with Welch's interval over runs (training is not reproducible here, and runs
of one version differ by more than the seed-paired interval).

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

import pyarrow.parquet as pq
import tyro

from agents.report import mean_ci, run_record, save_json
from experiments.compare_runs import labelled

TRAINED = "ppo"


@dataclass
class SpeedConfig:
    runs: tyro.conf.Positional[tuple[str, ...]]
    """label=run_dir, ... (the first is the baseline of the ratios)."""
    out: Path | None = None
    """Write the figures here as JSON."""
    estimate: bool = False
    """Estimate the episodes from timesteps / episode_len_mean even where counted."""
    paired: bool = False
    """Pair the k-th run of each label with the k-th run of the first label (give the
    runs in the order they ran, alternated) and report the ratio per pair."""


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


def seed_scores(run_dir: Path) -> dict[int, float]:
    """The trained team's score per held-out seed of a run."""
    path = Path(run_dir) / "results.parquet"
    if not path.is_file():
        raise FileNotFoundError(f"{path} not found: give a front-door run directory")
    rows = [r for r in pq.read_table(path).to_pylist() if r["policy"] == TRAINED]
    if not rows:
        raise ValueError(f"{path} has no {TRAINED!r} rows")
    return {int(r["seed"]): float(r["score"]) for r in rows}


def groups_compared(rows: list[dict], paired: bool = False) -> dict:
    """Per label: mean episodes/s and the per-seed mean score; each later label minus
    the first, paired by seed; speed ratios (:func:`speed_ratio`)."""
    labels = list(dict.fromkeys(r["label"] for r in rows))
    groups: dict[str, dict] = {}
    for label in labels:
        mine = [r for r in rows if r["label"] == label]
        per_seed: dict[int, list[float]] = {}
        for r in mine:
            for seed, score in seed_scores(Path(r["run"])).items():
                per_seed.setdefault(seed, []).append(score)
        if len({len(v) for v in per_seed.values()}) != 1:
            raise ValueError(f"the {label!r} runs did not all play the same seeds")
        run_means = []
        for r in mine:
            scores = seed_scores(Path(r["run"]))
            run_means.append(sum(scores.values()) / len(scores))
        groups[label] = {
            "runs": len(mine),
            "episodes_per_s": sum(r["episodes_per_s"] for r in mine) / len(mine),
            "score": {s: sum(v) / len(v) for s, v in per_seed.items()},
            "run_scores": run_means,
            "rates": [r["episodes_per_s"] for r in mine],
        }
    first = groups[labels[0]]
    out = {}
    for label in labels:
        g = groups[label]
        seeds = sorted(set(g["score"]) & set(first["score"]))
        diff = [g["score"][s] - first["score"][s] for s in seeds]
        mean, half = mean_ci(diff) if label != labels[0] else (0.0, 0.0)
        out[label] = {
            "runs": g["runs"],
            "episodes_per_s": g["episodes_per_s"],
            "ratio_to_first": g["episodes_per_s"] / first["episodes_per_s"],
            "mean_score": sum(g["score"].values()) / len(g["score"]),
            "seeds": len(seeds),
            "score_minus_first": mean,
            "score_minus_first_ci95": half,
            "seeds_won_lost": [sum(d > 1e-9 for d in diff), sum(d < -1e-9 for d in diff)],
            "run_scores": g["run_scores"],
            **between_runs(g["run_scores"], first["run_scores"]),
            **speed_ratio(g["rates"], first["rates"], paired),
        }
    return out


def _log_interval(sample: list[float], other: list[float] | None = None) -> list[float] | None:
    """exp of the 95 % t-interval of mean(log sample) (− mean(log other), Welch)."""
    import numpy as np
    from scipy import stats

    logs = np.log(sample)
    if other is None:
        if len(logs) < 2:
            return None
        ci = stats.ttest_1samp(logs, 0.0).confidence_interval(0.95)
    else:
        if len(logs) < 2 or len(other) < 2:
            return None
        ci = stats.ttest_ind(logs, np.log(other), equal_var=False).confidence_interval(0.95)
    return [float(np.exp(ci.low)), float(np.exp(ci.high))]


def speed_ratio(rates: list[float], first: list[float], paired: bool) -> dict:
    """Ratio of geometric mean episodes/s to the first group's with Welch's 95 % interval
    on the logs; with ``paired``, the k-th runs' ratios, their geometric mean and its
    t-interval over pairs (None where fewer than two runs or pairs)."""
    from scipy.stats import gmean

    same = rates is first
    out: dict = {
        "speed_ratio_geometric": float(gmean(rates) / gmean(first)),
        "speed_ratio_ci95": None if same else _log_interval(rates, first),
    }
    if paired and not same:
        if len(rates) != len(first):
            raise ValueError(
                f"--paired needs as many runs of each label as of the first "
                f"({len(rates)} against {len(first)})"
            )
        pairs = [a / b for a, b in zip(rates, first, strict=True)]
        out |= {"pair_ratios": pairs, "pair_ratio_geometric": float(gmean(pairs)),
                "pair_ratio_ci95": _log_interval(pairs)}  # fmt: skip
    return out


def between_runs(scores: list[float], first: list[float]) -> dict:
    """Mean run score minus the first group's, with Welch's 95 % interval over runs
    (None with fewer than two runs in a group). The seed-paired interval above treats the
    runs as fixed; training is not reproducible here and runs of one version differ by
    more than that interval, so this is the comparison of versions."""
    from scipy import stats

    diff = sum(scores) / len(scores) - sum(first) / len(first)
    if len(scores) < 2 or len(first) < 2 or scores is first:
        return {"runs_minus_first": diff, "runs_minus_first_ci95": None}
    ci = stats.ttest_ind(scores, first, equal_var=False).confidence_interval(0.95)
    return {"runs_minus_first": diff, "runs_minus_first_ci95": [ci.low, ci.high]}


def main(argv: list[str] | None = None) -> int:
    cfg = tyro.cli(SpeedConfig, args=argv)
    try:
        rows = [{"label": label, **training_speed(path, cfg.estimate)}
                for label, path in map(labelled, cfg.runs)]  # fmt: skip
        groups = groups_compared(rows, cfg.paired)
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
    first = next(iter(groups))
    for label, g in groups.items():
        print(f"{label}: {g['runs']} run(s), {g['episodes_per_s']:.2f} episodes/s "
              f"({g['ratio_to_first']:.2f}× {first}); ppo score {g['mean_score']:.4f}, "
              f"− {first} {g['score_minus_first']:+.4f} ± {g['score_minus_first_ci95']:.4f} "
              f"over {g['seeds']} paired seeds (won/lost {g['seeds_won_lost']})")  # fmt: skip
        ci = g["runs_minus_first_ci95"]
        runs = ", ".join(f"{x:.3f}" for x in g["run_scores"])
        span = f" (Welch 95 % CI {ci[0]:+.4f} to {ci[1]:+.4f})" if ci else ""
        print(f"  run scores {runs}; mean − {first} over runs {g['runs_minus_first']:+.4f}{span}")
        if g["speed_ratio_ci95"]:
            lo, hi = g["speed_ratio_ci95"]
            print(f"  speed: geometric means {g['speed_ratio_geometric']:.2f}× {first} "
                  f"(Welch 95 % CI {lo:.2f}–{hi:.2f}×)")  # fmt: skip
        if g.get("pair_ratios"):
            pairs = ", ".join(f"{x:.2f}" for x in g["pair_ratios"])
            ci = g["pair_ratio_ci95"]
            span = f" (95 % CI {ci[0]:.2f}–{ci[1]:.2f}×)" if ci else ""
            print(
                f"  speed by pair: {pairs}; geometric mean {g['pair_ratio_geometric']:.2f}×{span}"
            )
    if cfg.out is not None:
        doc = {**run_record("front_door_speed.py", argv), "runs": rows, "groups": groups}
        save_json(cfg.out, doc)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
