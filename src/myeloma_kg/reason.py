"""Reasoning over patient graphs: the derivation rules (SPARQL) and OWL 2 RL classification.

The pipeline for a batch of patients, in one in-memory Oxigraph store that already holds the
knowledge base and its OWL 2 RL closure:

1. the CONSTRUCT queries of ``queries/prepare`` and ``queries/rules`` run in stage order (stages
   up to :data:`CLASSIFY_AFTER_STAGE`); their triples are added to the store;
2. OWL 2 RL classification puts the patients into the defined situation classes of the ontology
   (e.g. ``TripleClassRefractoryPatient``) from the patient triples and a slim TBox: by default the
   classifier compiled from the TBox's axioms (:mod:`myeloma_kg.classify`), or the ``reasonable``
   reasoner (``Reasoner(classifier="reasonable")``, the reference the tests compare it with);
3. later stages run, if any.

Counting and negation live in SPARQL (open world, no unique names in OWL); class definitions live
in OWL. The same query files run unchanged on any SPARQL 1.1 store.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import pyoxigraph as ox
import reasonable
from rdflib import BNode, Graph, Literal, URIRef
from rdflib.namespace import OWL, RDF, RDFS

from . import footprint as footprint_module
from .cache import cached
from .classify import Classifier
from .concurrency import run_all
from .errors import KnowledgeBaseError, UsageError
from .footprint import ANY, Footprint, footprint
from .kb import load_kb_graph, owl_rl_closure
from .namespaces import MKG
from .patient import ox_term as to_ox  # re-exported: rdflib term -> pyoxigraph term
from .queries import QueryFile, batch_readers, derivation_queries
from .resources import ontology_dir, queries_dir

CLASSIFY_AFTER_STAGE = 3

_ANNOTATIONS = {
    str(RDFS.label), str(RDFS.comment), "http://www.w3.org/2004/02/skos/core#definition",
    "http://www.w3.org/2004/02/skos/core#altLabel", str(MKG.sourceNote), str(MKG.rationale),
}


# ---------------------------------------------------------------- term conversion

def to_rdflib(term: object) -> URIRef | BNode | Literal:
    """Convert a pyoxigraph term to an rdflib term."""
    if isinstance(term, ox.NamedNode):
        return URIRef(term.value)
    if isinstance(term, ox.BlankNode):
        return BNode(term.value)
    if isinstance(term, ox.Literal):
        if term.language:
            return Literal(term.value, lang=term.language)
        return Literal(term.value, datatype=URIRef(term.datatype.value))
    raise TypeError(f"not an RDF term: {term!r}")


def graph_to_ox(graph: Graph) -> Iterator[ox.Quad]:
    """Yield the triples of an rdflib graph as pyoxigraph quads in the default graph."""
    for s, p, o in graph:
        yield ox.Quad(to_ox(s), to_ox(p), to_ox(o))


# ---------------------------------------------------------------- the knowledge base, closed once

@dataclass(frozen=True)
class KnowledgeTemplate:
    """The knowledge base prepared for patient reasoning.

    :param ntriples: the KB's asserted triples and OWL 2 RL closure, as N-Triples bytes ready to bulk-load.
    :param tbox: the slim TBox handed to the reasoner with each batch (class axioms and drug typing).
    """

    ntriples: bytes
    tbox: tuple[tuple[object, object, object], ...]

    @property
    def classifying_predicates(self) -> frozenset[str]:
        """rdf:type and every property a class definition of the slim TBox restricts (with sub-properties)."""
        cached_value = self.__dict__.get("_classifying")
        if cached_value is None:
            used = {o for _, p, o in self.tbox if p == OWL.onProperty}
            while True:
                more = {s for s, p, o in self.tbox if p == RDFS.subPropertyOf and o in used and s not in used}
                if not more:
                    break
                used |= more
            cached_value = frozenset(str(u) for u in used | {RDF.type})
            object.__setattr__(self, "_classifying", cached_value)
        return cached_value

    @property
    def predicates(self) -> frozenset[str]:
        """The predicates of the knowledge base's triples (asserted and closed)."""
        return self._vocabulary()[0]

    @property
    def classes(self) -> frozenset[str]:
        """The classes the knowledge base's triples (asserted and closed) give members (rdf:type objects)."""
        return self._vocabulary()[1]

    def _vocabulary(self) -> tuple[frozenset[str], frozenset[str]]:
        """The predicates and the member classes, read in one pass over the N-Triples lines (each line is
        ``<s> <p> object .``, as written by :func:`_build_knowledge_template`) and kept."""
        found = self.__dict__.get("_vocabulary_found")
        if found is None:
            rdf_type = str(RDF.type)
            predicates: set[str] = set()
            classes: set[str] = set()
            for line in self.ntriples.splitlines():
                if not line or line.startswith(b"#"):
                    continue
                _, predicate, rest = line.split(b" ", 2)
                iri = predicate[1:-1].decode("utf-8")
                predicates.add(iri)
                if iri == rdf_type and rest.startswith(b"<"):
                    classes.add(rest[1:rest.index(b">")].decode("utf-8"))
            found = (frozenset(predicates), frozenset(classes))
            object.__setattr__(self, "_vocabulary_found", found)
        return found

    def quads(self, predicates: frozenset[str]) -> list[ox.Quad]:
        """The knowledge base's triples whose predicate is one of ``predicates``, as pyoxigraph quads (made
        once per predicate set, then kept)."""
        made: dict[frozenset[str], list[ox.Quad]] = self.__dict__.setdefault("_quads", {})
        found = made.get(predicates)
        if found is None:
            found = made[predicates] = [
                ox.Quad(t.subject, t.predicate, t.object)
                for t in ox.parse(self.ntriples, format=ox.RdfFormat.N_TRIPLES) if t.predicate.value in predicates]
        return found

    @property
    def classifier(self) -> Classifier:
        """The compiled classifier of the slim TBox (built on first use, then kept)."""
        found = self.__dict__.get("_classifier")
        if found is None:
            found = Classifier(self.tbox)
            object.__setattr__(self, "_classifier", found)
        return found


@cache
def knowledge_template() -> KnowledgeTemplate:
    """Close the knowledge base once and keep what per-batch reasoning needs (cached on disk).

    :raises KnowledgeBaseError: when the ontology cannot be loaded or closed.
    """
    inputs = sorted(ontology_dir().glob("*.ttl")) + sorted((queries_dir() / "prepare-kb").glob("*.rq"))
    return cached("knowledge-template", inputs, _build_knowledge_template)


def _build_knowledge_template() -> KnowledgeTemplate:
    asserted = load_kb_graph()
    closed = owl_rl_closure(asserted)
    _prepare_kb(closed)
    ntriples = closed.serialize(format="nt", encoding="utf-8")
    tbox = _slim_tbox(asserted, closed)
    return KnowledgeTemplate(ntriples=ntriples, tbox=tuple(tbox))


def _prepare_kb(closed: Graph) -> list[tuple[Any, Any, Any]]:
    """Run the knowledge-base preparation queries (``queries/prepare-kb``) on the closed knowledge base, add
    their triples to it and return them (the benchmark's baseline adds them to the asserted knowledge base)."""
    store = ox.Store()
    store.extend(ox.Quad(to_ox(s), to_ox(p), to_ox(o)) for s, p, o in closed)
    prepared: list[tuple[Any, Any, Any]] = []
    for path in sorted((queries_dir() / "prepare-kb").glob("*.rq")):
        for t in store.query(path.read_text(encoding="utf-8")):
            triple = (to_rdflib(t.subject), to_rdflib(t.predicate), to_rdflib(t.object))
            prepared.append(triple)
            closed.add(triple)
    return prepared


def _slim_tbox(asserted: Graph, closed: Graph) -> list[tuple[object, object, object]]:
    """The axioms that classify patients, plus the typing of the individuals patient triples point at.

    Patients only need to be recognised as members of the defined situation classes, so the reasoner
    gets the subclass and equivalence axioms of every subclass of ``mkg:PatientSituation`` (with their
    restriction and list structures), the sub-property axioms, and the rdf:type triples (closed) of
    drugs and controlled values. Keeping this small keeps per-batch reasoning in the milliseconds.
    """
    keep: list[tuple[object, object, object]] = []

    def with_structure(node: object) -> None:
        for p, o in asserted.predicate_objects(node):
            if str(p) in _ANNOTATIONS:
                continue
            keep.append((node, p, o))
            if isinstance(o, BNode):
                with_structure(o)

    situations = set(closed.subjects(RDFS.subClassOf, MKG.PatientSituation)) | {MKG.PatientSituation}
    for cls in situations:
        keep.append((cls, RDF.type, OWL.Class))
        for p, o in asserted.predicate_objects(cls):
            if p in (RDFS.subClassOf, OWL.equivalentClass):
                keep.append((cls, p, o))
                if isinstance(o, BNode):
                    with_structure(o)
    for s, o in asserted.subject_objects(RDFS.subPropertyOf):
        keep.append((s, RDFS.subPropertyOf, o))
    individuals_of = {MKG.Drug, MKG.CytogeneticAbnormality, MKG.FrailtyCategory, MKG.RelapseKind, MKG.RelapseTempo}
    members = set()
    for cls in individuals_of:
        members.update(closed.subjects(RDF.type, cls))
    for s in members:
        for o in closed.objects(s, RDF.type):
            if o not in (OWL.NamedIndividual, OWL.Thing):
                keep.append((s, RDF.type, o))
    return keep


# ---------------------------------------------------------------- per-batch reasoning

_CLASSIFICATION_INPUT = """
PREFIX mkg: <https://w3id.org/myeloma-kg/>
CONSTRUCT { ?s ?p ?o } WHERE {
  ?patient a mkg:Patient .
  { ?patient ?p ?o . BIND(?patient AS ?s) }
  UNION { ?patient mkg:relapse ?s . ?s ?p ?o }
  UNION { ?patient mkg:cytogenetics ?s . ?s ?p ?o }
  UNION { ?patient mkg:lab ?s . ?s ?p ?o }
}
"""


def query_footprints(queries: Sequence[QueryFile]) -> tuple[Footprint, ...]:
    """The footprint (:mod:`myeloma_kg.footprint`) of each query, cached on disk by the queries' texts."""
    texts = [q.text for q in queries]
    digest = hashlib.sha256("\0".join(texts).encode("utf-8")).hexdigest()[:24]
    # keyed by the analysis' own code too: a change to it must not serve footprints it no longer gives
    return cached(f"footprints-{digest}", [Path(footprint_module.__file__ or "")],
                  lambda: tuple(footprint(text) for text in texts))


Wave = list[tuple[QueryFile, Footprint]]


def schedule(queries: Sequence[QueryFile], footprints: Sequence[Footprint]) -> list[tuple[int, list[Wave]]]:
    """The queries by stage, each stage in waves whose rules may run together and give what running them
    one by one in file order gives.

    A rule goes in a later wave than every earlier rule of its stage whose output it may read, and in no
    earlier wave than an earlier rule that may read its own output (which must not see it).
    """
    stages: list[tuple[int, list[Wave]]] = []
    placed: list[tuple[int, Footprint]] = []
    for query, fp in zip(queries, footprints):
        if not stages or stages[-1][0] != query.stage:
            stages.append((query.stage, []))
            placed = []
        wave = 0
        for earlier_wave, earlier in placed:
            if earlier.feeds(fp):
                wave = max(wave, earlier_wave + 1)
            elif fp.feeds(earlier):
                wave = max(wave, earlier_wave)
        waves = stages[-1][1]
        while len(waves) <= wave:
            waves.append([])
        waves[wave].append((query, fp))
        placed.append((wave, fp))
    return stages


class Reasoner:
    """Derives the facts and situations of patients in a store that holds the knowledge base.

    A cohort batch gets a fresh private in-memory store holding the knowledge-base triples its queries can
    read (:meth:`batch_store`, filled in about 8 ms) and the rule files run inside it as SPARQL updates. A single
    patient reuses a kept store, and with an external store (any SPARQL 1.1 store, e.g.
    :class:`myeloma_kg.remote.RemoteStore`) the rules run as CONSTRUCT queries whose triples are
    journaled and removed afterwards (see :meth:`batch`).

    >>> reasoner = Reasoner()
    >>> store = reasoner.new_store()
    >>> len(store) > 1000
    True
    """

    FRESH_STORE_MIN = 8
    # A renewal costs ~8 ms (the pruned knowledge base, see kb_predicates); the removed triples a kept store
    # holds slow its later queries (measured: a patient ~0.5-0.9 ms faster renewing every 30-50 batches than
    # every 200)
    STORE_RENEWAL = 40
    CLASSIFIERS = ("compiled", "reasonable")

    def __init__(self, template: KnowledgeTemplate | None = None,
                 queries: Iterable[QueryFile] | None = None, store: Any | None = None,
                 classifier: str = "compiled", *, skip_unmatchable: bool = True, concurrent: bool = False,
                 readers: Iterable[QueryFile] | None = None, prune_kb: bool = True) -> None:
        """:param store: a store that already holds the knowledge base and its closure, to reason in
            instead of a private in-memory one — any object with pyoxigraph's ``query``, ``extend``,
            ``remove`` and ``__contains__`` (for example :class:`myeloma_kg.remote.RemoteStore`).
        :param classifier: ``compiled`` (:class:`myeloma_kg.classify.Classifier`, the default) or
            ``reasonable`` (the general OWL 2 RL reasoner; same classes, ~17 ms more per call).
        :param skip_unmatchable: in a private store, skip the rules whose mandatory patterns need a
            predicate no triple has (see :meth:`derive`); the results are the same either way.
        :param concurrent: run the rules of a wave (:func:`schedule`), and the engine's read queries, on
            several threads for small batches in the kept store (:mod:`myeloma_kg.concurrency`); the
            results are the same. Off by default: pyoxigraph takes the GIL back for every row it hands
            over, so the threads mostly wait for each other (measured on 2 cores: no faster, ~35 % more
            CPU, and slower beside the validation helper process of :mod:`myeloma_kg.offload`).
        :param readers: the queries that will read the stores :meth:`batch` yields, besides the derivation
            rules (default: :func:`myeloma_kg.queries.batch_readers`). Those stores hold only the
            knowledge-base triples whose predicate one of them, a rule or the classification reads
            (:meth:`kb_predicates`).
        :param prune_kb: False gives batch stores the whole knowledge base (the results are the same)."""
        if classifier not in self.CLASSIFIERS:
            raise UsageError(f"unknown classifier {classifier!r}: choose one of {', '.join(self.CLASSIFIERS)}")
        self.template = template or knowledge_template()
        self.queries = tuple(queries) if queries is not None else derivation_queries()
        self.classifier = classifier
        self._compiled = self.template.classifier if classifier == "compiled" else None
        self._external: Any | None = store
        self._journal: list[ox.Quad] | None = None
        self._kept: ox.Store | None = None
        self._kept_batches = 0
        self.skip_unmatchable = skip_unmatchable
        self.concurrent = concurrent
        self.readers = tuple(readers) if readers is not None else batch_readers()
        self.prune_kb = prune_kb
        self._stages: list[tuple[int, list[Wave]]] | None = None
        self._kb_predicates: frozenset[str] | None = None
        self._all_footprints: tuple[Footprint, ...] | None = None

    def new_store(self) -> ox.Store:
        """A fresh in-memory store loaded with the knowledge base and its closure."""
        store = ox.Store()
        store.bulk_load(self.template.ntriples, format=ox.RdfFormat.N_TRIPLES)
        return store

    def kb_predicates(self) -> frozenset[str] | None:
        """The predicates of the knowledge-base triples a batch store needs: those the derivation rules and
        the :attr:`readers` mention, and the classifying ones (the classification reads only patient triples
        with those); None when a query reads a variable predicate, or ``prune_kb`` is off (the store then
        holds every triple).

        A query's solutions depend only on the triples its patterns can match, so leaving out the others
        (labels, definitions, trial figures ...: about 40 % of the triples) changes no result and makes a
        batch store about three times faster to fill.
        """
        if not self.prune_kb:
            return None
        if self._kb_predicates is None:
            reads = set(self.template.classifying_predicates)
            for fp in self._footprints():
                reads |= fp.reads
            self._kb_predicates = frozenset() if ANY in reads else frozenset(reads)  # empty: the whole KB
        return self._kb_predicates or None

    def _footprints(self) -> tuple[Footprint, ...]:
        """The footprints of the derivation queries, then of the readers: one analysis, cached on disk."""
        if self._all_footprints is None:
            self._all_footprints = query_footprints(self.queries + self.readers)
        return self._all_footprints

    def batch_store(self) -> ox.Store:
        """A fresh in-memory store with the knowledge-base triples the batch's queries read
        (:meth:`kb_predicates`)."""
        predicates = self.kb_predicates()
        if predicates is None:
            return self.new_store()
        store = ox.Store()
        store.extend(self.template.quads(predicates))
        return store

    def add_patients(self, store: ox.Store, patients: Iterable[Graph | list[ox.Quad]]) -> list[ox.Quad]:
        """Add patients (rdflib graphs, or lists of pyoxigraph quads) to the store's default graph;
        returns the quads added."""
        quads: list[ox.Quad] = []
        for patient in patients:
            quads.extend(graph_to_ox(patient) if isinstance(patient, Graph) else patient)
        return self._add(store, quads)

    def _add(self, store: Any, quads: list[ox.Quad]) -> list[ox.Quad]:
        """Add quads; in a journaled (external) store only those not already present, and journal them,
        so that removing a batch never removes knowledge-base triples."""
        if self._journal is None:
            store.extend(quads)
            return quads
        new = [q for q in dict.fromkeys(quads) if q not in store]
        store.extend(new)
        self._journal.extend(new)
        return new

    @contextmanager
    def batch(self, patients: Iterable[Graph | list[ox.Quad]]) -> Iterator[Any]:
        """A store holding the knowledge base plus these patients with everything derived for them.

        Batches do not see each other. A batch of :attr:`FRESH_STORE_MIN` patients or more gets a fresh
        private store (filling it with the knowledge base costs about 8 ms; the rules then run as SPARQL
        updates, and dropping the store frees everything). A smaller batch — one patient at the
        terminal or behind the endpoint — reuses a kept store: its triples are journaled and removed
        on exit, and the store is renewed every :attr:`STORE_RENEWAL` batches (pyoxigraph keeps removed
        triples until the store is dropped: memory, and time in later queries). An external store is always journaled.
        Not thread-safe: use one reasoner per thread or process.
        """
        patients = list(patients)
        if self._external is None and len(patients) >= self.FRESH_STORE_MIN:
            store = self.batch_store()
            added = self.add_patients(store, patients)
            self.derive_added(store, added)
            yield store
            return
        if self._external is not None:
            store = self._external
        else:
            if self._kept is None or self._kept_batches >= self.STORE_RENEWAL:
                self._kept, self._kept_batches = self.batch_store(), 0
            self._kept_batches += 1
            store = self._kept
        self._journal = []
        try:
            added = self.add_patients(store, patients)
            self.derive_added(store, added)
            yield store
        finally:
            for quad in self._journal:
                store.remove(quad)
            self._journal = None

    def present_predicates(self, patient_quads: Iterable[ox.Quad]) -> frozenset[str] | None:
        """The predicates of a private store holding the knowledge base and these patient quads (for
        :meth:`derive`); None when rules are not to be skipped, or the reasoner works in an external store
        (which may hold more than the knowledge base)."""
        if not self.skip_unmatchable or self._external is not None:
            return None
        return self.template.predicates.union({q.predicate.value for q in patient_quads})

    def present_classes(self, patient_quads: Iterable[ox.Quad]) -> frozenset[str] | None:
        """The classes with members in a private store holding the knowledge base and these patient quads
        (for :meth:`derive`); None under the same conditions as :meth:`present_predicates`."""
        if not self.skip_unmatchable or self._external is not None:
            return None
        rdf_type = str(RDF.type)
        return self.template.classes.union({q.object.value for q in patient_quads if q.predicate.value == rdf_type})

    def derive_added(self, store: Any, added: list[ox.Quad]) -> None:
        """:meth:`derive`, skipping the rules the store cannot match once these patient quads were added to
        the knowledge base (:meth:`present_predicates`, :meth:`present_classes`)."""
        self.derive(store, self.present_predicates(added), self.present_classes(added))

    def stages(self) -> list[tuple[int, list[Wave]]]:
        """The derivation queries by stage and wave (:func:`schedule`), computed once."""
        if self._stages is None:
            self._stages = schedule(self.queries, self._footprints()[: len(self.queries)])
        return self._stages

    def derive(self, store: Any, present: frozenset[str] | None = None,
               classes: frozenset[str] | None = None) -> None:
        """Run every derivation stage and the OWL classification over all patients in ``store``.

        :param present: every predicate the store's triples use, when known (:meth:`present_predicates`):
            a rule whose mandatory patterns need another one cannot produce anything and is skipped
            (e.g. the laboratory rules for patients without laboratory values). Each rule that runs
            adds what its template can write. None runs every rule.
        :param classes: likewise, every class with a member in the store (:meth:`present_classes`): a rule
            whose mandatory ``rdf:type`` patterns need another class is skipped (R36 needs a patient with a
            donor and high-risk cytogenetics). Each rule adds the classes its template can assert, the
            classification the classes it found. None skips on predicates alone.
        """
        known, known_classes = present, classes if present is not None else None
        classified = False
        for stage, waves in self.stages():
            if stage > CLASSIFY_AFTER_STAGE and not classified:
                found = self._classify(store)
                if known_classes is not None:
                    known_classes = known_classes | {c.value for _, c in found}
                classified = True
            for wave in waves:
                runnable = [(q, fp) for q, fp in wave if known is None or fp.can_match(known, known_classes)]
                self._run_wave(store, [q for q, _ in runnable])
                if known is not None:
                    written = frozenset().union(*(fp.writes for _, fp in runnable))
                    known = None if ANY in written else known | written
                if known_classes is not None:
                    asserted = frozenset().union(*(fp.write_classes for _, fp in runnable))
                    known_classes = None if known is None or ANY in asserted else known_classes | asserted
        if not classified:
            self._classify(store)

    def _run_wave(self, store: Any, queries: list[QueryFile]) -> None:
        """Run rules that do not read each other's output: together on several threads in the kept store
        (their triples are added afterwards, in rule order), else one by one."""
        if not (self.concurrent and len(queries) > 1 and self._journal is not None and self._external is None):
            for query in queries:
                self.run_rule(store, query)
            return
        found = run_all([lambda query=query: self._construct(store, query) for query in queries])
        self._add(store, [quad for quads in found for quad in quads])

    def run_rule(self, store: Any, query: QueryFile) -> None:
        """Add what one rule file derives: as a SPARQL update inside a private pyoxigraph store,
        as a CONSTRUCT query whose triples are added (and journaled) otherwise."""
        insert = query.insert_text
        if self._journal is None and insert is not None and isinstance(store, ox.Store):
            try:
                store.update(insert)
            except SyntaxError as exc:
                raise KnowledgeBaseError(f"{query.path}: {exc}") from exc
            return
        self.run_construct(store, query)

    def run_construct(self, store: Any, query: QueryFile) -> int:
        """Run one CONSTRUCT query and add its triples to the store; returns how many it produced.

        :raises KnowledgeBaseError: when the query is not valid SPARQL.
        """
        quads = self._construct(store, query)
        self._add(store, quads)
        return len(quads)

    @staticmethod
    def _construct(store: Any, query: QueryFile) -> list[ox.Quad]:
        """The triples one CONSTRUCT query builds, as default-graph quads (nothing is added)."""
        try:
            triples = store.query(query.executable)
        except SyntaxError as exc:
            raise KnowledgeBaseError(f"{query.path}: {exc}") from exc
        if isinstance(triples, ox.QueryTriples):
            # Quads made by pyoxigraph's parser from the N-Triples of the result (blank nodes keep their
            # labels): ox.Quad() costs 3-5 us for a blank-node subject or a literal object (pyo3 tries
            # each kind of term in turn), the round trip about 1 us.
            return list(ox.parse(triples.serialize(format=_N_TRIPLES), format=_N_TRIPLES, lenient=True))
        return [ox.Quad(t.subject, t.predicate, t.object) for t in triples]

    def classify(self, store: Any) -> int:
        """Classify every patient in the store into the ontology's defined classes (OWL 2 RL).

        Only the patient triples whose predicate some class definition mentions are read (the
        others cannot change a classification).

        :returns: the number of rdf:type triples added.
        """
        return len(self._classify(store))

    def _classify(self, store: Any) -> list[tuple[Any, Any]]:
        """:meth:`classify`, giving the (subject, class) pairs it found (pyoxigraph terms)."""
        relevant = self.template.classifying_predicates
        facts = [(t.subject, t.predicate, t.object)
                 for t in store.query(_CLASSIFICATION_INPUT) if t.predicate.value in relevant]
        if self._compiled is not None:
            found = self._compiled.classify(facts)
        else:
            found = classify_with_reasonable(self.template.tbox, facts)
        self._add(store, [ox.Quad(s, _RDF_TYPE, c) for s, c in found])
        return found


def classify_with_reasonable(tbox: Iterable[tuple[object, object, object]],
                             facts: list[tuple[Any, Any, Any]]) -> list[tuple[Any, Any]]:
    """The reference classification: the ``reasonable`` OWL 2 RL reasoner over the TBox and the facts.

    :param facts: pyoxigraph (subject, predicate, object) terms.
    :returns: the (subject, named class) pairs it entails for the facts' subjects that the facts do
        not assert, as pyoxigraph terms (the same contract as :meth:`Classifier.classify`).
    """
    if not facts:
        return []
    converted = [(to_rdflib(s), to_rdflib(p), to_rdflib(o)) for s, p, o in facts]
    subjects = {s for s, _, _ in converted}
    known = set(converted)
    reasoner = reasonable.PyReasoner()
    reasoner.from_graph(list(tbox) + converted)
    return [(to_ox(s), to_ox(o)) for s, p, o in reasoner.reason()
            if p == RDF.type and s in subjects and isinstance(o, URIRef) and (s, p, o) not in known]


_RDF_TYPE = ox.NamedNode(str(RDF.type))
_N_TRIPLES = ox.RdfFormat.N_TRIPLES


@cache
def default_reasoner() -> Reasoner:
    """A process-wide :class:`Reasoner` over the packaged knowledge base."""
    return Reasoner()
