"""SFT data: sizes, format, split by presentation (no leakage), determinism, CLI files."""

from __future__ import annotations

import json
import re

import pyarrow.parquet as pq
import pytest

from envs.clinical import TEMPLATES, Intervention
from llm_policy.data import (
    CATEGORY_NAMES,
    SPLITS,
    build_dataset,
    main,
    split_presentations,
)

OUTPUT = re.compile(
    r"^CATEGORY (?P<cat>[1-5]) \((?P<name>[A-Za-z -]+) - (?P<colour>[A-Z]+), target \d+ min\)\n"
    r"Rationale: (?P<why>.+)\nRecommended intervention: (?P<iv>[a-z_]+)$",
    re.S,
)


@pytest.fixture(scope="module")
def dataset():
    return build_dataset(seed=0)


def test_sizes_and_fields(dataset):
    data, card = dataset
    assert {s: len(data[s]) for s in SPLITS} == {"train": 500, "val": 100, "test": 200}
    for split in SPLITS:
        for r in data[split]:
            assert {"instruction", "input", "output", "category", "presentation_id"} <= set(r)
            assert r["split"] == split
    assert card["splits"]["test"]["examples"] == 200


def test_output_format_matches_fields(dataset):
    data, _ = dataset
    for r in data["train"] + data["test"]:
        m = OUTPUT.match(r["output"])
        assert m, r["output"]
        assert int(m["cat"]) == r["category"] and m["name"] == CATEGORY_NAMES[r["category"]]
        assert Intervention(m["iv"]).value == r["intervention"]
        assert "NEWS2" in m["why"]
        assert r["presentation_id"] not in r["input"]  # the id never leaks into the prompt


def test_rationale_names_the_deciding_discriminators(dataset):
    data, _ = dataset
    r = next(
        x for x in data["train"] if x["category"] == 2 and "severe_pain" in x["discriminators"]
    )
    assert "severe pain (pain " in r["output"]
    five = next(x for x in data["train"] if x["category"] == 5)
    assert "No discriminator applies" in five["output"]


def test_split_by_presentation_no_leakage(dataset):
    data, card = dataset
    ids = split_presentations(0)
    assert not set(ids["train"]) & set(ids["test"])
    assert not set(ids["train"]) & set(ids["val"]) and not set(ids["val"]) & set(ids["test"])
    assert set(ids["train"]) | set(ids["val"]) | set(ids["test"]) == set(TEMPLATES)
    for split in SPLITS:
        assert {r["presentation_id"] for r in data[split]} <= set(ids[split])
    train_inputs = {r["input"].split("\n")[1] for r in data["train"]}  # complaint lines
    test_complaints = {r["input"].split("\n")[1] for r in data["test"]}
    assert not train_inputs & test_complaints  # no test phrasing was seen in training
    assert card["leakage_check"]["ok"]


def test_every_category_in_every_split_and_every_flowchart_in_train(dataset):
    data, _ = dataset
    for split in SPLITS:
        assert {r["category"] for r in data[split]} == {1, 2, 3, 4, 5}
    assert {r["flowchart"] for r in data["train"]} == {
        t.flowchart.value for t in TEMPLATES.values()
    }


def test_deterministic_per_seed():
    a, _ = build_dataset(seed=3, sizes={"train": 30, "val": 10, "test": 10})
    b, _ = build_dataset(seed=3, sizes={"train": 30, "val": 10, "test": 10})
    c, _ = build_dataset(seed=4, sizes={"train": 30, "val": 10, "test": 10})
    assert a == b and a != c


def test_cli_writes_jsonl_parquet_and_card(tmp_path):
    assert main(["--out", str(tmp_path), "--n-train", "40", "--n-val", "10", "--n-test", "20"]) == 0
    for split, n in (("train", 40), ("val", 10), ("test", 20)):
        lines = (tmp_path / f"{split}.jsonl").read_text().splitlines()
        assert len(lines) == n
        table = pq.read_table(tmp_path / f"{split}.parquet")
        assert table.num_rows == n and {"category", "presentation_id"} <= set(table.column_names)
        assert table.column("presentation_id").to_pylist() == [json.loads(x)["presentation_id"]
                                                                for x in lines]  # fmt: skip
    card = json.loads((tmp_path / "data_card.json").read_text())
    per_cat = card["splits"]["train"]["per_category"]
    assert sum(per_cat.values()) == 40
    assert sum(card["splits"]["test"]["per_flowchart"].values()) == 20
    assert "| train | 40 |" in (tmp_path / "data_card.md").read_text()


def test_rationale_values_are_visible_in_the_input(dataset):
    data, _ = dataset
    cited = re.compile(r"\((pain \d+/10|SpO2 \d+%|RR \d+|[\d.]+ C)\)")
    checked = 0
    for r in data["train"] + data["val"] + data["test"]:
        for value in cited.findall(r["output"]):
            assert value in r["input"], (value, r["input"])
            checked += 1
    assert checked > 300
