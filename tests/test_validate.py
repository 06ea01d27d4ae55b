"""The validation API: ValidationReport, typed violations, document field paths, engines, speed."""

from __future__ import annotations

import copy
import json
import statistics
import time
from pathlib import Path
from typing import Any

import pytest
import yaml
from rdflib import Graph, Literal, URIRef
from rdflib.namespace import RDF

from myeloma_kg.errors import DataError, ParseError, PatientInvalidError
from myeloma_kg.namespaces import DRUG, MKG
from myeloma_kg.patient import PatientDocument, load_patient
from myeloma_kg.validate import (
    EXAMPLES_DIR,
    ValidationReport,
    Violation,
    shapes_graph,
    validate,
    validate_file,
)

EXAMPLE = EXAMPLES_DIR / "pt-017.yaml"
BAD_INPUT = Path(__file__).parent / "bad_input"


def example() -> dict[str, Any]:
    data = yaml.safe_load(EXAMPLE.read_text(encoding="utf-8"))
    return json.loads(json.dumps(data, default=str))


def results(report: ValidationReport) -> list[tuple[str, str]]:
    return [(r.severity, r.path) for r in report.results]


# ------------------------------------------------------------------------------------------ valid input


def test_bundled_example_is_valid_without_warnings() -> None:
    report = validate(EXAMPLE)
    assert report.conforms
    assert report.violations == [] and report.warnings == []
    assert report.patient == "pt-017"
    assert report.raise_for_violations() is report


@pytest.mark.parametrize(
    "form",
    ["mapping", "path", "document", "graph"],
)
def test_every_input_form_validates(form: str) -> None:
    document: Any = {
        "mapping": example(),
        "path": EXAMPLE,
        "document": load_patient(EXAMPLE),
        "graph": load_patient(EXAMPLE).graph,
    }[form]
    report = validate(document)
    assert report.conforms, [str(r) for r in report.results]
    assert report.patient == "pt-017"


def test_valid_turtle_patient(tmp_path: Path) -> None:
    ttl = tmp_path / "pt-rdf.ttl"
    ttl.write_text(
        """@prefix mkg: <https://w3id.org/myeloma-kg/> .
@prefix drug: <https://w3id.org/myeloma-kg/drug/> .
@prefix reg: <https://w3id.org/myeloma-kg/regimen/> .
@prefix xsd: <http://www.w3.org/2001/XMLSchema#> .

<https://w3id.org/myeloma-kg/patient/pt-rdf> a mkg:Patient ;
    mkg:patientId "pt-rdf" ;
    mkg:assessmentDate "2026-11-01"^^xsd:date ;
    mkg:age 70 ;
    mkg:frailty mkg:Intermediate ;
    mkg:cytogenetics [ mkg:testedOn "2026-10-20"^^xsd:date ; mkg:finding mkg:Del17p ] ;
    mkg:relapse [ mkg:date "2026-10-01"^^xsd:date ; mkg:kind mkg:BiochemicalRelapseKind ; mkg:tempo mkg:Indolent ] ;
    mkg:hasLine [
        mkg:lineNumber 1 ; mkg:regimen reg:rd ;
        mkg:start "2022-01-10"^^xsd:date ; mkg:end "2023-05-01"^^xsd:date ;
        mkg:bestResponse mkg:PR ; mkg:progression "2023-05-01"^^xsd:date ;
        mkg:progressionOnTherapy true ; mkg:assertedRefractoryTo drug:lenalidomide
    ] , [
        mkg:lineNumber 2 ; mkg:drugs drug:daratumumab , drug:bortezomib , drug:dexamethasone ;
        mkg:start "2023-05-20"^^xsd:date ; mkg:bestResponse mkg:VGPR ; mkg:progression "2026-10-01"^^xsd:date
    ] .
""",
        encoding="utf-8",
    )
    report = validate(ttl)
    assert report.conforms, [str(r) for r in report.results]
    assert report.warnings == []
    assert report.patient == "pt-rdf"


def test_turtle_paths_order_lines_by_number(tmp_path: Path) -> None:
    graph = load_patient(EXAMPLE).graph
    line = next(graph.objects(URIRef("https://w3id.org/myeloma-kg/patient/pt-017"), MKG.hasLine))
    graph.add((line, MKG.drugs, DRUG.lenalidomid))
    ttl = tmp_path / "pt.ttl"
    graph.serialize(ttl, format="turtle")
    report = validate(ttl)
    assert results(report) == [("Violation", "lines[0].drugs")]
    assert "Did you mean lenalidomide?" in report.violations[0].message
    assert report.violations[0].value == "lenalidomid"


def test_warning_only_document_conforms() -> None:
    data = example()
    del data["frailty"], data["cytogenetics"]
    report = validate(data)
    assert report.conforms
    assert report.violations == []
    assert results(report) == [("Warning", "frailty"), ("Warning", "cytogenetics")]
    report.raise_for_violations()


# ------------------------------------------------------------------------------------------ reports


def test_report_object_and_violation_fields() -> None:
    data = example()
    data["lines"][0]["drugs"][1] = "lenalidomid"
    report = validate(data)
    assert not report.conforms
    [violation] = report.violations
    assert isinstance(violation, Violation)
    assert violation.patient == "pt-017"
    assert violation.path == "lines[0].drugs[1]"
    assert violation.severity == "Violation"
    assert violation.shape == "LineShape"
    assert violation.constraint == "UnknownLineDrugConstraint"
    assert violation.value == "lenalidomid"
    assert violation.message.endswith("Did you mean lenalidomide?")
    assert str(violation).startswith("pt-017 / lines[0].drugs[1] / 'lenalidomid' is not a drug id")
    assert report.seconds > 0


def test_to_dict_is_json() -> None:
    data = example()
    data["ecog"] = 7
    report = validate(data)
    payload = json.loads(json.dumps(report.to_dict()))
    assert payload["patient"] == "pt-017"
    assert payload["conforms"] is False
    assert payload["violations"][0]["path"] == "ecog"
    assert payload["violations"][0]["severity"] == "Violation"
    assert set(payload["violations"][0]) == {"patient", "path", "message", "severity", "shape", "constraint", "value"}


def test_raise_for_violations() -> None:
    data = example()
    data["relapse"]["kind"] = "clinicall"
    report = validate(data)
    with pytest.raises(PatientInvalidError) as caught:
        report.raise_for_violations()
    assert caught.value.report is report
    assert isinstance(caught.value, DataError)
    assert "relapse.kind" in str(caught.value)
    assert "Did you mean clinical?" in report.violations[0].message


# ------------------------------------------------------------------------------------------ paths


def two_line_patient() -> dict[str, Any]:
    data = example()
    data["lines"][0]["progression"] = "2024-02-01"
    data["lines"][0]["maintenance"]["end"] = "2024-02-01"
    data["lines"][0]["progressionOnTherapy"] = True
    data["lines"].append(
        {
            "number": 2,
            "drugs": ["daratumumab", "bortezomib", "dexamethasone"],
            "start": "2024-02-20",
            "bestResponse": "VGPR",
            "progression": "2026-10-15",
        }
    )
    return data


def test_two_line_patient_is_valid() -> None:
    report = validate(two_line_patient())
    assert report.conforms and not report.warnings, [str(r) for r in report.results]


@pytest.mark.parametrize(
    ("change", "path"),
    [
        (lambda d: d["lines"][1]["drugs"].__setitem__(0, "daratumumabb"), "lines[1].drugs[0]"),
        (lambda d: d["lines"][1].__setitem__("bestResponse", "vgpr"), "lines[1].bestResponse"),
        (lambda d: d["cytogenetics"].__setitem__("findings", ["t(11;14)", "t(4:14)"]), "cytogenetics.findings[1]"),
        (lambda d: d["relapse"].__setitem__("tempo", "slow"), "relapse.tempo"),
        (lambda d: d["lines"][0]["transplant"].__setitem__("kind", "auto"), "lines[0].transplant.kind"),
        (lambda d: d["lines"][0]["maintenance"].__setitem__("drugs", ["lenalidomide", "ixazomibb"]),
         "lines[0].maintenance.drugs[1]"),
        (lambda d: d["lines"][1].__setitem__("start", "2024-02-30"), "lines[1].start"),
        (lambda d: d["lines"][1].__setitem__("drugs", [{"drug": "daratumumab", "start": "2023-01-01"}]),
         "lines[1].drugs[0].start"),
        (lambda d: d.__setitem__("labs", [{"date": "2026-10-01", "mSpike": -1}]), "labs[0].mSpike"),
        (lambda d: d.__setitem__("lvef", 120), "lvef"),
        (lambda d: d.__setitem__("heartFailureNYHA", 5), "heartFailureNYHA"),
        (lambda d: d.__setitem__("creatinineClearance", -3), "creatinineClearance"),
        (lambda d: d.__setitem__("donorAvailable", "no"), "donorAvailable"),
    ],
)
def test_violation_paths_name_the_document_field(change: Any, path: str) -> None:
    data = two_line_patient()
    change(data)
    report = validate(data)
    assert [v.path for v in report.violations] == [path], [str(r) for r in report.results]


def test_lines_in_the_document_order_even_when_numbered_backwards() -> None:
    data = two_line_patient()
    data["lines"].reverse()
    data["lines"][0]["drugs"][0] = "daratumumabb"  # the line numbered 2, written first
    report = validate(data)
    assert [v.path for v in report.violations] == ["lines[0].drugs[0]"]


def test_pre_check_replaces_the_shacl_result_for_the_same_field() -> None:
    data = example()
    data["lines"] = "VRd"
    report = validate(data)
    assert [(v.path, v.shape) for v in report.violations] == [("lines", "precheck")]
    assert "lines must be a list" in report.violations[0].message


def test_missing_id_still_validates_the_rest() -> None:
    data = example()
    del data["id"]
    data["ecog"] = 9
    report = validate(data)
    assert report.patient is None
    assert [v.path for v in report.violations] == ["id", "ecog"]
    assert all(v.patient is None for v in report.results)


# ------------------------------------------------------------------------------------------ inputs


def test_several_documents_in_one_file(tmp_path: Path) -> None:
    first, second = example(), example()
    second["id"] = "pt-018"
    second["age"] = "old"
    path = tmp_path / "cohort.yaml"
    path.write_text(yaml.safe_dump_all([first, second]), encoding="utf-8")
    reports = list(validate_file(path))
    assert [(r.patient, r.conforms, r.position) for r in reports] == [("pt-017", True, 1), ("pt-018", False, 2)]
    with pytest.raises(DataError, match="expected one patient document"):
        validate(path)


def test_jsonl_with_a_malformed_line(tmp_path: Path) -> None:
    path = tmp_path / "cohort.jsonl"
    path.write_text(json.dumps(example()) + "\n{not json\n", encoding="utf-8")
    first, second = validate_file(path)
    assert first.conforms
    assert second.error is not None and not second.conforms
    assert second.error.line == 2  # type: ignore[attr-defined]


def test_malformed_file_raises_parse_error_from_validate(tmp_path: Path) -> None:
    path = tmp_path / "bad.json"
    path.write_text('{"id": "x",\n "age": }', encoding="utf-8")
    with pytest.raises(ParseError) as caught:
        validate(path)
    assert (caught.value.line, caught.value.column) == (2, 9)


def test_unsupported_input_type() -> None:
    with pytest.raises(DataError):
        validate(42)


def test_custom_knowledge_base() -> None:
    kb = Graph()
    kb.add((DRUG.lenalidomide, RDF.type, MKG.Drug))
    data = {"id": "k", "assessmentDate": "2026-01-01", "lines": [
        {"number": 1, "drugs": ["lenalidomide", "bortezomib"], "start": "2025-01-01", "bestResponse": "PR"}]}
    report = validate(data, kb_graph=kb)
    assert [v.path for v in report.violations] == ["lines[0].drugs[1]"]
    assert validate(data).conforms


def test_graph_input_with_two_patients_is_a_data_error() -> None:
    graph = Graph()
    for pid in ("a", "b"):
        graph.add((URIRef(f"https://w3id.org/myeloma-kg/patient/{pid}"), RDF.type, MKG.Patient))
        graph.add((URIRef(f"https://w3id.org/myeloma-kg/patient/{pid}"), MKG.patientId, Literal(pid)))
    with pytest.raises(DataError):
        validate(graph)


def test_document_graph_is_not_modified() -> None:
    doc = load_patient(EXAMPLE)
    before = len(doc.graph)
    validate(doc)
    assert len(doc.graph) == before


def test_patient_document_with_problems_is_revalidated_from_its_data() -> None:
    data = example()
    data["age"] = True
    doc = PatientDocument.from_dict(data)
    report = validate(doc)
    assert [(v.path, v.shape) for v in report.violations] == [("age", "precheck")]


# ------------------------------------------------------------------------------------------ shapes


def test_every_shape_constraint_has_a_message_and_a_severity() -> None:
    from rdflib.namespace import SH

    graph = shapes_graph()
    shapes = set(graph.subjects(RDF.type, SH.NodeShape)) | set(graph.subjects(RDF.type, SH.PropertyShape))
    shapes |= set(graph.objects(None, SH.property))
    for shape in shapes:
        assert graph.value(shape, SH.severity) is not None, f"{shape} has no sh:severity"
        constraints = set(graph.objects(shape, SH.sparql))
        if constraints:
            for constraint in constraints:
                assert graph.value(constraint, SH.message) is not None, f"{constraint} has no sh:message"
        elif (shape, SH.property, None) not in graph:
            assert graph.value(shape, SH.message) is not None, f"{shape} has no sh:message"


# ------------------------------------------------------------------------------------------ engines, speed


def _signature(report: ValidationReport) -> list[tuple[str, str, str]]:
    return sorted((r.severity, r.path, r.message) for r in report.results)


PARITY_CASES = sorted(p for p in BAD_INPUT.iterdir() if p.suffix in {".yaml", ".json", ".ttl"})


@pytest.mark.parametrize(
    "case",
    [c for c in PARITY_CASES if c.stem.split("-")[0] in {"10", "14", "17", "21", "23", "30", "35", "40"}],
    ids=lambda c: c.stem,
)
def test_oxigraph_and_rdflib_engines_agree(case: Path) -> None:
    fast = list(validate_file(case, engine="oxigraph"))
    reference = list(validate_file(case, engine="rdflib"))
    assert [_signature(r) for r in fast] == [_signature(r) for r in reference]


@pytest.mark.slow
@pytest.mark.parametrize("case", PARITY_CASES, ids=lambda c: c.stem)
def test_oxigraph_and_rdflib_engines_agree_on_every_bad_input(case: Path) -> None:
    fast = list(validate_file(case, engine="oxigraph"))
    reference = list(validate_file(case, engine="rdflib"))
    assert [_signature(r) for r in fast] == [_signature(r) for r in reference]


def test_unknown_engine() -> None:
    with pytest.raises(ValueError):
        validate(example(), engine="fast")


def test_per_patient_validation_time() -> None:
    data = two_line_patient()
    validate(data)  # warm the caches: knowledge base types, shapes
    timings = []
    for _ in range(10):
        started = time.perf_counter()
        validate(copy.deepcopy(data))
        timings.append(time.perf_counter() - started)
    median = statistics.median(timings)
    print(f"median validation time per patient: {median * 1000:.1f} ms")
    assert median < 0.5, f"validation became slow: {median * 1000:.0f} ms per patient"


def test_raise_for_violations_of_an_unreadable_document(tmp_path: Path) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text("id: [unclosed\n", encoding="utf-8")
    [report] = validate_file(path)
    assert report.error is not None and not report.conforms
    with pytest.raises(ParseError):
        report.raise_for_violations()


def test_the_packaged_types_from_the_cache_are_those_of_the_knowledge_base_graph(tmp_path: Path,
                                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    """Validation reads the packaged knowledge base's drugs, options and components from the on-disk cache
    (a new process then skips the whole graph and rdflib's SPARQL engine): a fresh cache gives what the
    graph gives, and a second read comes from the file."""
    from myeloma_kg import validate as validation
    from myeloma_kg.kb import load_kb_graph

    monkeypatch.setenv("MYELOMA_KG_CACHE", str(tmp_path))
    direct = validation._types_from_rows(validation._type_rows(load_kb_graph()))
    for _ in range(2):  # built and written, then read back
        validation._packaged_types.cache_clear()
        cached_types = validation._packaged_types()
        assert set(cached_types.graph) == set(direct.graph) and len(direct.graph) > 100
        assert (cached_types.drugs, cached_types.regimens) == (direct.drugs, direct.regimens)
        assert cached_types.predicates == direct.predicates
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith("validation-types-")]
    validation._packaged_types.cache_clear()
