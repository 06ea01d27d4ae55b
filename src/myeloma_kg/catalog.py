"""Read-only descriptions of knowledge-base statements, for output and explanation.

The recommendation queries return IRIs; this module turns them into what a clinician reads: the
label of an option, the rationale of a recommendation, the source with its date, a trial with its
figures. Built once from the knowledge-base graph.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cache

from rdflib import Graph, URIRef
from rdflib.namespace import RDF, RDFS, SKOS

from .kb import load_kb_graph
from .namespaces import DRUG, MKG, REGIMEN, SOURCE, TRIAL, local_id


@dataclass(frozen=True)
class SourceInfo:
    """A source as cited in output."""

    id: str
    tag: str
    label: str
    date: str | None
    date_note: str | None

    def citation(self) -> str:
        """``S003 — label (2025-08-16)``: the form used in the ``sources`` lists."""
        when = self.date or self.date_note
        return f"{self.tag} — {self.label}" + (f" ({when})" if when else "")


@dataclass(frozen=True)
class TrialInfo:
    """A trial with the figures the knowledge base holds for it."""

    id: str
    label: str
    nct_ids: tuple[str, ...]
    phase: str | None
    experimental: tuple[str, ...]
    control: tuple[str, ...]
    n: int | None
    reference: str | None
    results: tuple[dict[str, object], ...]

    def to_dict(self) -> dict[str, object]:
        """JSON form used in the ``evidence`` lists."""
        return {
            "trial": self.id,
            "label": self.label,
            "nctIds": list(self.nct_ids),
            "phase": self.phase,
            "experimental": list(self.experimental),
            "control": list(self.control),
            "randomized": self.n,
            "reference": self.reference,
            "results": list(self.results),
        }


@dataclass(frozen=True)
class StatementInfo:
    """A recommendation, constraint or advice individual."""

    iri: str
    rule_id: str
    text: str
    sources: tuple[str, ...]
    trials: tuple[str, ...]
    status: str | None
    jurisdictions: tuple[str, ...]
    disagreements: tuple[str, ...] = field(default=())
    rule_ids: tuple[str, ...] = field(default=())


@dataclass(frozen=True)
class OptionInfo:
    """A treatment option (regimen or procedure)."""

    id: str
    label: str
    name: str
    components: tuple[str, ...]


def _code(graph: Graph, node: object) -> str | None:
    if node is None:
        return None
    value = graph.value(node, MKG.code)
    return str(value) if value is not None else local_id(str(node), MKG)


class Catalog:
    """Lookups of labels, texts, sources and trials by IRI."""

    def __init__(self, graph: Graph) -> None:
        self.graph = graph
        self._sources: dict[str, SourceInfo] = {}
        self._trials: dict[str, TrialInfo] = {}
        self._statements: dict[str, StatementInfo] = {}
        self._options: dict[str, OptionInfo] = {}
        self._labels: dict[str, str] = {}
        self._disagreements: dict[str, tuple[str, str, tuple[str, ...], tuple[str, ...]]] = {}

    # ------------------------------------------------------------ sources
    def source(self, iri: str) -> SourceInfo:
        """Describe a source individual."""
        if iri not in self._sources:
            g, node = self.graph, URIRef(iri)
            tag = g.value(node, MKG.sourceTag)
            label = g.value(node, RDFS.label)
            date = g.value(node, MKG.sourceDate)
            note = g.value(node, MKG.dateNote)
            self._sources[iri] = SourceInfo(
                id=local_id(iri, SOURCE),
                tag=str(tag) if tag is not None else local_id(iri, SOURCE),
                label=str(label) if label is not None else local_id(iri, SOURCE),
                date=str(date)[:10] if date is not None else None,
                date_note=str(note) if note is not None else None,
            )
        return self._sources[iri]

    # ------------------------------------------------------------ trials
    def trial(self, iri: str) -> TrialInfo:
        """Describe a trial with its results."""
        if iri not in self._trials:
            g, node = self.graph, URIRef(iri)
            results = []
            for res in sorted(g.objects(node, MKG.hasResult), key=str):
                item: dict[str, object] = {
                    "endpoint": _code(g, g.value(res, MKG.endpoint)),
                    "arm": _code(g, g.value(res, MKG.armRole)),
                }
                for prop, key in ((MKG.medianMonths, "medianMonths"), (MKG.hazardRatio, "hazardRatio"),
                                  (MKG.percent, "percent")):
                    value = g.value(res, prop)
                    if value is not None:
                        item[key] = float(value)
                src = g.value(res, MKG.figureSource)
                item["source"] = str(src) if src is not None else None
                results.append(item)
            order = {"pfs": 0, "os": 1, "orr": 2}, {"experimental": 0, "control": 1, "comparison": 2}
            results.sort(key=lambda r: (order[0].get(str(r["endpoint"]), 9), order[1].get(str(r["arm"]), 9)))
            n = g.value(node, MKG.nRandomized)
            phase = g.value(node, MKG.phase)
            ref = g.value(node, MKG.keyReference)
            self._trials[iri] = TrialInfo(
                id=local_id(iri, TRIAL),
                label=str(g.value(node, RDFS.label) or local_id(iri, TRIAL)),
                nct_ids=tuple(sorted(str(v) for v in g.objects(node, MKG.nctId))),
                phase=str(phase) if phase is not None else None,
                experimental=tuple(sorted(local_id(str(v), REGIMEN) for v in g.objects(node, MKG.experimentalArm))),
                control=tuple(sorted(local_id(str(v), REGIMEN) for v in g.objects(node, MKG.controlArm))),
                n=int(n) if n is not None else None,
                reference=str(ref) if ref is not None else None,
                results=tuple(results),
            )
        return self._trials[iri]

    # ------------------------------------------------------------ statements
    def statement(self, iri: str) -> StatementInfo:
        """Describe a recommendation, constraint or advice individual."""
        if iri not in self._statements:
            g, node = self.graph, URIRef(iri)
            text = g.value(node, MKG.rationale) or g.value(node, MKG.message) or g.value(node, RDFS.label) or ""
            status = g.value(node, MKG.evidenceStatus)
            primary = str(g.value(node, MKG.ruleId) or "")
            others = sorted({str(r).rsplit("/", 1)[-1] for r in g.objects(node, MKG.forRule)} - {primary})
            self._statements[iri] = StatementInfo(
                iri=iri,
                rule_id=primary,
                rule_ids=tuple([primary] + others),
                text=str(text),
                sources=tuple(sorted(str(s) for s in g.objects(node, MKG.source))),
                trials=tuple(sorted(str(t) for t in g.objects(node, MKG.supportingTrial))),
                status=_code(g, status) if status is not None else None,
                jurisdictions=tuple(sorted(_code(g, j) or "" for j in g.objects(node, MKG.jurisdiction))),
                disagreements=tuple(sorted(str(d) for d in g.objects(node, MKG.disagreement))),
            )
        return self._statements[iri]

    # ------------------------------------------------------------ options
    def option(self, iri: str) -> OptionInfo:
        """Describe a treatment option."""
        if iri not in self._options:
            g, node = self.graph, URIRef(iri)
            label = g.value(node, RDFS.label)
            name = g.value(node, SKOS.definition) or label
            self._options[iri] = OptionInfo(
                id=local_id(iri, REGIMEN),
                label=str(label) if label is not None else local_id(iri, REGIMEN),
                name=str(name) if name is not None else local_id(iri, REGIMEN),
                components=tuple(sorted(local_id(str(d), DRUG) for d in g.objects(node, MKG.hasComponent))),
            )
        return self._options[iri]

    def label(self, iri: str) -> str:
        """rdfs:label of any node, or its local name."""
        label = self._labels.get(iri)
        if label is None:
            value = self.graph.value(URIRef(iri), RDFS.label)
            label = self._labels[iri] = str(value) if value is not None else iri.rsplit("/", 1)[-1]
        return label

    def disagreement(self, iri: str) -> dict[str, object]:
        """Describe a disagreement (D1-D13) with every position and its source (a fresh dict)."""
        known = self._disagreements.get(iri)
        if known is None:
            g, node = self.graph, URIRef(iri)
            known = self._disagreements[iri] = (
                iri.rsplit("/", 1)[-1], self.label(iri), tuple(sorted(str(c) for c in g.objects(node, RDFS.comment))),
                tuple(sorted(self.source(str(s)).citation() for s in g.objects(node, MKG.source))))
        ident, topic, positions, sources = known
        return {"id": ident, "topic": topic, "positions": list(positions), "sources": list(sources)}

    def is_type(self, iri: str, cls: URIRef) -> bool:
        """Whether the KB asserts ``iri`` a ``cls``."""
        return (URIRef(iri), RDF.type, cls) in self.graph


@cache
def default_catalog() -> Catalog:
    """The catalog of the packaged knowledge base."""
    return Catalog(load_kb_graph())
