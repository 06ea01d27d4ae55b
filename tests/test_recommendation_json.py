"""The JSON text `myeloma-kg recommend` prints is the standard library's indented JSON of the contract."""

from __future__ import annotations

import json
from pathlib import Path

from myeloma_kg.patient import PatientDocument, load_patient
from myeloma_kg.recommend import default_engine
from myeloma_kg.synth import generate

VIGNETTES = sorted((Path(__file__).parent / "end_to_end" / "vignettes").glob("*/patient.yaml"))


def test_to_json_is_the_indented_json_of_to_dict() -> None:
    docs = [load_patient(p) for p in VIGNETTES] + [PatientDocument.from_dict(d) for d in generate(20, seed=5)]
    recs, _ = default_engine().run(docs)
    for rec in recs:
        data = rec.to_dict()
        assert rec.to_json() == json.dumps(data, indent=2, ensure_ascii=False), rec.patient


def test_to_json_keeps_non_ascii_text_and_numbers() -> None:
    rec = default_engine().run([load_patient(VIGNETTES[0])])[0][0]
    rec.disagreements = [{"note": "≥ 2 lignes, β₂-microglobuline", "hazardRatio": 0.56, "n": 3}]
    text = rec.to_json()
    assert "≥ 2 lignes, β₂-microglobuline" in text and json.loads(text)["disagreements"][0]["hazardRatio"] == 0.56
    assert text == json.dumps(rec.to_dict(), indent=2, ensure_ascii=False)
