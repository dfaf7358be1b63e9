"""A triage policy on real charts, beside the triage nurses on the same visits.

Run through ``python experiments/eval_nurse.py --charts FILE [--policy ...]``. The
reference is the expert panel (``KTAS_expert``); the nurses' own level (``KTAS_RN``)
goes through the same metrics (:func:`envs.clinical.triage_metrics.triage_metrics`).
Data: Moon S-H et al., PLoS ONE 14(9): e0216972, 2019 (doi:10.1371/journal.pone.0216972).
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import numpy as np

from agents.report import atomic_write, mean_ci
from agents.triage_policies import TriagePolicy, load_policy
from envs.clinical.charts import KTAS_PAPER, Chart, load_ktas
from envs.clinical.triage_metrics import CRITICAL, METRIC_LABELS, format_confusion, triage_metrics

SPLIT_SEED = 0
"""The seeded halves of a chart file: rules were tuned on ``tune`` and checked on ``check``
(``numpy.random.default_rng(0).permutation(n)``: first n // 2 rows tune)."""
MAX_ERRORS_LISTED = 20


def split_halves(n: int, seed: int = SPLIT_SEED) -> dict[str, np.ndarray]:
    """Row indices of the tuning and the checking half (disjoint, together all rows)."""
    order = np.random.default_rng(seed).permutation(n)
    return {"tune": np.sort(order[: n // 2]), "check": np.sort(order[n // 2 :])}


def run_policy(policy: TriagePolicy, charts: list[Chart]) -> tuple[list[int | None], list[dict]]:
    """Categories for every chart. A policy that raises on the batch is re-run chart by
    chart; a chart it still fails on counts as unparsed (None) and is listed."""
    ps = [c.presentation for c in charts]
    try:
        out = list(policy(ps))
        if len(out) != len(ps):
            raise ValueError(f"policy returned {len(out)} categories for {len(ps)} charts")
        return [_category(x) for x in out], []
    except Exception:  # noqa: BLE001 - re-run one by one to find the charts that fail
        pass
    assigned: list[int | None] = []
    errors: list[dict] = []
    for c in charts:
        try:
            assigned.append(_category(policy([c.presentation])[0]))
        except Exception as e:  # noqa: BLE001 - recorded, never silently dropped
            assigned.append(None)
            errors.append({"row": c.row, "error": f"{type(e).__name__}: {e}"})
    return assigned, errors


def _category(x: Any) -> int | None:
    return None if x is None or int(x) not in range(1, 6) else int(x)


def paired_difference(
    expert: np.ndarray, policy: list[int | None], nurse: np.ndarray
) -> dict[str, Any]:
    """Policy − nurses, paired by visit, mean ± 95 % t half-width: exact agreement (all
    visits) and sending an expert 1–2 visit to 3–5 (those visits only)."""
    a = np.asarray([0 if x is None else x for x in policy])
    exact = (a == expert).astype(float) - (nurse == expert).astype(float)
    high = expert <= CRITICAL
    crit = ((a > CRITICAL) | (a == 0)).astype(float) - (nurse > CRITICAL).astype(float)
    out = {}
    for key, diff in (("accuracy", exact), ("true_1_2_assigned_3_to_5", crit[high])):
        mean, half = mean_ci(diff.tolist())
        out[key] = {"mean": mean, "ci95": half, "n": int(diff.size)}
    return out


def evaluate_charts(path: Path, policy_spec: str, **options: Any) -> dict[str, Any]:
    charts = load_ktas(path)
    policy = load_policy(policy_spec, **options)
    t0 = time.perf_counter()
    assigned, errors = run_policy(policy, charts)
    seconds = time.perf_counter() - t0
    expert = np.array([c.expert for c in charts])
    nurse = np.array([c.nurse for c in charts])
    halves = {}
    for name, idx in split_halves(len(charts)).items():
        halves[name] = {
            "policy": triage_metrics(expert[idx], [assigned[i] for i in idx]),
            "nurses_ktas_rn": triage_metrics(expert[idx], nurse[idx]),
        }
    return {
        "charts": str(path),
        "source": KTAS_PAPER,
        "policy": policy_spec,
        "options": {k: v for k, v in options.items() if v is not None},
        "n": len(charts),
        "seconds": round(seconds, 2),
        "policy_errors": errors[:MAX_ERRORS_LISTED],
        "n_policy_errors": len(errors),
        "metrics": {
            "policy": triage_metrics(expert, assigned),
            "nurses_ktas_rn": triage_metrics(expert, nurse),
        },
        "policy_minus_nurses_paired": paired_difference(expert, assigned, nurse),
        "halves": {"seed": SPLIT_SEED, **halves},
        "assigned": [
            {"row": c.row, "expert": c.expert, "nurse": c.nurse, "policy": a}
            for c, a in zip(charts, assigned, strict=True)
        ],  # fmt: skip
    }


def format_chart_report(r: dict[str, Any]) -> str:
    pol, rn = r["metrics"]["policy"], r["metrics"]["nurses_ktas_rn"]
    d = r["policy_minus_nurses_paired"]
    crit = d["true_1_2_assigned_3_to_5"]
    lines = [
        f"== {r['policy']} on {r['charts']} ({r['n']} visits, reference KTAS_expert) ==",
        f"{'metric':30s} {'policy':>8s} {'nurses (KTAS_RN)':>17s}",
        *(f"{label:30s} {pol[k]:8.3f} {rn[k]:17.3f}" for k, label in METRIC_LABELS.items()),
        f"policy − nurses, paired by visit: exact {d['accuracy']['mean']:+.3f} ± "
        f"{d['accuracy']['ci95']:.3f}; expert 1-2 sent to 3-5 {crit['mean']:+.3f} ± "
        f"{crit['ci95']:.3f} (n={crit['n']})",
    ]
    for half in ("tune", "check"):
        h = r["halves"][half]["policy"]
        lines.append(f"{half} half (seed {r['halves']['seed']}, n={h['n']}): exact "
                     f"{h['accuracy']:.3f}, kappa {h['quadratic_weighted_kappa']:.3f}, "
                     f"1-2 sent to 3-5 {h['true_1_2_assigned_3_to_5']:.3f}")  # fmt: skip
    lines += ["policy (rows expert, columns assigned):", format_confusion(pol)]
    if r["n_policy_errors"]:
        lines.append(f"policy failed on {r['n_policy_errors']} chart(s): "
                     f"{r['policy_errors'][:3]}")  # fmt: skip
    lines.append(f"data: {r['source']}")
    return "\n".join(lines)


def plot_confusions(r: dict[str, Any], path: Path) -> None:
    """Both confusion matrices (policy, nurses), shaded by row share, counts written."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(10, 4.4))
    for ax, (key, title) in zip(
        axes, (("policy", f"policy: {r['policy']}"), ("nurses_ktas_rn", "triage nurses (KTAS_RN)")),
        strict=True,
    ):  # fmt: skip
        m = r["metrics"][key]
        cm = np.asarray(m["confusion_matrix"])[:, :5]
        share = cm / np.maximum(cm.sum(1, keepdims=True), 1)
        ax.imshow(share, cmap="Blues", vmin=0, vmax=1)
        for i in range(5):
            for j in range(5):
                ax.text(j, i, str(cm[i, j]), ha="center", va="center",
                        color="white" if share[i, j] > 0.6 else "black")  # fmt: skip
        ax.set_xticks(range(5), [str(c) for c in range(1, 6)])
        ax.set_yticks(range(5), [str(c) for c in range(1, 6)])
        ax.set_xlabel("assigned")
        ax.set_ylabel("expert panel (KTAS_expert)")
        ax.set_title(f"{title}\nexact {m['accuracy']:.3f}, kappa "
                     f"{m['quadratic_weighted_kappa']:.3f}", fontsize=10)  # fmt: skip
    fig.suptitle(f"{Path(r['charts']).name}, {r['n']} visits (Moon et al., PLoS ONE 2019)",
                 fontsize=10)  # fmt: skip
    fig.tight_layout()
    atomic_write(path, lambda p: fig.savefig(p, dpi=110, format="png"))
    plt.close(fig)
