"""Knowledge-base quality control: the shipped knowledge base passes, and each broken fixture in
``tests/kb_fixtures/`` produces exactly the findings pinned in its ``.expected.json``.

Each fixture is the shipped knowledge base plus one small Turtle file that breaks one check; the
findings compared are those the fixture adds to the shipped knowledge base's own, so that a fixture
test pins its check whatever state the shipped content is in (``test_shipped_kb_passes`` judges that).
To regenerate the goldens after a deliberate message change, run with ``MYELOMA_KG_REGENERATE=1`` and
review the diff.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from rdflib import Graph

from myeloma_kg.errors import KnowledgeBaseError
from myeloma_kg.kb import KnowledgeBase, load_kb_graph
from myeloma_kg.qc import QCReport, qc_query_paths, sparql_findings, shacl_findings

FIXTURES = Path(__file__).parent / "kb_fixtures"
CASES = sorted(FIXTURES.glob("*.ttl"))
REGENERATE = os.environ.get("MYELOMA_KG_REGENERATE") == "1"


def kb_with(path: Path) -> KnowledgeBase:
    graph = Graph()
    for triple in load_kb_graph():
        graph.add(triple)
    graph.parse(path, format="turtle")
    return KnowledgeBase.from_graph(graph)


def test_shipped_kb_passes() -> None:
    report = KnowledgeBase.load().check()
    assert isinstance(report, QCReport)
    assert report.conforms, report.format_text()
    assert {"regimen-component", "trial-arm", "trial-nct-id", "recommendation-source", "recommendation-rule-id",
            "trial-result-figure-source", "drug-primary-class", "term-annotation",
            "unverified-exclusion", "datatype-range"} <= set(report.checks)
    report.raise_for_findings()  # does not raise


@pytest.fixture(scope="module")
def baseline() -> set[tuple[str, str, str]]:
    return {(f.check, f.focus, f.message) for f in KnowledgeBase.load().check().findings}


@pytest.mark.parametrize("case", CASES, ids=[c.stem for c in CASES])
def test_broken_fixture(case: Path, baseline: set[tuple[str, str, str]]) -> None:
    report = kb_with(case).check()
    found = [
        {"check": f.check, "focus": f.focus, "message": f.message}
        for f in report.findings if (f.check, f.focus, f.message) not in baseline
    ]
    golden = case.with_suffix(".expected.json")
    if REGENERATE:
        golden.write_text(json.dumps(found, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    expected = json.loads(golden.read_text(encoding="utf-8"))
    assert found == expected
    assert not report.conforms
    with pytest.raises(KnowledgeBaseError, match="knowledge-base check failed"):
        report.raise_for_findings()


def test_every_fixture_has_a_golden() -> None:
    assert CASES
    for case in CASES:
        assert case.with_suffix(".expected.json").is_file(), case.name
    checks = {f["check"] for case in CASES for f in json.loads(case.with_suffix(".expected.json").read_text())}
    assert {"regimen-component", "drug-primary-class", "trial-nct-id", "trial-arm", "recommendation-source",
            "unverified-exclusion", "trial-result-figure-source", "term-annotation", "datatype-range"} <= checks


def test_report_forms() -> None:
    report = kb_with(FIXTURES / "component-misspelt.ttl").check()
    data = report.to_dict()
    assert data["conforms"] is False and len(data["findings"]) == len(report) >= 2
    assert {"drug-primary-class", "option-component-is-drug"} <= set(report.by_check())
    shacl = report.by_check()["option-component-is-drug"][0]
    assert shacl.engine == "shacl" and shacl.value == "https://w3id.org/myeloma-kg/drug/lenalidomid"
    assert "(value: https://w3id.org/myeloma-kg/drug/lenalidomid)" in report.format_text()


def test_qc_queries_have_robot_headers() -> None:
    paths = qc_query_paths()
    assert len(paths) >= 3
    for path in paths:
        header = []
        for line in path.read_text(encoding="utf-8").splitlines():
            if not line.startswith("#"):
                break
            header.append(line)
        text = "\n".join(header)
        for field in ("# Check:", "# Problem:", "# Why it matters:", "# Fix:", "# Output:"):
            assert field in text, f"{path.name}: header lacks {field}"
        assert path.stem.removesuffix("-violation") in header[0], path.name


def test_broken_query_file_is_our_fault(tmp_path: Path) -> None:
    bad = tmp_path / "broken-violation.rq"
    bad.write_text("SELECT ?focus WHERE { ?focus ?p }", encoding="utf-8")
    with pytest.raises(KnowledgeBaseError, match="broken-violation.rq"):
        sparql_findings(KnowledgeBase.load(), [bad])
    no_message = tmp_path / "nomessage-violation.rq"
    no_message.write_text("SELECT ?focus WHERE { ?focus a ?c } LIMIT 1", encoding="utf-8")
    with pytest.raises(KnowledgeBaseError, match=r"\?message"):
        sparql_findings(KnowledgeBase.load(), [no_message])


def test_broken_shapes_file_is_our_fault(tmp_path: Path) -> None:
    bad = tmp_path / "bad.shapes.ttl"
    bad.write_text("this is not turtle", encoding="utf-8")
    with pytest.raises(KnowledgeBaseError, match="bad.shapes.ttl"):
        shacl_findings(KnowledgeBase.load(), bad)


def test_typed_lookup_of_a_broken_drug_is_our_fault() -> None:
    broken = kb_with(FIXTURES / "drug-two-primary-classes.ttl")
    with pytest.raises(KnowledgeBaseError, match="exactly one primary drug class"):
        broken.drugs()
    assert not broken.check().conforms  # the check still reports it
