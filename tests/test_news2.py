"""NEWS2 against the RCP (2017) chart: every band edge and worked examples by hand."""

from __future__ import annotations

import pytest

from envs.clinical import AVPU, ClinicalRisk, news2, news2_score

NORMAL = {"rr": 16, "spo2": 97, "sbp": 120, "hr": 70, "avpu": "A", "temp": 37.0}


def _only(**changes):
    return news2(**{**NORMAL, **changes})


@pytest.mark.parametrize(
    ("param", "value", "points"),
    [
        ("rr", 8, 3), ("rr", 9, 1), ("rr", 11, 1), ("rr", 12, 0), ("rr", 20, 0), ("rr", 21, 2),
        ("rr", 24, 2), ("rr", 25, 3),
        ("spo2", 91, 3), ("spo2", 92, 2), ("spo2", 93, 2), ("spo2", 94, 1), ("spo2", 95, 1),
        ("spo2", 96, 0),
        ("sbp", 90, 3), ("sbp", 91, 2), ("sbp", 100, 2), ("sbp", 101, 1), ("sbp", 110, 1),
        ("sbp", 111, 0), ("sbp", 219, 0), ("sbp", 220, 3),
        ("hr", 40, 3), ("hr", 41, 1), ("hr", 50, 1), ("hr", 51, 0), ("hr", 90, 0), ("hr", 91, 1),
        ("hr", 110, 1), ("hr", 111, 2), ("hr", 130, 2), ("hr", 131, 3),
        ("temp", 35.0, 3), ("temp", 35.1, 1), ("temp", 36.0, 1), ("temp", 36.1, 0),
        ("temp", 38.0, 0), ("temp", 38.1, 1), ("temp", 39.0, 1), ("temp", 39.1, 2),
    ],
)  # fmt: skip
def test_every_band_edge(param, value, points):
    result = _only(**{param: value})
    assert result.subscore(param) == points
    assert result.total == points  # every other parameter of NORMAL scores 0


@pytest.mark.parametrize("avpu", ["C", "V", "P", "U", AVPU.CONFUSED, "confused"])
def test_new_confusion_or_worse_scores_3(avpu):
    assert _only(avpu=avpu).subscore("consciousness") == 3


def test_worked_example_high_risk():
    # RR 24 (2) + SpO2 93 on air (2) + SBP 105 (1) + pulse 115 (2) + alert (0) + 38.5 C (1)
    r = news2(rr=24, spo2=93, sbp=105, hr=115, avpu="A", temp=38.5)
    assert r.subscores == (2, 2, 0, 1, 2, 0, 1)
    assert r.total == 8 and r.risk is ClinicalRisk.HIGH and not r.red_score


def test_worked_example_on_oxygen_and_confused():
    # RR 10 (1), SpO2 94 (1), oxygen (2), SBP 95 (2), pulse 45 (1), new confusion (3), 35.5 (1)
    r = news2(rr=10, spo2=94, sbp=95, hr=45, avpu="C", temp=35.5, on_oxygen=True)
    assert r.subscores == (1, 1, 2, 2, 1, 3, 1)
    assert r.total == 11 and r.red_score


def test_clinical_risk_bands():
    assert _only().risk is ClinicalRisk.LOW and _only().total == 0
    single_red = _only(rr=8)
    assert single_red.total == 3 and single_red.risk is ClinicalRisk.LOW_MEDIUM
    medium = news2(rr=22, spo2=95, sbp=120, hr=95, avpu="A", temp=38.2)  # 2 + 1 + 1 + 1
    assert medium.total == 5 and medium.risk is ClinicalRisk.MEDIUM
    assert _only(rr=24, hr=115, spo2=93).total == 6  # 2 + 2 + 2, still medium
    assert _only(rr=24, hr=115, spo2=93).risk is ClinicalRisk.MEDIUM


@pytest.mark.parametrize(
    ("spo2", "on_oxygen", "points"),
    [(83, False, 3), (84, False, 2), (85, False, 2), (86, False, 1), (87, False, 1),
     (88, False, 0), (92, False, 0), (97, False, 0),  # on air: >= 93 scores 0
     (92, True, 0), (93, True, 1), (94, True, 1), (95, True, 2), (96, True, 2), (97, True, 3)],
)  # fmt: skip
def test_spo2_scale_2(spo2, on_oxygen, points):
    r = news2(**{**NORMAL, "spo2": spo2}, on_oxygen=on_oxygen, spo2_scale=2)
    assert r.subscore("spo2") == points
    assert r.subscore("oxygen") == (2 if on_oxygen else 0)


def test_missing_parameters():
    with pytest.raises(ValueError, match="missing: spo2, temp"):
        news2_score(rr=16, spo2=None, sbp=120, hr=70, avpu="A", temp=None)
    partial = news2_score(rr=25, spo2=None, sbp=120, hr=70, avpu="A", temp=None,
                          allow_missing=True)  # fmt: skip
    assert partial == 3
    r = news2(rr=None, spo2=None, sbp=None, hr=None, avpu=None, temp=None)
    assert r.total == 0 and not r.complete and len(r.missing) == 6


def test_fractional_values_band_by_upper_limits():
    assert _only(rr=20.5).subscore("rr") == 2
    assert _only(temp=38.05).subscore("temp") == 1
    assert _only(hr=90.4).subscore("hr") == 1


def test_bad_scale_rejected():
    with pytest.raises(ValueError):
        news2(**NORMAL, spo2_scale=3)
