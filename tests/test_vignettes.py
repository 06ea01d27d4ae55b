"""Every vignette of the clinical reference runs end to end and its Expected lines hold."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from expectations import check_recommendation
from myeloma_kg.recommend import recommend

VIGNETTES = sorted((Path(__file__).parent / "end_to_end" / "vignettes").glob("*/expected.yaml"))


@pytest.mark.parametrize("expected_path", VIGNETTES, ids=[p.parent.name for p in VIGNETTES])
def test_vignette(expected_path: Path, engine) -> None:
    expected = yaml.safe_load(expected_path.read_text())
    patient = expected_path.parent / "patient.yaml"
    problems = []
    main_profile = expected.get("profile", "default")
    rec = recommend(patient, main_profile, engine=engine)
    problems += check_recommendation(rec, expected)
    for profile, block in (expected.get("profiles") or {}).items():
        rec_p = recommend(patient, profile, engine=engine)
        problems += [f"[{profile}] {p}" for p in check_recommendation(rec_p, block)]
    assert not problems, "\n".join(problems)


@pytest.mark.parametrize("expected_path", VIGNETTES, ids=[p.parent.name for p in VIGNETTES])
def test_vignette_patient_validates(expected_path: Path) -> None:
    from myeloma_kg.validate import validate

    report = validate(expected_path.parent / "patient.yaml")
    assert report.conforms, "\n".join(str(v) for v in report.violations)
