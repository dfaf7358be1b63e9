"""experiments/teacher_table.py: the trained team against its teachers, with the
reference rows taken from another run of the same task (``--references``)."""

import shutil
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from agents.report import write_parquet
from experiments.teacher_table import main, row

BENCH = Path(__file__).resolve().parent.parent / "docs" / "benchmarks"
RUN = BENCH / "variants_v1" / "night_shift" / "local"  # ppo and heuristic, no planner
REFS = BENCH / "teachers_v2"


def test_a_run_without_the_planner_needs_references(tmp_path):
    with pytest.raises(SystemExit, match="planner did not play"):
        row(RUN)
    with pytest.raises(SystemExit, match="no results.parquet: not a finished front-door run"):
        row(tmp_path)


def test_references_supply_the_missing_rows(capsys):
    line = row(RUN, REFS)
    ref = pq.read_table(REFS / "night_shift" / "default" / "results.parquet").to_pylist()
    planner = [r["pct_of_oracle"] for r in ref if r["policy"] == "planner"]
    cells = [c.strip() for c in line.split("|")[1:-1]]
    assert cells[:3] == ["night_shift", "local", "50"]
    assert cells[4] == f"{sum(planner) / len(planner):.1f}"  # the reference's planner mean
    assert main(["--references", str(REFS), str(RUN)]) == 0
    assert line in capsys.readouterr().out


def test_references_that_disagree_are_refused(tmp_path):
    run = tmp_path / "local"
    shutil.copytree(RUN, run)
    rows = pq.read_table(run / "results.parquet").to_pylist()
    hit = next(r for r in rows if r["policy"] == "heuristic")
    hit["pct_of_oracle"] += 1.0  # a different env or heuristic on that seed
    write_parquet(run / "results.parquet", rows)
    with pytest.raises(SystemExit, match=f"heuristic rows differ .* seeds \\[{hit['seed']}\\]"):
        row(run, REFS)


def test_wide_puts_each_run_name_in_a_column():
    from experiments.teacher_table import measure, wide

    lines = wide([measure(r, REFS) for r in (REFS / "night_shift" / "default", RUN)]).splitlines()
    assert lines[0].startswith("| task | heuristic % | planner % | default % (− heuristic) |")
    assert "| local % (− heuristic) |" in lines[0]
    # the default run's cell: the same figures as the long table's row
    assert len(lines) == 3 and "| 74.4 | 86.6 | 87.2 (+12.83 ± 3.17) |" in lines[2]
