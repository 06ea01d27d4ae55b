"""What a derivation query reads and writes, read from its SPARQL algebra (rdflib's parser).

The reasoner uses it twice (:mod:`myeloma_kg.reason`):

* a rule whose mandatory patterns need a predicate that no triple of the store can have yet (e.g. the
  laboratory rules for a patient without laboratory values) cannot produce anything, so it is skipped;
* the rules of one stage run concurrently when none of them reads what another writes.

Both are decided from the query text alone, so the same rule files serve every path unchanged. Parsing
with rdflib takes about a second for all rules, so the footprints are cached on disk with the other
compiled artefacts (:mod:`myeloma_kg.cache`).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

ANY = "*"  # a variable predicate or class: anything may be read or written
RDF_TYPE = "http://www.w3.org/1999/02/22-rdf-syntax-ns#type"

# algebra nodes whose solutions are solutions of their inner pattern ``p`` (filters and projections
# remove or reshape rows, never create them from nothing)
_PASS_THROUGH = frozenset({
    "Filter", "Extend", "Project", "Distinct", "Reduced", "Slice", "OrderBy", "ToMultiSet", "AggregateJoin",
    "SelectQuery", "ConstructQuery",
})


@dataclass(frozen=True)
class Footprint:
    """The predicates and classes one query needs, mentions and produces.

    :param required: predicates of the patterns every solution must match (outside OPTIONAL, MINUS,
        EXISTS, aggregates without GROUP BY and one-sided UNION branches): with no triple of one of them
        in the store, the query has no solution.
    :param reads: every predicate any pattern mentions (:data:`ANY` for a variable predicate).
    :param read_classes: the classes of every ``rdf:type`` pattern (:data:`ANY` for a variable class).
    :param writes: the predicates of the CONSTRUCT template (:data:`ANY` for a variable predicate).
    :param write_classes: the classes the template asserts; for a class variable, the IRIs its VALUES
        tables and BINDs (an ``IF`` or ``COALESCE`` of IRIs) can give, or :data:`ANY`.
    :param required_classes: the classes of the ``rdf:type`` patterns every solution must match (in the
        same places as ``required``): with no member of one of them in the store, the query has no solution.
    """

    required: frozenset[str]
    reads: frozenset[str]
    read_classes: frozenset[str]
    writes: frozenset[str]
    write_classes: frozenset[str]
    required_classes: frozenset[str] = frozenset()

    def can_match(self, present: frozenset[str] | set[str],
                  classes: frozenset[str] | set[str] | None = None) -> bool:
        """Whether the query can have a solution in a store whose triples use only the ``present``
        predicates and, when ``classes`` is given, assert membership of only those classes."""
        return self.required <= present and (classes is None or self.required_classes <= classes)

    def feeds(self, other: Footprint) -> bool:
        """Whether something this query writes may be read by ``other`` (so that their order matters)."""
        if not self.writes or not other.reads:
            return False
        if ANY in self.writes or ANY in other.reads:
            return True
        shared = self.writes & other.reads
        if shared - {RDF_TYPE}:
            return True
        if RDF_TYPE in shared:
            return (ANY in self.write_classes or ANY in other.read_classes
                    or bool(self.write_classes & other.read_classes))
        return False


def footprint(text: str) -> Footprint:
    """The footprint of one SPARQL query (SELECT or CONSTRUCT).

    >>> f = footprint('''PREFIX : <urn:x#>
    ... CONSTRUCT { ?p a :Flagged } WHERE { ?p :lab ?l . ?l :value ?v . OPTIONAL { ?p :age ?a }
    ...   FILTER NOT EXISTS { ?p a :Excluded } }''')
    >>> sorted(f.required), sorted(f.reads), sorted(f.read_classes), sorted(f.write_classes)
    (['urn:x#lab', 'urn:x#value'], ['http://www.w3.org/1999/02/22-rdf-syntax-ns#type', 'urn:x#age', \
'urn:x#lab', 'urn:x#value'], ['urn:x#Excluded'], ['urn:x#Flagged'])
    """
    from rdflib.plugins.sparql import prepareQuery

    algebra = prepareQuery(text).algebra
    reads: set[str] = set()
    read_classes: set[str] = set()
    for s, p, o, joined in _all_triples(algebra):
        for predicate in joined.get(p) or _path_predicates(p):
            reads.add(predicate)
            if predicate == RDF_TYPE:
                read_classes.add(_iri(o) or ANY)
    writes: set[str] = set()
    write_classes: set[str] = set()
    # CompValue.get() gives the key back for a missing key, so a SELECT query is told apart by its name
    template = algebra["template"] if algebra.name == "ConstructQuery" else None
    for s, p, o in template or ():
        predicate = _iri(p) or ANY
        writes.add(predicate)
        if predicate == RDF_TYPE:
            write_classes.update(_class_values(algebra, o))
    return Footprint(frozenset(_required(algebra)), frozenset(reads), frozenset(read_classes),
                     frozenset(writes), frozenset(write_classes), frozenset(_required(algebra, classes=True)))


# ---------------------------------------------------------------- the algebra walk

def _iri(term: Any) -> str | None:
    from rdflib import URIRef

    return str(term) if isinstance(term, URIRef) else None


def _path_predicates(p: Any) -> list[str]:
    """The predicates a triple pattern's predicate (an IRI, a variable or a property path) mentions."""
    from rdflib.paths import (
        AlternativePath,
        InvPath,
        MulPath,
        NegatedPath,
        SequencePath,
    )

    iri = _iri(p)
    if iri is not None:
        return [iri]
    if isinstance(p, (SequencePath, AlternativePath)):
        return [found for step in p.args for found in _path_predicates(step)]
    if isinstance(p, MulPath):
        return _path_predicates(p.path)
    if isinstance(p, InvPath):
        return _path_predicates(p.arg)
    if isinstance(p, NegatedPath):
        return [ANY]  # any predicate but the listed ones
    return [ANY]  # a variable


def _children(node: Any) -> Iterator[Any]:
    from rdflib.plugins.sparql.parserutils import CompValue

    if isinstance(node, CompValue):
        yield from node.values()
    elif isinstance(node, (list, tuple, set)):
        yield from node


def _all_triples(node: Any, joined: dict[Any, list[str]] | None = None) -> Iterator[tuple[Any, Any, Any, dict[Any, list[str]]]]:
    """Every triple pattern anywhere in the algebra (inside OPTIONAL, MINUS, EXISTS, sub-selects ...), each
    with the IRIs that VALUES tables joined with it give its variables (:func:`_joined_values`)."""
    from rdflib.plugins.sparql.parserutils import CompValue

    if isinstance(node, CompValue):
        if node.name == "BGP":
            for s, p, o in node.triples:
                yield s, p, o, joined or {}
            return
        if node.name == "TriplesBlock":  # a pattern rdflib left untranslated (e.g. inside EXISTS)
            for block in node.triples:
                yield from ((*block[i: i + 3], {}) for i in range(0, len(block) - 2, 3))
            return
        if node.name == "ConstructQuery":  # the template is written, not read
            yield from _all_triples(node.get("p"))
            return
        if node.name == "Join":
            leaves = list(_join_leaves(node))
            values = _joined_values(leaves)
            for leaf in leaves:
                yield from _all_triples(leaf, values)
            return
    for child in _children(node):
        yield from _all_triples(child)


def _join_leaves(node: Any) -> Iterator[Any]:
    """The operands of a chain of joins."""
    from rdflib.plugins.sparql.parserutils import CompValue

    if isinstance(node, CompValue) and node.name == "Join":
        yield from _join_leaves(node.p1)
        yield from _join_leaves(node.p2)
    else:
        yield node


def _joined_values(leaves: list[Any]) -> dict[Any, list[str]]:
    """The variables that a VALUES table among joined operands binds to an IRI in every row, with those IRIs.

    A basic graph pattern joined with such a table only has solutions where the variable is one of them, so
    a variable predicate there reads those predicates alone (``VALUES ?property { ... } ?s ?property ?o``).
    """
    from rdflib.plugins.sparql.parserutils import CompValue

    found: dict[Any, list[str]] = {}
    for leaf in leaves:
        table = leaf.get("p") if isinstance(leaf, CompValue) and leaf.name == "ToMultiSet" else leaf
        if not (isinstance(table, CompValue) and table.name == "values") or not table.res:
            continue
        for var in set().union(*table.res):
            iris = [_iri(row.get(var)) for row in table.res]
            if all(iris):
                found[var] = sorted(set(iris))  # type: ignore[arg-type]
    return found


def _required(node: Any, classes: bool = False) -> set[str]:
    """Predicates every solution of ``node`` must match, or with ``classes`` the classes of the
    ``rdf:type`` patterns it must match (an under-approximation: when unsure, fewer)."""
    from rdflib.paths import SequencePath
    from rdflib.plugins.sparql.parserutils import CompValue

    if not isinstance(node, CompValue):
        return set()
    name = node.name
    if name == "BGP":
        found: set[str] = set()
        for _, p, o in node.triples:
            if classes:
                if _iri(p) == RDF_TYPE and _iri(o):
                    found.add(str(o))
            elif _iri(p):
                found.add(str(p))
            elif isinstance(p, SequencePath) and all(_iri(step) for step in p.args):
                found.update(str(step) for step in p.args)  # each step must match a triple
        return found
    if name == "Join":
        return _required(node.p1, classes) | _required(node.p2, classes)
    if name in ("LeftJoin", "Minus"):
        return _required(node.p1, classes)
    if name == "Union":
        return _required(node.p1, classes) & _required(node.p2, classes)
    if name == "Group":  # without GROUP BY an aggregate has one row even over no solutions
        return _required(node.p, classes) if node.get("expr") else set()
    if name in _PASS_THROUGH:
        return _required(node.get("p"), classes)
    return set()  # VALUES, GRAPH, SERVICE ...: nothing is certain


def _class_values(algebra: Any, term: Any) -> set[str]:
    """The classes a template's ``rdf:type`` object stands for: the IRI itself; for a variable, the IRIs
    that the VALUES tables and BINDs binding it can give (an ``IF`` or ``COALESCE`` of IRIs and of
    variables that nothing binds); :data:`ANY` when a pattern binds it or a BIND computes it otherwise."""
    from rdflib import Variable
    from rdflib.plugins.sparql.parserutils import CompValue

    iri = _iri(term)
    if iri is not None:
        return {iri}
    if not isinstance(term, Variable):
        return {ANY}
    bound = _bound_variables(algebra.get("p"))
    values: set[str] = set()

    def walk(node: Any) -> None:
        if isinstance(node, CompValue):
            if node.name == "values":
                for row in node.res:
                    if term in row:
                        values.add(_iri(row[term]) or ANY)
                return
            if node.name == "BGP" and any(term in triple for triple in node.triples):
                values.add(ANY)
            if node.name == "Extend" and node.get("var") == term:
                values.update(_expression_values(node.get("expr"), bound))
        for child in _children(node):
            walk(child)

    walk(algebra.get("p"))
    return values or {ANY}


def _expression_values(expr: Any, bound: set[Any]) -> set[str]:
    """The IRIs an expression can evaluate to, when that is plain from its form (else :data:`ANY`)."""
    from rdflib import Variable
    from rdflib.plugins.sparql.parserutils import CompValue

    iri = _iri(expr)
    if iri is not None:
        return {iri}
    if isinstance(expr, Variable):
        return {ANY} if expr in bound else set()  # an unbound variable leaves the triple out
    if isinstance(expr, CompValue) and expr.name == "Builtin_IF":
        return _expression_values(expr.arg2, bound) | _expression_values(expr.arg3, bound)
    if isinstance(expr, CompValue) and expr.name == "Builtin_COALESCE":
        return {value for arg in expr.arg for value in _expression_values(arg, bound)}
    return {ANY}


def _bound_variables(node: Any) -> set[Any]:
    """Variables that a pattern, a VALUES table or a BIND of the algebra can bind."""
    from rdflib import Variable
    from rdflib.plugins.sparql.parserutils import CompValue

    found: set[Any] = set()
    if isinstance(node, CompValue):
        if node.name == "BGP":
            found.update(t for triple in node.triples for t in triple if isinstance(t, Variable))
        elif node.name == "values":
            found.update(v for row in node.res for v in row)
        elif node.name == "Extend":
            found.add(node.get("var"))
    for child in _children(node):
        found |= _bound_variables(child)
    return found
