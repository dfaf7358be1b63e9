"""The front door's plots say what they claim: names that fit, the oracle bound in
every panel, one colour per policy, every team visible, labelled axes and reference
levels. Checked on the matplotlib figures, and on a real (classic, no-training) run's
files."""

from __future__ import annotations

import json
import math
import stat

import matplotlib
import pytest

matplotlib.use("Agg")
from matplotlib.image import imread  # noqa: E402

from agents import plots  # noqa: E402
from experiments.run import main  # noqa: E402

MIXED = "nurse=heuristic,consultant=ppo,pharmacist=heuristic"
TEAMS = ["ppo", "heuristic", MIXED, "random"]


def _summary() -> list[dict]:
    vals = {"ppo": (0.145, 99.8), "heuristic": (0.146, 99.8), MIXED: (0.146, 99.7),
            "random": (0.144, 78.6), "oracle": (0.147, 100.0)}  # fmt: skip
    return [{"policy": p, "score": s, "score_ci95": 0.004, "pct_of_oracle": pct,
             "pct_of_oracle_ci95": 0.5} for p, (s, pct) in vals.items()]  # fmt: skip


def _step_rows() -> list[dict]:
    """Two sub-steps per time step; ppo and heuristic follow exactly the same path."""
    rows = []
    for team in TEAMS:
        for step in range(4):
            for sub in range(2):
                rows.append({"policy": team, "seed": 7, "step": step, "substep": sub,
                             "reward": 0.0 if team == "random" else 0.5,
                             "queue_length": 4 - step - sub})  # fmt: skip
    return rows


def test_short_labels_fit_and_keep_bare_names():
    assert plots.short_label(MIXED) == "consultant=ppo, rest heuristic"
    assert plots.short_label("nurse=ppo,consultant=random,pharmacist=heuristic") == (
        "N=ppo C=random P=heuristic"
    )
    assert plots.short_label("nurse=ppo,consultant=ppo,pharmacist=ppo") == "ppo"
    assert plots.short_label("severity_greedy") == "severity_greedy"


def test_comparison_has_short_names_distinct_colours_and_the_bound_in_every_panel():
    fig = plots.comparison_figure(_summary(), "t", bound_score=0.147)
    score_ax, pct_ax = fig.axes[:2]
    ticks = sorted(score_ax.get_yticklabels(), key=lambda t: -t.get_position()[1])
    names = [t.get_text() for t in ticks]  # top to bottom
    assert names == ["ppo", "heuristic", "consultant=ppo, rest heuristic", "random"]
    assert max(len(n) for n in names) <= 32
    for ax, bound in ((score_ax, 0.147), (pct_ax, 100.0)):
        refs = [ln for ln in ax.get_lines() if ln.get_xdata()[0] == ln.get_xdata()[-1]]
        assert [r.get_xdata()[0] for r in refs] == [bound]  # the bound, a vertical line
        legend = [t.get_text() for t in ax.get_legend().get_texts()]
        assert len(legend) == 1 and "oracle" in legend[0]
        colours = {tuple(b.get_facecolor()) for b in ax.patches}
        assert len(colours) == 4  # one per played team; the oracle is the line
    assert MIXED in fig._supxlabel.get_text()  # the key names the full team
    texts = [t.get_text() for t in score_ax.texts]
    assert "0.145 ± 0.004" in texts and "0.144 ± 0.004" in texts  # the values, written
    assert "78.6 ± 0.5 %" in [t.get_text() for t in pct_ax.texts]


def test_timeline_shows_every_team_as_steps_with_the_legend_outside():
    fig = plots.timeline_figure(_step_rows(), 7, "t")
    cumulative, *multiples = fig.axes
    assert len(multiples) == len(TEAMS)  # one small multiple per team
    lines = cumulative.get_lines()
    assert [ln.get_drawstyle() for ln in lines] == ["steps-post"] * len(TEAMS)
    # Same path for ppo and heuristic: told apart by width and style.
    ppo, heur = lines[0], lines[1]
    assert list(ppo.get_ydata()) == list(heur.get_ydata()) == [1.0, 2.0, 3.0, 4.0]
    assert (
        ppo.get_linewidth() > heur.get_linewidth() and ppo.get_linestyle() != heur.get_linestyle()
    )
    assert len({ln.get_color() for ln in lines}) == len(TEAMS)
    assert cumulative.get_legend() is None and len(fig.legends) == 1  # below the plots
    entries = [t.get_text() for t in fig.legends[0].get_texts()]
    assert entries[0] == "ppo (total 4.00)" and entries[3] == "random (total 0.00)"
    assert entries[2].startswith("consultant=ppo, rest heuristic")
    for ax, team in zip(multiples, TEAMS, strict=True):
        assert [t.get_text() for t in ax.texts] == [plots.short_label(team)]
        own = ax.get_lines()[-1]
        assert list(own.get_ydata()) == [4, 3, 2, 1]  # waiting at each step's first sub-step
    assert cumulative.get_xlabel() == "time step (10 min)"


def test_learning_curve_axes_and_reference_levels():
    history = [{"timesteps": 2000 * i, "episode_return_mean": 10.0 + i,
                "serve_reward_mean": 14.0 + i / 10} for i in (1, 2, 3)]  # fmt: skip
    levels = {"heuristic team": {"return": 16.1, "serve": 16.7},
              "trained team, greedy": {"return": 15.9, "serve": 16.6},
              "oracle bound": {"serve": 16.72}}  # fmt: skip
    fig = plots.learning_curve_figure(history, "mass_casualty: training", levels)
    ret_ax, serve_ax = fig.axes
    assert ret_ax.get_ylabel() == "team return" and serve_ax.get_ylabel() == "serve reward"
    assert ret_ax.get_xlabel() == serve_ax.get_xlabel() == "env steps sampled"
    assert "table's 'return'" in ret_ax.get_title()
    ret_legend = [t.get_text() for t in ret_ax.get_legend().get_texts()]
    assert ret_legend == ["training (training seeds)", "heuristic team: 16.10",
                          "trained team, greedy: 15.90"]  # fmt: skip
    serve_legend = [t.get_text() for t in serve_ax.get_legend().get_texts()]
    assert "oracle bound: 16.72" in serve_legend and "heuristic team: 16.70" in serve_legend
    # Reference levels are horizontal lines at those values, on the curve's own axis.
    flat = {ln.get_ydata()[0] for ln in serve_ax.get_lines()[1:]}
    assert flat == {16.7, 16.6, 16.72}
    assert list(serve_ax.get_lines()[0].get_ydata()) == [14.1, 14.2, 14.3]


def test_front_door_files_are_made_and_readable_by_others(tmp_path):
    """A no-training classic run: the PNGs exist and decode, every output has the
    user's normal permissions (not mkstemp's 0600)."""
    out = tmp_path / "r"
    assert main(["--ruleset", "classic", "--task", "basic_triage", "--no-train",
                 "--compare", "fifo", "severity_greedy", "oracle", "--eval-episodes", "2",
                 "--output", str(out)]) == 0  # fmt: skip
    for name in ("comparison.png", "timeline.png"):
        img = imread(out / name)
        assert img.shape[0] > 250 and img.shape[1] > 1000
    umask_mode = 0o666 & ~_umask()
    for f in out.iterdir():
        assert stat.S_IMODE(f.stat().st_mode) == umask_mode, f.name
    cfg = json.loads((out / "config.json").read_text())
    assert cfg["rulesets_available"] == ["classic", "ed"]
    assert cfg["compare"] == ["fifo", "severity_greedy", "oracle"]


def _umask() -> int:
    import os

    old = os.umask(0)
    os.umask(old)
    return old


def test_bound_score_is_the_mean_over_seeds():
    rows = [{"seed": s, "policy": p, "oracle_score": 0.1 * s, "oracle_value": 10.0 + s}
            for s in (1, 2) for p in ("a", "b")]  # fmt: skip
    assert plots.bound_score(rows) == pytest.approx(0.15)
    assert math.isnan(plots.bound_score([{"seed": 1}]))
    summary = [{"policy": "ppo", "episode_return": 5.0, "serve_reward": 11.0},
               {"policy": "fifo", "episode_return": 6.0, "serve_reward": 11.5},
               {"policy": "severity_greedy", "episode_return": 7.0, "serve_reward": 11.2},
               {"policy": "random", "episode_return": 9.0, "serve_reward": 1.0}]  # fmt: skip
    levels = plots.reference_levels(rows, summary, "ppo", not_heuristics=("random",))
    assert levels["best heuristic (severity_greedy)"] == {"return": 7.0, "serve": 11.2}
    assert levels["oracle bound"] == {"serve": 11.5}


def test_comparison_on_ed_v1_drops_the_score_panel_that_repeats_the_share_of_the_bound():
    # v1: score = % of oracle / 100 for every played team, so that panel is left out;
    # the grader (differs from the score) gets its own panel with the oracle's grader.
    vals = {"ppo": (93.4, 0.375), "heuristic": (89.7, 0.392), "oracle": (100.0, 0.377)}
    summary = [{"policy": p, "score": pct / 100, "score_ci95": 0.01, "pct_of_oracle": pct,
                "pct_of_oracle_ci95": 1.0, "normalised": pct / 100 - 0.2,
                "normalised_ci95": 0.03, "grader_score": g, "grader_score_ci95": 0.01}
               for p, (pct, g) in vals.items()]  # fmt: skip
    fig = plots.comparison_figure(summary, "t", bound_score=1.0)
    titles = [ax.get_title() for ax in fig.axes]
    assert [t.split(",")[0].split(":")[0] for t in titles] == ["serve reward", "normalised",
                                                              "grader"]  # fmt: skip
    grader_ax = fig.axes[2]
    refs = [ln for ln in grader_ax.get_lines() if ln.get_xdata()[0] == ln.get_xdata()[-1]]
    assert [r.get_xdata()[0] for r in refs] == [0.377]  # the bound's schedule, graded
    assert "0.392 ± 0.010" in [t.get_text() for t in grader_ax.texts]
    # v0 / classic: the score is the grader, so it keeps its panel and no grader panel.
    v0 = [{**s, "score": s["grader_score"], "grader_score": s["grader_score"]} for s in summary]
    titles = [ax.get_title() for ax in plots.comparison_figure(v0, "t", 0.377).axes]
    assert titles[0].startswith("task score") and not any(t.startswith("grader") for t in titles)
