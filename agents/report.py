"""Summaries, tables, plots and atomic writes for experiment outputs (docs/spec.md §5): the
library the front door and every script in experiments/ write their results with."""

from __future__ import annotations

import json
import math
import os
import platform
import sys
import tempfile
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
from scipy import stats

SUMMARY_METRICS = (
    "score", "grader_score", "episode_return", "serve_reward", "pct_of_oracle", "normalised",
    "served", "missed_emergencies", "within_target_1", "within_target_2", "illegal_actions",
)  # fmt: skip
"""``score``: the task score (``ed`` v1: the share of the bound's serve reward; classic
and ``ed`` v0: the grader); ``grader_score``: the grader (``ed`` rows only)."""
CI_LEVEL = 0.95
PAIRED_METRICS = ("score", "episode_return", "pct_of_oracle", "normalised", "grader_score")
"""Metrics :func:`paired` compares (``normalised``, ``grader_score``: ``ed`` rows only,
else skipped)."""
TIE = 1e-9
"""Per-seed differences within this are ties (the metrics are rounded sums)."""


def default_file_mode() -> int:
    """The mode a plain ``open(path, "w")`` would give a new file (0o666 minus the
    umask): results are meant to be shared, and mkstemp's 0o600 would hide them."""
    return 0o666 & ~_umask()


def _umask() -> int:
    # Linux reports it without changing it; os.umask can only read it by setting it,
    # which would briefly give other threads' new files a 0 umask.
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("Umask:"):
                return int(line.split()[1], 8)
    except OSError:
        pass
    umask = os.umask(0o077)
    os.umask(umask)
    return umask


def atomic_write(path: Path, write: Callable[[Path], None]) -> None:
    """Write through a temp file in the same directory, then rename over ``path``:
    readers never see a half-written file, and a crash leaves the old file intact.
    The file gets the user's normal permissions (:func:`default_file_mode`)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    try:
        write(Path(tmp))
        os.chmod(tmp, default_file_mode())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_text(path: Path, text: str) -> None:
    atomic_write(path, lambda p: p.write_text(text))


def write_parquet(path: Path, rows: Sequence[dict]) -> None:
    table = pa.Table.from_pylist(list(rows))
    atomic_write(path, lambda p: pq.write_table(table, p))


def mean_ci(values: Sequence[float]) -> tuple[float, float]:
    """Mean and half-width of the 95 % t-interval (NaNs dropped; 0 for one value)."""
    x = np.asarray([v for v in values if not (isinstance(v, float) and math.isnan(v))], float)
    if x.size == 0:
        return math.nan, math.nan
    if x.size == 1:
        return float(x[0]), 0.0
    half = stats.t.ppf(0.5 + CI_LEVEL / 2, x.size - 1) * x.std(ddof=1) / math.sqrt(x.size)
    return float(x.mean()), float(half)


def summarise(rows: Sequence[dict], policies: Sequence[str]) -> list[dict]:
    """One summary row per policy, in the order given."""
    out = []
    for name in policies:
        mine = [r for r in rows if r["policy"] == name]
        if not mine:
            continue
        s: dict = {"policy": name, "episodes": len(mine)}
        for m in SUMMARY_METRICS:
            # Missing or undefined values (None) do not count towards the mean.
            mean, half = mean_ci([math.nan if r.get(m) is None else float(r[m]) for r in mine])
            s[m] = mean
            s[f"{m}_ci95"] = half
        out.append(s)
    return out


def paired(rows: Sequence[dict], policy: str, others: Sequence[str]) -> list[dict]:
    """``policy`` minus each of ``others``, seed by seed on the seeds both played: per
    metric of :data:`PAIRED_METRICS`, the mean difference, its 95 % t-interval
    half-width and the seeds won / lost / tied. Policies compared on the same seeds
    differ far less than their separate intervals suggest; this is the test to read."""

    def by_seed(name: str) -> dict:
        return {r["seed"]: r for r in rows if r["policy"] == name}

    mine = by_seed(policy)
    out = []
    for other in others:
        theirs = by_seed(other)
        seeds = [k for k in mine if k in theirs]
        if other == policy or not seeds:
            continue
        entry: dict = {"policy": policy, "versus": other, "seeds": len(seeds)}
        for m in PAIRED_METRICS:
            pairs = [(mine[k].get(m), theirs[k].get(m)) for k in seeds]
            diff = [float(a) - float(b) for a, b in pairs if a is not None and b is not None]
            if not diff:
                continue
            mean, half = mean_ci(diff)
            entry[m] = {"mean_diff": mean, "ci95": half,
                        "wins": sum(d > TIE for d in diff), "losses": sum(d < -TIE for d in diff),
                        "ties": sum(abs(d) <= TIE for d in diff)}  # fmt: skip
        out.append(entry)
    return out


def paired_markdown(entries: Sequence[dict]) -> str:
    """The :func:`paired` comparisons as a table (difference ± 95 % CI, wins/losses/ties)."""
    if not entries:
        return ""
    lines = ["| policy − versus | seeds | " + " | ".join(PAIRED_METRICS) + " |",
             "|---|---|" + "---|" * len(PAIRED_METRICS)]  # fmt: skip
    for e in entries:
        cells = []
        for m in PAIRED_METRICS:
            d = e.get(m)
            cells.append("n/a" if d is None else f"{d['mean_diff']:+.4f} ± {d['ci95']:.4f} "
                         f"({d['wins']}/{d['losses']}/{d['ties']})")  # fmt: skip
        row = f"| {e['policy']} − {e['versus']} | {e['seeds']} | "
        lines.append(row + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def _fmt(x: float, nd: int = 3) -> str:
    return "n/a" if x is None or (isinstance(x, float) and math.isnan(x)) else f"{x:.{nd}f}"


def _has(summary: Sequence[dict], metric: str) -> bool:
    return any(s.get(metric) is not None and s[metric] == s[metric] for s in summary)


def markdown_table(summary: Sequence[dict]) -> str:
    """The summary as a table; the ``grader`` column only where rows have it (``ed``)."""
    grader = _has(summary, "grader_score")
    head = (
        "| policy | episodes | score (95 % CI) | " + ("grader (95 % CI) | " if grader else "")
        + "return | serve reward | % of oracle | "
        "normalised | served | missed emerg. | cat-1 in target | cat-2 in target |\n"
        "|---|---|---|---|---|---|---|---|---|---|---|" + ("---|" if grader else "") + "\n"
    )  # fmt: skip

    def grader_cell(s: dict) -> str:
        return f"{_fmt(s['grader_score'])} ± {_fmt(s['grader_score_ci95'])} | " if grader else ""

    lines = [
        f"| {s['policy']} | {s['episodes']} | {_fmt(s['score'])} ± {_fmt(s['score_ci95'])} | "
        f"{grader_cell(s)}{_fmt(s['episode_return'])} | {_fmt(s['serve_reward'])} | "
        f"{_fmt(s['pct_of_oracle'], 1)} | {_fmt(s.get('normalised'), 3)} | "
        f"{_fmt(s['served'], 1)} | "
        f"{_fmt(s['missed_emergencies'], 1)} | {_fmt(s['within_target_1'], 2)} | "
        f"{_fmt(s['within_target_2'], 2)} |"
        for s in summary
    ]
    return head + "\n".join(lines) + "\n"


def write_json(path: Path, obj) -> None:
    write_text(path, json.dumps(obj, indent=2, default=str, allow_nan=True) + "\n")


def save_json(path: Path, obj) -> None:
    """:func:`write_json`, then say where (every script's last line)."""
    write_json(path, obj)
    print(f"wrote {path}")


def run_record(script: str, argv: Sequence[str] | None = None) -> dict:
    """What a benchmark's JSON starts with: the command that made it (``argv`` None: this
    process's arguments) and the machine it ran on."""
    args = sys.argv[1:] if argv is None else argv
    return {
        "command": " ".join(["python", f"experiments/{script}", *args]),
        "machine": {
            "python": platform.python_version(),
            "platform": platform.platform(),
            "processor": platform.processor() or platform.machine(),
            "cpu_count": os.cpu_count(),
        },
    }
