"""FHIR R4 / mCODE import (issue 7): each mapping, unknown drugs, no myeloma, round trip, two vignettes.

The Bundles are ``tests/fhir/*.json`` (built by ``tests/fhir/build_bundles.py``). Small variations are
made in memory from them.
"""

from __future__ import annotations

import copy
import json
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner
from expectations import check_recommendation

from myeloma_kg.errors import DataError
from myeloma_kg.fhir import (
    NOT_IN_FHIR,
    OPTIONAL_NOT_IN_FHIR,
    FhirBundleError,
    FhirImportError,
    LineRule,
    NoMyelomaConditionError,
    from_fhir,
)

FHIR_DIR = Path(__file__).parent / "fhir"
VIGNETTES = Path(__file__).parent / "end_to_end" / "vignettes"
RXNORM = "http://www.nlm.nih.gov/research/umls/rxnorm"
ATC = "http://www.whocc.no/atc"

#: What FHIR cannot carry for the mappings Bundle's patient, passed as import options.
MAP_OVERRIDES = {
    "frailty": "fit", "transplantEligible": False, "donorAvailable": False, "prefersOral": False,
    "neuropathyGrade": 0, "heartFailureNYHA": 0, "uncontrolledHypertension": False,
    "cardiovascularRiskFactors": False, "vteHighRisk": False, "extramedullaryDisease": False,
    "plasmaCellLeukemia": False, "relapse": {"tempo": "indolent"},
}


def bundle(name: str) -> dict:
    return json.loads((FHIR_DIR / f"{name}.json").read_text())


def resources(data: dict, kind: str) -> list[dict]:
    return [e["resource"] for e in data["entry"] if e["resource"]["resourceType"] == kind]


def statement(med: dict, start: str, end: str | None = None, status: str = "completed", pid: str = "fhir-unknown"):
    period = {"start": start, **({"end": end} if end else {})}
    return {"resource": {"resourceType": "MedicationStatement", "id": f"extra-{len(json.dumps(med))}-{start}",
                         "status": status, "subject": {"reference": f"Patient/{pid}"},
                         "medicationCodeableConcept": med, "effectivePeriod": period}}


def fields(notes) -> list[str]:
    return [n.field for n in notes]


@pytest.fixture(scope="module")
def mapped():
    return from_fhir(FHIR_DIR / "mappings.json")


# ------------------------------------------------------------------------------------------- Patient


def test_patient_id_and_age_at_assessment_date(mapped) -> None:
    doc = mapped.document
    assert doc["id"] == "fhir-map"
    assert doc["assessmentDate"] == "2026-03-01"  # the Bundle's timestamp
    assert doc["age"] == 67  # born 1958-07-01: 67 on 2026-03-01, 68 only from July
    assert from_fhir(FHIR_DIR / "mappings.json", assessment_date="2026-07-01").document["age"] == 68
    assert from_fhir(FHIR_DIR / "mappings.json", patient_id="pt-99").document["id"] == "pt-99"


def test_partial_birth_date_is_reported_as_approximate() -> None:
    data = bundle("mappings")
    resources(data, "Patient")[0]["birthDate"] = "1958"
    result = from_fhir(data)
    assert result.document["age"] == 68
    assert any(n.field == "age" and "partial birth date" in n.message for n in result.report.inferred)


def test_several_patients_need_an_id() -> None:
    data = bundle("v08")
    data["entry"].append({"resource": {"resourceType": "Patient", "id": "other", "birthDate": "1950-01-01"}})
    with pytest.raises(FhirImportError, match="2 Patient resources"):
        from_fhir(data)
    assert from_fhir(data, patient_id="v08").document["age"] == 67


def test_resources_of_another_patient_are_left_out() -> None:
    data = bundle("v08")
    other = statement({"coding": [{"system": RXNORM, "code": "1302966"}]}, "2025-01-01", pid="someone-else")
    data["entry"].append(other)
    result = from_fhir(data)
    assert all(d["drug"] != "carfilzomib" for line in result.document["lines"] for d in line["drugs"])
    assert any("not the imported patient" in n.message for n in result.report.warnings)


# ------------------------------------------------------------------------------------------- Condition


def test_myeloma_condition_by_icd10_and_by_snomed(mapped) -> None:
    assert any("multiple myeloma Condition" in n.message and "C90.02" in (n.code or "") for n in mapped.report.mapped)
    v08 = from_fhir(FHIR_DIR / "v08.json")
    assert any("multiple myeloma Condition" in n.message and "109989006" in (n.code or "") for n in v08.report.mapped)


def test_no_myeloma_condition_is_a_clear_typed_error() -> None:
    with pytest.raises(NoMyelomaConditionError) as info:
        from_fhir(FHIR_DIR / "no-myeloma.json")
    assert isinstance(info.value, DataError)
    message = str(info.value)
    assert "no multiple myeloma Condition" in message and "C90.0" in message and "109989006" in message
    assert "Malignant neoplasm of breast" in message  # says what it found instead
    assert info.value.to_dict()["kind"] == "no-myeloma-condition"


def test_extra_snomed_descendants_can_be_accepted() -> None:
    data = bundle("no-myeloma")
    resources(data, "Condition")[0]["code"] = {"coding": [{"system": "http://snomed.info/sct", "code": "123456"}]}
    with pytest.raises(NoMyelomaConditionError):
        from_fhir(data)
    result = from_fhir(data, myeloma_snomed_codes={"123456"})
    assert result.document["lines"] == []
    assert "lines" in fields(result.report.missing)


def test_plasma_cell_leukaemia_condition_sets_the_flag() -> None:
    data = bundle("unknown-drug")
    data["entry"].append({"resource": {"resourceType": "Condition", "subject": {"reference": "Patient/fhir-unknown"},
                                       "code": {"coding": [{"system": "http://hl7.org/fhir/sid/icd-10-cm",
                                                            "code": "C90.10"}]}}})
    assert from_fhir(data).document["plasmaCellLeukemia"] is True
    assert "plasmaCellLeukemia" not in from_fhir(FHIR_DIR / "unknown-drug.json").document


# ------------------------------------------------------------------------------------------- drugs


def test_drugs_by_code_through_every_medication_resource(mapped) -> None:
    line1, line2 = mapped.document["lines"]
    assert {d["drug"] for d in line1["drugs"]} == {"bortezomib", "lenalidomide", "dexamethasone"}
    notes = {n.message.split(" ")[0]: n for n in mapped.report.mapped if n.field == "lines[0].drugs"}
    assert "RxNorm 358258" in notes["bortezomib"].message  # Medication resource by reference
    assert "ATC H02AB02" in notes["dexamethasone"].message  # contained Medication
    assert notes["lenalidomide"].source == "MedicationRequest/medi-4"
    assert {d["drug"] for d in line2["drugs"]} == {"daratumumab", "carfilzomib", "dexamethasone"}
    dara = next(d for d in line2["drugs"] if d["drug"] == "daratumumab")
    assert dara == {"drug": "daratumumab", "start": "2023-09-15", "end": "2023-11-03"}  # 5 administrations merged
    v08 = from_fhir(FHIR_DIR / "v08.json").document
    assert {"drug": "cyclophosphamide", "start": "2024-11-18", "end": "2025-06-23"} in v08["lines"][1]["drugs"]


def test_every_knowledge_base_code_is_recognised() -> None:
    """Codes come from the knowledge base: each drug's RxNorm CUI (and unshared ATC code) finds it."""
    from myeloma_kg.kb import KnowledgeBase

    kb = KnowledgeBase.load()
    atc_counts: dict[str, int] = {}
    for drug in kb.drugs():
        if drug.atc_code:
            atc_counts[drug.atc_code] = atc_counts.get(drug.atc_code, 0) + 1
    base = bundle("unknown-drug")
    base["entry"] = [e for e in base["entry"] if e["resource"]["resourceType"] != "MedicationStatement"]
    checked = 0
    for drug in kb.drugs():
        for system, code in ((RXNORM, drug.rxnorm_cui), (ATC, drug.atc_code)):
            if not code or (system == ATC and atc_counts[code] > 1):
                continue
            data = copy.deepcopy(base)
            data["entry"].append(statement({"coding": [{"system": system, "code": code}]}, "2023-01-01", "2024-04-01"))
            line = from_fhir(data).document["lines"][0]
            assert [d["drug"] for d in line["drugs"]] == [drug.id], (system, code)
            checked += 1
    assert checked >= 40


def test_drug_by_name_when_the_code_is_not_the_knowledge_base_s(mapped) -> None:
    note = next(n for n in mapped.report.inferred if "lenalidomide recognised by name" in n.message)
    assert note.code.endswith("|0000001") and note.text == "Lenalidomide 25 MG Oral Capsule"
    v08 = from_fhir(FHIR_DIR / "v08.json")  # "Dexamethasone 40 mg tablet", no code at all
    assert "dexamethasone" in [d["drug"] for d in v08.document["lines"][0]["drugs"]]


def test_unknown_drug_code_is_a_warning_with_code_and_text() -> None:
    result = from_fhir(FHIR_DIR / "unknown-drug.json")
    warning = next(n for n in result.report.warnings if "not recognised" in n.message)
    assert warning.code == f"{RXNORM}|0000002"
    assert warning.text == "Investigational agent XYZ-123"
    assert warning.source and warning.source.startswith("MedicationStatement/")
    assert [d["drug"] for d in result.document["lines"][0]["drugs"]] == ["lenalidomide", "dexamethasone"]
    mapped_warning = next(n for n in from_fhir(FHIR_DIR / "mappings.json").report.warnings)
    assert mapped_warning.code == f"{RXNORM}|1191" and mapped_warning.text == "Aspirin 100 mg"


def test_shared_atc_code_is_settled_by_name_or_reported() -> None:
    shared = {"coding": [{"system": ATC, "code": "L01DB01"}]}
    data = bundle("unknown-drug")
    data["entry"].append(statement({**shared, "text": "Pegylated liposomal doxorubicin"}, "2023-01-01", "2024-04-01"))
    drugs = [d["drug"] for d in from_fhir(data).document["lines"][0]["drugs"]]
    assert "pegylated_liposomal_doxorubicin" in drugs and "doxorubicin" not in drugs
    data = bundle("unknown-drug")
    data["entry"].append(statement(shared, "2023-01-01", "2024-04-01"))
    result = from_fhir(data)
    assert any("L01DB01 is shared" in n.message for n in result.report.warnings)
    assert not any("doxorubicin" in d["drug"] for d in result.document["lines"][0]["drugs"])


def test_ignored_statuses_are_reported_not_dropped_silently(mapped) -> None:
    assert any("entered-in-error" in n.message for n in mapped.report.ignored)
    assert any("Body weight" == n.text for n in mapped.report.ignored)


# ------------------------------------------------------------------------------------------- lines


def test_line_grouping_rule() -> None:
    result = from_fhir(FHIR_DIR / "lines.json")
    lines = result.document["lines"]
    assert [line.get("regimen") for line in lines] == ["vrd", "dara_mono", "kd"]
    line1 = lines[0]
    # dexamethasone started 14 days after the line: within the 28-day window
    assert {"drug": "dexamethasone", "start": "2020-01-15", "end": "2020-04-20"} in line1["drugs"]
    # conditioning melphalan is implied by the autologous transplant and not listed
    assert "melphalan" not in [d["drug"] for d in line1["drugs"]]
    assert line1["transplant"] == {"kind": "autologous", "date": "2020-06-01"}
    assert line1["maintenance"] == {"drugs": [{"drug": "lenalidomide", "start": "2020-07-15", "end": "2021-02-20"}],
                                    "start": "2020-07-15", "end": "2021-02-20"}
    assert "progression" not in line1
    # a new drug long after the line's start and the transplant opens a line without a progression
    assert lines[1]["start"] == "2021-03-01" and lines[1]["progression"] == "2022-01-02"
    # a progression always opens a new line
    assert lines[2]["start"] == "2022-01-20"
    inferred = " | ".join(n.message for n in result.report.inferred)
    assert "conditioning of the transplant of 2020-06-01" in inferred
    assert "more than 28 days after the line's start" in inferred
    assert "after the progression of 2022-01-02" in inferred


def test_line_window_is_configurable() -> None:
    narrow = from_fhir(FHIR_DIR / "lines.json", line_rule=LineRule(window_days=7)).document["lines"]
    assert len(narrow) == 4
    assert narrow[1]["drugs"][0]["drug"] == "dexamethasone"  # 14 days after: now a new line
    short = from_fhir(FHIR_DIR / "lines.json", line_rule=LineRule(maintenance_days=30)).document["lines"]
    assert [line.get("regimen") for line in short] == ["vrd", "dara_mono", "kd"]  # lenalidomide: a continuation


def test_progression_on_therapy_and_best_response(mapped) -> None:
    line1, line2 = mapped.document["lines"]
    assert line1["progression"] == "2023-09-01" and line1["progressionOnTherapy"] is False
    assert line1["bestResponse"] == "CR" and line1["stoppedForToxicity"] == ["lenalidomide"]
    assert line2["progression"] == "2026-01-20" and line2["progressionOnTherapy"] is True  # carfilzomib ongoing
    assert "end" not in line2 and line2["bestResponse"] == "VGPR"
    assert any("2026-02-01" in n.message and "later progression" in n.message for n in mapped.report.ignored)


def test_missing_response_is_reported_and_can_be_given() -> None:
    result = from_fhir(FHIR_DIR / "unknown-drug.json")
    assert "lines[0].bestResponse" in fields(result.report.missing)
    given = from_fhir(FHIR_DIR / "unknown-drug.json", line_overrides={1: {"bestResponse": "PR"}})
    assert given.document["lines"][0]["bestResponse"] == "PR"


# ------------------------------------------------------------------------------------------- Procedure


def test_transplant_kind_from_code_or_text() -> None:
    data = bundle("lines")
    proc = resources(data, "Procedure")[0]
    proc["code"] = {"coding": [{"system": "http://snomed.info/sct", "code": "234336002"}],
                    "text": "Allogeneic haematopoietic stem cell transplant"}
    assert from_fhir(data).document["lines"][0]["transplant"]["kind"] == "allogeneic"
    proc["code"] = {"coding": [{"system": "http://snomed.info/sct", "code": "234336002"}]}
    result = from_fhir(data)
    assert "transplant" not in result.document["lines"][0]
    assert any("kind" in n.message and "not imported" in n.message for n in result.report.warnings)


# ------------------------------------------------------------------------------------------- Observations


def test_ecog_latest_and_creatinine_clearance_converted(mapped) -> None:
    assert mapped.document["ecog"] == 2  # LA9624-3 on 2026-02-10, the latest of two
    assert mapped.document["creatinineClearance"] == 60  # 1.0 mL/s (LOINC 2164-2)


def test_labs_with_units_and_involved_light_chain(mapped) -> None:
    assert mapped.document["labs"] == [
        {"date": "2025-11-01", "mSpike": 0.5, "iFLC": 80, "uFLC": 9},  # 5 g/L; kappa 8.0 mg/dL
        {"date": "2026-01-15", "mSpike": 1.2, "iFLC": 250, "uFLC": 8.5},
    ]
    assert any(n.field == "labs[].iFLC" and "kappa" in n.message for n in mapped.report.inferred)
    swapped = from_fhir(FHIR_DIR / "mappings.json", involved_light_chain="lambda").document["labs"]
    assert swapped[0]["iFLC"] == 9 and swapped[0]["uFLC"] == 80


def test_cytogenetics(mapped) -> None:
    assert mapped.document["cytogenetics"] == {"tested": "2026-02-10", "findings": ["t(4;14)", "gain(1q)"]}
    assert any("del(17p) not found" in n.message for n in mapped.report.mapped)
    v01 = from_fhir(FHIR_DIR / "v01.json").document
    assert v01["cytogenetics"] == {"tested": "2025-10-20", "findings": []}
    v08 = from_fhir(FHIR_DIR / "v08.json").document  # mCODE variant, ISCN t(4;14), value Absent
    assert v08["cytogenetics"] == {"tested": "2025-08-11", "findings": []}
    data = bundle("v08")
    resources(data, "Observation")[-1]["valueCodeableConcept"] = {"text": "Present"}
    resources(data, "Observation")[-1]["component"][0]["valueCodeableConcept"] = {"text": "t(8;14)(q24;q32)"}
    result = from_fhir(data)
    assert result.document["cytogenetics"]["findings"] == []
    assert any("t(8;14)" in (n.text or "") for n in result.report.warnings)


def test_progression_dates_and_relapse_kind(mapped) -> None:
    assert mapped.document["relapse"]["date"] == "2026-01-20"
    assert mapped.document["relapse"]["kind"] == "clinical"  # laboratory first, imaging on 2026-02-01
    assert from_fhir(FHIR_DIR / "lines.json").document["relapse"] == {"date": "2022-11-15", "kind": "biochemical"}
    data = bundle("unknown-drug")
    resources(data, "Observation")[-1].pop("extension")
    result = from_fhir(data)
    assert result.document["relapse"] == {"date": "2024-05-01"}
    assert "relapse.kind" in fields(result.report.missing)


# ------------------------------------------------------------------------------------------- assessment date


def test_assessment_date_choices() -> None:
    assert from_fhir(FHIR_DIR / "lines.json").document["assessmentDate"] == "2022-11-15"  # no timestamp
    early = from_fhir(FHIR_DIR / "mappings.json", assessment_date="2024-06-01")
    doc = early.document
    assert doc["assessmentDate"] == "2024-06-01" and doc["age"] == 65
    assert len(doc["lines"]) == 2 and "progression" not in doc["lines"][1]
    assert "relapse" not in doc and "labs" not in doc and doc["ecog"] == 1 and "cytogenetics" not in doc
    assert any("after the assessment date" in n.message for n in early.report.ignored)
    with pytest.raises(FhirImportError):
        from_fhir(FHIR_DIR / "mappings.json", assessment_date="next week")


# ------------------------------------------------------------------------------------------- report


def test_report_says_what_is_missing_for_the_rules() -> None:
    result = from_fhir(FHIR_DIR / "lines.json")
    missing = fields(result.report.missing)
    for key in ("frailty", "transplantEligible", "ecog", "cytogenetics", "creatinineClearance", "relapse.tempo"):
        assert key in missing
    frailty = next(n for n in result.report.missing if n.field == "frailty")
    assert "not carried by FHIR" in frailty.message
    given = from_fhir(FHIR_DIR / "lines.json", overrides={"frailty": "frail"})
    assert given.document["frailty"] == "frail" and "frailty" not in fields(given.report.missing)
    data = result.report.to_dict()
    assert set(data) == {"mapped", "inferred", "missing", "warnings", "ignored"}
    assert "missing (" in result.report.format_text()


def test_invalid_bundles_are_typed_errors(tmp_path: Path) -> None:
    with pytest.raises(FhirBundleError, match="resourceType 'Patient'"):
        from_fhir({"resourceType": "Patient", "id": "x"})
    bad = tmp_path / "bad.json"
    bad.write_text('{"resourceType": "Bundle", "type": ')
    with pytest.raises(FhirBundleError, match="malformed JSON"):
        from_fhir(bad)
    data = bundle("v08")
    resources(data, "Patient")[0]["birthDate"] = "the sixties"
    with pytest.raises(FhirBundleError, match="not a valid FHIR R4 Bundle"):
        from_fhir(data)


# ------------------------------------------------------------------------------------------- round trip


def test_round_trip_import_validate_recommend(tmp_path: Path, engine) -> None:
    from myeloma_kg.recommend import recommend
    from myeloma_kg.validate import validate

    result = from_fhir(FHIR_DIR / "mappings.json", overrides=MAP_OVERRIDES)
    report = validate(result.document)
    assert report.conforms and report.violations == [], [str(v) for v in report.violations]
    doc = result.patient_document()
    assert doc.id == "fhir-map"
    rec = recommend(doc, engine=engine)
    assert rec.options, "the imported patient gets options"
    assert rec.facts.prior_line_count == 2
    assert {"lenalidomide", "bortezomib", "daratumumab", "carfilzomib"} <= set(rec.facts.exposed_to)
    # carfilzomib was still given at progression; daratumumab's last dose was > 60 days before it (R9)
    assert "carfilzomib" in rec.facts.refractory_to and "daratumumab" not in rec.facts.refractory_to
    # the YAML written for people reads back to the same recommendation
    path = tmp_path / "fhir-map.yaml"
    path.write_text(result.to_yaml())
    assert validate(path).conforms
    again = recommend(path, engine=engine)
    assert [(o.regimen, o.strength) for o in again.options] == [(o.regimen, o.strength) for o in rec.options]


# ------------------------------------------------------------------------------------------- vignettes


def vignette_overrides(patient: dict) -> dict:
    """The vignette's facts FHIR cannot carry, passed as import options (documented in myeloma_kg.fhir)."""
    keys = [*NOT_IN_FHIR, *OPTIONAL_NOT_IN_FHIR, "plasmaCellLeukemia"]
    overrides = {k: patient[k] for k in keys if k in patient}
    if "tempo" in (patient.get("relapse") or {}):
        overrides["relapse"] = {"tempo": patient["relapse"]["tempo"]}
    return overrides


def strengths(rec) -> dict[str, str]:
    return {**{o.regimen: o.strength for o in rec.options}, **{e.regimen: "excluded" for e in rec.excluded}}


@pytest.mark.parametrize("vignette", ["V01", "V08"])
def test_vignette_bundle_gives_the_patient_document_s_recommendation(vignette: str, engine) -> None:
    from myeloma_kg.recommend import recommend
    from myeloma_kg.validate import validate

    folder = VIGNETTES / vignette
    patient = yaml.safe_load((folder / "patient.yaml").read_text())
    result = from_fhir(FHIR_DIR / f"{vignette.lower()}.json", overrides=vignette_overrides(patient))
    doc = result.document
    assert validate(doc).conforms
    for key in ("id", "age", "ecog", "creatinineClearance"):
        assert doc[key] == patient[key], key
    assert doc["assessmentDate"] == str(patient["assessmentDate"])
    assert doc["relapse"] == {k: str(v) if k == "date" else v for k, v in patient["relapse"].items()}
    assert doc["cytogenetics"]["findings"] == patient["cytogenetics"]["findings"]
    assert [line.get("regimen") for line in doc["lines"]] == [line["regimen"] for line in patient["lines"]]
    for ours, theirs in zip(doc["lines"], patient["lines"]):
        for key in ("bestResponse", "progressionOnTherapy", "transplant"):
            assert (ours.get(key) == theirs.get(key)) or key == "transplant" and \
                ours[key] == {k: str(v) if k == "date" else v for k, v in theirs[key].items()}, key
        assert ours.get("progression") == str(theirs.get("progression"))
    from_document = recommend(folder / "patient.yaml", engine=engine)
    from_bundle = recommend(doc, engine=engine)
    assert strengths(from_bundle) == strengths(from_document)
    assert sorted(from_bundle.situation) == sorted(from_document.situation)
    assert from_bundle.facts.to_dict() == from_document.facts.to_dict()
    expected = yaml.safe_load((folder / "expected.yaml").read_text())
    problems = check_recommendation(from_bundle, expected)
    assert not problems, "\n".join(problems)


# ------------------------------------------------------------------------------------------- CLI


def test_cli_import_fhir(tmp_path: Path) -> None:
    from myeloma_kg.cli import main

    runner = CliRunner()
    out = tmp_path / "v08.yaml"
    sets = [arg for k, v in (("frailty", "fit"), ("transplantEligible", "false"), ("relapse.tempo", "indolent"),
                             ("lines.2.bestResponse", "VGPR")) for arg in ("--set", f"{k}={v}")]
    res = runner.invoke(main, ["import-fhir", str(FHIR_DIR / "v08.json"), "--out", str(out), *sets])
    assert res.exit_code == 0, res.output
    doc = yaml.safe_load(out.read_text())
    assert doc["frailty"] == "fit" and doc["transplantEligible"] is False
    assert doc["relapse"]["tempo"] == "indolent" and doc["lines"][1]["bestResponse"] == "VGPR"
    res = runner.invoke(main, ["import-fhir", str(FHIR_DIR / "unknown-drug.json"), "--report", "json"])
    assert res.exit_code == 0
    assert yaml.safe_load(res.stdout)["id"] == "fhir-unknown"
    report = json.loads(res.stderr)
    assert any("0000002" in n.get("code", "") for n in report["warnings"])
    res = runner.invoke(main, ["import-fhir", str(FHIR_DIR / "no-myeloma.json")])
    assert res.exit_code == 1 and "no multiple myeloma Condition" in res.stderr
    res = runner.invoke(main, ["import-fhir", str(FHIR_DIR / "v08.json"), "--set", "frailty"])
    assert res.exit_code == 2
    res = runner.invoke(main, ["import-fhir", str(FHIR_DIR / "v08.json"), "--set", "frailty=sprightly",
                               "--report", "none"])
    assert res.exit_code == 1 and "frailty" in res.stderr  # the imported document is validated
    res = runner.invoke(main, ["import-fhir", str(FHIR_DIR / "lines.json"), "--window-days", "7", "--report", "none",
                               "--no-validate"])
    assert res.exit_code == 0 and len(yaml.safe_load(res.stdout)["lines"]) == 4
