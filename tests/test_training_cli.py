"""Front door with RLlib training on tiny budgets: train, checkpoint, resume,
evaluate the trained module next to the heuristics."""

from __future__ import annotations

import json
import os
import stat

import pyarrow.parquet as pq
import pytest

pytest.importorskip("ray.rllib")

from experiments.run import main  # noqa: E402

TINY = ["--train-batch-size", "200", "--minibatch-size", "100", "--envs-per-runner", "2",
        "--num-env-runners", "0", "--eval-episodes", "2"]  # fmt: skip


@pytest.fixture(scope="module", autouse=True)
def _ray():
    import ray

    yield
    ray.shutdown()


def test_train_resume_and_evaluate(tmp_path):
    out = tmp_path / "run"
    base = ["--task", "basic_triage", "--ruleset", "classic", "--output", str(out), *TINY]
    assert main([*base, "--train-iters", "1", "--compare", "ppo", "fifo"]) == 0
    for name in ["learning_curve.png", "results.parquet", "checkpoint/train_state.json"]:
        assert (out / name).exists(), name
    first = json.loads((out / "checkpoint" / "train_state.json").read_text())["history"]
    assert [h["iteration"] for h in first] == [1]

    # Resume continues from the checkpoint and keeps the finished iteration.
    assert main([*base, "--train-iters", "2", "--resume", "--compare", "ppo", "fifo"]) == 0
    hist = json.loads((out / "checkpoint" / "train_state.json").read_text())["history"]
    assert [h["iteration"] for h in hist] == [1, 2]
    assert hist[0] == first[0]
    assert hist[1]["timesteps"] > hist[0]["timesteps"]
    summary = json.loads((out / "summary.json").read_text())
    assert [h["iteration"] for h in summary["training"]] == [1, 2]

    rows = pq.read_table(out / "results.parquet").to_pylist()
    assert {r["policy"] for r in rows} == {"ppo", "fifo"}
    assert all(r["illegal_actions"] == 0 for r in rows)  # masked logits never pick illegal

    # Evaluate the saved module without training, in our loop this time (the runs above
    # used the default, RLlib's SingleAgentEnvRunner).
    out2 = tmp_path / "eval"
    assert main(["--task", "basic_triage", "--ruleset", "classic", "--no-train", "--checkpoint",
                 str(out), "--output", str(out2), "--compare", "ppo", "--eval-episodes", "2",
                 "--evaluator", "loop"]) == 0  # fmt: skip
    again = pq.read_table(out2 / "results.parquet").to_pylist()
    ppo_before = [r["score"] for r in rows if r["policy"] == "ppo"]
    assert [r["score"] for r in again] == ppo_before  # same module, same seeds


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--resume"], "--resume needs --output"),
        (["--no-train", "--compare", "ppo"], "no checkpoint"),
        (["--algo", "dqn"], "invalid choice 'dqn' for argument '--algo'"),
        (["--eval-seed-start", "5"], "training seeds"),
        (["--hint-weight", "-1"], "--hint-weight must be a finite number >= 0"),
        (
            ["--num-env-runners", "0", "--num-learners", "2", "--train-batch-size", "2001"],
            "divisible by 2",
        ),
        # one CPU per actor: more actors than CPUs would wait forever for the missing ones
        (["--num-env-runners", str(os.cpu_count() or 2), "--num-learners", "2"], "CPUs (one per"),
    ],
)
def test_training_flags_fail_clearly(args, message, tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("COLUMNS", "300")  # tyro's error box: one line
    extra = [] if "--resume" in args else ["--output", str(tmp_path / "o")]
    assert main(["--task", "basic_triage", "--ruleset", "classic", *extra, *args]) == 2
    assert message in capsys.readouterr().err


def test_learners_share_the_iterations_batch_and_minibatch():
    """RLlib's sizes are per learner: with 2 learners each gets half, so an iteration
    still samples train_batch_size env steps in minibatches of minibatch_size."""
    from agents.rllib.training import TrainSettings, build_config

    for n, per_batch, per_mini in ((0, 2000, 250), (1, 2000, 250), (2, 1000, 125)):
        cfg = build_config(TrainSettings(task="basic_triage", num_learners=n))
        assert cfg.total_train_batch_size == 2000, n
        assert (cfg.train_batch_size_per_learner, cfg.minibatch_size) == (per_batch, per_mini)


def test_multi_agent_ed_training_and_mixed_teams(tmp_path):
    out = tmp_path / "ed"
    mixed = "nurse=heuristic,consultant=ppo,pharmacist=random"
    assert main(["--task", "basic_triage", "--ruleset", "ed", "--output", str(out), *TINY,
                 "--train-iters", "1", "--compare", "ppo", "heuristic", mixed,
                 "--save-episodes", "--bc-episodes", "5",
                 "--validation-episodes", "2"]) == 0  # fmt: skip
    for agent in ("triage_nurse", "consultant", "pharmacist"):
        module = out / "checkpoint" / "learner_group" / "learner" / "rl_module" / agent
        assert module.is_dir(), agent  # one trained module per role
    rows = pq.read_table(out / "results.parquet").to_pylist()
    assert {r["policy"] for r in rows} == {"ppo", "heuristic", mixed, "oracle"}
    row = next(r for r in rows if r["policy"] == mixed)
    assert (row["policy_triage_nurse"], row["policy_consultant"], row["policy_pharmacist"]) == (
        "ed_nurse", "ppo", "random",
    )  # fmt: skip
    played = [r for r in rows if r["policy"] != "oracle"]
    assert all(r["illegal_actions"] == 0 for r in played if r["policy"] != mixed)
    assert all(0 <= r["score"] <= 1 and r["oracle_value"] > 0 for r in played)
    steps = pq.read_table(out / "episodes.parquet").to_pylist()
    assert {s["agent"] for s in steps} == {"triage_nurse", "consultant", "pharmacist"}
    assert {s["policy"] for s in steps} == {"ppo", "heuristic", mixed}
    first = steps[0]
    assert first["legal_actions"] >= 1 and len(first["observation"]) > 0
    assert json.loads(first["reward_terms"])  # named terms per role and sub-step
    assert (out / "timeline.png").stat().st_size > 0
    assert json.loads((out / "config.json").read_text())["hints"] is True
    # Training history: the team return and the serve reward of the training episodes.
    history = json.loads((out / "summary.json").read_text())["training"]
    assert history[0]["serve_reward_mean"] > 0
    # Every output, checkpoint included, with the user's normal permissions.
    umask = os.umask(0)
    os.umask(umask)
    for f in [out, *out.rglob("*")]:
        want = (0o777 if f.is_dir() else 0o666) & ~umask
        assert stat.S_IMODE(f.stat().st_mode) == want, f
    # The trained team against every other policy, seed by seed, from the same rows.
    doc = json.loads((out / "summary.json").read_text())
    pairs = {e["versus"]: e for e in doc["paired"]}
    assert set(pairs) == {"heuristic", mixed, "oracle"}
    ppo = {r["seed"]: r["score"] for r in rows if r["policy"] == "ppo"}
    heur = {r["seed"]: r["score"] for r in rows if r["policy"] == "heuristic"}
    diff = [ppo[k] - heur[k] for k in ppo]
    assert pairs["heuristic"]["seeds"] == len(diff)
    assert pairs["heuristic"]["score"]["mean_diff"] == pytest.approx(sum(diff) / len(diff))
    assert "paired by seed" in (out / "summary.md").read_text()
    # The same trained team and the heuristic team, played by our loop on the same
    # seeds: equal to the rows of RLlib's EnvRunner (the default evaluator), seed by seed.
    again = tmp_path / "loop-eval"
    assert main(["--task", "basic_triage", "--ruleset", "ed", "--output", str(again), *TINY,
                 "--no-train", "--checkpoint", str(out), "--evaluator", "loop",
                 "--compare", "ppo", "heuristic"]) == 0  # fmt: skip
    loop = {(r["policy"], r["seed"]): r for r in rows}
    runner = pq.read_table(again / "results.parquet").to_pylist()
    assert {r["policy"] for r in runner} == {"ppo", "heuristic", "oracle"}
    for r in runner:
        assert r["score"] == loop[r["policy"], r["seed"]]["score"], r["policy"]
        if r["policy"] != "oracle":
            ref = loop[r["policy"], r["seed"]]["episode_return"]
            assert r["episode_return"] == pytest.approx(ref, abs=1e-9)


def test_training_history_reports_the_team_return():
    """RLlib sums the agents' returns (3× the team return in team-reward mode); the
    history, the training bar and the learning curve use the table's team return."""
    from agents.rllib.training import _summarise

    result = {"env_runners": {"episode_return_mean": 46.5, "serve_reward_mean": 16.2,
                              "agent_episode_returns_mean": {"triage_nurse": 15.5,
                                                             "consultant": 15.5,
                                                             "pharmacist": 15.5},
                              "num_env_steps_sampled_lifetime": 2000}}  # fmt: skip
    row = _summarise(result, 1, 1.0)
    assert row["episode_return_mean"] == 15.5 and row["serve_reward_mean"] == 16.2
    single = _summarise({"env_runners": {"episode_return_mean": 3.0}}, 1, 1.0)
    assert single["episode_return_mean"] == 3.0 and single["serve_reward_mean"] is None


def test_unknown_evaluator_is_a_clear_error(tmp_path, capsys):
    from experiments.run import RunConfig

    assert RunConfig().evaluator == "rllib"  # the default, for both rulesets
    base = ["--task", "basic_triage", "--output", str(tmp_path / "x"), "--no-train"]
    assert main([*base, "--evaluator", "gym", "--compare", "heuristic"]) == 2
    assert "('loop', 'rllib')" in " ".join(capsys.readouterr().err.split())
    with pytest.raises(ValueError, match="use one of loop, rllib"):
        RunConfig(evaluator="gym", compare=("heuristic",), no_train=True).validate()


def test_bad_team_spec_is_a_clear_error(tmp_path, capsys):
    args = ["--task", "basic_triage", "--ruleset", "ed", "--output", str(tmp_path / "x")]
    assert main([*args, "--compare", "nurse=dqn"]) == 2
    assert "unknown policies ['dqn']" in capsys.readouterr().err
    assert main([*args, "--compare", "surgeon=heuristic"]) == 2
    assert "unknown role 'surgeon'" in capsys.readouterr().err
