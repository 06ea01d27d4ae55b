"""The validation engines give the same reports: rudof (pyrudof + pyoxigraph) against pySHACL.

``engine="rudof"`` (the default when pyrudof is installed) runs the core SHACL constraints with pyrudof and
the SHACL-SPARQL constraints with one pyoxigraph query per constraint; ``engine="oxigraph"`` and
``engine="rdflib"`` run pySHACL. Equivalence is checked on ``ValidationReport.to_dict()`` (violations and
warnings with their document paths, messages, severities, shapes, constraints and values) over every
document the project has: every tests/bad_input document, every end-to-end vignette patient, every patient
of tests/cases, a few hundred synthetic documents (10 % deliberately invalid) and Turtle edge cases.

The rudof engine hands a document it cannot vouch for to the pySHACL engine (``RUDOF_FALLBACKS`` counts
why); on this corpus it must not need to, or the comparison would prove nothing.
"""

from __future__ import annotations

import copy
import statistics
import time
from pathlib import Path
from typing import Any

import pytest
import yaml

import myeloma_kg.validate as validation
from myeloma_kg.synth import generate, generate_records
from myeloma_kg.validate import RUDOF_FALLBACKS, default_engine, validate, validate_file

pytest.importorskip("pyrudof")

TESTS = Path(__file__).parent
BAD_INPUT = sorted(
    p for p in (TESTS / "bad_input").iterdir() if p.suffix in {".yaml", ".yml", ".json", ".jsonl", ".ttl", ".nt", ".jsonld"}
)
VIGNETTES = sorted(TESTS.glob("end_to_end/vignettes/*/patient.yaml"))
CASES = sorted(TESTS.glob("cases/*/*.yaml"))
SYNTH_N, SYNTH_SEED, SYNTH_CHUNK = 300, 7, 25

PREFIXES = """@prefix mkg: <https://w3id.org/myeloma-kg/> .
@prefix drug: <https://w3id.org/myeloma-kg/drug/> .
@prefix reg: <https://w3id.org/myeloma-kg/regimen/> .
@prefix xsd: <http://www.w3.org/2001/XMLSchema#> .
"""
PATIENT = """<https://w3id.org/myeloma-kg/patient/pt-ttl> a mkg:Patient ; mkg:patientId "pt-ttl" ;
    mkg:assessmentDate "2026-11-01"^^xsd:date ; mkg:frailty mkg:Fit ;
    mkg:cytogenetics [ mkg:testedOn "2026-10-20"^^xsd:date ] ;
    mkg:relapse [ mkg:date "2026-10-01"^^xsd:date ; mkg:kind mkg:ClinicalRelapseKind ; mkg:tempo mkg:Indolent ] ;
"""
#: Turtle documents with values JSON/YAML cannot produce (the pre-checks stop them there).
TURTLE_EDGE_CASES = {
    "ill-formed-boolean": 'mkg:transplantEligible "yes"^^xsd:boolean ; mkg:prefersOral "1"^^xsd:boolean .',
    "impossible-dates": 'mkg:hasLine [ mkg:lineNumber 1 ; mkg:regimen reg:vrd ; mkg:start "2021-02-30"^^xsd:date ;'
    ' mkg:end "2021-13-40"^^xsd:date ; mkg:bestResponse mkg:PR ] .',
    "date-as-datetime": 'mkg:hasLine [ mkg:lineNumber 1 ; mkg:regimen reg:vrd ; mkg:start "2021-02-03T00:00:00"^^xsd:dateTime ;'
    ' mkg:bestResponse mkg:PR ] .',
    "typed-and-tagged-strings": 'mkg:patientId "again"@en ; mkg:age "67"^^xsd:string .',
    "numbers-of-every-type": 'mkg:age 67.5 ; mkg:ecog "3"^^xsd:decimal ; mkg:lvef "55"^^xsd:float ;'
    ' mkg:creatinineClearance -1.5e1 ; mkg:neuropathyGrade "007"^^xsd:integer .',
    "ill-formed-numbers": 'mkg:age "sixty"^^xsd:integer ; mkg:lvef "abc"^^xsd:decimal ; mkg:ecog "+2"^^xsd:integer .',
    "not-a-number": 'mkg:lvef "NaN"^^xsd:double ; mkg:creatinineClearance "INF"^^xsd:double .',
    "tiny-and-huge-numbers": 'mkg:lvef -1e-30 , 100.00000000000001 ; mkg:ecog 12345678901234567890123456789012 .',
    "literal-where-a-mapping-belongs": 'mkg:hasLine "VRd" , 5 ; mkg:lab true .',
    "iri-node-and-two-numbers": 'mkg:hasLine <https://w3id.org/myeloma-kg/line/l1> .\n'
    '<https://w3id.org/myeloma-kg/line/l1> mkg:lineNumber 1 , 2 ; mkg:drugs drug:lenalidomide , "len" ;'
    ' mkg:assertedRefractoryTo drug:pomalidomide , drug:nodrug ; mkg:start "2021-01-01"^^xsd:date .',
    "same-text-different-types": 'mkg:frailty mkg:Fit , "5" , 5 , "5"@en ; mkg:age "5" , 5 , "5"^^xsd:decimal .',
    "codes-as-literals": 'mkg:hasLine [ mkg:lineNumber 1 ; mkg:regimen reg:vrd ; mkg:bestResponse "PR" , mkg:XR ;'
    ' mkg:transplant [ mkg:kind "autologous" ; mkg:date "2021-06-01"^^xsd:date ] ] .',
}


def _reports(kind: str, item: Any, engine: str) -> list[dict[str, Any]]:
    if kind == "file":
        return [r.to_dict() for r in validate_file(item, engine=engine)]
    return [validate(copy.deepcopy(item), engine=engine).to_dict()]


def _case_patient(path: Path) -> Any:
    return yaml.safe_load(path.read_text(encoding="utf-8"))["patient"]


def _synth_chunk(start: int) -> list[Any]:
    return [r.document for r in generate_records(SYNTH_CHUNK, SYNTH_SEED, 0.1, start=start)]


def _turtle(name: str, tmp_path: Path) -> Path:
    path = tmp_path / f"{name}.ttl"
    path.write_text(PREFIXES + PATIENT + "    " + TURTLE_EDGE_CASES[name] + "\n", encoding="utf-8")
    return path


def _assert_same(kind: str, items: list[Any], reference: str = "oxigraph", *, fallbacks_allowed: bool = False) -> None:
    before = sum(RUDOF_FALLBACKS.values())
    for item in items:
        fast = _reports(kind, item, "rudof")
        assert fast == _reports(kind, item, reference), f"rudof and {reference} disagree on {item!r:.200}"
    if not fallbacks_allowed:
        assert sum(RUDOF_FALLBACKS.values()) == before, f"the rudof engine fell back: {dict(RUDOF_FALLBACKS)}"


# ------------------------------------------------------------------------------------------ rudof = pySHACL


def test_rudof_is_the_default_engine() -> None:
    assert default_engine() == "rudof"
    report = validate({"id": "pt-9", "assessmentDate": "2026-11-01", "age": "sixty"})
    assert [(v.path, v.constraint) for v in report.violations] == [("age", "DatatypeConstraintComponent")]


@pytest.mark.parametrize("case", BAD_INPUT, ids=lambda p: p.stem)
def test_bad_input(case: Path) -> None:
    _assert_same("file", [case])


@pytest.mark.parametrize("case", VIGNETTES, ids=lambda p: p.parent.name)
def test_vignette_patient(case: Path) -> None:
    _assert_same("file", [case])


@pytest.mark.parametrize("case", CASES, ids=lambda p: f"{p.parent.name}/{p.stem}")
def test_rule_case_patient(case: Path) -> None:
    _assert_same("doc", [_case_patient(case)])


@pytest.mark.parametrize("start", range(0, SYNTH_N, SYNTH_CHUNK), ids=lambda s: f"synth-{s}")
def test_synthetic_documents(start: int) -> None:
    _assert_same("doc", _synth_chunk(start))


def test_synthetic_cohort_has_invalid_documents() -> None:
    """The synthetic part of the corpus exercises violations, not only valid documents."""
    records = list(generate_records(SYNTH_N, SYNTH_SEED, 0.1))
    assert sum(not r.valid for r in records) >= 15
    assert all(not validate(r.document).conforms for r in records if not r.valid)


@pytest.mark.parametrize("name", [n for n in TURTLE_EDGE_CASES if n not in ("not-a-number", "tiny-and-huge-numbers")])
def test_turtle_edge_case(name: str, tmp_path: Path) -> None:
    """Checked against pySHACL's rdflib mode, the reference (see the next test for why not oxigraph)."""
    path = _turtle(name, tmp_path)
    _assert_same("file", [path], reference="rdflib")
    [report] = validate_file(path)
    assert report.results, "each edge case gives at least one result"


def test_oxigraph_engine_misses_an_ill_formed_boolean_the_reference_reports(tmp_path: Path) -> None:
    """rdflib keeps "yes"^^xsd:boolean as an ill-typed literal with the lexical form "false"; copied into
    pyoxigraph it becomes a well-formed false, so pySHACL over Oxigraph accepts it. The rudof engine keeps
    rdflib's verdict, as the reference does."""
    path = _turtle("ill-formed-boolean", tmp_path)
    [reference] = validate_file(path, engine="rdflib")
    [fast] = validate_file(path, engine="rudof")
    [oxigraph] = validate_file(path, engine="oxigraph")
    assert fast.to_dict() == reference.to_dict()
    assert [v.path for v in reference.violations] == ["transplantEligible"]
    assert oxigraph.violations == []


def test_non_finite_numbers_go_to_the_reference_engine(tmp_path: Path) -> None:
    """sh:minInclusive/sh:maxInclusive on NaN and INF differ between pyrudof and pySHACL: pySHACL decides."""
    path = _turtle("not-a-number", tmp_path)
    before = RUDOF_FALLBACKS["non-finite number"]
    _assert_same("file", [path], reference="rdflib", fallbacks_allowed=True)
    assert RUDOF_FALLBACKS["non-finite number"] == before + 1


def test_numbers_pyrudof_cannot_compare_exactly_go_to_the_reference_engine(tmp_path: Path) -> None:
    """pyrudof rounds -1e-30 to 0 and 100.00000000000001 to 100, and cannot compare 1.2e31: pySHACL decides."""
    path = _turtle("tiny-and-huge-numbers", tmp_path)
    before = RUDOF_FALLBACKS["number beyond pyrudof's exact range"]
    _assert_same("file", [path], reference="rdflib", fallbacks_allowed=True)
    assert RUDOF_FALLBACKS["number beyond pyrudof's exact range"] == before + 1
    [report] = validate_file(path)
    assert {v.path for v in report.violations} == {"lvef", "ecog"}


def test_ill_formed_literals_are_caught_without_fallback(tmp_path: Path) -> None:
    """pyrudof alone accepts "2021-02-30"^^xsd:date; the engine still reports it, as pySHACL does."""
    [report] = validate_file(_turtle("impossible-dates", tmp_path))
    found = {(v.path, v.constraint, v.value) for v in report.violations}
    assert ("lines[0].start", "DatatypeConstraintComponent", "2021-02-30") in found
    assert ("lines[0].end", "DatatypeConstraintComponent", "2021-13-40") in found


def test_sparql_constraint_messages_are_filled_in() -> None:
    data = {"id": "pt-1", "assessmentDate": "2026-11-01", "lines": [
        {"number": 1, "regimen": "vrdd", "start": "2021-05-01", "end": "2021-01-01", "bestResponse": "PR"},
        {"number": 3, "drugs": ["lenalidomid"], "start": "2027-01-01", "bestResponse": "PR"}]}
    report = validate(data, engine="rudof")
    assert report.to_dict() == validate(data, engine="oxigraph").to_dict()
    messages = [v.message for v in report.violations]
    assert any("'vrdd' is not a regimen id" in m for m in messages)
    assert any("(2021-01-01) is before lines[].start (2021-05-01)" in m for m in messages)
    assert any("number 3 has no line 2 before it" in m for m in messages)
    assert any("'lenalidomid' is not a drug id" in m and m.endswith("Did you mean lenalidomide?") for m in messages)
    assert not any("{?" in m for m in messages)


def test_rudof_is_much_faster_than_pyshacl() -> None:
    docs = list(generate(30, 3, invalid_share=0.1))
    for engine in ("rudof", "oxigraph"):
        validate(copy.deepcopy(docs[0]), engine=engine)  # warm
    timings: dict[str, list[float]] = {"rudof": [], "oxigraph": []}
    for doc in docs:  # interleaved, so that other load on the machine hits both engines alike
        for engine, spent in timings.items():
            data = copy.deepcopy(doc)
            started = time.perf_counter()
            validate(data, engine=engine)
            spent.append(time.perf_counter() - started)
    fast, slow = statistics.median(timings["rudof"]), statistics.median(timings["oxigraph"])
    print(f"median validate(): rudof {fast * 1000:.1f} ms, oxigraph {slow * 1000:.1f} ms")
    assert fast * 2 < slow


# ------------------------------------------------------------------------------------------ rudof = rdflib (slow)


@pytest.mark.slow
@pytest.mark.parametrize("case", BAD_INPUT + VIGNETTES, ids=lambda p: p.stem if p.parent.name == "bad_input" else p.parent.name)
def test_rdflib_reference_on_files(case: Path) -> None:
    _assert_same("file", [case], reference="rdflib")


@pytest.mark.slow
def test_rdflib_reference_on_cases_and_synthetic_documents() -> None:
    _assert_same("doc", [_case_patient(p) for p in CASES[::10]] + _synth_chunk(0), reference="rdflib")


@pytest.mark.slow
@pytest.mark.parametrize("name", list(TURTLE_EDGE_CASES))
def test_rdflib_reference_on_turtle_edge_cases(name: str, tmp_path: Path) -> None:
    _assert_same("file", [_turtle(name, tmp_path)], reference="rdflib", fallbacks_allowed=True)


def test_engine_module_exports() -> None:
    assert validation.ENGINES == ("rudof", "oxigraph", "rdflib")
