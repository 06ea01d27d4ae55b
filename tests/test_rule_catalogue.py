"""Every rule R1-R58 of the clinical reference is encoded (a query or a statement) or recorded with a reason."""

from __future__ import annotations

import re

from rdflib import URIRef

from myeloma_kg.kb import load_kb_graph
from myeloma_kg.namespaces import MKG, RULE
from myeloma_kg.queries import derivation_queries
from myeloma_kg.resources import queries_dir

RULES = [f"R{i}" for i in range(1, 59)]


def test_every_rule_is_encoded_or_explained() -> None:
    graph = load_kb_graph()
    encoded = {q.rule_id for q in derivation_queries() if q.rule_id}
    encoded |= {str(o).rsplit("/", 1)[-1] for o in graph.objects(None, MKG.forRule)}
    explained = {str(s).rsplit("/", 1)[-1] for s in graph.subjects(MKG.outOfScopeReason, None)}
    explained |= {str(s).rsplit("/", 1)[-1] for s in graph.subjects(MKG.implementationNote, None)}
    missing = [r for r in RULES if r not in encoded | explained]
    assert not missing, f"rules neither encoded nor explained: {missing}"


def test_query_headers_name_rule_source_and_tests() -> None:
    for path in sorted((queries_dir()).rglob("*.rq")):
        text = path.read_text()
        assert text.startswith("#"), f"{path} has no header"
        header = text.split("\n\n")[0]
        if path.parent.name == "rules":
            rule = re.search(r"^# Rule: (R\d+)$", header, re.M)
            assert rule, f"{path}: no '# Rule:' line"
            assert path.stem.split("-")[0] == rule.group(1), f"{path}: file stem does not start with its rule id"
            for field in ("Title", "Source", "When", "Then", "Output", "Stage", "Tests"):
                assert re.search(rf"^# {field}:", header, re.M), f"{path}: header lacks {field}"
        elif path.parent.name == "qc":
            assert re.search(r"^# Problem:", header, re.M), f"{path}: QC header lacks Problem"
        else:
            assert re.search(r"^# (Source|Purpose):", header, re.M), f"{path}: header lacks Source/Purpose"


def test_statements_name_rule_and_source() -> None:
    graph = load_kb_graph()
    for cls in (MKG.Recommendation, MKG.RegimenConstraint, MKG.Advice, MKG.Warning, MKG.Action, MKG.MissingData):
        for stmt in graph.subjects(URIRef("http://www.w3.org/1999/02/22-rdf-syntax-ns#type"), cls):
            assert graph.value(stmt, MKG.ruleId) is not None, stmt
            assert graph.value(stmt, MKG.source) is not None, stmt
            rule = URIRef(str(RULE) + str(graph.value(stmt, MKG.ruleId)))
            assert (rule, MKG.ruleId, None) in graph, f"{stmt} cites {rule}, which the rule catalogue lacks"


def test_every_rule_file_runs_as_a_sparql_update() -> None:
    """Private stores run the rule files as INSERT updates: each must have the plain CONSTRUCT form."""
    from myeloma_kg.queries import construct_as_insert, derivation_queries

    for query in derivation_queries():
        insert = query.insert_text
        assert insert is not None, f"{query.path.name}: not a plain CONSTRUCT {{ }} WHERE {{ }} query"
        assert "INSERT {" in insert and "CONSTRUCT" not in insert.split("INSERT {")[0].upper().replace("PREFIX", "")
    assert construct_as_insert('CONSTRUCT { ?s <urn:p> "}" } WHERE { ?s ?p ?o }') is None


def test_the_stores_run_every_query_file_without_its_comments_and_nothing_else() -> None:
    """QueryFile.executable drops whole-line comments only: the same SPARQL algebra as the file itself."""
    import re

    from rdflib.plugins.sparql import prepareQuery

    from myeloma_kg.queries import (
        BATCH_READERS,
        api_query,
        derivation_queries,
        without_comments,
    )

    def algebra(text: str) -> str:  # the template's blank nodes get fresh ids at every parse
        return re.sub(r"BNode\('[^']*'\)", "BNode()", str(prepareQuery(text).algebra))

    for query in [*derivation_queries(), *(api_query(name) for name in BATCH_READERS)]:
        assert "\n#" not in "\n" + query.executable.replace(" ", "")
        assert algebra(query.executable) == algebra(query.text), query.path.name
    kept = 'SELECT ?x WHERE { ?x <urn:p> """a\n# not a comment""" }'
    assert without_comments(kept) == kept
    assert without_comments("# c\nSELECT * WHERE { ?x a <urn:a#b> } # trailing") == \
        "SELECT * WHERE { ?x a <urn:a#b> } # trailing"
