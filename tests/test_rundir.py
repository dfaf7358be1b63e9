"""Runs that never lose work: a run directory is claimed as a whole, --resume checks the
saved settings, --overwrite swaps a staged directory in, config files are type-checked
field by field (agents.rllib.rundir, experiments/run.py)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from agents.rllib.rundir import RUN_FILE, RunDirError, claim, coerce_fields
from agents.roles import parse_team
from experiments.run import RunConfig, load_config_file, main

SETTINGS = {"task": "basic_triage", "seed": 0, "lr": 0.001, "train_iters": 4, "compare": ["ppo"]}
FAST = ["--task", "basic_triage", "--ruleset", "classic", "--no-train", "--compare", "fifo",
        "--eval-episodes", "1"]  # fmt: skip


def test_new_claim_refuses_any_existing_content(tmp_path):
    empty = tmp_path / "empty"
    empty.mkdir()
    assert claim(empty, "new", SETTINGS).path == empty  # an empty directory is fine
    assert json.loads((empty / RUN_FILE).read_text())["seed"] == 0
    killed = tmp_path / "killed"
    (killed / "checkpoint").mkdir(parents=True)
    (killed / "checkpoint" / "train_state.json").write_text('{"history": []}')
    with pytest.raises(
        RunDirError, match=r"already holds a run \(checkpoint/\).*--resume.*--overwrite"
    ):
        claim(killed, "new", SETTINGS)
    with pytest.raises(RunDirError, match="claimed by another run"):
        claim(empty, "new", SETTINGS) if False else _claim_twice(tmp_path / "race")
    (tmp_path / "file").write_text("x")
    with pytest.raises(RunDirError, match="is a file; name a directory"):
        claim(tmp_path / "file", "new", SETTINGS)


def _claim_twice(path: Path) -> None:
    path.mkdir()
    (path / RUN_FILE).write_text("{}")  # another claimant got there first ...
    from agents.rllib import rundir

    rundir._write_claim(path, SETTINGS)  # ... so O_EXCL refuses this one


def test_resume_names_every_mismatched_setting(tmp_path):
    run = tmp_path / "run"
    claim(run, "new", SETTINGS)
    longer = {**SETTINGS, "train_iters": 8}  # training longer is what resume is for
    assert claim(run, "resume", longer).path == run
    with pytest.raises(RunDirError) as e:
        claim(run, "resume", {**longer, "lr": 0.01, "compare": ["ppo", "fifo"]})
    assert "lr: saved 0.001, now 0.01" in str(e.value)
    assert "compare: saved ['ppo'], now ['ppo', 'fifo']" in str(e.value)
    with pytest.raises(RunDirError, match="holds no run to continue"):
        claim(tmp_path / "nothing", "resume", SETTINGS)
    (run / RUN_FILE).write_text("{corrupt")
    with pytest.raises(RunDirError, match="is corrupt"):
        claim(run, "resume", SETTINGS)


def test_resume_of_an_older_run_compares_its_checkpoint_settings(tmp_path):
    run = tmp_path / "old"
    (run / "checkpoint").mkdir(parents=True)
    state = {"settings": {"lr": 0.001, "seed": 0}, "history": []}
    (run / "checkpoint" / "train_state.json").write_text(json.dumps(state))
    legacy = ("checkpoint/train_state.json", {"lr": 0.001, "seed": 1})
    with pytest.raises(RunDirError, match="seed: saved 0, now 1"):
        claim(run, "resume", SETTINGS, legacy)


def test_overwrite_stages_then_swaps_the_whole_directory(tmp_path):
    run = tmp_path / "run"
    claim(run, "new", SETTINGS)
    (run / "episodes.parquet").write_text("stale")
    failed = claim(run, "overwrite", SETTINGS)
    assert failed.staged and failed.path != run
    (failed.path / "results.parquet").write_text("half")
    failed.abandon()  # the new run failed: the old one is whole
    assert (run / "episodes.parquet").exists() and not failed.path.exists()
    rd = claim(run, "overwrite", {**SETTINGS, "seed": 3})
    (rd.path / "results.parquet").write_text("new")
    assert rd.commit() == run
    assert sorted(p.name for p in run.iterdir()) == ["results.parquet", RUN_FILE]
    assert json.loads((run / RUN_FILE).read_text())["seed"] == 3
    assert [p.name for p in tmp_path.iterdir()] == ["run"]  # no staging/old leftovers


def test_config_files_are_type_checked_field_by_field(tmp_path):
    def write(values: dict) -> Path:
        path = tmp_path / "c.json"
        path.write_text(json.dumps(values))
        return path

    cfg = load_config_file(write({"compare": "heuristic", "lr": 1, "output": "runs/x"}))
    assert cfg.compare == ("heuristic",) and cfg.lr == 1.0 and cfg.output == Path("runs/x")
    with pytest.raises(ValueError) as e:
        load_config_file(write({"train_iters": "abc", "hints": 1, "compare": [1], "seed": True}))
    msg = str(e.value)
    for part in (
        "'train_iters' must be an integer, got str 'abc'",
        "'hints' must be true or false",
        "'compare' must be a list of strings",
        "'seed' must be an integer, got bool",
    ):
        assert part in msg, msg
    assert coerce_fields({"timesteps": None}, RunConfig, "x") == {"timesteps": None}
    with pytest.raises(ValueError, match="'timesteps' must be integer or null"):
        coerce_fields({"timesteps": 1.5}, RunConfig, "x")
    # Fixed choices (Literal fields) name the valid values.
    assert coerce_fields({"ruleset": "ed", "algo": "appo"}, RunConfig, "x")["algo"] == "appo"
    with pytest.raises(ValueError, match=r"'ruleset' must be one of 'classic', 'ed'"):
        coerce_fields({"ruleset": "edd"}, RunConfig, "x")


def test_repeated_role_in_a_team_spec_is_an_error():
    for spec in ("nurse=ppo,nurse=random", "nurse=ppo,triage_nurse=random"):
        with pytest.raises(ValueError, match="names role triage_nurse twice"):
            parse_team(spec)


# -- the front door --------------------------------------------------------------------------


def test_cli_refuses_killed_runs_files_and_bad_configs(tmp_path, capsys):
    killed = tmp_path / "killed"
    (killed / "checkpoint").mkdir(parents=True)
    marker = killed / "checkpoint" / "module.pt"
    marker.write_bytes(b"weights")
    assert main([*FAST, "--output", str(killed)]) == 2
    assert "--resume to continue it, --overwrite" in capsys.readouterr().err
    assert marker.read_bytes() == b"weights"  # nothing retrained or replaced
    (tmp_path / "f").write_text("x")
    assert main([*FAST, "--output", str(tmp_path / "f")]) == 2
    assert "is a file" in capsys.readouterr().err
    config = tmp_path / "c.json"
    config.write_text('{"train_iters": "abc"}')
    assert main(["--config", str(config), *FAST, "--output", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err
    assert "'train_iters' must be an integer" in err and "Traceback" not in err
    args = ["--task", "basic_triage", "--ruleset", "ed", "--no-train", "--output",
            str(tmp_path / "t"), "--compare", "nurse=ppo,nurse=random"]  # fmt: skip
    assert main(args) == 2
    assert "twice" in capsys.readouterr().err


def test_cli_overwrite_leaves_no_stale_file_and_resume_checks_settings(tmp_path, capsys):
    out = tmp_path / "run"
    assert main([*FAST, "--output", str(out), "--save-episodes"]) == 0
    assert (out / "episodes.parquet").exists()
    assert main([*FAST, "--output", str(out), "--overwrite"]) == 0
    assert not (out / "episodes.parquet").exists()  # the whole directory was replaced
    assert (out / "results.parquet").exists() and (out / RUN_FILE).exists()
    assert main([*FAST, "--output", str(out), "--overwrite", "--resume"]) == 2
    assert "contradict" in capsys.readouterr().err
    # resume with other settings than the saved run's: refused, naming them
    train = ["--task", "basic_triage", "--ruleset", "classic", "--compare", "fifo",
             "--eval-episodes", "1", "--output", str(out), "--resume"]  # fmt: skip
    assert main([*train, "--compare", "ppo"]) == 2
    err = capsys.readouterr().err
    assert "differ from the saved run" in err and "no_train: saved True, now False" in err


def test_cli_resume_refuses_a_corrupt_train_state(tmp_path, capsys):
    from experiments.run import _config_dict

    out = tmp_path / "run"
    args = ["--task", "basic_triage", "--ruleset", "classic", "--compare", "ppo",
            "--eval-episodes", "1", "--output", str(out)]  # fmt: skip
    cfg = RunConfig(task="basic_triage", ruleset="classic", compare=("ppo",), eval_episodes=1,
                    output=out).validate()  # fmt: skip
    claim(out, "new", _config_dict(cfg))  # what a killed run left behind ...
    (out / "checkpoint").mkdir()
    state = out / "checkpoint" / "train_state.json"
    for corrupt in ('{"history": [{"iteration": 1}', '{"history": [{"iteration": "x"}]}', "[]"):
        state.write_text(corrupt)  # ... with its train state cut short or garbled
        assert main([*args, "--resume"]) == 2
        err = capsys.readouterr().err
        assert "train_state.json is corrupt" in err and "--overwrite" in err, err
        assert "Traceback" not in err and state.read_text() == corrupt
