"""Model answer → legal action, validated against the action mask; failures are named
and counted so that a fallback policy can act and the metrics show how often it did.

* :func:`parse_queue` reads ``SERVE 3`` / ``WAIT`` (case-insensitive, inside prose, code
  fences or JSON such as ``{"action": "serve", "slot": 3}``); the first decision wins.
* :func:`parse_triage` reads ``CATEGORY n`` (or ``category: n``, ``MTS 2``) and
  ``Recommended intervention: <name>``; a missing intervention is reported, not fatal.
* ``ed`` roles: :func:`parse_ed_nurse` (a category for the patient being triaged),
  :func:`parse_serve_or_end` (``SERVE 3`` / ``END``, also ``WAIT`` / ``DONE``) and
  :func:`parse_pharmacist` (``PATIENT 3: salbutamol_nebuliser``, ``give aspirin to
  slot 2``, ``NONE``).

A :class:`Parsed` is ``ok``, ``unparsable`` (no decision found) or ``illegal`` (a
decision the mask forbids). :class:`FallbackCounter` keeps per-episode and total counts
by reason.
"""

from __future__ import annotations

import json
import re
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from envs.clinical.presentation import INTERVENTIONS, Drug, Intervention
from envs.ed import codec
from envs.ed.config import DRUGS, N_CATEGORIES, Role

OK, UNPARSABLE, ILLEGAL = "ok", "unparsable", "illegal"
REASONS = (OK, UNPARSABLE, ILLEGAL)


@dataclass(frozen=True)
class Parsed:
    action: Any
    """The decoded action (None unless ``reason == "ok"``; an illegal decision's raw value
    is kept in ``wanted``)."""
    reason: str
    wanted: Any = None

    @property
    def ok(self) -> bool:
        return self.reason == OK


# -- queue consultant ----------------------------------------------------------------------
# A number as written, sign and fraction included, so that "-1" or "2.7" is read whole and
# refused rather than read as 1 or 2. The separators before it exclude "-" for that reason.
_NUMBER = r"(-?\d+(?:\.\d+)?)"
_SEP = r"[^\w\-]{0,4}"
_SERVE = re.compile(
    r"\bserve(?:_patient)?\b" + _SEP + r"(?:(?:slot|patient|#|p)" + _SEP + ")?" + _NUMBER, re.I
)
_WAIT = re.compile(r"\bwait\b", re.I)
_JSON = re.compile(r"\{.*?\}", re.S)
_INT_TEXT = re.compile(r"-?\d+")


def _as_int(value: Any) -> int | Any:
    """``value`` as an int when it is one (an int, or a string of digits); else ``value``
    itself, which the callers refuse. Booleans and fractions are not slots."""
    if isinstance(value, bool):
        return value
    if isinstance(value, int):
        return value
    if isinstance(value, str) and _INT_TEXT.fullmatch(value.strip()):
        return int(value.strip())
    return value


def _number(text: str) -> int | str:
    """A regex capture of :data:`_NUMBER` → int, or the text itself when it is a fraction."""
    return int(text) if _INT_TEXT.fullmatch(text) else text


def _json_decision(text: str) -> tuple[str, Any] | None:
    for m in _JSON.finditer(text):
        try:
            obj = json.loads(m.group(0))
        except ValueError:
            continue
        if not isinstance(obj, dict):
            continue
        verb = str(obj.get("action") or obj.get("tool") or obj.get("name") or "").lower()
        slot = obj.get("slot", obj.get("patient"))
        if verb.startswith("wait"):
            return "wait", None
        if verb.startswith("serve") or slot is not None:
            return "serve", _as_int(slot)
    return None


def _legal_slot(action: Any, end: int) -> bool:
    """An int (not a bool) in ``0 .. end - 1``."""
    return isinstance(action, int) and not isinstance(action, bool) and 0 <= action < end


def parse_queue(text: str, mask: np.ndarray) -> Parsed:
    """``SERVE <slot>`` → slot, ``WAIT`` → the last action; checked against ``mask``."""
    mask = np.asarray(mask)
    wait_action = mask.shape[0] - 1
    found = _json_decision(text)
    if found is None:
        serve, wait = _SERVE.search(text), _WAIT.search(text)
        if serve and (not wait or serve.start() < wait.start()):
            found = ("serve", _number(serve.group(1)))
        elif wait:
            found = ("wait", None)
    if found is None:
        return Parsed(None, UNPARSABLE)
    action = wait_action if found[0] == "wait" else found[1]
    if not _legal_slot(action, wait_action + (found[0] == "wait")) or not mask[action]:
        return Parsed(None, ILLEGAL, wanted=action)
    return Parsed(int(action), OK)


# -- triage nurse --------------------------------------------------------------------------
_CATEGORY = re.compile(r"\b(?:category|cat|mts|triage)\b" + _SEP + _NUMBER, re.I)
_INTERVENTION = re.compile(
    r"(?<![a-z])(" + "|".join(i.value.replace("_", "[ _]") for i in INTERVENTIONS) + r")(?![a-z])",
    re.I,
)
_INTERVENTION_WORD = re.compile(r"intervention", re.I)


@dataclass(frozen=True)
class TriageAnswer:
    category: int
    intervention: Intervention | None


def parse_triage(text: str) -> Parsed:
    """Category 1..5 (required) and intervention (optional) of a triage answer."""
    m = _CATEGORY.search(text)
    if m is None:
        return Parsed(None, UNPARSABLE)
    category = _number(m.group(1))
    if not isinstance(category, int) or not 1 <= category <= N_CATEGORIES:
        return Parsed(None, ILLEGAL, wanted=category)
    # The intervention named after the word "intervention" wins; else the first named.
    words = list(_INTERVENTION_WORD.finditer(text))
    hit = _INTERVENTION.search(text, words[-1].end()) if words else None
    hit = hit or _INTERVENTION.search(text)
    intervention = Intervention(hit.group(1).lower().replace(" ", "_")) if hit else None
    return Parsed(TriageAnswer(category, intervention), OK)


# -- ed roles ------------------------------------------------------------------------------
def parse_ed_nurse(text: str, slot: int, mask: np.ndarray) -> Parsed:
    """A triage answer for patient ``slot`` → ``slot * 5 + category - 1`` (mask-checked)."""
    p = parse_triage(text)
    if not p.ok:
        return p
    action = codec.nurse_action(slot, p.action.category)
    mask = np.asarray(mask)
    if not 0 <= action < mask.shape[0] - 1 or not mask[action]:
        return Parsed(None, ILLEGAL, wanted=action)
    return Parsed(int(action), OK)


_END = re.compile(r"\b(?:end|wait|done|none)\b", re.I)


def parse_serve_or_end(text: str, mask: np.ndarray) -> Parsed:
    """``SERVE <slot>`` → slot, ``END`` (or ``WAIT``/``DONE``/``NONE``) → the last action;
    checked against ``mask``. The first decision wins."""
    mask = np.asarray(mask)
    end = mask.shape[0] - 1
    found = _json_decision(text)
    if found is None:
        serve, stop = _SERVE.search(text), _END.search(text)
        if serve and (not stop or serve.start() < stop.start()):
            found = ("serve", _number(serve.group(1)))
        elif stop:
            found = ("wait", None)
    if found is None:
        return Parsed(None, UNPARSABLE)
    action = end if found[0] == "wait" else found[1]
    if not _legal_slot(action, end + (found[0] == "wait")):
        return Parsed(None, ILLEGAL, wanted=action)
    if not mask[action]:
        return Parsed(None, ILLEGAL, wanted=action)
    return Parsed(int(action), OK)


_DRUG = re.compile(
    r"(?<![a-z])(" + "|".join(d.value.replace("_", "[ _]") for d in DRUGS) + r")(?![a-z])",
    re.I,
)
_SLOT = re.compile(r"\b(?:patient|slot|bed|#)\s*#?\s*" + _NUMBER, re.I)
_NONE = re.compile(r"\b(?:none|no drug|nothing|end)\b", re.I)


def parse_pharmacist(text: str, mask: np.ndarray) -> Parsed:
    """``PATIENT <slot>: <drug>`` (a slot and a drug in any order, ``give <drug> to
    patient <slot>``) → ``slot * N_DRUGS + drug``; ``NONE`` → the last action."""
    mask = np.asarray(mask)
    end = mask.shape[0] - 1
    drug, slot, none = _DRUG.search(text), _SLOT.search(text), _NONE.search(text)
    if none and not (drug and slot and min(drug.start(), slot.start()) < none.start()):
        return Parsed(end, OK)
    if not (drug and slot):
        return Parsed(None, UNPARSABLE)
    d = DRUGS.index(Drug(drug.group(1).lower().replace(" ", "_")))
    s = _number(slot.group(1))
    if not _legal_slot(s, codec.slots_of(Role.PHARMACIST, end + 1)):
        return Parsed(None, ILLEGAL, wanted=s)
    action = codec.pharmacist_action(s, d)
    if not mask[action]:
        return Parsed(None, ILLEGAL, wanted=action)
    return Parsed(int(action), OK)


# -- counting ------------------------------------------------------------------------------
@dataclass
class FallbackCounter:
    """Decisions by source and fallback reason, for the episode and in total."""

    decisions: int = 0
    episode_decisions: int = 0
    episode_fallbacks: int = 0
    total: Counter = field(default_factory=Counter)

    def record(self, reason: str) -> None:
        if reason not in REASONS:
            raise ValueError(f"unknown reason {reason!r}")
        self.decisions += 1
        self.episode_decisions += 1
        self.total[reason] += 1
        self.episode_fallbacks += reason != OK

    def new_episode(self) -> None:
        self.episode_decisions = 0
        self.episode_fallbacks = 0

    @property
    def fallbacks(self) -> int:
        return self.decisions - self.total[OK]

    def as_dict(self) -> Mapping[str, int]:
        return {"decisions": self.decisions, "fallbacks": self.fallbacks,
                **{r: self.total[r] for r in REASONS}}  # fmt: skip


__all__ = [
    "ILLEGAL",
    "OK",
    "UNPARSABLE",
    "FallbackCounter",
    "Parsed",
    "TriageAnswer",
    "parse_ed_nurse",
    "parse_pharmacist",
    "parse_queue",
    "parse_serve_or_end",
    "parse_triage",
]
