"""The web console: a single page at ``/`` (static files in ``static/console/``, no build
step, no CDN) over the server's own API, plus the few routes it needs besides the tools.

The page plays an ``ed`` episode through the ordinary session API (``POST /reset``,
``POST /step``: ``triage_patient``, ``finalize_episode`` …); these routes add only what
the tools cannot do:

* ``GET /console/api/options`` — tasks (the ``list_tasks`` tool, plus ``generated``),
  player kinds, the run directories under the results root;
* ``POST /console/api/advance`` — the AI teammates of a session queue their decisions and
  ``end_step`` runs, one sub-step, one time step, to the end, or until a human can act;
* ``GET /console/api/debrief`` — after the end, each patient's true category beside the
  nurse's; ``POST /console/api/compare`` — the heuristic (and trained) team on the same
  seed and the clairvoyant bound;
* ``GET /console/api/runs[/{name}[/files/{file}]]`` — run directories written by
  ``experiments/run.py``, only direct children of the results root
  (``EDMARL_RESULTS_ROOT``, default ``./runs``), only their known files.

Sessions are the server's (same cap, idle timeout, Host checks and body limit); AI
teammates live beside them and go when their session goes.
"""

from __future__ import annotations

import json
import os
import re
import threading
from pathlib import Path
from typing import Any

from fastapi import FastAPI, Query
from fastapi.responses import FileResponse, Response
from fastapi.staticfiles import StaticFiles
from pydantic import BaseModel, ConfigDict, StrictBool, StrictStr

from envs.ed.config import AGENTS
from envs.ed_tool_api import EdToolSession
from envs.server.console_teams import (
    HUMAN,
    PLAYERS,
    TRAINED,
    UNTIL,
    TeammateFactory,
    Teammates,
    advance,
    debrief,
    parse_players,
    reference_teams,
    task_names,
)
from envs.server.tools import ApiError
from envs.tool_api import ToolError

STATIC_DIR = Path(__file__).resolve().parent / "static" / "console"
RESULTS_ROOT_ENV = "EDMARL_RESULTS_ROOT"
DEFAULT_RESULTS_ROOT = "runs"
RUN_FILES = {
    "comparison.png": "image/png",
    "learning_curve.png": "image/png",
    "timeline.png": "image/png",
    "summary.md": "text/markdown; charset=utf-8",
}
"""The files of a run directory the console serves (nothing else, e.g. no checkpoint)."""
_RUN_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,199}$")
CSP = (
    "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; "
    "connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'"
)


def _api_error(e: ToolError) -> ApiError:
    # As the tool routes answer: the caller's input is 400, "not now" is 409.
    return ApiError(400 if e.code == "bad_argument" else 409, e.code, e.message)


def _json(payload: Any) -> Response:
    body = json.dumps(payload, separators=(",", ":"), allow_nan=False)
    return Response(body, media_type="application/json")


# -- run directories ------------------------------------------------------------------


class RunCatalog:
    """Run directories directly under ``root`` (those holding a ``summary.json``)."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def list(self) -> list[dict[str, Any]]:
        if not self.root.is_dir():
            return []
        out = []
        for d in sorted(self.root.iterdir(), key=lambda p: p.name):
            if _RUN_NAME.match(d.name) and self._inside(d) and (d / "summary.json").is_file():
                cfg = self._config(d)
                out.append(
                    {
                        "name": d.name,
                        "task": cfg.get("task"),
                        "ruleset": cfg.get("ruleset"),
                        "ed_version": cfg.get("ed_version"),
                        "trained": (d / "checkpoint").is_dir(),
                        "files": [f for f in RUN_FILES if (d / f).is_file()],
                    }
                )
        return out

    def resolve(self, name: Any) -> Path:
        """The directory of run ``name``, or 404: a plain name, no path, no link out."""
        if not isinstance(name, str) or not _RUN_NAME.match(name):
            raise ApiError(
                400, "bad_argument", f"run name {name!r}: a directory name under the results "
                "root (letters, digits, '.', '_', '-'), not a path",
            )  # fmt: skip
        d = self.root / name
        if not (self._inside(d) and (d / "summary.json").is_file()):
            raise ApiError(
                404, "unknown_run", f"no run {name!r} with a summary.json under the results "
                f"root {self.root} (set {RESULTS_ROOT_ENV} to change it)",
            )  # fmt: skip
        return d.resolve()

    def summary(self, name: str) -> dict[str, Any]:
        d = self.resolve(name)
        try:  # run.py writes NaN where a figure does not apply: JSON null for the page
            summary = json.loads((d / "summary.json").read_text(), parse_constant=lambda _: None)
        except (OSError, json.JSONDecodeError) as e:
            raise ApiError(422, "bad_run", f"run {name!r}: unreadable summary.json ({e})") from None
        return {
            "name": name,
            "config": self._config(d),
            "summary": summary,
            "files": [f for f in RUN_FILES if (d / f).is_file()],
            "trained": (d / "checkpoint").is_dir(),
        }

    def file(self, name: str, file: str) -> FileResponse:
        d = self.resolve(name)
        if file not in RUN_FILES or not (d / file).is_file():
            raise ApiError(
                404, "unknown_file", f"run {name!r} has no {file!r}; files served: "
                f"{', '.join(RUN_FILES)}",
            )  # fmt: skip
        return FileResponse(d / file, media_type=RUN_FILES[file])

    def _inside(self, d: Path) -> bool:
        try:  # a symlink that leads out of the root is refused
            return d.is_dir() and d.resolve().parent == self.root.resolve()
        except OSError:
            return False

    def check_version(self, run_dir: Path, ed: EdToolSession) -> None:
        """A trained team plays the ``ed`` version it was trained on: a session of another
        version would give it observations of other rules (and a score run.py never saw)."""
        trained_on = self._config(run_dir).get("ed_version")
        if trained_on and ed.version and trained_on != ed.version:
            raise ApiError(
                409, "version_mismatch", f"run {run_dir.name!r} trained its team on ed "
                f"{trained_on}; this episode plays ed {ed.version}: start the episode with "
                f"the start_task tool and version={trained_on!r} (POST /step, tool "
                f"start_task, arguments task_id, seed, ruleset 'ed', version {trained_on!r})",
            )  # fmt: skip

    @staticmethod
    def _config(d: Path) -> dict[str, Any]:
        try:
            cfg = json.loads((d / "config.json").read_text())
        except (OSError, json.JSONDecodeError):
            return {}
        return cfg if isinstance(cfg, dict) else {}


# -- requests -------------------------------------------------------------------------


class AdvanceRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    session_id: StrictStr
    players: dict[StrictStr, StrictStr] = {}
    until: StrictStr = "human"
    run: StrictStr | None = None
    pass_turn: StrictBool = False
    """A human role that queued nothing ENDs its turn in the first sub-step."""


class CompareRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    session_id: StrictStr
    run: StrictStr | None = None


# -- the routes -----------------------------------------------------------------------


class Console:
    """The console's state: teammates per session, the run catalog, the model cache."""

    def __init__(self, service: Any, results_root: Path, factory: TeammateFactory) -> None:
        self.service = service
        self.runs = RunCatalog(results_root)
        self.factory = factory
        self.teams: dict[str, Teammates] = {}
        self._lock = threading.Lock()

    def _prune(self) -> None:
        with self._lock:
            for sid in [s for s in self.teams if s not in self.service.store]:
                del self.teams[sid]

    def _ed(self, session: Any) -> EdToolSession:
        obj = session.obj
        ed = getattr(obj, "ed", obj)
        if not isinstance(ed, EdToolSession) or getattr(obj, "active", ed) is not ed:
            raise ApiError(
                409, "wrong_ruleset", "the console plays ed episodes: start one with POST "
                '/reset {"task_id": ..., "seed": ..., "ruleset": "ed"}',
            )  # fmt: skip
        return ed

    def advance(self, req: AdvanceRequest) -> dict[str, Any]:
        self._prune()
        try:
            players = parse_players(req.players)
            with self.service.store.use(req.session_id) as session:
                ed = self._ed(session)
                ed._active()  # no task yet: 409 no_active_task
                env = ed.env
                run_dir = self.runs.resolve(req.run) if req.run else None
                if run_dir is not None and TRAINED in players.values():
                    self.runs.check_version(run_dir, ed)
                team = self.teams.get(req.session_id)
                if team is None or (team.env, team.players, team.run_dir) != (
                    env,
                    players,
                    run_dir,
                ):
                    policies = self.factory.build(env, players, env.episode_seed, run_dir)
                    team = Teammates(env, players, run_dir, policies)
                    self.teams[req.session_id] = team
                return advance(ed, team, req.until, pass_turn=req.pass_turn)
        except ToolError as e:
            raise _api_error(e) from None

    def debrief(self, session_id: str) -> dict[str, Any]:
        try:
            with self.service.store.use(session_id) as session:
                ed = self._ed(session)
                return {"patients": debrief(ed)}
        except ToolError as e:
            raise _api_error(e) from None

    def compare(self, req: CompareRequest) -> dict[str, Any]:
        try:
            run_dir = self.runs.resolve(req.run) if req.run else None
            if run_dir is not None:  # before loading the modules (outside the session lock)
                with self.service.store.use(req.session_id) as session:
                    self.runs.check_version(run_dir, self._ed(session))
            trained = self.factory.trained(run_dir) if run_dir else None
            with self.service.store.use(req.session_id) as session:
                return reference_teams(self._ed(session), trained)
        except ToolError as e:
            raise _api_error(e) from None

    def options(self) -> dict[str, Any]:
        return {
            "tasks": task_names(),
            "roles": list(AGENTS),
            "players": {
                k: {
                    "label": p.label,
                    "description": p.description,
                    "whole_team": p.whole_team,
                    "needs_run": p.needs_run,
                }
                for k, p in PLAYERS.items()
            },  # fmt: skip
            "human": HUMAN,
            "trained": TRAINED,
            "until": list(UNTIL),
            "runs": self.runs.list(),
            "results_root": str(self.runs.root),
        }


def mount_console(
    app: FastAPI, service: Any, results_root: Path | None = None,
    factory: TeammateFactory | None = None,
) -> Console:  # fmt: skip
    """Serve the console on ``app``: the page at ``/``, its files under ``/console/``,
    its routes under ``/console/api/``. ``results_root`` defaults to
    ``$EDMARL_RESULTS_ROOT`` or ``./runs``."""
    root = results_root or Path(os.environ.get(RESULTS_ROOT_ENV, DEFAULT_RESULTS_ROOT))
    console = Console(service, root, factory or TeammateFactory())
    app.state.console = console
    tags = ["console"]

    @app.get("/", tags=tags, include_in_schema=False)
    async def index() -> FileResponse:
        return FileResponse(
            STATIC_DIR / "index.html",
            headers={"Content-Security-Policy": CSP, "Cache-Control": "no-store"},
        )

    @app.get("/console/api/options", tags=tags)
    async def options() -> Response:
        return _json(console.options())

    @app.post("/console/api/advance", tags=tags)
    async def advance_route(req: AdvanceRequest) -> Response:
        return _json(console.advance(req))

    @app.get("/console/api/debrief", tags=tags)
    async def debrief_route(session_id: str = Query(...)) -> Response:
        return _json(console.debrief(session_id))

    @app.post("/console/api/compare", tags=tags)
    async def compare_route(req: CompareRequest) -> Response:
        return _json(console.compare(req))

    @app.get("/console/api/runs", tags=tags)
    async def runs() -> Response:
        return _json({"results_root": str(console.runs.root), "runs": console.runs.list()})

    @app.get("/console/api/runs/{name}", tags=tags)
    async def run(name: str) -> Response:
        return _json(console.runs.summary(name))

    @app.get("/console/api/runs/{name}/files/{file}", tags=tags)
    async def run_file(name: str, file: str) -> FileResponse:
        return console.runs.file(name, file)

    app.mount("/console", StaticFiles(directory=STATIC_DIR), name="console")
    return console


__all__ = ["RUN_FILES", "Console", "RunCatalog", "mount_console"]
