"""The front door's plots, built as matplotlib figures (tests inspect them) and saved
atomically: the comparison of every policy with the oracle bound, one seed's timeline
and the learning curve on the scale of the evaluation table.

Every figure names each policy with :func:`short_label` and draws it in the colour of
:func:`policy_colours`, so a team looks the same in all three.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from agents.report import atomic_write

ORACLE = "oracle"
DPI = 110
PALETTE = ("#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2",
           "#7f7f7f", "#bcbd22", "#17becf")  # fmt: skip
"""matplotlib's tab10: ten colours told apart at a glance (and by most colour-blind
readers for the first four)."""
BOUND_COLOUR = "black"
LINE_STYLES = ("-", "--", ":", "-.")
REFERENCE_STYLES = {"heuristic": "--", "bound": ":", "trained": "-."}


def _pyplot() -> Any:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def short_label(label: str) -> str:
    """A team label that fits an axis: ``nurse=heuristic,consultant=ppo,pharmacist=
    heuristic`` → ``consultant=ppo, rest heuristic``; bare names stay as they are."""
    pairs = [part.split("=", 1) for part in label.split(",")]
    if len(pairs) < 2 or any(len(p) != 2 for p in pairs):
        return label
    common, n = Counter(policy for _, policy in pairs).most_common(1)[0]
    if n == len(pairs):
        return common
    if n == 1:  # every role differs: abbreviate the roles
        return " ".join(f"{role[0].upper()}={policy}" for role, policy in pairs)
    odd = ", ".join(f"{role}={policy}" for role, policy in pairs if policy != common)
    return f"{odd}, rest {common}"


def policy_colours(labels: Sequence[str]) -> dict[str, str]:
    """One colour per policy, in order; the oracle is black everywhere."""
    out: dict[str, str] = {}
    for label in labels:
        if label == ORACLE:
            out[label] = BOUND_COLOUR
        else:
            out[label] = PALETTE[len([k for k in out if k != ORACLE]) % len(PALETTE)]
    return out


def _key(labels: Sequence[str]) -> str:
    """'short = full' for every label :func:`short_label` shortened ('' if none)."""
    pairs = [f"{short_label(x)} = {x}" for x in labels if short_label(x) != x]
    return ("key: " + ";  ".join(pairs)) if pairs else ""


def _save(fig: Any, path: Path) -> None:
    atomic_write(path, lambda p: fig.savefig(p, format="png", dpi=DPI))
    _pyplot().close(fig)


# -- comparison ------------------------------------------------------------------------
COMPARISON_PANELS = (
    ("score", "task score (mean ± 95 % CI)", "{:.3f}", ""),
    ("pct_of_oracle", "serve reward, % of the oracle bound (mean ± 95 % CI)", "{:.1f}", " %"),
    ("normalised", "normalised: 0 = random team, 1 = bound (mean ± 95 % CI)", "{:.2f}", ""),
    ("grader_score", "grader: Queue Doctor's formula, ed fixes (mean ± 95 % CI)", "{:.3f}", ""),
)
"""Panels of comparison.png; ``normalised`` and ``grader_score`` only where the rows
have them (``ed``)."""
REDUNDANT_PANELS = {"score": ("pct_of_oracle", 0.01), "grader_score": ("score", 1.0)}
"""metric → (other, scale): the panel is left out when every played policy's mean is
the other's × scale (``ed`` v1's score is the % of oracle as a fraction; on ``ed`` v0
the grader is the score)."""
REDUNDANT_TOLERANCE = 1e-6
SCHEDULE_SCORES = ("score", "grader_score")
"""Panels whose oracle line is the bound's schedule graded, not a bound of the metric."""


def _redundant(metric: str, played: Sequence[dict]) -> bool:
    other, scale = REDUNDANT_PANELS.get(metric, (None, 0.0))
    return other is not None and all(
        other in s and abs(s[metric] - scale * s[other]) <= REDUNDANT_TOLERANCE for s in played
    )


def comparison_figure(summary: Sequence[dict], title: str, bound_score: float) -> Any:
    """Horizontal bars per policy with their 95 % CIs and values; the oracle bound is
    a reference line in each panel (``bound_score``: the mean task score of the bound's
    schedule on the same seeds — 1 on ``ed`` v1 —; the serve-reward bound is 100 % by
    definition; the grader's: the ``oracle`` summary row's ``grader_score``)."""
    from matplotlib.transforms import blended_transform_factory

    plt = _pyplot()
    played = [s for s in summary if s["policy"] != ORACLE]
    labels = [s["policy"] for s in played]
    colours = policy_colours([s["policy"] for s in summary])
    n = len(played)
    panels = [p for p in COMPARISON_PANELS
              if any(s.get(p[0]) == s.get(p[0]) and p[0] in s for s in played)
              and not _redundant(p[0], played)]  # fmt: skip
    fig, axes = plt.subplots(1, len(panels), figsize=(6 * len(panels), 1.6 + 0.5 * n),
                             sharey=True, layout="constrained", squeeze=False)  # fmt: skip
    axes = axes[0]
    ys = list(range(n))[::-1]  # first policy on top
    oracle = next((s for s in summary if s["policy"] == ORACLE), {})
    bounds = {"score": bound_score, "pct_of_oracle": 100.0, "normalised": 1.0,
              "grader_score": oracle.get("grader_score", float("nan"))}  # fmt: skip
    for ax, (metric, name, fmt, unit) in zip(axes, panels, strict=True):
        vals = [s[metric] for s in played]
        errs = [s[f"{metric}_ci95"] for s in played]
        ax.barh(ys, vals, xerr=errs, capsize=3, color=[colours[x] for x in labels], height=0.6)
        # The values in a right-hand column, clear of the bars, CIs and the bound line.
        column = blended_transform_factory(ax.transAxes, ax.transData)
        for y, v, e in zip(ys, vals, errs, strict=True):
            if v == v:  # NaN: nothing to write
                text = fmt.format(v) + ("" if e != e else " ± " + fmt.format(e)) + unit
                ax.text(0.99, y, text, transform=column, ha="right", va="center", fontsize=8)
        bound = bounds[metric]
        if bound == bound:  # NaN: no oracle row with this metric, no line
            ref = f"oracle bound: {fmt.format(bound)}{unit}" if metric not in SCHEDULE_SCORES else (
                f"oracle (the bound's schedule): {fmt.format(bound)}")  # fmt: skip
            ax.axvline(bound, color=BOUND_COLOUR, ls=REFERENCE_STYLES["bound"], lw=1.5, label=ref)
        top = max([b for b in (bound,) if b == b] + [v + (e if e == e else 0) for v, e in
                   zip(vals, errs, strict=True) if v == v], default=1.0)  # fmt: skip
        ax.set_xlim(0, top * 1.45)
        ax.set_title(name, fontsize=10)
        if bound == bound:
            ax.legend(loc="lower center", bbox_to_anchor=(0.5, 1.08), fontsize=8, frameon=False)
        ax.grid(axis="x", alpha=0.3)
    axes[0].set_yticks(ys, [short_label(x) for x in labels])
    fig.suptitle(title)
    key = _key(labels)
    if key:
        fig.supxlabel(key, fontsize=7)
    return fig


def plot_comparison(path: Path, summary: Sequence[dict], title: str, bound_score: float) -> None:
    _save(comparison_figure(summary, title, bound_score), path)


# -- timeline --------------------------------------------------------------------------
def per_step(step_rows: Sequence[dict], policy: str, seed: Any) -> tuple[list, list, list]:
    """One policy's episode by time step: steps, cumulative reward at the end of each
    step, patients waiting at its start (rows are per step, or per sub-step for ed)."""
    steps: list[int] = []
    reward: list[float] = []
    waiting: list[int] = []
    for r in step_rows:
        if r["policy"] != policy or r["seed"] != seed:
            continue
        if not steps or steps[-1] != r["step"]:
            steps.append(r["step"])
            reward.append(0.0)
            waiting.append(r["queue_length"])
        reward[-1] += r["reward"]
    total = 0.0
    cumulative = []
    for x in reward:
        total += x
        cumulative.append(total)
    return steps, cumulative, waiting


def timeline_figure(step_rows: Sequence[dict], seed: Any, title: str) -> Any:
    """Left: every team's cumulative reward (step plot; distinct colours and line
    styles, earlier teams drawn wider so identical paths stay visible). Right: small
    multiples of patients waiting, one panel per team over the others in grey. The
    legend (with each team's total) sits below the plots."""
    plt = _pyplot()
    labels = [x for x in dict.fromkeys(r["policy"] for r in step_rows)]
    colours = policy_colours(labels)
    n = len(labels)
    episodes = {x: per_step(step_rows, x, seed) for x in labels}
    fig = plt.figure(figsize=(12, max(4.5, 1.0 * n + 2.0)), layout="constrained")
    grid = fig.add_gridspec(n, 2, width_ratios=(1.4, 1))
    ax = fig.add_subplot(grid[:, 0])
    for i, x in enumerate(labels):
        steps, cumulative, _ = episodes[x]
        total = cumulative[-1] if cumulative else 0.0
        width = 1.2 + 2.4 * (n - 1 - i) / max(1, n - 1)
        ax.step(steps, cumulative, where="post", color=colours[x], lw=width,
                ls=LINE_STYLES[i % len(LINE_STYLES)],
                label=f"{short_label(x)} (total {total:.2f})")  # fmt: skip
    ax.set_title("cumulative reward (ed: the team reward)", fontsize=10)
    ax.set_xlabel("time step (10 min)")
    ax.set_ylabel("Σ reward so far")
    ax.grid(alpha=0.3)
    first = None
    for i, x in enumerate(labels):
        q = fig.add_subplot(grid[i, 1], sharex=first, sharey=first)
        first = first or q
        for other in labels:
            if other != x:
                q.step(episodes[other][0], episodes[other][2], where="post", color="0.8", lw=1)
        q.step(episodes[x][0], episodes[x][2], where="post", color=colours[x], lw=2)
        q.text(0.01, 0.92, short_label(x), transform=q.transAxes, va="top", fontsize=8,
               color=colours[x], fontweight="bold")  # fmt: skip
        q.grid(alpha=0.3)
        if i == 0:
            q.set_title("patients waiting at the start of each step (others in grey)",
                        fontsize=10)  # fmt: skip
        if i < n - 1:
            q.tick_params(labelbottom=False)
        else:
            q.set_xlabel("time step (10 min)")
    fig.legend(*ax.get_legend_handles_labels(), loc="outside lower center",
               ncol=min(n, 3), fontsize=8, frameon=False)  # fmt: skip
    fig.suptitle(title)
    return fig


def plot_timeline(path: Path, step_rows: Sequence[dict], seed: Any, title: str) -> None:
    _save(timeline_figure(step_rows, seed, title), path)


def _seed_means(rows: list[dict], key: str) -> float | None:
    """Mean of a per-seed column (one value per seed, e.g. the bound's)."""
    by_seed = {r["seed"]: r[key] for r in rows if r.get(key) is not None}
    return sum(by_seed.values()) / len(by_seed) if by_seed else None


def bound_score(rows: list[dict]) -> float:
    """Mean grader score of the oracle bound's schedule over the evaluated seeds."""
    value = _seed_means(rows, "oracle_score")
    return float("nan") if value is None else value


def reference_levels(
    rows: list[dict], summary: list[dict], trained: str, not_heuristics: Sequence[str] = ()
) -> dict[str, dict[str, float]]:
    """The learning curve's reference levels on the held-out seeds: the heuristic
    team's (classic: the best heuristic's by return; ``not_heuristics`` are skipped),
    the trained team's (greedy) and the oracle's, in team return and serve reward where
    each is defined."""
    by_name = {s["policy"]: s for s in summary}
    skip = (trained, ORACLE, *not_heuristics)
    heuristics = [s for s in summary if s["policy"] not in skip]
    levels: dict[str, dict[str, float]] = {}
    if "heuristic" in by_name:
        ref = by_name["heuristic"]
    else:
        ref = max(heuristics, key=lambda s: s["episode_return"], default=None)
    if ref is not None:
        name = "heuristic team" if ref["policy"] == "heuristic" else "best heuristic"
        name += "" if ref["policy"] == "heuristic" else f" ({ref['policy']})"
        levels[name] = {"return": ref["episode_return"], "serve": ref["serve_reward"]}
    if trained in by_name:
        t = by_name[trained]
        levels["trained team, greedy"] = {"return": t["episode_return"], "serve": t["serve_reward"]}
    bound: dict[str, float] = {}
    if ORACLE in by_name and by_name[ORACLE]["episode_return"] == by_name[ORACLE]["episode_return"]:
        bound["return"] = by_name[ORACLE]["episode_return"]  # classic: the oracle plays
    serve = _seed_means(rows, "oracle_value")
    if serve is not None:
        bound["serve"] = serve
    levels["oracle bound"] = bound
    return levels


# -- learning curve --------------------------------------------------------------------
CURVE_PANELS = (
    ("episode_return_mean", "return", "team return", "team return per episode\n"
     "(the table's 'return'; Σ of the team reward)"),
    ("serve_reward_mean", "serve", "serve reward", "serve reward per episode\n"
     "(Σ served rewards: what the oracle bound bounds)"),
)  # fmt: skip


def learning_curve_figure(
    history: Sequence[dict], title: str, levels: Mapping[str, Mapping[str, float]]
) -> Any:
    """Training curves (mean over the last ≤ 100 training episodes, stochastic policy,
    training seeds) with reference levels measured on the held-out seeds, on the same
    scale: ``levels[name][quantity]`` with quantity ``return`` or ``serve`` and name
    e.g. ``heuristic team``, ``oracle bound``, ``trained team (greedy)``."""
    plt = _pyplot()
    panels = [p for p in CURVE_PANELS if any(h.get(p[0]) is not None for h in history)]
    panels = panels or list(CURVE_PANELS[:1])
    fig, axes = plt.subplots(1, len(panels), figsize=(6 * len(panels), 4.4), squeeze=False,
                             layout="constrained")  # fmt: skip
    for ax, (key, quantity, quantity_label, name) in zip(axes[0], panels, strict=True):
        pts = [(h["timesteps"], h[key]) for h in history if h.get(key) is not None]
        if pts:
            xs, ys = zip(*pts, strict=True)
            ax.plot(xs, ys, marker="o", ms=3, color=PALETTE[0], label="training (training seeds)")
        refs = [(r, v[quantity]) for r, v in levels.items()
                if v.get(quantity) is not None and v[quantity] == v[quantity]]  # fmt: skip
        for i, (ref, v) in enumerate(refs):
            kind = next((k for k in REFERENCE_STYLES if k in ref), "heuristic")
            colour = BOUND_COLOUR if kind == "bound" else PALETTE[1 if kind == "heuristic" else 2]
            # Levels often coincide: earlier ones drawn wider stay visible under later ones.
            ax.axhline(v, color=colour, ls=REFERENCE_STYLES[kind], lw=1.2 + 1.2 * (len(refs) - i),
                       label=f"{ref}: {v:.2f}", zorder=1)  # fmt: skip
        ax.set_xlabel("env steps sampled")
        ax.set_ylabel(quantity_label)
        ax.set_title(name, fontsize=10)
        ax.grid(alpha=0.3)
        ax.legend(loc="lower right", fontsize=8)
    fig.suptitle(title, fontsize=10)
    return fig


def plot_learning_curve(
    path: Path, history: Sequence[dict], title: str, levels: Mapping[str, Mapping[str, float]]
) -> None:
    _save(learning_curve_figure(history, title, levels), path)
