"""agents.report: confidence intervals and the paired (seed-by-seed) comparison."""

from __future__ import annotations

import math

import pytest
from scipy import stats

from agents import report


def _rows(policy: str, scores: list[float], returns: list[float | None]) -> list[dict]:
    return [
        {"policy": policy, "seed": 100 + i, "score": s, "episode_return": r, "pct_of_oracle": 90.0}
        for i, (s, r) in enumerate(zip(scores, returns, strict=True))
    ]


def test_mean_ci_matches_the_t_interval():
    mean, half = report.mean_ci([1.0, 2.0, 4.0])
    assert mean == pytest.approx(7 / 3)
    sd = math.sqrt(((1 - 7 / 3) ** 2 + (2 - 7 / 3) ** 2 + (4 - 7 / 3) ** 2) / 2)
    assert half == pytest.approx(stats.t.ppf(0.975, 2) * sd / math.sqrt(3))
    assert report.mean_ci([5.0]) == (5.0, 0.0)


def test_paired_differences_by_seed_hand_checked():
    rows = (
        _rows("ppo", [0.5, 0.7, 0.9, 0.4], [1.0, 2.0, 3.0, 4.0])
        + _rows("heuristic", [0.5, 0.6, 0.7, 0.5], [1.0, 2.0, 3.0, 4.0])
        + [{"policy": "oracle", "seed": 101, "score": 1.0, "episode_return": None,
            "pct_of_oracle": 100.0}]
    )  # fmt: skip
    out = report.paired(rows, "ppo", ["ppo", "heuristic", "oracle", "absent"])
    assert [(e["versus"], e["seeds"]) for e in out] == [("heuristic", 4), ("oracle", 1)]
    h = out[0]
    diffs = [0.0, 0.1, 0.2, -0.1]  # ppo − heuristic, seed by seed
    mean, half = report.mean_ci(diffs)
    assert h["score"]["mean_diff"] == pytest.approx(0.05) == pytest.approx(mean)
    assert h["score"]["ci95"] == pytest.approx(half)
    assert (h["score"]["wins"], h["score"]["losses"], h["score"]["ties"]) == (2, 1, 1)
    assert h["episode_return"] == {"mean_diff": 0.0, "ci95": 0.0, "wins": 0, "losses": 0,
                                   "ties": 4}  # fmt: skip
    o = out[1]  # one shared seed; the oracle has no return
    assert o["score"]["mean_diff"] == pytest.approx(-0.3) and "episode_return" not in o
    assert o["pct_of_oracle"]["losses"] == 1
    table = report.paired_markdown(out)
    assert "| ppo − heuristic | 4 | +0.0500 ±" in table and "(2/1/1)" in table
    assert report.paired_markdown([]) == ""


def test_markdown_table_has_a_grader_column_only_where_rows_have_it():
    ed = [{"policy": "ppo", "seed": s, "score": 0.9, "grader_score": 0.3 + 0.1 * s,
           "pct_of_oracle": 90.0} for s in range(3)]  # fmt: skip
    table = report.markdown_table(report.summarise(ed, ["ppo"]))
    head, rule, row = table.splitlines()
    assert "| score (95 % CI) | grader (95 % CI) |" in head
    assert head.count("|") == rule.count("|") == row.count("|")
    assert "| 0.900 ± 0.000 | 0.400 ± 0.248 |" in row  # t(0.975, 2)·0.1/√3 = 0.248
    classic = [{k: v for k, v in r.items() if k != "grader_score"} for r in ed]
    table = report.markdown_table(report.summarise(classic, ["ppo"]))
    assert "grader" not in table and table.splitlines()[0].count("|") == 12
    # grader_score is paired where both rows have it.
    other = [{**r, "policy": "h", "grader_score": r["grader_score"] - 0.05} for r in ed]
    (e,) = report.paired(ed + other, "ppo", ["h"])
    assert e["grader_score"]["mean_diff"] == pytest.approx(0.05) and e["grader_score"]["wins"] == 3
