"""Supervised fine-tuning data in NurseSim-RL's instruction / input / output format.

Usage::

    python -m llm_policy.data --out data/sft            # 500 train / 100 val / 200 test
    python -m llm_policy.data --out DIR --seed 1 --n-train 2000

Writes ``{train,val,test}.jsonl`` and ``.parquet`` plus ``data_card.md`` and
``data_card.json`` under ``--out``.

* **Split by presentation.** The library's templates are shuffled (seeded) within
  each nominal category and dealt 60 / 15 / 25 % to train / val / test (at least one
  per category and split), so a test presentation — its complaint phrasings,
  histories and clinical picture — never occurs in train.
* **Records.** ``instruction`` (fixed system-style task), ``input`` (the
  nurse-visible card of :func:`~envs.clinical.format_presentation`), ``output``
  (``CATEGORY n (Name - COLOUR, target m min)``, a rationale naming the discriminators
  that fired, with charted values, and the recommended intervention), plus
  ``category``, ``category_name``, ``presentation_id``, ``flowchart``,
  ``intervention``, ``discriminators`` and ``split``.
* **Checkable labels.** Patients whose chart — charted values, unrecorded ones taken
  as unremarkable — would give a different category than their true state (a noisy
  value across a threshold, or a deciding value not recorded) are redrawn, so every
  rationale can be verified from the input; the data card reports how many.
"""

from __future__ import annotations

import argparse
import json
from collections import Counter
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from envs.clinical import (
    AVPU,
    LIBRARY,
    REALISTIC_CHARTING,
    ClinicalState,
    Discriminator,
    GeneratedPatient,
    PatientGenerator,
    charted_state,
    format_presentation,
    ground_truth_category,
    news2_of,
    recommended_intervention,
)
from envs.clinical.discriminators import (
    CRITICAL_SPO2,
    INADEQUATE_RR_HIGH,
    INADEQUATE_RR_LOW,
    SHOCK_HR,
    SHOCK_SBP,
)
from envs.types import Severity

SPLITS = ("train", "val", "test")
DEFAULT_SIZES = {"train": 500, "val": 100, "test": 200}
SPLIT_FRACTIONS = {"val": 0.15, "test": 0.25}  # the rest is train
CATEGORY_NAMES = {1: "Immediate", 2: "Very Urgent", 3: "Urgent", 4: "Standard", 5: "Non-Urgent"}
INSTRUCTION = (
    "You are an expert A&E triage nurse using the Manchester Triage System. Read the "
    "patient below and assign an MTS category from 1 (Immediate) to 5 (Non-Urgent). "
    "Give the category with its name, a short rationale naming the discriminators that "
    "apply, and one recommended intervention from: send_to_resus, send_to_majors, "
    "send_to_minors, order_ecg, give_analgesia, discharge, refer_to_gp."
)
MAX_REDRAWS = 1000
D = Discriminator


def split_presentations(seed: int = 0) -> dict[str, tuple[str, ...]]:
    """Presentation ids per split: disjoint, stratified by nominal category, and with
    every flowchart represented in train (one random "anchor" template per flowchart
    is kept for train; the others are dealt to test and val first)."""
    rng = np.random.default_rng(seed)
    flowcharts = sorted({t.flowchart for t in LIBRARY}, key=lambda f: f.value)
    for _ in range(MAX_REDRAWS):
        anchors = set()
        for f in flowcharts:
            ids = sorted(t.presentation_id for t in LIBRARY if t.flowchart is f)
            anchors.add(ids[int(rng.integers(len(ids)))])
        out: dict[str, list[str]] = {s: [] for s in SPLITS}
        for category in Severity:
            ids = sorted(t.presentation_id for t in LIBRARY if t.nominal_category == category)
            n_test = max(1, round(SPLIT_FRACTIONS["test"] * len(ids)))
            n_val = max(1, round(SPLIT_FRACTIONS["val"] * len(ids)))
            free = [i for i in ids if i not in anchors]
            if len(free) < n_test + n_val:
                break  # these anchors starve a category; draw others
            free = [free[i] for i in rng.permutation(len(free))]
            out["test"] += free[:n_test]
            out["val"] += free[n_test : n_test + n_val]
            out["train"] += free[n_test + n_val :] + [i for i in ids if i in anchors]
        else:
            return {s: tuple(sorted(v)) for s, v in out.items()}
    raise RuntimeError("could not split the library")  # pragma: no cover


def _detail(d: Discriminator, state: ClinicalState, p: Any) -> str:
    """Charted evidence for a computed discriminator ('' for findings / unrecorded)."""

    def rec(field: str, text: str) -> str:
        return text if getattr(p, field) is not None else ""

    s = state
    rr_extreme = not INADEQUATE_RR_LOW <= s.rr <= INADEQUATE_RR_HIGH
    shock_vitals = s.sbp < SHOCK_SBP and (s.hr > SHOCK_HR or s.avpu is not AVPU.ALERT)
    details = {
        # vitals only when they are what fired (else the finding in the complaint did)
        D.INADEQUATE_BREATHING: rec("rr", f"RR {s.rr:.0f}")
        if rr_extreme
        else rec("spo2", f"SpO2 {s.spo2:.0f}%")
        if s.spo2 < CRITICAL_SPO2
        else "",
        D.SHOCK: rec("sbp", f"SBP {s.sbp:.0f}") + rec("hr", f", HR {s.hr:.0f}")
        if shock_vitals
        else "",
        D.UNRESPONSIVE: "AVPU U",
        D.VERY_LOW_SPO2: rec("spo2", f"SpO2 {s.spo2:.0f}%"),
        D.LOW_SPO2: rec("spo2", f"SpO2 {s.spo2:.0f}%"),
        D.ALTERED_CONSCIOUSNESS: f"AVPU {s.avpu.value}",
        D.SEVERE_PAIN: rec("pain", f"pain {s.pain}/10"),
        D.MODERATE_PAIN: rec("pain", f"pain {s.pain}/10"),
        D.RECENT_MILD_PAIN: rec("pain", f"pain {s.pain}/10"),
        D.VERY_HOT: rec("temp", f"{s.temp:.1f} C"),
        D.HOT: rec("temp", f"{s.temp:.1f} C"),
        D.WARM: rec("temp", f"{s.temp:.1f} C"),
        D.NEWS2_RED_PARAMETER: f"NEWS2 {s.news2.total}",
        D.NEWS2_HIGH: f"NEWS2 {s.news2.total}",
        D.NEWS2_MEDIUM: f"NEWS2 {s.news2.total}",
    }
    return details.get(d, "").strip(", ")


def _phrase(d: Discriminator, state: ClinicalState, p: Any) -> str:
    detail = _detail(d, state, p)
    return f"{d.label} ({detail})" if detail else d.label


# What an unrecorded observation counts as in a rationale: unremarkable, so a
# discriminator can only be cited from a value that the input shows.
UNREMARKABLE = {"hr": 75.0, "rr": 15.0, "sbp": 125.0, "dbp": 78.0, "spo2": 98.0, "temp": 36.8,
                "pain": 0}  # fmt: skip


def verifiable_state(patient: GeneratedPatient) -> ClinicalState:
    """The chart as a clinical state: charted values, unrecorded ones unremarkable."""
    p = patient.presentation
    missing = {f: v for f, v in UNREMARKABLE.items() if getattr(p, f) is None}
    return replace(charted_state(patient), **missing)


def make_record(patient: GeneratedPatient, split: str) -> dict[str, Any]:
    """One SFT example; the rationale comes from the discriminators on the chart."""
    p = patient.presentation
    state = verifiable_state(patient)
    truth = ground_truth_category(state)
    category = int(truth.category)
    intervention = recommended_intervention(
        category, patient.template.flowchart, truth.discriminators
    )
    deciding = [_phrase(d, state, p) for d in truth.deciding]
    others = [_phrase(d, state, p) for d in truth.discriminators if d.category > category]
    if category == Severity.NON_URGENT:
        rationale = (
            "No discriminator applies; a long-standing problem without pain or "
            "abnormal observations."
        )
    else:
        rationale = "; ".join(deciding) + "."
        if others:
            rationale += " Also noted: " + "; ".join(others) + "."
    score = news2_of(p)
    rationale += f" NEWS2 {score.total} from the charted observations"
    rationale += f" ({len(score.missing)} not recorded)." if score.missing else "."
    sev = Severity(category)
    output = (
        f"CATEGORY {category} ({CATEGORY_NAMES[category]} - {sev.colour}, target "
        f"{sev.target_minutes} min)\nRationale: {rationale}\n"
        f"Recommended intervention: {intervention.value}"
    )
    return {
        "instruction": INSTRUCTION,
        "input": format_presentation(p),
        "output": output,
        "category": category,
        "category_name": CATEGORY_NAMES[category],
        "presentation_id": patient.presentation_id,
        "flowchart": patient.template.flowchart.value,
        "intervention": intervention.value,
        "discriminators": [d.value for d in truth.discriminators],
        "split": split,
    }


def generate_split(
    ids: Sequence[str], n: int, seed: int, split: str, mix: Sequence[float] | None = None
) -> tuple[list[dict[str, Any]], int]:
    """``n`` records from the presentations ``ids`` (true categories drawn from ``mix``,
    default the generator's); returns (records, redraws)."""
    kw = {} if mix is None else {"category_mix": tuple(mix)}
    gen = PatientGenerator(seed, presentation_ids=ids, charting=REALISTIC_CHARTING, **kw)
    records: list[dict[str, Any]] = []
    redraws = 0
    while len(records) < n:
        target = Severity(int(gen.rng.choice(5, p=gen.category_mix)) + 1)
        for _ in range(MAX_REDRAWS):
            patient = gen.sample(target)
            if ground_truth_category(verifiable_state(patient)).category == patient.category:
                break
            redraws += 1
        else:  # pragma: no cover - the library keeps templates away from thresholds
            raise RuntimeError(f"no chart-consistent category-{int(target)} patient")
        records.append(make_record(patient, split))
    return records, redraws


def build_dataset(
    seed: int = 0, sizes: dict[str, int] | None = None, train_mix: Sequence[float] | None = None
) -> tuple[dict[str, list[dict[str, Any]]], dict[str, Any]]:
    """All three splits and the data card (a dict). ``train_mix``: the train split's
    category mix (val and test keep the generator's, so evaluations stay comparable)."""
    sizes = {**DEFAULT_SIZES, **(sizes or {})}
    ids = split_presentations(seed)
    data: dict[str, list[dict[str, Any]]] = {}
    redraws: dict[str, int] = {}
    for i, split in enumerate(SPLITS):
        mix = train_mix if split == "train" else None
        data[split], redraws[split] = generate_split(
            ids[split], sizes[split], seed * 100 + i, split, mix
        )
    card = data_card(data, ids, seed, redraws)
    if train_mix is not None:
        card["train_category_mix"] = [float(x) for x in train_mix]
    return data, card


def data_card(
    data: dict[str, list[dict[str, Any]]],
    ids: dict[str, tuple[str, ...]],
    seed: int,
    redraws: dict[str, int],
) -> dict[str, Any]:
    card: dict[str, Any] = {
        "name": "edmarl NurseSim SFT triage data",
        "seed": seed,
        "format": "instruction / input / output (NurseSim-RL), JSONL and Parquet",
        "fields": [
            "instruction", "input", "output", "category", "category_name", "presentation_id",
            "flowchart", "intervention", "discriminators", "split",
        ],
        "category_mix": "5/15/35/35/10 % (categories 1-5), PatientGenerator default",
        "charting": {
            "p_missing_vital": REALISTIC_CHARTING.p_missing_vital,
            "p_missing_pain": REALISTIC_CHARTING.p_missing_pain,
            "p_missing_flowchart": REALISTIC_CHARTING.p_missing_flowchart,
        },
        "split_rule": "by presentation id, stratified by nominal category (60/15/25 %), "
        "every flowchart in train",
        "splits": {},
    }  # fmt: skip
    for split in SPLITS:
        recs = data[split]
        card["splits"][split] = {
            "examples": len(recs),
            "presentations": list(ids[split]),
            "n_presentations": len(ids[split]),
            "per_category": {
                str(c): n for c, n in sorted(Counter(r["category"] for r in recs).items())
            },
            "per_flowchart": dict(sorted(Counter(r["flowchart"] for r in recs).items())),
            "per_intervention": dict(sorted(Counter(r["intervention"] for r in recs).items())),
            "chart_inconsistent_redraws": redraws[split],
        }
    overlap = sorted(
        (set(ids["train"]) & (set(ids["val"]) | set(ids["test"])))
        | (set(ids["val"]) & set(ids["test"]))
    )
    card["leakage_check"] = {"shared_presentations": overlap, "ok": not overlap}
    return card


def render_card(card: dict[str, Any]) -> str:
    lines = [
        f"# {card['name']}",
        "",
        f"Generated by `python -m llm_policy.data --seed {card['seed']}`. Format: "
        f"{card['format']}. Split: {card['split_rule']}; leakage check: "
        f"{'ok' if card['leakage_check']['ok'] else 'FAILED'}.",
        "",
        f"Category mix: {card['category_mix']}. Charting: {card['charting']}.",
        "",
        "| split | examples | presentations | cat 1 | cat 2 | cat 3 | cat 4 | cat 5 | redraws |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for split, s in card["splits"].items():
        cats = " | ".join(str(s["per_category"].get(str(c), 0)) for c in range(1, 6))
        lines.append(
            f"| {split} | {s['examples']} | {s['n_presentations']} | {cats} | "
            f"{s['chart_inconsistent_redraws']} |"
        )
    flowcharts = sorted({f for s in card["splits"].values() for f in s["per_flowchart"]})
    lines += [
        "",
        "Examples per flowchart:",
        "",
        "| flowchart | train | val | test |",
        "|---|---|---|---|",
    ]
    for f in flowcharts:
        counts = " | ".join(str(card["splits"][s]["per_flowchart"].get(f, 0)) for s in SPLITS)
        lines.append(f"| {f} | {counts} |")
    lines += ["", "Presentations per split:", ""]
    for split, s in card["splits"].items():
        lines.append(f"- {split}: {', '.join(s['presentations'])}")
    return "\n".join(lines) + "\n"


def write_dataset(
    out: str | Path, data: dict[str, list[dict[str, Any]]], card: dict[str, Any]
) -> list[Path]:
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    written = []
    for split, recs in data.items():
        jsonl = out / f"{split}.jsonl"
        with jsonl.open("w", encoding="utf-8") as fh:
            for r in recs:
                fh.write(json.dumps(r, ensure_ascii=False) + "\n")
        parquet = out / f"{split}.parquet"
        pq.write_table(pa.Table.from_pylist(recs), parquet)
        written += [jsonl, parquet]
    (out / "data_card.json").write_text(json.dumps(card, indent=2) + "\n", encoding="utf-8")
    (out / "data_card.md").write_text(render_card(card), encoding="utf-8")
    return [*written, out / "data_card.json", out / "data_card.md"]


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(
        prog="python -m llm_policy.data", description=__doc__.split("\n")[0]
    )
    ap.add_argument("--out", required=True, help="output directory")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--n-train", type=int, default=DEFAULT_SIZES["train"])
    ap.add_argument("--n-val", type=int, default=DEFAULT_SIZES["val"])
    ap.add_argument("--n-test", type=int, default=DEFAULT_SIZES["test"])
    ap.add_argument(
        "--train-category-mix", type=float, nargs=5, default=None, metavar="P",
        help="the train split's share of true categories 1..5 (normalised; val and test "
        "keep the generator's 5/15/35/35/10 %%), e.g. 0.15 0.25 0.25 0.25 0.10 to see "
        "more urgent patients",
    )  # fmt: skip
    args = ap.parse_args(argv)
    mix = args.train_category_mix
    if mix is not None and (min(mix) < 0 or sum(mix) <= 0):
        ap.error("--train-category-mix needs 5 non-negative shares with a positive sum")
    sizes = {"train": args.n_train, "val": args.n_val, "test": args.n_test}
    if min(sizes.values()) < 0:
        ap.error("split sizes must be >= 0")
    data, card = build_dataset(args.seed, sizes, mix)
    for path in write_dataset(args.out, data, card):
        print(path)
    for split, s in card["splits"].items():
        print(f"{split}: {s['examples']} examples, {s['n_presentations']} presentations, "
              f"per category {s['per_category']}")  # fmt: skip
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
