"""The knowledge base: ontology files loaded, closed under OWL 2 RL, with typed lookups.

:class:`KnowledgeBase` holds three views of the same content:

* ``graph``: the asserted triples of every ``ontology/*.ttl`` file (an rdflib :class:`~rdflib.Graph`);
* ``inferred``: the OWL 2 RL closure of ``graph`` computed by the ``reasonable`` reasoner, asserted
  triples included (an rdflib graph);
* ``store``: an in-memory :class:`pyoxigraph.Store` holding the closure in its default graph, for
  SPARQL.

On top of them it offers typed, frozen records for drugs, regimens (procedures included) and trials.

>>> kb = KnowledgeBase.load()
>>> kb.drug("lenalidomide").drug_class
'immunomodulatory_drug'
>>> kb.regimen("dvd").components
('bortezomib', 'daratumumab', 'dexamethasone')
>>> kb.regimen("DVd")
Traceback (most recent call last):
    ...
myeloma_kg.errors.UnknownIdentifierError: unknown regimen id 'DVd'; did you mean 'dvd'?
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from decimal import Decimal
from functools import cache, cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import pyoxigraph as ox
import reasonable
from rdflib import Graph, Literal, Namespace, URIRef
from rdflib.namespace import OWL, RDF, RDFS, SKOS, XSD

from .errors import KnowledgeBaseError, UnknownIdentifierError
from .namespaces import BASE, DRUG, MKG, PREFIXES, REGIMEN, TRIAL, local_id
from .cache import cached
from .resources import ontology_dir

if TYPE_CHECKING:  # pragma: no cover - imports for type hints only
    from .qc import QCReport

__all__ = [
    "Drug",
    "KnowledgeBase",
    "Regimen",
    "Trial",
    "TrialResult",
    "load_kb_graph",
    "ONTOLOGY_IRI",
]

#: IRI of the entry-point ontology (``ontology/myeloma-kg.ttl``).
ONTOLOGY_IRI = BASE + "ontology"
#: Namespace of the setting vocabulary (``regimens.ttl``).
SETTING = Namespace(BASE + "setting/")
#: Namespace of the recorded disagreements D1-D13 (``sources.ttl``).
DISAGREEMENT = Namespace(BASE + "disagreement/")

EXPORT_PREFIXES: dict[str, str] = {**PREFIXES, "setting": str(SETTING), "dis": str(DISAGREEMENT)}

# Size classes of treatment options, most specific kind first; the value is the kind code of the
# clinical reference (regimens.csv: doublet_triplet_quadruplet, plus "quadruplet").
_KINDS: tuple[tuple[URIRef, str], ...] = (
    (MKG.Procedure, "procedure"),
    (MKG.CellTherapy, "cell_therapy"),
    (MKG.MultiagentRegimen, "multiagent"),
    (MKG.Quadruplet, "quadruplet"),
    (MKG.Triplet, "triplet"),
    (MKG.Doublet, "doublet"),
    (MKG.Monotherapy, "monotherapy"),
)
_ENDPOINT_ORDER = {"pfs": 0, "os": 1, "orr": 2}
_ROLE_ORDER = {"experimental": 0, "control": 1, "comparison": 2}


# ---------------------------------------------------------------- loading

@cache
def load_kb_graph() -> Graph:
    """Parse every Turtle file of ``ontology/`` into one rdflib graph (asserted triples only).

    The result is cached; callers must not modify it.

    :returns: the merged, asserted graph.
    :raises KnowledgeBaseError: when a file does not parse.
    """
    files = sorted(ontology_dir().glob("*.ttl"))
    return cached("kb-graph", files, lambda: _parse_files(files))


def _parse_files(paths: Iterable[Path | str]) -> Graph:
    graph = Graph()
    for path in paths:
        try:
            graph.parse(path, format="turtle")
        except Exception as exc:  # rdflib raises several unrelated exception types
            raise KnowledgeBaseError(f"{path}: cannot parse the knowledge-base file: {exc}") from exc
    _bind(graph)
    return graph


def _bind(graph: Graph) -> None:
    """Bind the project prefixes, replacing rdflib's defaults (rdflib binds ``prof`` to W3C PROF)."""
    for prefix, ns in EXPORT_PREFIXES.items():
        graph.bind(prefix, ns, override=True, replace=True)


def _plain(term: Any) -> Any:
    """rdflib keeps ``"x"`` and ``"x"^^xsd:string`` apart (RDF 1.0); make the reasoner's output plain."""
    if isinstance(term, Literal) and term.datatype == XSD.string and term.language is None:
        return Literal(str(term))
    return term


def owl_rl_closure(graph: Graph) -> Graph:
    """Compute the OWL 2 RL closure of ``graph`` with the ``reasonable`` reasoner.

    :param graph: the asserted triples.
    :returns: a new graph with the asserted and the inferred triples.
    :raises KnowledgeBaseError: when the reasoner fails.
    """
    try:
        reasoner = reasonable.PyReasoner()
        reasoner.from_graph(graph)
        triples = reasoner.reason()
    except Exception as exc:
        raise KnowledgeBaseError(f"the OWL 2 RL reasoner failed on the knowledge base: {exc}") from exc
    closed = Graph()
    _bind(closed)
    closed.addN((s, p, _plain(o), closed) for s, p, o in triples)
    closed.addN((s, p, o, closed) for s, p, o in graph)
    return closed


def _oxigraph_store(graph: Graph) -> ox.Store:
    store = ox.Store()
    data = graph.serialize(format="nt", encoding="utf-8")
    try:
        store.bulk_load(input=data, format=ox.RdfFormat.N_TRIPLES)
    except Exception as exc:
        raise KnowledgeBaseError(f"cannot load the knowledge base into Oxigraph: {exc}") from exc
    return store


# ---------------------------------------------------------------- typed records

@dataclass(frozen=True)
class Drug:
    """A drug of the knowledge base (``drugs.ttl``).

    :param id: the drug id, e.g. ``"lenalidomide"``.
    :param label: the preferred label.
    :param drug_class: the code of the drug's primary class (``drugs.csv: drug_class``).
    :param classes: codes of every drug class the drug belongs to, superclasses included, sorted.
        Classes without a ``mkg:drugClassCode`` get the snake-case form of their name
        (``BCMADirectedTherapy`` -> ``"bcma_directed_therapy"``).
    :param routes: route codes (``"oral"``, ``"iv"``, ``"sc"``), sorted.
    :param atc_code: ATC code, or ``None`` where the reference gives none (likewise the other ids).
    :param toxicities: key toxicities, sorted.
    :param cautions: cautions, sorted.
    :param iri: the drug's IRI.
    """

    id: str
    label: str
    drug_class: str
    classes: tuple[str, ...]
    routes: tuple[str, ...]
    atc_code: str | None
    rxnorm_cui: str | None
    chebi_id: str | None
    ncit_code: str | None
    toxicities: tuple[str, ...]
    cautions: tuple[str, ...]
    iri: str


@dataclass(frozen=True)
class Regimen:
    """A treatment option: a regimen or a procedure (``regimens.ttl``).

    :param id: the regimen id, e.g. ``"dvd"``.
    :param label: the abbreviation, e.g. ``"DVd"``.
    :param alt_labels: other names (long label, other abbreviations), sorted.
    :param components: ids of the component drugs, sorted (RDF does not keep an order).
    :param backbone: backbone code (``"Rd"``, ``"Vd"``, ``"Kd"``, ``"Pd"``) or ``None``.
    :param all_oral: whether every component is taken by mouth.
    :param kind: ``"monotherapy"``, ``"doublet"``, ``"triplet"``, ``"quadruplet"``, ``"multiagent"``,
        ``"cell_therapy"`` or ``"procedure"``.
    :param front_line: whether the option is also a front-line regimen that patient histories name.
    :param settings: codes of the typical settings, sorted.
    :param iri: the regimen's IRI.
    """

    id: str
    label: str
    alt_labels: tuple[str, ...]
    components: tuple[str, ...]
    backbone: str | None
    all_oral: bool
    kind: str
    front_line: bool
    settings: tuple[str, ...]
    iri: str


@dataclass(frozen=True)
class TrialResult:
    """One reported figure of a trial, exactly as the clinical reference writes it.

    :param endpoint: ``"pfs"``, ``"os"`` or ``"orr"``.
    :param arm_role: ``"experimental"``, ``"control"`` or ``"comparison"`` (hazard ratios).
    :param median_months: a median in months, or ``None``.
    :param hazard_ratio: a hazard ratio, or ``None``.
    :param percent: a rate in percent, or ``None``.
    :param source: where the figure was read (``mkg:figureSource``).
    """

    endpoint: str
    arm_role: str
    median_months: Decimal | None
    hazard_ratio: Decimal | None
    percent: Decimal | None
    source: str


@dataclass(frozen=True)
class Trial:
    """A clinical trial (``trials.ttl``).

    :param id: the trial id, e.g. ``"castor"``.
    :param label: the trial name.
    :param nct_ids: ClinicalTrials.gov ids, sorted; empty where the reference has none.
    :param phase: the phase as reported.
    :param experimental: the regimen id of the experimental arm.
    :param controls: regimen ids of the control arm (several for investigator's choice), sorted.
    :param n: patients randomised (or enrolled), or ``None`` where the reference has no figure.
    :param results: the reported figures, PFS then OS then ORR; experimental, control, comparison.
    :param reference: the key reference.
    :param iri: the trial's IRI.
    """

    id: str
    label: str
    nct_ids: tuple[str, ...]
    phase: str | None
    experimental: str | None
    controls: tuple[str, ...]
    n: int | None
    results: tuple[TrialResult, ...]
    reference: str | None
    iri: str


T = TypeVar("T")


def _snake(name: str) -> str:
    """``BCMADirectedTherapy`` -> ``bcma_directed_therapy``.

    >>> _snake("TCellRedirectingTherapy"), _snake("MonoclonalAntibody")
    ('t_cell_redirecting_therapy', 'monoclonal_antibody')
    """
    name = re.sub(r"([A-Z]+)([A-Z][a-z])", r"\1_\2", name)
    name = re.sub(r"([a-z0-9])([A-Z])", r"\1_\2", name)
    return name.lower()


def suggest(identifier: str, names: Mapping[str, Iterable[str]], limit: int = 5) -> list[str]:
    """Return the ids whose id or name is closest to ``identifier`` (case-insensitive).

    When the identifier equals an id, label or alternative label except for case, those ids are the
    suggestions; otherwise the close matches by :func:`difflib.get_close_matches`.

    :param identifier: the unknown identifier.
    :param names: each known id with its labels.
    :param limit: the maximum number of suggestions.
    :returns: suggested ids, best first.

    >>> suggest("DVd", {"dvd": ["DVd"], "vd": ["Vd"], "kd": ["Kd"]})
    ['dvd']
    >>> suggest("lenalidomid", {"lenalidomide": ["Lenalidomide", "len"], "pomalidomide": ["Pomalidomide"]})
    ['lenalidomide', 'pomalidomide']
    """
    key = identifier.strip().lower()
    by_name: dict[str, list[str]] = {}
    for ident, labels in names.items():
        for name in (ident, *labels):
            by_name.setdefault(name.lower(), [])
            if ident not in by_name[name.lower()]:
                by_name[name.lower()].append(ident)
    found: list[str] = list(by_name.get(key, []))
    if not found:
        for close in difflib.get_close_matches(key, list(by_name), n=limit * 2, cutoff=0.6):
            found.extend(by_name[close])
    unique: list[str] = []
    for ident in found:
        if ident not in unique:
            unique.append(ident)
    return unique[:limit]


# ---------------------------------------------------------------- the knowledge base

class KnowledgeBase:
    """The knowledge base, with its OWL 2 RL closure, an Oxigraph store and typed lookups.

    Use :meth:`load` for the shipped knowledge base (cached) and :meth:`from_files` or
    :meth:`from_graph` for another one (tests, curators trying an edit). Typed records are built on
    first use; a knowledge base that is too broken to build them raises
    :class:`~myeloma_kg.errors.KnowledgeBaseError` then, while :meth:`check` still reports what is wrong.

    :param graph: the asserted triples; the knowledge base does not modify it.
    :raises KnowledgeBaseError: when the closure or the store cannot be built.
    """

    def __init__(self, graph: Graph) -> None:
        self.graph: Graph = graph
        self.inferred: Graph = owl_rl_closure(graph)
        self.store: ox.Store = _oxigraph_store(self.inferred)

    # -- construction

    @classmethod
    @cache
    def load(cls) -> KnowledgeBase:
        """Load the shipped knowledge base (every ``ontology/*.ttl``), once per process.

        :returns: the cached knowledge base.
        :raises KnowledgeBaseError: when a file does not parse or the reasoner fails.
        """
        return cls(load_kb_graph())

    @classmethod
    def from_files(cls, paths: Iterable[Path | str]) -> KnowledgeBase:
        """Build a knowledge base from the given Turtle files.

        :param paths: Turtle files, for example the shipped ones plus a curator's draft.
        :returns: a new knowledge base (not cached).
        :raises KnowledgeBaseError: when a file does not parse or the reasoner fails.
        """
        return cls(_parse_files(paths))

    @classmethod
    def from_graph(cls, graph: Graph) -> KnowledgeBase:
        """Build a knowledge base from an rdflib graph of asserted triples.

        :param graph: the asserted triples.
        :returns: a new knowledge base (not cached).
        :raises KnowledgeBaseError: when the reasoner fails.
        """
        return cls(graph)

    # -- graph helpers

    def _types(self, node: URIRef) -> set[URIRef]:
        return {o for o in self.inferred.objects(node, RDF.type) if isinstance(o, URIRef)}

    def _instances(self, cls_iri: URIRef, namespace: Namespace) -> list[URIRef]:
        ns = str(namespace)
        return sorted(
            s for s in self.inferred.subjects(RDF.type, cls_iri)
            if isinstance(s, URIRef) and str(s).startswith(ns) and "/" not in str(s)[len(ns):]
        )

    def _label(self, node: URIRef) -> str:
        labels = list(self.inferred.objects(node, RDFS.label))
        if not labels:
            raise KnowledgeBaseError(f"{self._short(node)} has no rdfs:label: add one")
        english = [lab for lab in labels if getattr(lab, "language", None) in ("en", None)]
        return str(sorted(english or labels)[0])

    def _strings(self, node: URIRef, prop: URIRef) -> tuple[str, ...]:
        return tuple(sorted({str(o) for o in self.inferred.objects(node, prop)}))

    def _one(self, node: URIRef, prop: URIRef) -> str | None:
        values = self._strings(node, prop)
        if len(values) > 1:
            raise KnowledgeBaseError(
                f"{self._short(node)} has {len(values)} values for {self._short(prop)} where one is allowed: "
                f"{', '.join(values)}; keep one"
            )
        return values[0] if values else None

    def _code(self, node: URIRef) -> str:
        code = self._one(node, MKG.code)
        return code if code is not None else local_id(str(node), MKG)

    def _short(self, node: Any) -> str:
        text = str(node)
        for prefix, ns in sorted(EXPORT_PREFIXES.items(), key=lambda kv: -len(kv[1])):
            if text.startswith(ns) and "/" not in text[len(ns):] and "#" not in text[len(ns):]:
                return f"{prefix}:{text[len(ns):]}"
        return f"<{text}>"

    # -- drugs

    @cached_property
    def _drug_class_codes(self) -> dict[URIRef, str]:
        codes: dict[URIRef, str] = {}
        for cls_iri, code in self.graph.subject_objects(MKG.drugClassCode):
            if isinstance(cls_iri, URIRef):
                codes[cls_iri] = str(code)
        return codes

    @cached_property
    def _drug_classes(self) -> set[URIRef]:
        """mkg:Drug and every class below it (asserted rdfs:subClassOf, closed)."""
        found = {MKG.Drug}
        frontier = [MKG.Drug]
        while frontier:
            parent = frontier.pop()
            for child in self.graph.subjects(RDFS.subClassOf, parent):
                if isinstance(child, URIRef) and child not in found:
                    found.add(child)
                    frontier.append(child)
        return found

    def _class_code(self, cls_iri: URIRef) -> str:
        return self._drug_class_codes.get(cls_iri) or _snake(local_id(str(cls_iri), MKG))

    def _build_drug(self, node: URIRef) -> Drug:
        types = self._types(node)
        primary = sorted(t for t in types if t in self._drug_class_codes)
        if len(primary) != 1:
            found = ", ".join(self._short(p) for p in primary) or "none"
            raise KnowledgeBaseError(
                f"{self._short(node)} must have exactly one primary drug class (a class carrying "
                f"mkg:drugClassCode); found {found}"
            )
        classes = sorted({self._class_code(t) for t in types if t in self._drug_classes})
        routes = sorted(self._code(r) for r in self.inferred.objects(node, MKG.route) if isinstance(r, URIRef))
        return Drug(
            id=local_id(str(node), DRUG),
            label=self._label(node),
            drug_class=self._drug_class_codes[primary[0]],
            classes=tuple(classes),
            routes=tuple(routes),
            atc_code=self._one(node, MKG.atcCode),
            rxnorm_cui=self._one(node, MKG.rxnormCui),
            chebi_id=self._one(node, MKG.chebiId),
            ncit_code=self._one(node, MKG.ncitCode),
            toxicities=self._strings(node, MKG.keyToxicity),
            cautions=self._strings(node, MKG.caution),
            iri=str(node),
        )

    @cached_property
    def _drugs(self) -> dict[str, Drug]:
        return {local_id(str(n), DRUG): self._build_drug(n) for n in self._instances(MKG.Drug, DRUG)}

    # -- regimens

    def _build_regimen(self, node: URIRef) -> Regimen:
        types = self._types(node)
        kinds = [code for cls_iri, code in _KINDS if cls_iri in types]
        if not kinds:
            raise KnowledgeBaseError(
                f"{self._short(node)} has no size class: type it mkg:Monotherapy, mkg:Doublet, mkg:Triplet, "
                "mkg:Quadruplet, mkg:MultiagentRegimen, mkg:CellTherapy or mkg:Procedure"
            )
        if len(kinds) > 1:
            raise KnowledgeBaseError(
                f"{self._short(node)} has several size classes ({', '.join(kinds)}); keep one"
            )
        all_oral = self._one(node, MKG.allOral)
        if all_oral is None:
            raise KnowledgeBaseError(f"{self._short(node)} has no mkg:allOral: add true or false")
        backbone = next(iter(self.inferred.objects(node, MKG.backbone)), None)
        label = self._label(node)
        alt = sorted({str(a) for a in self.inferred.objects(node, SKOS.altLabel)} - {label})
        return Regimen(
            id=local_id(str(node), REGIMEN),
            label=label,
            alt_labels=tuple(alt),
            components=tuple(sorted(
                local_id(str(c), DRUG) for c in self.inferred.objects(node, MKG.hasComponent)
            )),
            backbone=self._code(backbone) if isinstance(backbone, URIRef) else None,
            all_oral=all_oral.lower() in ("true", "1"),
            kind=kinds[0],
            front_line=MKG.FrontLineRegimen in types,
            settings=tuple(sorted(
                self._code(s) for s in self.inferred.objects(node, MKG.typicalSetting) if isinstance(s, URIRef)
            )),
            iri=str(node),
        )

    @cached_property
    def _regimens(self) -> dict[str, Regimen]:
        return {
            local_id(str(n), REGIMEN): self._build_regimen(n)
            for n in self._instances(MKG.TreatmentOption, REGIMEN)
        }

    # -- trials

    def _decimal(self, node: URIRef, prop: URIRef) -> Decimal | None:
        value = self._one(node, prop)
        return Decimal(value) if value is not None else None

    def _build_result(self, node: URIRef) -> TrialResult:
        endpoint = next(iter(self.inferred.objects(node, MKG.endpoint)), None)
        role = next(iter(self.inferred.objects(node, MKG.armRole)), None)
        if not isinstance(endpoint, URIRef) or not isinstance(role, URIRef):
            raise KnowledgeBaseError(f"{self._short(node)} needs one mkg:endpoint and one mkg:armRole")
        return TrialResult(
            endpoint=self._code(endpoint),
            arm_role=self._code(role),
            median_months=self._decimal(node, MKG.medianMonths),
            hazard_ratio=self._decimal(node, MKG.hazardRatio),
            percent=self._decimal(node, MKG.percent),
            source="; ".join(self._strings(node, MKG.figureSource)),
        )

    def _build_trial(self, node: URIRef) -> Trial:
        results = sorted(
            (self._build_result(r) for r in self.inferred.objects(node, MKG.hasResult) if isinstance(r, URIRef)),
            key=lambda r: (_ENDPOINT_ORDER.get(r.endpoint, 9), _ROLE_ORDER.get(r.arm_role, 9)),
        )
        experimental = sorted(local_id(str(r), REGIMEN) for r in self.inferred.objects(node, MKG.experimentalArm))
        n = self._one(node, MKG.nRandomized)
        return Trial(
            id=local_id(str(node), TRIAL),
            label=self._label(node),
            nct_ids=self._strings(node, MKG.nctId),
            phase=self._one(node, MKG.phase),
            experimental=experimental[0] if experimental else None,
            controls=tuple(sorted(local_id(str(r), REGIMEN) for r in self.inferred.objects(node, MKG.controlArm))),
            n=int(n) if n is not None else None,
            results=tuple(results),
            reference=self._one(node, MKG.keyReference),
            iri=str(node),
        )

    @cached_property
    def _trials(self) -> dict[str, Trial]:
        return {local_id(str(n), TRIAL): self._build_trial(n) for n in self._instances(MKG.Trial, TRIAL)}

    # -- public lookups

    def _names(self, iri: str) -> list[str]:
        node = URIRef(iri)
        return [str(o) for p in (RDFS.label, SKOS.altLabel) for o in self.inferred.objects(node, p)]

    def _lookup(self, what: str, identifier: str, table: Mapping[str, T], iri: Callable[[T], str]) -> T:
        try:
            return table[identifier]
        except KeyError:
            pass
        names = {key: self._names(iri(value)) for key, value in table.items()}
        raise UnknownIdentifierError(what, identifier, suggest(identifier, names))

    def drug(self, identifier: str) -> Drug:
        """Return the drug with this id.

        :param identifier: a drug id such as ``"lenalidomide"``.
        :returns: the drug.
        :raises UnknownIdentifierError: when no drug has this id; ``suggestions`` holds close ids.
        :raises KnowledgeBaseError: when the drug records cannot be built.

        >>> KnowledgeBase.load().drug("daratumumab").routes
        ('iv', 'sc')
        """
        return self._lookup("drug", identifier, self._drugs, lambda d: d.iri)

    def regimen(self, identifier: str) -> Regimen:
        """Return the regimen or procedure with this id.

        :param identifier: a regimen id such as ``"dvd"`` or ``"salvage_asct"``.
        :returns: the regimen.
        :raises UnknownIdentifierError: when no option has this id; ``suggestions`` holds close ids,
            found among ids, labels and alternative labels (``"DVd"`` suggests ``dvd``).
        :raises KnowledgeBaseError: when the regimen records cannot be built.
        """
        return self._lookup("regimen", identifier, self._regimens, lambda r: r.iri)

    def trial(self, identifier: str) -> Trial:
        """Return the trial with this id.

        :param identifier: a trial id such as ``"castor"``.
        :returns: the trial.
        :raises UnknownIdentifierError: when no trial has this id; ``suggestions`` holds close ids.
        :raises KnowledgeBaseError: when the trial records cannot be built.

        >>> KnowledgeBase.load().trial("castor").nct_ids
        ('NCT02136134',)
        """
        return self._lookup("trial", identifier, self._trials, lambda t: t.iri)

    def drugs(self) -> tuple[Drug, ...]:
        """Every drug, sorted by id."""
        return tuple(self._drugs[k] for k in sorted(self._drugs))

    def regimens(self) -> tuple[Regimen, ...]:
        """Every regimen and procedure, sorted by id."""
        return tuple(self._regimens[k] for k in sorted(self._regimens))

    def trials(self) -> tuple[Trial, ...]:
        """Every trial, sorted by id."""
        return tuple(self._trials[k] for k in sorted(self._trials))

    def drug_ids(self) -> tuple[str, ...]:
        """Every drug id, sorted."""
        return tuple(sorted(self._drugs))

    def regimen_ids(self) -> tuple[str, ...]:
        """Every regimen and procedure id, sorted."""
        return tuple(sorted(self._regimens))

    def trial_ids(self) -> tuple[str, ...]:
        """Every trial id, sorted."""
        return tuple(sorted(self._trials))

    # -- statistics, checks, export

    def _count(self, cls_iri: URIRef) -> int:
        return sum(1 for s in set(self.inferred.subjects(RDF.type, cls_iri)) if isinstance(s, URIRef))

    def _count_mkg_terms(self, kind: URIRef) -> int:
        ns = str(MKG)
        return sum(
            1 for s in set(self.graph.subjects(RDF.type, kind))
            if isinstance(s, URIRef) and str(s).startswith(ns) and "/" not in str(s)[len(ns):]
        )

    def stats(self) -> dict[str, int]:
        """Count the content of the knowledge base by type.

        :returns: counts, in a stable order: triples (asserted, with closure), vocabulary terms of the
            mkg namespace, then individuals by class (inferred types, so subclasses count).

        >>> KnowledgeBase.load().stats()["drugs"]
        30
        """
        return {
            "triples": len(self.graph),
            "triples_with_closure": len(self.inferred),
            "classes": self._count_mkg_terms(OWL.Class),
            "object_properties": self._count_mkg_terms(OWL.ObjectProperty),
            "datatype_properties": self._count_mkg_terms(OWL.DatatypeProperty),
            "annotation_properties": self._count_mkg_terms(OWL.AnnotationProperty),
            "drugs": self._count(MKG.Drug),
            "treatment_options": self._count(MKG.TreatmentOption),
            "regimens": self._count(MKG.Regimen),
            "procedures": self._count(MKG.Procedure),
            "front_line_regimens": self._count(MKG.FrontLineRegimen),
            "settings": self._count(MKG.Setting),
            "trials": self._count(MKG.Trial),
            "trial_results": self._count(MKG.TrialResult),
            "sources": self._count(MKG.Source),
            "profiles": self._count(MKG.Profile),
            "rules": self._count(MKG.ClinicalRule),
            "disagreements": self._count(MKG.Disagreement),
            "parameters": self._count(MKG.Parameter),
            "recommendations": self._count(MKG.Recommendation),
            "regimen_constraints": self._count(MKG.RegimenConstraint),
        }

    def check(self) -> QCReport:
        """Run the quality checks: the SHACL shapes ``shapes/knowledge.shapes.ttl`` and the SPARQL
        queries ``queries/qc/*-violation.rq``.

        :returns: the report; it raises nothing about findings (see :meth:`QCReport.raise_for_findings`).
        :raises KnowledgeBaseError: when a shape or query file is itself broken.
        """
        from .qc import run_checks

        return run_checks(self)

    def merged_graph(self, inferred: bool = False) -> Graph:
        """One graph for export: every part merged under the single ontology header.

        The part headers (``…/ontology/drugs`` etc.) and every ``owl:imports`` are dropped, since the
        parts are inside.

        :param inferred: include the OWL 2 RL closure.
        :returns: a new graph.
        """
        source = self.inferred if inferred else self.graph
        merged = Graph()
        _bind(merged)
        parts = {s for s in source.subjects(RDF.type, OWL.Ontology) if str(s) != ONTOLOGY_IRI}
        for s, p, o in source:
            if s in parts or p == OWL.imports:
                continue
            merged.add((s, p, o))
        return merged

    def serialize(self, fmt: str = "ttl", inferred: bool = False) -> bytes:
        """Serialise the merged knowledge base.

        :param fmt: ``"ttl"`` (Turtle), ``"owl"`` (RDF/XML) or ``"jsonld"`` (JSON-LD).
        :param inferred: include the OWL 2 RL closure.
        :returns: the document, UTF-8 encoded.
        :raises ValueError: for an unknown format.
        """
        graph = self.merged_graph(inferred=inferred)
        if fmt == "ttl":
            return graph.serialize(format="turtle", encoding="utf-8")
        if fmt == "owl":
            return graph.serialize(format="xml", encoding="utf-8")
        if fmt == "jsonld":
            return graph.serialize(format="json-ld", context=EXPORT_PREFIXES, indent=2, encoding="utf-8")
        raise ValueError(f"unknown export format {fmt!r}: use ttl, owl or jsonld")

    def recommend(self, patient: Any, profile: str = "default") -> Any:
        """Recommend treatment options for a patient (see :mod:`myeloma_kg.recommend`).

        :param patient: a patient document, path or graph, as :func:`recommend_patient` accepts.
        :param profile: the guideline profile code (R56), ``"default"`` unless stated.
        :returns: what :func:`myeloma_kg.recommend.recommend_patient` returns.
        """
        from .recommend import recommend_patient  # type: ignore[attr-defined]

        return recommend_patient(self, patient, profile=profile)

    def __repr__(self) -> str:
        return f"<KnowledgeBase {len(self.graph)} asserted triples, {len(self.inferred)} with closure>"
