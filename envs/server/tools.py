"""Tool registry: tool name → method of the session object + argument schema.

The server never hard-codes a tool. Every transport (HTTP ``/step``, WebSocket ``/ws``,
MCP ``/mcp``) looks the name up here, validates the arguments against the declared
schema (missing, unknown and wrongly typed arguments are refused *before* the session is
touched, so a bad call cannot corrupt an episode) and calls ``getattr(session, method)``.

The seven Queue Doctor tools of :class:`envs.tool_api.ToolSession` are registered in
:data:`DEFAULT_REGISTRY`. :data:`ED_REGISTRY` adds the multi-agent tools of the ``ed``
ruleset (:data:`ED_TOOLS`: ``triage_patient``, ``dispense_drug``, ``end_step``, each
restricted to ``rulesets={"ed"}``; ``serve_patient`` and ``get_queue_state`` serve both
rulesets), played by :class:`envs.ed_tool_api.EdToolSession`; :func:`registry_for` picks
the registry of a server's enabled rulesets. Another tool plugs in the same way::

    from envs.server.tools import DEFAULT_REGISTRY, Arg, ToolSpec

    DEFAULT_REGISTRY.register(ToolSpec(
        name="my_tool",
        description="What it does.",
        args=(Arg("patient_id", str, "Patient id, e.g. 'P003'."),),
        rulesets=frozenset({"ed"}),
        advances_time=False,
    ))

A spec whose method the session does not have answers 501 (``not_implemented``); a spec
restricted to rulesets answers 409 (``wrong_ruleset``) while another ruleset is active.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from envs.server.security import clip

_MISSING: Any = object()

_JSON_TYPE = {str: "string", int: "integer", float: "number", bool: "boolean", type(None): "null"}
MAX_STRING_CHARS = 256
"""Longest string argument accepted (ids, task and drug names are far shorter): a huge
string is refused before it reaches an engine or is echoed in an error."""
MAX_MESSAGE_CHARS = 2000
"""Error messages are cut to this length (a backstop: echoed values are clipped)."""


class ApiError(Exception):
    """A refused request: HTTP ``status``, machine-readable ``code``, human ``message``.

    ``extra`` holds additional JSON fields (e.g. ``argument`` or ``known_tools``)."""

    def __init__(self, status: int, code: str, message: str, **extra: Any) -> None:
        if len(message) > MAX_MESSAGE_CHARS:
            message = message[:MAX_MESSAGE_CHARS] + "… (message cut)"
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.extra = extra

    def as_dict(self) -> dict[str, Any]:
        return {"error": self.message, "code": self.code, **self.extra}


class UnknownToolError(ApiError):
    def __init__(self, name: object, known: tuple[str, ...]) -> None:
        super().__init__(
            404,
            "unknown_tool",
            f"unknown tool {clip(name)}; known tools: {', '.join(known)}",
            known_tools=list(known),
        )


class ArgumentError(ApiError):
    def __init__(self, tool: str, argument: str | None, message: str) -> None:
        super().__init__(422, "bad_argument", f"{tool}: {message}", argument=argument)


@dataclass(frozen=True)
class Arg:
    """One tool argument. ``types`` are the accepted JSON-decoded Python types."""

    name: str
    types: type | tuple[type, ...]
    description: str = ""
    default: Any = _MISSING

    @property
    def required(self) -> bool:
        return self.default is _MISSING

    @property
    def type_tuple(self) -> tuple[type, ...]:
        return self.types if isinstance(self.types, tuple) else (self.types,)

    def accepts(self, value: Any) -> bool:
        types = self.type_tuple
        # JSON true/false decode to bool, a subclass of int: never accept them as numbers.
        if isinstance(value, bool):
            return bool in types
        if isinstance(value, int) and float in types:
            return True
        return isinstance(value, types)

    def json_schema(self) -> dict[str, Any]:
        names = [_JSON_TYPE[t] for t in self.type_tuple]
        schema: dict[str, Any] = {"type": names[0] if len(names) == 1 else names}
        if str in self.type_tuple:
            schema["maxLength"] = MAX_STRING_CHARS
        if self.description:
            schema["description"] = self.description
        if not self.required:
            schema["default"] = self.default
        return schema


@dataclass(frozen=True)
class ToolSpec:
    """A tool as clients see it (name, description, arguments) and how it is called."""

    name: str
    description: str
    args: tuple[Arg, ...] = ()
    method: str = ""
    """Session attribute to call; defaults to ``name``."""
    rulesets: frozenset[str] | None = None
    """Rulesets the tool is valid in (None: any, including before a task starts)."""
    advances_time: bool = False
    extra_schema: Mapping[str, Any] = field(default_factory=dict)

    @property
    def target(self) -> str:
        return self.method or self.name

    def input_schema(self) -> dict[str, Any]:
        return {
            "type": "object",
            "properties": {a.name: a.json_schema() for a in self.args},
            "required": [a.name for a in self.args if a.required],
            "additionalProperties": False,
        }

    def describe(self) -> dict[str, Any]:
        """MCP ``tools/list`` entry; edmarl's own facts go in ``_meta`` as MCP allows."""
        meta: dict[str, Any] = {"edmarl/advances_time": self.advances_time}
        if self.rulesets is not None:
            meta["edmarl/rulesets"] = sorted(self.rulesets)
        return {
            "name": self.name,
            "description": self.description,
            "inputSchema": self.input_schema(),
            "_meta": meta,
            **self.extra_schema,
        }

    def bind(self, arguments: Any) -> dict[str, Any]:
        """Validated keyword arguments; raises :class:`ArgumentError` naming the argument."""
        if arguments is None:
            arguments = {}
        if not isinstance(arguments, Mapping):
            raise ArgumentError(
                self.name, None, f"arguments must be a JSON object, got {type(arguments).__name__}"
            )
        known = {a.name for a in self.args}
        extra = sorted(str(k) for k in arguments if k not in known)
        if extra:
            takes = ", ".join(sorted(known)) if known else "no arguments"
            shown = "[" + ", ".join(clip(k, 40) for k in extra[:5]) + "]"
            raise ArgumentError(
                self.name, extra[0][:64], f"unexpected argument(s) {shown}; it takes {takes}"
            )
        kwargs: dict[str, Any] = {}
        for a in self.args:
            if a.name not in arguments:
                if a.required:
                    raise ArgumentError(self.name, a.name, f"missing required argument {a.name!r}")
                continue
            value = arguments[a.name]
            if not a.accepts(value):
                want = " or ".join(_JSON_TYPE[t] for t in a.type_tuple)
                raise ArgumentError(
                    self.name,
                    a.name,
                    f"argument {a.name!r} must be {want}, got {_json_type_name(value)} "
                    f"{clip(value)}",
                )
            if isinstance(value, str) and len(value) > MAX_STRING_CHARS:
                raise ArgumentError(
                    self.name,
                    a.name,
                    f"argument {a.name!r} is {len(value)} characters long; at most "
                    f"{MAX_STRING_CHARS}",
                )
            kwargs[a.name] = value
        return kwargs


def _json_type_name(value: Any) -> str:
    for t, name in _JSON_TYPE.items():
        if type(value) is t:
            return name
    return {list: "array", dict: "object"}.get(type(value), type(value).__name__)


class ToolRegistry:
    """Name → :class:`ToolSpec`; calls a tool on a session object after validation."""

    def __init__(self, specs: tuple[ToolSpec, ...] | list[ToolSpec] = ()) -> None:
        self._tools: dict[str, ToolSpec] = {}
        for spec in specs:
            self.register(spec)

    def register(self, spec: ToolSpec, *, replace: bool = False) -> ToolSpec:
        if spec.name in self._tools and not replace:
            raise ValueError(f"tool {spec.name!r} is already registered (pass replace=True)")
        self._tools[spec.name] = spec
        return spec

    def copy(self) -> ToolRegistry:
        return ToolRegistry(list(self._tools.values()))

    def names(self) -> tuple[str, ...]:
        return tuple(self._tools)

    def get(self, name: Any) -> ToolSpec:
        spec = self._tools.get(name) if isinstance(name, str) else None
        if spec is None:
            raise UnknownToolError(name, self.names())
        return spec

    def describe(self) -> list[dict[str, Any]]:
        return [spec.describe() for spec in self._tools.values()]

    def __contains__(self, name: object) -> bool:
        return name in self._tools

    def __iter__(self) -> Iterator[ToolSpec]:
        return iter(self._tools.values())

    def __len__(self) -> int:
        return len(self._tools)

    def call(self, session: Any, name: Any, arguments: Any = None) -> Any:
        """Validate and call. Engine errors (``envs.tool_api.ToolError``) propagate."""
        spec = self.get(name)
        kwargs = spec.bind(arguments)
        if spec.rulesets is not None:
            active = getattr(session, "ruleset", None)
            if active not in spec.rulesets:
                raise ApiError(
                    409,
                    "wrong_ruleset",
                    f"{spec.name} needs ruleset {' or '.join(sorted(spec.rulesets))}; "
                    f"active ruleset: {active or 'none (call start_task first)'}",
                )
        method = getattr(session, spec.target, None)
        if not callable(method):
            raise ApiError(
                501,
                "not_implemented",
                f"tool {spec.name!r} is registered but {type(session).__name__} does not "
                f"implement {spec.target}() yet",
            )
        return method(**kwargs)


_INT_OR_NULL = (int, type(None))

QUEUE_DOCTOR_TOOLS: tuple[ToolSpec, ...] = (
    ToolSpec(
        "list_tasks",
        "List all tasks with metadata (id, name, difficulty, steps, doctors, ICU beds, "
        "patients, description, Queue Doctor aliases).",
    ),
    ToolSpec(
        "start_task",
        "Start a new episode of a task (basic_triage, dynamic_queue, mass_casualty or the "
        "aliases task_1_easy, task_2_medium, task_3_hard). Returns the initial queue.",
        args=(
            Arg("task_id", str, "Task name or Queue Doctor alias."),
            Arg(
                "seed", _INT_OR_NULL, "Seed of the episode's perturbation; null = as written.", None
            ),
            Arg("ruleset", str, "Engine ruleset ('classic' = Queue Doctor's).", "classic"),
        ),
    ),
    ToolSpec(
        "get_queue_state",
        "Observe the queue: patients with reported severity, wait, condition, flags and "
        "whether each can be served now; resources; step; done. Does not advance time.",
    ),
    ToolSpec(
        "serve_patient",
        "Treat a waiting patient. Advances time by one step, except when resources block "
        "the serve (reward 0). An unknown id costs -0.1 and advances time.",
        args=(Arg("patient_id", str, "Patient id from the queue, e.g. 'P001'."),),
        advances_time=True,
    ),
    ToolSpec(
        "wait",
        "Skip a step. Penalised when servable patients are waiting. Advances time.",
        advances_time=True,
    ),
    ToolSpec(
        "finalize_episode",
        "Grade the episode (score in (0, 1)), with served details and missed emergencies.",
    ),
    ToolSpec(
        "get_current_state",
        "Session metadata: episode id, tool-call count, active task, finalized scores.",
    ),
)

DEFAULT_REGISTRY = ToolRegistry(QUEUE_DOCTOR_TOOLS)
"""The registry :func:`envs.server.app.create_app` serves unless given another."""

_ED_ONLY = frozenset({"ed"})
_PATIENT = Arg("patient_id", str, "Patient id from the queue, e.g. 'P001'.")

ED_TOOLS: tuple[ToolSpec, ...] = (
    ToolSpec(
        "triage_patient",
        "ed, triage nurse: queue an MTS category (1 immediate .. 5 non-urgent) for a "
        "waiting patient who is untriaged (or whose condition changed since triage). "
        "Applied by end_step(); one decision per role per sub-step.",
        args=(_PATIENT, Arg("category", int, "MTS category 1 (immediate) to 5 (non-urgent).")),
        rulesets=_ED_ONLY,
    ),
    ToolSpec(
        "dispense_drug",
        "ed, pharmacist: queue one dose of a drug for a triaged waiting patient (or one "
        "the nurse triages in this sub-step). An allergy or an unindicated high-alert "
        "drug harms the patient. Applied by end_step().",
        args=(
            _PATIENT,
            Arg("drug", str, "Drug name from the formulary, e.g. 'adrenaline', 'aspirin'."),
        ),
        rulesets=_ED_ONLY,
    ),
    ToolSpec(
        "end_step",
        "ed: apply the queued decisions (nurse, pharmacist, consultant) as one sub-step; "
        "a role that queued nothing ENDs its turn for this time step. Time advances once "
        "all three roles are done. Returns the team reward and the new state.",
        rulesets=_ED_ONLY,
        advances_time=True,
    ),
)
"""The ``ed`` ruleset's own tools (:class:`envs.ed_tool_api.EdToolSession`)."""

_SHARED_ED: tuple[ToolSpec, ...] = (
    ToolSpec(
        "start_task",
        "Start a new episode of a task (basic_triage, dynamic_queue, mass_casualty or the "
        "aliases task_1_easy, task_2_medium, task_3_hard; in ed also 'generated' and the "
        "suite scenarios of list_tasks). ruleset 'classic' (Queue Doctor's single agent) or "
        "'ed' (three roles); ed version 'v0' or 'v1' (null: v1 for suite scenarios, else v0).",
        args=(
            *QUEUE_DOCTOR_TOOLS[1].args,
            Arg(
                "version",
                (str, type(None)),
                "ed only: env version 'v0' or 'v1'; null = v1 for the suite scenarios, "
                "v0 for the fixed tasks and 'generated'.",
                None,
            ),
        ),
    ),
    ToolSpec(
        "get_queue_state",
        "Observe the queue (no true severity). classic: patients, resources, step, done. "
        "ed: each role's view (or only `role`'s), with what each role may do now. "
        "Does not advance time.",
        args=(
            Arg(
                "role",
                (str, type(None)),
                "ed only: triage_nurse, pharmacist or consultant; null = all three.",
                None,
            ),
        ),
    ),
    ToolSpec(
        "serve_patient",
        "classic: treat a waiting patient, advancing time by one step. ed, consultant: "
        "queue a serve of a servable waiting patient, applied by end_step().",
        args=(_PATIENT,),
        advances_time=True,
    ),
)


def _ed_tools() -> list[ToolSpec]:
    shared = {s.name: s for s in _SHARED_ED}
    return [shared.get(s.name, s) for s in QUEUE_DOCTOR_TOOLS] + list(ED_TOOLS)


ED_REGISTRY = ToolRegistry(_ed_tools())
"""Queue Doctor's tools (descriptions covering both rulesets, ``get_queue_state`` with
an optional ``role``) plus :data:`ED_TOOLS`: what a server with ``ed`` enabled serves."""


def registry_for(rulesets: tuple[str, ...] | frozenset[str]) -> ToolRegistry:
    """The registry of a server whose enabled rulesets are ``rulesets``."""
    from envs.rulesets import MULTI_AGENT_RULESETS

    # A team ruleset enabled: the role tools join Queue Doctor's seven.
    return ED_REGISTRY if any(r in MULTI_AGENT_RULESETS for r in rulesets) else DEFAULT_REGISTRY


__all__ = [
    "DEFAULT_REGISTRY",
    "ED_REGISTRY",
    "ED_TOOLS",
    "QUEUE_DOCTOR_TOOLS",
    "ApiError",
    "Arg",
    "ArgumentError",
    "ToolRegistry",
    "ToolSpec",
    "UnknownToolError",
    "registry_for",
]
