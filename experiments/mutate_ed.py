"""Planted-bug (mutation) run over ``envs/ed/``: how many plausible bugs does the
default ``ed`` test suite catch?

    python experiments/mutate_ed.py --out docs/benchmarks/mutation_ed

Each mutant is one exact-text replacement in one file of ``envs/ed/`` (the list
:data:`MUTANTS`: the bugs issue 13 names, one per v1 rule, and v1's score; the last,
the env ignoring the exact bound, is in ``envs/ed/parallel_env.py``). For each, a copy of
the checkout gets the change and runs :data:`TESTS` (``pytest -x``); a failing run
*kills* the mutant. Writes ``<out>.json`` (per mutant: killed, seconds) and prints
the kill rate. A mutant whose text is not found is an error (the list is stale).
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

if __package__ in (None, ""):  # `python experiments/mutate_ed.py` from a checkout
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from agents.report import run_record, write_json

ROOT = Path(__file__).resolve().parents[1]
TESTS = ("tests/test_ed_graders.py", "tests/test_ed_v1_score.py", "tests/test_ed_engine.py",
         "tests/test_ed_oracle.py", "tests/test_ed_v1.py",
         "tests/test_ed_pettingzoo.py", "tests/test_ed_roles.py")  # fmt: skip
"""The default-suite (``-m 'not slow'``) test files that cover ``envs/ed/``, fastest first."""

MUTANTS: dict[str, tuple[str, str, str]] = {
    # The bugs named in issue 13.
    "grader_task_constant": ("envs/ed/graders.py", "time_score = _ratio(total, optimum)",
                             "time_score = _ratio(total, task.optimal_reward)"),
    "clamp_before_penalty": ("envs/ed/graders.py", "score = _clamp(base - penalty)",
                             "score = _clamp(base) - penalty"),
    "serve_cap_removed": ("envs/ed/engine.py",
                          "        r = min(r, fast_serve_reward(arrival_severity, wait))",
                          "        pass"),
    "missed_on_self_report": ("envs/ed/engine.py",
                              "immediate = int((waiting & (s.severity == 1)).sum())",
                              "immediate = int((waiting & (s.reported == 1)).sum())"),
    "under_triage_cat1_only": ("envs/ed/engine.py", "if true <= 2 and cat >= true",
                               "if true <= 1 and cat >= true"),
    "consultant_sees_truth": ("envs/ed/observation.py",
                              "r[:, 1] = np.where(c.tri, s.triaged, s.reported if",
                              "r[:, 1] = np.where(c.tri, s.severity, s.reported if"),
    "bound_no_stock": ("envs/ed/bound.py", "add(ds, 0, config.stock[drug])",
                       "add(ds, 0, 99)"),
    # v1 rules.
    "lwbs_off_by_one": ("envs/ed/engine.py", "(s.step - s.arrival >= patience)",
                        "(s.step - s.arrival > patience)"),
    "death_off_by_one": ("envs/ed/engine.py", "(s.step - s.crit_since >= cfg.death_wait)",
                         "(s.step - s.crit_since > cfg.death_wait)"),
    "death_clock_from_arrival": ("envs/ed/engine.py",
                                 "    if sev == 1 and s.crit_since[slot] < 0:\n"
                                 "        s.crit_since[slot] = s.step",
                                 "    if sev == 1 and s.crit_since[slot] < 0:\n"
                                 "        s.crit_since[slot] = s.arrival[slot]"),
    "treatment_one_step_short": ("envs/ed/engine.py",
                                 "s.busy[s.step + 1 : s.step + s.config.duration(sev)]",
                                 "s.busy[s.step + 1 : s.step + s.config.duration(sev) - 1]"),
    "busy_not_refilled": ("envs/ed/engine.py",
                          "        s.budget[_CONSULTANT] -= int(s.busy[s.step])", "        pass"),
    "serve_without_triage": ("envs/ed/state.py",
                             "    if s.config.serve_requires_triage:\n        ok &= s.triaged > 0\n"
                             "    if s.icu_available < 1:",
                             "    if s.icu_available < 1:"),
    "end_never_waits": ("envs/ed/engine.py",
                        "return np.count_nonzero(start_masks[_NURSE]) > 1",
                        "return False"),
    "critical_clock_uncapped": ("envs/ed/engine.py",
                                "r = fast_serve_reward(severity, wait if critical_wait is None "
                                "else critical_wait)\n    if severity != arrival_severity:",
                                "r = fast_serve_reward(severity, wait if critical_wait is None "
                                "else critical_wait)\n    if critical_wait is None and "
                                "severity != arrival_severity:"),
    "self_report_shown_in_v1": ("envs/ed/observation.py",
                                "s.reported if s.config.consultant_sees_self_report else 0",
                                "s.reported"),
    "bound_ignores_lwbs": ("envs/ed/bound.py", "            if pat and t - a >= pat:\n"
                           "                return", "            pass"),
    "bound_treatment_one_step": ("envs/ed/bound.py",
                                 "for u in range(t, min(horizon, t + dur)):",
                                 "for u in range(t, min(horizon, t + 1)):"),
    "bound_no_triage_gate": ("envs/ed/bound.py",
                             "        if config.serve_requires_triage:  # Σ_{t' ≤ t}",
                             "        if False:  # Σ_{t' ≤ t}"),
    "departures_lwbs_for_critical": ("envs/ed/engine.py",
                                     "left = waiting & ~died & (patience > 0)",
                                     "left = waiting & (patience > 0)"),
    # General ed rules (written before looking at which tests would catch them).
    "icu_not_consumed": ("envs/ed/engine.py", "        s.icu_available -= 1", "        pass"),
    "stock_not_spent": ("envs/ed/engine.py", "    s.stock[d] -= 1", "    pass"),
    "retriage_never": ("envs/ed/state.py",
                       "        ok = ok | (s.condition != s.triage_condition)", "        pass"),
    "triage_condition_stale": ("envs/ed/engine.py",
                               "    s.triage_condition[slot] = s.condition[slot]", "    pass"),
    "idle_doctor_sign": ("envs/ed/engine.py",
                         "terms[_CONSULTANT][IDLE_DOCTORS] = r.idle_doctor * idle",
                         "terms[_CONSULTANT][IDLE_DOCTORS] = -r.idle_doctor * idle"),
    "icu_ignored_in_mask": ("envs/ed/state.py", "        ok &= ~s.icu", "        pass"),
    "ratio_uncapped": ("envs/ed/graders.py", "return min(1.0, total / optimum) if optimum",
                       "return total / optimum if optimum"),
    # v1's score, the share of the bound (2026-12-02).
    "share_zero_bound": ("envs/ed/graders.py", "return reward / bound if bound > 0 else 1.0",
                         "return reward / bound if bound > 0 else 0.0"),
    "share_left_as_grader": ("envs/ed/graders.py",
                             "        out[\"score\"] = serve_share(total, optimum)",
                             "        pass"),
    "share_on_v0_too": ("envs/ed/graders.py", "    if state.config.is_v1:\n        out[\"grader",
                        "    if True:\n        out[\"grader"),
    "share_of_wait0_total": ("envs/ed/parallel_env.py", '        if self.normaliser == "oracle":',
                             "        if False:"),
}  # fmt: skip


def run_mutant(name: str, workdir: Path) -> dict:
    path, old, new = MUTANTS[name]
    target = workdir / path
    original = target.read_text()
    if original.count(old) != 1:
        raise SystemExit(f"mutant {name}: text not found exactly once in {path}; update MUTANTS")
    target.write_text(original.replace(old, new))
    t0 = time.perf_counter()
    try:
        proc = subprocess.run(
            [sys.executable, "-m", "pytest", "-x", "-q", "-p", "no:cacheprovider", *TESTS],
            cwd=workdir, env={**os.environ, "PYTHONPATH": str(workdir)},
            capture_output=True, text=True, check=False,
        )  # fmt: skip
    finally:
        target.write_text(original)
    return {"mutant": name, "file": path, "killed": proc.returncode != 0,
            "seconds": round(time.perf_counter() - t0, 1)}  # fmt: skip


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, default=Path("runs/mutation_ed"))
    ap.add_argument("--only", nargs="*", default=None, help="run these mutants only")
    args = ap.parse_args(argv)
    names = args.only or list(MUTANTS)
    results = []
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp) / "repo"
        shutil.copytree(ROOT, work, ignore=shutil.ignore_patterns(".git", "runs", "__pycache__"))
        for name in names:
            r = run_mutant(name, work)
            results.append(r)
            print(f"{name:32s} {'killed' if r['killed'] else 'SURVIVED'} ({r['seconds']} s)",
                  flush=True)  # fmt: skip
    killed = sum(r["killed"] for r in results)
    rate = killed / len(results)
    doc = {"tests": list(TESTS), "mutants": results, "killed": killed, "total": len(results),
           "kill_rate": rate, **run_record("mutate_ed.py", argv)}  # fmt: skip
    args.out.parent.mkdir(parents=True, exist_ok=True)
    write_json(args.out.with_suffix(".json"), doc)
    print(f"kill rate: {killed}/{len(results)} = {100 * rate:.0f} %")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
