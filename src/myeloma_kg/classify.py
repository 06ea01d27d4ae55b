"""OWL 2 RL classification of patients, compiled from the ontology's class definitions.

The situation classes of the ontology (``mkg:TripleClassRefractoryPatient`` and the others under
``mkg:PatientSituation``) are defined with ``owl:equivalentClass`` over ``owl:hasValue``,
``owl:someValuesFrom``, ``owl:intersectionOf`` and ``owl:unionOf``, plus ``rdfs:subClassOf`` and
``rdfs:subPropertyOf`` axioms. For this fragment the OWL 2 RL rules that can type an individual with a
named class are few:

* ``cls-hv2``, ``cls-svf1/2``, ``cls-int1``, ``cls-uni`` (a definition holds, so the class holds), with
  ``prp-spo1`` folded in (a ``refractoryTo`` value is an ``exposedTo`` value);
* ``cax-sco`` and ``cax-eqc1/2`` (a class implies its told superclasses; ``cls-int2`` makes the
  named conjuncts of an intersection superclasses);
* ``cls-hv1`` and ``cls-svf`` read backwards: an individual typed with a class whose definition says
  ``p value v`` counts as having ``p v`` (and so a ``p`` value of v's classes);
* every subject of the classification input is an ``owl:Thing``.

:class:`Classifier` reads the axioms once (:func:`read_axioms`, which fails loudly on any construct
outside the fragment) and applies exactly these rules to a batch of patient facts until nothing new
follows. A general OWL 2 RL reasoner (``reasonable``) re-closes the whole TBox on every call, which
costs ~17 ms a call here and made sub-20 ms single-patient answers impossible; ``reasonable`` stays
available (``Reasoner(classifier="reasonable")``) and is the oracle the tests compare this classifier
with, next to HermiT. Which classes a patient belongs to is decided by the ontology's axioms alone.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Any

import pyoxigraph as ox
from rdflib import Graph, Literal, URIRef
from rdflib.collection import Collection
from rdflib.namespace import OWL, RDF, RDFS

from .errors import KnowledgeBaseError
from .patient import ox_term

# ---------------------------------------------------------------- class expressions


@dataclass(frozen=True)
class Named:
    """A named class."""

    iri: URIRef


@dataclass(frozen=True)
class HasValue:
    """``p value v``."""

    prop: URIRef
    value: URIRef | Literal


@dataclass(frozen=True)
class Some:
    """``p some F`` (``F`` is ``owl:Thing``, a named class or an expression)."""

    prop: URIRef
    filler: Expression


@dataclass(frozen=True)
class And:
    """``A and B and ...``."""

    parts: tuple[Expression, ...]


@dataclass(frozen=True)
class Or:
    """``A or B or ...``."""

    parts: tuple[Expression, ...]


Expression = Named | HasValue | Some | And | Or


def parse_expression(graph: Graph, node: object) -> Expression:
    """Read a class expression of the supported fragment from its RDF structure.

    :raises KnowledgeBaseError: for a construct outside the fragment (the ontology changed and the
        compiler must learn it: failing loudly beats classifying wrongly).
    """
    if isinstance(node, URIRef):
        return Named(node)
    prop = graph.value(node, OWL.onProperty)
    if prop is not None:
        value = graph.value(node, OWL.hasValue)
        if value is not None:
            return HasValue(prop, value)
        filler = graph.value(node, OWL.someValuesFrom)
        if filler is not None:
            return Some(prop, parse_expression(graph, filler))
    for kind, build in ((OWL.intersectionOf, And), (OWL.unionOf, Or)):
        members = graph.value(node, kind)
        if members is not None:
            return build(tuple(parse_expression(graph, m) for m in Collection(graph, members)))
    raise KnowledgeBaseError(
        f"class expression {node!r} is outside the fragment the classification compiler supports "
        "(hasValue, someValuesFrom, intersectionOf, unionOf, named classes)")


# ---------------------------------------------------------------- the axioms


@dataclass(frozen=True)
class Axioms:
    """The axioms that classify patients, read from the slim TBox.

    :param definitions: named class -> its ``owl:equivalentClass`` expressions.
    :param supers: named class -> the class expressions it is a subclass of (told: subClassOf,
        both sides of an equivalence, the conjuncts of an intersection it equals).
    :param subproperties: property -> itself and all its sub-properties.
    :param types: individual -> its named classes (the typing of drugs and controlled values).
    """

    definitions: dict[URIRef, tuple[Expression, ...]]
    supers: dict[URIRef, tuple[Expression, ...]]
    subproperties: dict[URIRef, frozenset[URIRef]]
    types: dict[object, frozenset[URIRef]]


def read_axioms(tbox: Iterable[tuple[object, object, object]]) -> Axioms:
    """Collect the class definitions, told superclasses, sub-properties and individual typing."""
    graph = Graph()
    for triple in tbox:
        graph.add(triple)  # type: ignore[arg-type]
    definitions: dict[URIRef, list[Expression]] = {}
    supers: dict[URIRef, list[Expression]] = {}
    for cls, other in graph.subject_objects(OWL.equivalentClass):
        if isinstance(cls, URIRef):
            expression = parse_expression(graph, other)
            definitions.setdefault(cls, []).append(expression)
            supers.setdefault(cls, []).append(expression)
        if isinstance(other, URIRef) and isinstance(cls, URIRef):  # C ≡ D both named: each is the other's
            definitions.setdefault(other, []).append(Named(cls))
            supers.setdefault(other, []).append(Named(cls))
    for cls, sup in graph.subject_objects(RDFS.subClassOf):
        if isinstance(cls, URIRef):
            supers.setdefault(cls, []).append(parse_expression(graph, sup))
    direct: dict[URIRef, set[URIRef]] = {}
    for sub, sup in graph.subject_objects(RDFS.subPropertyOf):
        direct.setdefault(sup, set()).add(sub)  # type: ignore[arg-type]

    def below(prop: URIRef, seen: frozenset[URIRef] = frozenset()) -> frozenset[URIRef]:
        out = {prop}
        for sub in direct.get(prop, ()):
            if sub not in seen:
                out |= below(sub, seen | {prop})
        return frozenset(out)

    props = {p for p in graph.objects(None, OWL.onProperty) if isinstance(p, URIRef)} | set(direct)
    types: dict[object, set[URIRef]] = {}
    for individual, cls in graph.subject_objects(RDF.type):
        if isinstance(cls, URIRef) and cls not in (OWL.Class, OWL.Restriction):
            types.setdefault(individual, set()).add(cls)
    return Axioms(
        definitions={c: tuple(e) for c, e in definitions.items()},
        supers={c: tuple(e) for c, e in supers.items()},
        subproperties={p: below(p) for p in props},
        types={i: frozenset(c) for i, c in types.items()},
    )


def _conjuncts(expression: Expression) -> Iterator[Expression]:
    """An expression and, through intersections, everything it implies directly."""
    yield expression
    if isinstance(expression, And):
        for part in expression.parts:
            yield from _conjuncts(part)


def told_superclasses(axioms: Axioms, cls: URIRef) -> frozenset[URIRef]:
    """The named classes ``cls`` is a told subclass of, transitively (itself included)."""
    out: set[URIRef] = set()
    todo = [cls]
    while todo:
        current = todo.pop()
        if current in out:
            continue
        out.add(current)
        for sup in axioms.supers.get(current, ()):
            todo.extend(e.iri for e in _conjuncts(sup) if isinstance(e, Named))
    return frozenset(out)


def implied_expressions(axioms: Axioms, cls: URIRef) -> list[Expression]:
    """What membership of ``cls`` implies directly, through its told superclasses (for ``cls-hv1``)."""
    return [e for sup in told_superclasses(axioms, cls) for s in axioms.supers.get(sup, ())
            for e in _conjuncts(s) if not isinstance(e, Named)]


# ---------------------------------------------------------------- the compiled classifier

_THING = ox.NamedNode(str(OWL.Thing))
_TYPE = ox.NamedNode(str(RDF.type))


def _ox(expression: Expression) -> Expression:
    """The same expression over pyoxigraph terms (what the store hands over)."""
    if isinstance(expression, Named):
        return Named(ox_term(expression.iri))  # type: ignore[arg-type]
    if isinstance(expression, HasValue):
        return HasValue(ox_term(expression.prop), ox_term(expression.value))  # type: ignore[arg-type]
    if isinstance(expression, Some):
        return Some(ox_term(expression.prop), _ox(expression.filler))  # type: ignore[arg-type]
    if isinstance(expression, And):
        return And(tuple(_ox(p) for p in expression.parts))
    return Or(tuple(_ox(p) for p in expression.parts))


class _Individuals:
    """The facts of one classification run, indexed, with the types derived so far."""

    __slots__ = ("kb_types", "types", "values")

    def __init__(self, triples: Iterable[tuple[Any, Any, Any]], kb_types: dict[Any, frozenset[Any]]) -> None:
        self.values: dict[Any, dict[Any, set[Any]]] = {}
        self.types: dict[Any, set[Any]] = {}
        self.kb_types = kb_types
        for s, p, o in triples:
            if p == _TYPE:
                self.types.setdefault(s, set()).add(o)
            else:
                self.values.setdefault(s, {}).setdefault(p, set()).add(o)
            self.types.setdefault(s, set())

    def types_of(self, node: Any) -> set[Any] | frozenset[Any]:
        found = self.types.get(node)
        return found if found is not None else self.kb_types.get(node, frozenset())


Test = Callable[[_Individuals, Any], bool]
Entry = tuple[Any, Test]


class Classifier:
    """Classifies individuals into the named classes of the slim TBox (OWL 2 RL, this fragment).

    Built once per knowledge base from its axioms; :meth:`classify` then costs microseconds per patient
    where a general OWL 2 RL reasoner re-closes the TBox on every call (~17 ms here for ``reasonable``).

    >>> from myeloma_kg.reason import knowledge_template
    >>> template = knowledge_template()
    >>> classifier = Classifier(template.tbox)
    >>> patient, mkg = ox.NamedNode("urn:example:p1"), "https://w3id.org/myeloma-kg/"
    >>> found = classifier.classify([(patient, _TYPE, ox.NamedNode(mkg + "Patient")),
    ...     (patient, ox.NamedNode(mkg + "refractoryTo"), ox.NamedNode(mkg + "drug/lenalidomide"))])
    >>> sorted(c.value.removeprefix(mkg) for s, c in found)[:3]
    ['IMiDExposedPatient', 'IMiDRefractoryPatient', 'LenalidomideExposedPatient']
    """

    def __init__(self, tbox: Iterable[tuple[object, object, object]]) -> None:
        axioms = read_axioms(tbox)
        classes = sorted(set(axioms.supers) | set(axioms.definitions))
        self.definitions: tuple[tuple[Any, Expression], ...] = tuple(
            (ox_term(cls), _ox(e)) for cls in sorted(axioms.definitions) for e in axioms.definitions[cls])
        self.superclasses: dict[Any, frozenset[Any]] = {
            ox_term(cls): frozenset(ox_term(s) for s in told_superclasses(axioms, cls)) for cls in classes}
        self.implied: dict[Any, tuple[Expression, ...]] = {
            ox_term(cls): tuple(_ox(e) for e in implied_expressions(axioms, cls)) for cls in classes}
        self.subproperties: dict[Any, frozenset[Any]] = {
            ox_term(p): frozenset(ox_term(q) for q in subs) for p, subs in axioms.subproperties.items()}
        self.kb_types: dict[Any, frozenset[Any]] = {
            ox_term(i): frozenset(ox_term(c) for c in cs) for i, cs in axioms.types.items()
            if isinstance(i, (URIRef, Literal))}

    def classify(self, triples: Iterable[tuple[Any, Any, Any]]) -> list[tuple[Any, Any]]:
        """The (individual, class) pairs the axioms entail for these facts and their typing, minus
        the asserted ones; every subject of the facts is an ``owl:Thing``.

        :param triples: (subject, predicate, object) pyoxigraph terms: the individuals to classify and
            what the class definitions read of them (rdf:type included).
        """
        facts = _Individuals(triples, self.kb_types)
        asserted = {s: set(t) for s, t in facts.types.items()}
        objects = {o for by_property in facts.values.values() for values in by_property.values() for o in values}
        by_predicate, by_type, always = self._index
        supers = self.superclasses
        pending = list(facts.types)
        while pending:  # monotone: ends once no individual another one points at gained a class
            influential = False
            for subject in pending:
                types = facts.types[subject]
                for cls in list(types):
                    types |= supers.get(cls, frozenset())
                # only definitions that one of the subject's predicates or classes can satisfy
                todo = dict.fromkeys(always)
                for p in facts.values.get(subject, ()):
                    todo.update(dict.fromkeys(by_predicate.get(p, ())))
                for cls in types:
                    todo.update(dict.fromkeys(by_type.get(cls, ())))
                while todo:
                    cls, holds = entry = next(iter(todo))
                    del todo[entry]
                    if cls in types or not holds(facts, subject):
                        continue
                    new = ({cls} | supers.get(cls, frozenset())) - types
                    types |= new
                    influential = influential or subject in objects
                    for added in new:
                        todo.update(dict.fromkeys(by_type.get(added, ())))
            pending = list(facts.types) if influential else []
        out: list[tuple[Any, Any]] = []
        for subject, types in facts.types.items():
            known = asserted[subject]
            out.extend((subject, cls) for cls in types if cls not in known and isinstance(cls, ox.NamedNode))
            if _THING not in known and _THING not in types:
                out.append((subject, _THING))
        return out

    def __getstate__(self) -> dict[str, Any]:
        """Picklable (the endpoint ships reasoners to worker processes): the compiled tests are
        closures, rebuilt on first use after unpickling."""
        return {k: v for k, v in self.__dict__.items() if k != "_compiled_index"}

    # ------------------------------------------------------------ compiling the definitions to tests
    @property
    def _index(self) -> tuple[dict[Any, list[Entry]], dict[Any, list[Entry]], list[Entry]]:
        """Each definition's test, filed under the predicates and classes that can make it hold
        (a definition no fact can trigger, such as ``owl:Thing``, is always tested)."""
        found = self.__dict__.get("_compiled_index")
        if found is None:
            by_predicate: dict[Any, list[Entry]] = {}
            by_type: dict[Any, list[Entry]] = {}
            always: list[Entry] = []
            for cls, definition in self.definitions:
                entry = (cls, self._compile(definition))
                support = self._support(definition)
                if support is None:
                    always.append(entry)
                    continue
                for p in support[0]:
                    by_predicate.setdefault(p, []).append(entry)
                for c in support[1]:
                    by_type.setdefault(c, []).append(entry)
            found = self.__dict__["_compiled_index"] = (by_predicate, by_type, always)
        return found

    def _support(self, expression: Expression) -> tuple[frozenset[Any], frozenset[Any]] | None:
        """Predicates and classes of which a node needs one for the expression to hold (None: unknown)."""
        if isinstance(expression, Named):
            return None if expression.iri == _THING else (frozenset(), frozenset({expression.iri}))
        if isinstance(expression, (And, Or)):
            supports = [self._support(p) for p in expression.parts]
            if isinstance(expression, And):  # every part must hold: the narrowest part's support suffices
                known = [s for s in supports if s is not None]
                return min(known, key=lambda s: len(s[0]) + len(s[1])) if known else None
            if any(s is None for s in supports):
                return None
            return (frozenset().union(*(s[0] for s in supports)),  # type: ignore[index]
                    frozenset().union(*(s[1] for s in supports)))  # type: ignore[index]
        props = self.subproperties.get(expression.prop, frozenset((expression.prop,)))
        classes = self._entailing(props, lambda e: True)
        return props, classes

    def _entailing(self, props: frozenset[Any], accept: Callable[[Expression], bool]) -> frozenset[Any]:
        """The classes whose members are implied to have a value, on one of ``props``, that ``accept``s."""
        return frozenset(cls for cls, implied in self.implied.items() for e in implied
                         if not isinstance(e, (And, Or)) and e.prop in props and accept(e))  # type: ignore[union-attr]

    def _compile(self, expression: Expression) -> Test:
        """A test ``(facts, node) -> bool`` of whether node is (so far) an instance of the expression."""
        if isinstance(expression, Named):
            cls = expression.iri
            if cls == _THING:
                return lambda facts, node: True
            return lambda facts, node: cls in facts.types_of(node)
        if isinstance(expression, (And, Or)):
            parts = tuple(self._compile(p) for p in expression.parts)
            if isinstance(expression, And):
                return lambda facts, node: all(t(facts, node) for t in parts)
            return lambda facts, node: any(t(facts, node) for t in parts)
        props = self.subproperties.get(expression.prop, frozenset((expression.prop,)))
        if isinstance(expression, HasValue):
            value = expression.value
            # cls-hv1 backwards: a class whose members have this value
            classes = self._entailing(props, lambda e: isinstance(e, HasValue) and e.value == value)

            def has_value(facts: _Individuals, node: Any) -> bool:
                values = facts.values.get(node)
                if values is not None and any(value in values.get(p, ()) for p in props):
                    return True
                return not classes.isdisjoint(facts.types_of(node))
            return has_value
        filler = expression.filler
        test = self._compile(filler)
        some_classes = self._entailing(props, lambda e: isinstance(e, Some) and (
            e.filler == filler or filler == Named(_THING) or (
                isinstance(e.filler, Named) and isinstance(filler, Named)
                and filler.iri in self.superclasses.get(e.filler.iri, frozenset()))))
        implied_values = tuple((cls, e.value) for cls, implied in self.implied.items() for e in implied
                               if isinstance(e, HasValue) and e.prop in props)

        def some(facts: _Individuals, node: Any) -> bool:
            values = facts.values.get(node)
            if values is not None and any(test(facts, o) for p in props for o in values.get(p, ())):
                return True
            types = facts.types_of(node)
            if not some_classes.isdisjoint(types):
                return True
            return any(cls in types and test(facts, value) for cls, value in implied_values)
        return some
