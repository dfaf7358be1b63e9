"""National Early Warning Score 2 (Royal College of Physicians, 2017), exactly.

Scoring bands (chart of the RCP NEWS2 report, 2017):

===================  =====  ======  =======  =========  =======  =======  =====
parameter              3      2       1        0          1        2        3
===================  =====  ======  =======  =========  =======  =======  =====
respiration rate      ≤8             9–11     12–20               21–24    ≥25
SpO2 scale 1          ≤91    92–93   94–95    ≥96
SpO2 scale 2 †        ≤83    84–85   86–87    88–92,     93–94    95–96    ≥97
                                              ≥93 on air  on O2    on O2    on O2
air or oxygen                oxygen           air
systolic BP           ≤90    91–100  101–110  111–219                       ≥220
pulse                 ≤40            41–50    51–90      91–110   111–130  ≥131
consciousness                                 alert                         CVPU
temperature (°C)      ≤35.0          35.1–36  36.1–38.0  38.1–39  ≥39.1
===================  =====  ======  =======  =========  =======  =======  =====

† scale 2 only for patients with hypercapnic respiratory failure and a prescribed
target of 88–92 %, on a clinician's decision.

Clinical response (aggregate): 0–4 low; a single parameter scoring 3 ("red score")
low–medium, urgent ward-based response; 5–6 medium, urgent response; ≥7 high,
emergency response.

Non-integer values (real charts) are banded by the same upper limits, so 20.5
breaths/min scores as 21–24. Missing parameters score 0 and are listed in
:attr:`News2.missing`, so a partial chart gives a lower bound, never a guess.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum
from typing import Any

from envs.clinical.presentation import AVPU, Presentation

# (inclusive upper limit, points) bands, lowest first; the last band is open-ended.
_Bands = tuple[tuple[float, int], ...]
RR_BANDS: _Bands = ((8, 3), (11, 1), (20, 0), (24, 2), (float("inf"), 3))
SPO2_SCALE1_BANDS: _Bands = ((91, 3), (93, 2), (95, 1), (float("inf"), 0))
SPO2_SCALE2_AIR_BANDS: _Bands = ((83, 3), (85, 2), (87, 1), (float("inf"), 0))
SPO2_SCALE2_OXYGEN_BANDS: _Bands = (
    (83, 3), (85, 2), (87, 1), (92, 0), (94, 1), (96, 2), (float("inf"), 3),
)  # fmt: skip
SBP_BANDS: _Bands = ((90, 3), (100, 2), (110, 1), (219, 0), (float("inf"), 3))
HR_BANDS: _Bands = ((40, 3), (50, 1), (90, 0), (110, 1), (130, 2), (float("inf"), 3))
TEMP_BANDS: _Bands = ((35.0, 3), (36.0, 1), (38.0, 0), (39.0, 1), (float("inf"), 2))
OXYGEN_POINTS = 2
CONSCIOUSNESS_POINTS = 3  # new confusion, voice, pain or unresponsive

RED_SCORE = 3
MEDIUM_THRESHOLD = 5
HIGH_THRESHOLD = 7
PARAMETERS = ("rr", "spo2", "oxygen", "sbp", "hr", "consciousness", "temp")


class ClinicalRisk(str, Enum):
    LOW = "low"
    LOW_MEDIUM = "low-medium"
    MEDIUM = "medium"
    HIGH = "high"


def _band(value: float, bands: _Bands) -> int:
    for upper, points in bands:
        if value <= upper:
            return points
    raise AssertionError("bands are open-ended")  # pragma: no cover


def _avpu_points(avpu: AVPU | str) -> int:
    return 0 if AVPU(avpu) is AVPU.ALERT else CONSCIOUSNESS_POINTS


@dataclass(frozen=True, slots=True)
class News2:
    """A NEWS2 breakdown: ``subscores`` in :data:`PARAMETERS` order."""

    subscores: tuple[int, ...]
    missing: tuple[str, ...] = ()

    @property
    def total(self) -> int:
        return sum(self.subscores)

    @property
    def red_score(self) -> bool:
        """Any single parameter scoring 3."""
        return max(self.subscores) >= RED_SCORE

    @property
    def complete(self) -> bool:
        return not self.missing

    @property
    def risk(self) -> ClinicalRisk:
        if self.total >= HIGH_THRESHOLD:
            return ClinicalRisk.HIGH
        if self.total >= MEDIUM_THRESHOLD:
            return ClinicalRisk.MEDIUM
        return ClinicalRisk.LOW_MEDIUM if self.red_score else ClinicalRisk.LOW

    def subscore(self, parameter: str) -> int:
        return self.subscores[PARAMETERS.index(parameter)]


def news2(
    *,
    rr: float | None,
    spo2: float | None,
    sbp: float | None,
    hr: float | None,
    avpu: AVPU | str | None,
    temp: float | None,
    on_oxygen: bool = False,
    spo2_scale: int = 1,
) -> News2:
    """The full NEWS2 breakdown; ``None`` parameters score 0 and are reported missing."""
    if spo2_scale not in (1, 2):
        raise ValueError(f"spo2_scale must be 1 or 2, got {spo2_scale!r}")
    if spo2_scale == 1:
        spo2_bands = SPO2_SCALE1_BANDS
    else:
        spo2_bands = SPO2_SCALE2_OXYGEN_BANDS if on_oxygen else SPO2_SCALE2_AIR_BANDS
    values = {"rr": rr, "spo2": spo2, "sbp": sbp, "hr": hr, "temp": temp}
    bands = {"rr": RR_BANDS, "spo2": spo2_bands, "sbp": SBP_BANDS, "hr": HR_BANDS,
             "temp": TEMP_BANDS}  # fmt: skip
    missing = [name for name in PARAMETERS if name in values and values[name] is None]
    if avpu is None:
        missing.append("consciousness")
    sub = {name: 0 if v is None else _band(float(v), bands[name]) for name, v in values.items()}
    sub["oxygen"] = OXYGEN_POINTS if on_oxygen else 0
    sub["consciousness"] = 0 if avpu is None else _avpu_points(avpu)
    order = [m for m in PARAMETERS if m in missing]
    return News2(tuple(sub[name] for name in PARAMETERS), tuple(order))


def news2_score(*, allow_missing: bool = False, **observations: Any) -> int:
    """The aggregate NEWS2 score of :func:`news2`'s keyword arguments. Raises
    ``ValueError`` on a missing parameter unless ``allow_missing`` (then missing
    parameters score 0: a lower bound)."""
    result = news2(**observations)
    if result.missing and not allow_missing:
        raise ValueError(f"NEWS2 needs every parameter; missing: {', '.join(result.missing)}")
    return result.total


def news2_of(p: Presentation, *, on_oxygen: bool = False, spo2_scale: int = 1) -> News2:
    """NEWS2 from a charted presentation (missing observations score 0)."""
    return news2(rr=p.rr, spo2=p.spo2, sbp=p.sbp, hr=p.hr, avpu=p.avpu, temp=p.temp,
                 on_oxygen=on_oxygen, spo2_scale=spo2_scale)  # fmt: skip
