"""End-to-end runs of the front door on tiny budgets."""

from __future__ import annotations

import dataclasses
import json
import re
import subprocess
import sys
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from experiments.run import DEFAULT_COMPARE_BY_RULESET, RunConfig, main, run

ROOT = Path(__file__).resolve().parent.parent


def test_front_door_subprocess_writes_every_output(tmp_path):
    out = tmp_path / "run"
    proc = subprocess.run(
        [sys.executable, "experiments/run.py", "--task", "task_3_hard", "--ruleset", "classic",
         "--eval-episodes", "3",
         "--output", str(out), "--save-episodes", "--train-iters", "1",
         "--train-batch-size", "200", "--minibatch-size", "100", "--num-env-runners", "0"],
        cwd=ROOT, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert "severity_greedy" in proc.stdout and "% of oracle" in proc.stdout
    for name in ["results.parquet", "summary.md", "summary.json", "comparison.png",
                 "timeline.png", "config.json", "episodes.parquet",
                 "learning_curve.png"]:  # fmt: skip
        assert (out / name).stat().st_size > 0, name
    rows = pq.read_table(out / "results.parquet").to_pylist()
    assert len(rows) == 6 * 3  # ppo, 4 heuristics, oracle
    assert {r["seed"] for r in rows} == {10_000, 10_001, 10_002}
    expected_cols = [
        "task", "ruleset", "seed", "policy", "score", "episode_return", "served",
        "missed_emergencies", "within_target_1", "pct_of_oracle", "illegal_actions",
    ]  # fmt: skip
    assert set(expected_cols) <= set(rows[0])
    oracle = [r for r in rows if r["policy"] == "oracle"]
    assert all(r["pct_of_oracle"] == 100.0 for r in oracle)
    assert all(r["illegal_actions"] == 0 for r in rows)
    steps = pq.read_table(out / "episodes.parquet")
    assert steps.num_rows >= 6 * 3 * 30
    cfg = json.loads((out / "config.json").read_text())
    assert cfg["task"] == "mass_casualty" and cfg["eval_episodes"] == 3
    assert not list(out.glob(".*.tmp"))  # atomic writes leave no temp files


def test_run_in_process_with_unseeded_reference(tmp_path):
    cfg = RunConfig(task="basic_triage", ruleset="classic", compare=("severity_greedy", "fifo"),
                    eval_episodes=2,
                    include_unseeded=True, output=tmp_path / "r")  # fmt: skip
    doc = run(cfg)
    rows = pq.read_table(tmp_path / "r" / "results.parquet").to_pylist()
    ref = {r["policy"]: r["score"] for r in rows if r["seed"] is None}
    assert ref == {"severity_greedy": 0.8149, "fifo": 0.999}  # Queue Doctor's figures
    assert [s["policy"] for s in doc["summary"]] == ["severity_greedy", "fifo"]


def _plain(text: str) -> str:
    """tyro's boxed help/error text without the box, whitespace collapsed."""
    return " ".join(re.sub("[│╭╮╰╯─]", " ", text).split())


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--task", "nope"], "invalid choice 'nope' for argument '--task'. Expected one of "
         "('basic_triage', 'dynamic_queue', 'mass_casualty',"),
        (["--ruleset", "nope"], "invalid choice 'nope' for argument '--ruleset'. Expected one "
         "of ('classic', 'ed')"),
        (["--compare", "fifo", "dqn"], "unknown policies ['dqn']"),
        (["--eval-episodes", "0"], "at least 1"),
    ],
)  # fmt: skip
def test_bad_input_exits_2_with_a_message(args, message, tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("COLUMNS", "300")
    assert main(["--ruleset", "classic", *args, "--output", str(tmp_path / "x"), "--no-train"]) == 2
    assert message in _plain(capsys.readouterr().err)
    assert not (tmp_path / "x").exists()


METAVAR = re.compile(r"(--[a-z-]+(?: (?:\{[^}]*\}(?:\|[A-Z]+)?|[A-Z]+|\[STR \[STR \.\.\.\]\]))?)"
                     r"(?:\s+(.*))?$")  # fmt: skip
"""An option line of --help: the flag with its metavar, then the help text."""


def _help_options(capsys, monkeypatch) -> dict[str, str]:
    """--help as {flag line: its help text}."""
    monkeypatch.setenv("COLUMNS", "300")
    assert main(["--help"]) == 0
    lines = [_plain(line) for line in capsys.readouterr().out.splitlines()]
    options: dict[str, str] = {}
    key = None
    for line in lines:
        m = re.match(METAVAR, line)
        if m:
            key = m.group(1)
            options[key] = m.group(2) or ""
        elif key is not None and line:
            options[key] = (options[key] + " " + line).strip()
    return options


def test_help_tells_the_truth(capsys, monkeypatch):
    options = _help_options(capsys, monkeypatch)
    flags = " ".join(options)
    # Boolean flags are named once (no --no-no-train); --no-hints turns hints off.
    assert "--no-train" in options and "--no-no-train" not in flags
    assert "--no-hints" in options and "--hints" not in flags.split()
    assert "--overwrite" in options and "--no-overwrite" not in flags
    # Fixed choices are listed.
    for flag, choices in (
        ("--ruleset", "{classic,ed}"),
        ("--algo", "{ppo,appo}"),
        ("--evaluator", "{loop,rllib}"),
        ("--llm-mode", "{score,generate}"),
    ):
        assert f"{flag} {choices}" in options, (flag, flags)
    from envs.ed.suite import SCENARIOS

    tasks = ",".join(["basic_triage", "dynamic_queue", "mass_casualty", "task_1_easy",
                      "task_2_medium", "task_3_hard", *SCENARIOS])  # fmt: skip
    assert options[f"--task {{{tasks}}}"].endswith("(default: mass_casualty)")
    assert options["--ed-version {v0,v1,v2}"].endswith("(default: v1)")
    # --compare's default per ruleset, as validate() fills it in.
    compare = options["--compare [STR [STR ...]]"]
    for ruleset, default in DEFAULT_COMPARE_BY_RULESET.items():
        assert f"{ruleset}: {' '.join(default)}" in compare
    # Every plain default is the dataclass's own.
    by_flag = {k.split()[0].split(",")[0]: v for k, v in options.items()}
    for f in dataclasses.fields(RunConfig):
        if isinstance(f.default, int | float | str) and not isinstance(f.default, bool):
            flag = "--" + f.name.replace("_", "-")
            assert by_flag[flag].endswith(f"(default: {f.default})"), flag


def test_compare_defaults_follow_the_ruleset():
    ed = RunConfig(no_train=True).validate()
    assert ed.compare == DEFAULT_COMPARE_BY_RULESET["ed"] and "heuristic" in ed.compare
    classic = RunConfig(ruleset="classic", no_train=True).validate()
    assert classic.compare == DEFAULT_COMPARE_BY_RULESET["classic"]


def test_refuses_to_overwrite_results(tmp_path):
    args = ["--task", "basic_triage", "--ruleset", "classic", "--eval-episodes", "1",
            "--compare", "fifo",
            "--output", str(tmp_path), "--no-train"]  # fmt: skip
    assert main(args) == 0
    before = (tmp_path / "results.parquet").read_bytes()
    assert main(args) == 2
    assert (tmp_path / "results.parquet").read_bytes() == before
    assert main([*args, "--overwrite"]) == 0
