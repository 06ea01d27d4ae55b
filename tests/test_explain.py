"""explain: only the statements that can act on the regimen, with every condition and R12 bound checked."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from myeloma_kg.explain import explain

CASE = Path(__file__).parent / "cases" / "R19" / "anti-cd38-refractory-first-relapse.yaml"


@pytest.fixture(scope="module")
def patient() -> dict:
    return yaml.safe_load(CASE.read_text())["patient"]


def _statements(ex) -> dict[str, dict]:
    return {s["statement"]: s for s in ex.to_dict()["statements"]}


def test_statements_about_other_content_are_not_listed(patient: dict) -> None:
    # KPd has no lenalidomide, venetoclax or anti-CD38, and is a triplet: those constraints cannot touch it.
    listed = _statements(explain(patient, "kpd"))
    for unrelated in ("R17-lenalidomide-refractory", "R33-venetoclax", "R19-anti-cd38-refractory", "R55-single-agent"):
        assert not any(name.startswith(unrelated) for name in listed), sorted(listed)
    assert "R19-prefer-two-new-drugs" in listed


def test_new_drug_bounds_are_conditions(patient: dict) -> None:
    ex = explain(patient, "kpd")
    assert ex.status == "preferred"
    listed = _statements(ex)
    raise_ = listed["R19-prefer-two-new-drugs"]
    assert raise_["applies"]
    assert {"role": "bound", "situation": "new drugs 2, needs at least 2 (R12)", "holds": True} in raise_["conditions"]
    # R22's cap: the situation fails (first relapse) and so does the bound (2 new drugs is not fewer than 2)
    cap = listed["R22-two-new-drugs"]
    assert not cap["applies"]
    assert {"role": "bound", "situation": "new drugs 2, needs fewer than 2 (R12)", "holds": False} in cap["conditions"]


def test_anti_cd38_cap_applies_to_dpd(patient: dict) -> None:
    ex = explain(patient, "dpd")
    assert ex.status == "not-preferred"
    cap = _statements(ex)["R19-anti-cd38-refractory"]
    assert cap["applies"]
    assert {"role": "bound", "situation": "new drugs 1, needs fewer than 2 (R12)", "holds": True} in cap["conditions"]
    assert "R19-prefer-two-new-drugs" not in _statements(ex) or not _statements(ex)["R19-prefer-two-new-drugs"]["applies"]
