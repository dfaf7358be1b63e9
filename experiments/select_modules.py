"""Choose, on validation seeds, which roles of a finished ``--init bc`` run keep their
trained module and which their behaviour clone — what ``run.py`` does at the end of
training since ``--validation-episodes`` (agents.rllib.selection) — for a run trained
before it, or again with another number of seeds.

How to run::

    python experiments/select_modules.py runs/night_shift --validation-episodes 30
    python experiments/run.py --task night_shift --no-train --checkpoint runs/night_shift \\
        --output runs/night_shift-selected

Results to expect: one line per run, e.g. ``kept on validation seeds 20000–20029:
triage_nurse ppo, pharmacist clone, consultant ppo (87.9 % of the bound; all trained
87.6 %, all cloned 86.0 %)``, also written into the run's ``checkpoint/train_state.json``
(every evaluator then plays that mix). About 10–60 s per run on 2 cores.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass, fields, replace
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import tyro


@dataclass
class Args:
    runs: tyro.conf.Positional[tuple[Path, ...]]
    """Run directories of ``--init bc`` runs (each with checkpoint/ and bc/)."""
    validation_episodes: int = 30
    """Validation seeds (20,000 …) every mix plays."""


def select_run(run: Path, episodes: int) -> dict:
    """Write the validation choice into ``run``'s train state; return it."""
    from agents.rllib.selection import select_and_record
    from agents.rllib.training import TrainSettings, _read_state

    state = _read_state(run)
    if state is None:
        raise ValueError(f"{run}: no checkpoint; train it first with experiments/run.py")
    known = {f.name for f in fields(TrainSettings)}
    s = TrainSettings(**{k: v for k, v in state["settings"].items() if k in known})
    if s.init != "bc":
        raise ValueError(f"{run}: trained with --init {s.init}; there is no clone to keep")
    s = replace(s, validation_episodes=episodes)
    s.validate()
    return select_and_record(s, run)


def main(argv: list[str] | None = None) -> int:
    args = tyro.cli(Args, args=argv)
    import torch

    torch.set_num_threads(1)
    for run in args.runs:
        try:
            print(f"{run}: {select_run(run, args.validation_episodes)['description']}")
        except (ValueError, FileNotFoundError) as e:
            print(f"error: {e}", file=sys.stderr)
            return 2
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
