"""Run directories that never lose work, and config files checked field by field.

A run directory is claimed as a whole (:func:`claim`):

* **new** (neither flag): the directory must not exist, or be empty. Anything in it —
  results, a killed run's ``checkpoint/`` — is refused, naming ``--resume`` and
  ``--overwrite``. The claim writes ``run.json`` (the run's settings) at once, with
  ``O_EXCL``, so a killed run is recognised and two runs cannot share a directory.
* **resume**: the directory must hold a run; its saved settings (``run.json``, or the
  checkpoint's ``train_state.json`` for older runs) must equal this run's except for
  :data:`RESUMABLE` fields (how long to train, which resources); every difference is
  named. A corrupt ``run.json`` or ``train_state.json`` is refused clearly.
* **overwrite**: everything is written into a staging directory beside it
  (``.<name>.staging-<pid>``) and swapped in by :meth:`RunDir.commit` (two renames), so
  the old run stays whole until the new one is complete, and no stale file survives.

:func:`coerce_fields` type-checks a JSON object against a dataclass's annotations.
"""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
import types
import typing
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

RUN_FILE = "run.json"
"""The claim: the run's settings, written when the directory is claimed."""
RESUMABLE = frozenset(
    {"train_iters", "timesteps", "num_env_runners", "envs_per_runner", "num_learners",
     "address", "resume", "overwrite", "output", "config"}
)  # fmt: skip
"""Settings a resumed run may change: how long it trains and on what resources."""
Mode = Literal["new", "resume", "overwrite"]


class RunDirError(ValueError):
    """A run directory that cannot be claimed; the message names the fix."""


@dataclass
class RunDir:
    target: Path
    """Where the run's files end up."""
    path: Path
    """Where to write them now (``target``, or the staging directory with --overwrite)."""
    staged: bool = False

    def commit(self) -> Path:
        """Swap a staged directory in place of the old one (no-op otherwise)."""
        if not self.staged:
            return self.target
        old = self.target.with_name(f".{self.target.name}.old-{os.getpid()}")
        if self.target.exists():
            self.target.rename(old)
        self.path.rename(self.target)
        shutil.rmtree(old, ignore_errors=True)
        self.path, self.staged = self.target, False
        return self.target

    def abandon(self) -> None:
        """Drop a staged directory after a failure; the old run is untouched."""
        if self.staged:
            shutil.rmtree(self.path, ignore_errors=True)


def _contents(path: Path) -> list[str]:
    return sorted(p.name + ("/" if p.is_dir() else "") for p in path.iterdir())


def _write_claim(path: Path, settings: dict[str, Any]) -> None:
    try:
        with open(path / RUN_FILE, "x") as f:  # O_EXCL: one claimant only
            json.dump(settings, f, indent=1, default=str)
    except FileExistsError:
        raise RunDirError(f"{path} was claimed by another run meanwhile") from None


def claim(
    target: Path,
    mode: Mode,
    settings: dict[str, Any],
    legacy: tuple[str, dict[str, Any]] | None = None,
) -> RunDir:
    """Claim ``target`` for a run with ``settings`` (JSON-ready); see the module doc.
    ``legacy``: (the checkpoint's state file relative to ``target``, the settings to
    compare with its ``settings``) for runs saved before ``run.json`` existed."""
    target = Path(target)
    if target.exists() and not target.is_dir():
        raise RunDirError(f"--output {target} is a file; name a directory (new or empty)")
    exists = target.is_dir() and any(target.iterdir())
    if mode == "resume":
        if not exists:
            raise RunDirError(f"--resume: {target} holds no run to continue; drop --resume")
        saved, now = _saved_settings(target, settings, legacy)
        if saved is None:
            raise RunDirError(
                f"--resume: {target} holds no {RUN_FILE} or checkpoint to continue "
                f"({', '.join(_contents(target)[:6])}); use --overwrite or another --output"
            )
        check_resumable(saved, now)
        (target / RUN_FILE).write_text(json.dumps(settings, indent=1, default=str))
        return RunDir(target, target)
    if mode == "overwrite" and exists:
        stage = target.with_name(f".{target.name}.staging-{os.getpid()}")
        shutil.rmtree(stage, ignore_errors=True)
        stage.mkdir(parents=True)
        _write_claim(stage, settings)
        return RunDir(target, stage, staged=True)
    if exists:
        raise RunDirError(
            f"--output {target} already holds a run ({', '.join(_contents(target)[:6])}); "
            "pass --resume to continue it, --overwrite to replace it, or another --output"
        )
    target.mkdir(parents=True, exist_ok=True)
    _write_claim(target, settings)
    return RunDir(target, target)


def _saved_settings(
    target: Path, settings: dict[str, Any], legacy: tuple[str, dict[str, Any]] | None
) -> tuple[dict[str, Any] | None, dict[str, Any]]:
    """(saved settings, what to compare them with)."""
    run_file = target / RUN_FILE
    if run_file.is_file():
        return _read_json(run_file), settings
    if legacy is not None and (target / legacy[0]).is_file():
        saved = _read_json(target / legacy[0]).get("settings")
        if not isinstance(saved, dict):
            raise RunDirError(f"{target / legacy[0]} holds no settings; use --overwrite")
        return saved, legacy[1]
    return None, settings


def _read_json(path: Path) -> dict[str, Any]:
    try:
        doc = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise RunDirError(f"{path} is corrupt ({e}); use --overwrite to start over") from None
    if not isinstance(doc, dict):
        raise RunDirError(f"{path} is corrupt (not a JSON object); use --overwrite to start over")
    return doc


def check_resumable(saved: dict[str, Any], now: dict[str, Any]) -> None:
    """Raise naming every setting (outside :data:`RESUMABLE`) that differs."""
    diffs = []
    for key in sorted(set(saved) | set(now)):
        if key in RESUMABLE or key not in saved or key not in now:
            continue  # a key only one side knows is a version difference, not a setting
        a, b = _norm(saved[key]), _norm(now[key])
        if a != b:
            diffs.append(f"{key}: saved {a!r}, now {b!r}")
    if diffs:
        raise RunDirError(
            "--resume: the settings differ from the saved run's — " + "; ".join(diffs)
            + ". Resume with the saved settings, or use --overwrite / another --output"
        )  # fmt: skip


def _norm(value: Any) -> Any:
    if isinstance(value, (list, tuple)):
        return [_norm(v) for v in value]
    if isinstance(value, Path):
        return str(value)
    return value


# -- config files ------------------------------------------------------------------------------


def coerce_fields(values: dict[str, Any], cls: type, source: str) -> dict[str, Any]:
    """``values`` (a JSON object) checked against the dataclass ``cls``'s field types and
    converted (``Path`` from a string, a tuple from a list or a single string); unknown
    fields and every mistyped one are a :class:`ValueError` naming field and type."""
    fields = {f.name: f for f in dataclasses.fields(cls)}
    unknown = sorted(set(values) - set(fields))
    if unknown:
        raise ValueError(f"{source}: unknown fields {unknown}; known: {sorted(fields)}")
    hints = typing.get_type_hints(cls)
    out, errors = {}, []
    for name, value in values.items():
        try:
            out[name] = _coerce(value, hints[name])
        except TypeError as e:
            errors.append(f"{name!r} {e}, got {type(value).__name__} {value!r:.60}")
    if errors:
        raise ValueError(f"{source}: " + "; ".join(errors))
    return out


def _coerce(value: Any, hint: Any) -> Any:
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin in (typing.Union, types.UnionType):
        for arm in args:
            try:
                return _coerce(value, arm)
            except TypeError:
                continue
        raise TypeError("must be " + " or ".join(_name(a) for a in args))
    if hint is type(None):
        if value is None:
            return None
        raise TypeError("must be null")
    if origin is tuple:  # tuple[str, ...]: a list, or one string as a 1-tuple
        item = args[0]
        if isinstance(value, str) and item is str:
            return (value,)
        try:
            if not isinstance(value, list):
                raise TypeError
            return tuple(_coerce(v, item) for v in value)
        except TypeError:
            raise TypeError(f"must be a list of {_name(item)}s") from None
    if origin is typing.Literal:  # a fixed choice: --task, --ruleset, --algo, ...
        if value in args and not isinstance(value, bool):
            return value
        raise TypeError("must be one of " + ", ".join(repr(a) for a in args))
    if hint is bool:
        if isinstance(value, bool):
            return value
        raise TypeError("must be true or false")
    if hint is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        raise TypeError("must be an integer")
    if hint is float:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
        raise TypeError("must be a number")
    if hint is str:
        if isinstance(value, str):
            return value
        raise TypeError("must be a string")
    if hint is Path:
        if isinstance(value, str) and value:
            return Path(value)
        raise TypeError("must be a path string")
    return value  # a type this checker does not know: left to the dataclass


def _name(hint: Any) -> str:
    if hint is type(None):
        return "null"
    if typing.get_origin(hint) is tuple:
        return f"a list of {_name(typing.get_args(hint)[0])}"
    return {bool: "true/false", int: "integer", float: "number", str: "string", Path: "path"}.get(
        hint, str(hint)
    )


__all__ = [
    "RESUMABLE",
    "RUN_FILE",
    "RunDir",
    "RunDirError",
    "check_resumable",
    "claim",
    "coerce_fields",
]
