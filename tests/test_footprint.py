"""What a derivation query reads and writes, and the waves the reasoner runs together."""

from __future__ import annotations

from pathlib import Path

import pytest

from myeloma_kg.footprint import ANY, RDF_TYPE, footprint
from myeloma_kg.queries import QueryFile, derivation_queries
from myeloma_kg.reason import query_footprints, schedule

X = "urn:x#"
P = f"PREFIX : <{X}>\n"


def _names(values: frozenset[str]) -> set[str]:
    return {v.removeprefix(X) for v in values}


def test_required_predicates_are_those_of_mandatory_patterns() -> None:
    fp = footprint(P + """CONSTRUCT { ?p a :Flag } WHERE {
        ?p :lab ?l . ?l :value ?v .
        OPTIONAL { ?p :age ?a }
        MINUS { ?p :excluded ?e }
        FILTER NOT EXISTS { ?p :hidden ?h }
        { ?p :serum ?s } UNION { ?p :serum ?s ; :urine ?u }
    }""")
    assert _names(fp.required) == {"lab", "value", "serum"}  # UNION: only what both branches need
    assert _names(fp.reads) >= {"lab", "value", "age", "excluded", "hidden", "serum", "urine"}
    assert fp.can_match({X + "lab", X + "value", X + "serum"})
    assert not fp.can_match({X + "lab", X + "serum"})  # the edge: one mandatory predicate missing


def test_aggregate_without_group_by_requires_nothing() -> None:
    # COUNT over no solutions is still one row: the query can match an empty store
    fp = footprint(P + "CONSTRUCT { ?p :n ?n } WHERE { ?p a :Patient { SELECT (COUNT(*) AS ?n) { ?x :lab ?y } } }")
    assert X + "lab" not in fp.required and RDF_TYPE in fp.required
    grouped = footprint(P + "CONSTRUCT { ?p :n ?n } WHERE { { SELECT ?p (COUNT(*) AS ?n) { ?p :lab ?y } GROUP BY ?p } }")
    assert X + "lab" in grouped.required


def test_sequence_paths_require_every_step_and_star_paths_nothing() -> None:
    fp = footprint(P + "CONSTRUCT { ?p a :Flag } WHERE { ?p :lab/:value ?v . ?p :sub* ?c }")
    assert _names(fp.required) == {"lab", "value"}
    assert _names(fp.reads) == {"lab", "value", "sub"}


def test_template_classes_from_values_and_binds() -> None:
    from_values = footprint(P + "CONSTRUCT { ?p a ?c } WHERE { VALUES ?c { :A :B } ?p :x ?y }")
    assert _names(from_values.write_classes) == {"A", "B"}
    from_if = footprint(P + "CONSTRUCT { ?p a ?c } WHERE { ?p :x ?y BIND(IF(?y > 1, :A, ?none) AS ?c) }")
    assert _names(from_if.write_classes) == {"A"}  # ?none is never bound: the triple is left out
    from_pattern = footprint(P + "CONSTRUCT { ?p a ?c } WHERE { ?p :x ?c }")
    assert from_pattern.write_classes == {ANY}
    variable_predicate = footprint(P + "CONSTRUCT { ?p ?q ?o } WHERE { ?p :x ?q , ?o }")
    assert variable_predicate.writes == {ANY}


def test_a_select_query_writes_nothing() -> None:
    fp = footprint(P + "SELECT ?p WHERE { ?p :x ?y }")
    assert fp.writes == fp.write_classes == frozenset() and _names(fp.reads) == {"x"}


def test_a_variable_predicate_joined_with_values_reads_those_predicates() -> None:
    joined = footprint(P + "SELECT * WHERE { ?p a :Patient . VALUES ?q { :a :b } ?p ?q ?v }")
    assert _names(joined.reads) == {"a", "b"} | {RDF_TYPE.removeprefix(X)}
    # the edges: a row leaving it unbound, the table in another group, no table at all
    undef = footprint(P + "SELECT * WHERE { VALUES ?q { :a UNDEF } ?p ?q ?v }")
    optional = footprint(P + "SELECT * WHERE { ?p :x ?y OPTIONAL { VALUES ?q { :a } } ?p ?q ?v }")
    free = footprint(P + "SELECT * WHERE { ?p ?q ?v }")
    assert ANY in undef.reads and ANY in optional.reads and ANY in free.reads


def test_feeds_follows_predicates_and_classes() -> None:
    writer = footprint(P + "CONSTRUCT { ?p a :A ; :score ?s } WHERE { ?p :x ?s }")
    assert writer.feeds(footprint(P + "CONSTRUCT { ?p a :B } WHERE { ?p a :A }"))
    assert writer.feeds(footprint(P + "CONSTRUCT { ?p a :B } WHERE { ?p :x ?x FILTER NOT EXISTS { ?p :score ?s } }"))
    assert writer.feeds(footprint(P + "CONSTRUCT { ?p a :B } WHERE { ?p a ?any }"))
    assert not writer.feeds(footprint(P + "CONSTRUCT { ?p a :B } WHERE { ?p a :Patient ; :x ?x }"))


def _query(name: str, stage: int, body: str) -> QueryFile:
    return QueryFile(path=Path(f"{name}.rq"), text=P + body, header={"Stage": str(stage)})


def test_schedule_keeps_file_order_semantics() -> None:
    queries = [
        _query("a", 1, "CONSTRUCT { ?p a :A } WHERE { ?p :x ?x }"),
        _query("b", 1, "CONSTRUCT { ?p a :B } WHERE { ?p :y ?y }"),  # independent of a: same wave
        _query("c", 1, "CONSTRUCT { ?p :z 1 } WHERE { ?p a :A }"),   # reads a: a later wave
        _query("d", 1, "CONSTRUCT { ?p a :D } WHERE { ?p :x ?x FILTER NOT EXISTS { ?p :w 1 } }"),
        _query("e", 1, "CONSTRUCT { ?p :w 1 } WHERE { ?p :y ?y }"),  # read by d, which must not see it
        _query("f", 1, "CONSTRUCT { ?p a :F } WHERE { ?p :z 1 }"),   # reads c: after c's wave
        _query("g", 2, "CONSTRUCT { ?p a :G } WHERE { ?p a :F }"),
    ]
    stages = schedule(queries, [footprint(q.text) for q in queries])
    waves = [[[q.name for q, _ in wave] for wave in waves] for _, waves in stages]
    assert waves == [[["a", "b", "d", "e"], ["c"], ["f"]], [["g"]]]


def test_the_rule_files_run_in_waves_that_do_not_feed_themselves() -> None:
    queries = derivation_queries()
    footprints = query_footprints(queries)
    assert len(footprints) == len(queries)
    for stage, waves in schedule(queries, footprints):
        for wave in waves:
            # within a wave no rule reads what an earlier one writes (a later one's output it must not
            # see anyway: the wave's triples are added after all of it has run)
            for i, (query, fp) in enumerate(wave):
                for later, later_fp in wave[i + 1:]:
                    assert not fp.feeds(later_fp), (stage, query.name, later.name)
    laboratory = {q.name: fp for q, fp in zip(queries, footprints) if q.name in ("R2", "R4")}
    assert all(fp.required >= {"https://w3id.org/myeloma-kg/lab"} for fp in laboratory.values())


@pytest.mark.parametrize("text", [q.text for q in derivation_queries()][:3])
def test_footprints_are_cached_by_text(text: str) -> None:
    query = QueryFile(path=Path("x.rq"), text=text)
    assert query_footprints([query]) == (footprint(text),)


def test_required_classes_are_those_of_mandatory_type_patterns() -> None:
    fp = footprint(f"""PREFIX : <{X}>
    CONSTRUCT {{ ?p a :Flagged }} WHERE {{ ?p a :Patient , :Donor . OPTIONAL {{ ?p a :Frail }}
      {{ ?p a :HighRisk }} UNION {{ ?p a :HighRisk , :Young }} FILTER NOT EXISTS {{ ?p a :Excluded }} }}""")
    assert _names(fp.required_classes) == {"Patient", "Donor", "HighRisk"}
    assert fp.can_match({RDF_TYPE}, {X + "Patient", X + "Donor", X + "HighRisk"})
    assert not fp.can_match({RDF_TYPE}, {X + "Patient", X + "HighRisk"})  # the edge: one class missing
    assert fp.can_match({RDF_TYPE})  # no classes known: predicates alone decide
