"""Quality control of the knowledge base: SHACL shapes plus ROBOT-style SPARQL violation queries.

Two kinds of check run over a :class:`~myeloma_kg.kb.KnowledgeBase`:

* the shapes of ``shapes/knowledge.shapes.ttl`` (pySHACL, over the asserted graph, which holds the
  ontology, so ``sh:targetClass`` follows ``rdfs:subClassOf``); the check id of a finding is the local
  name of the shape that produced it, for example ``regimen-component``;
* every ``queries/qc/*-violation.rq`` (over the Oxigraph store with the OWL 2 RL closure); each returns
  one row per violation with at least ``?focus`` and ``?message``; the check id is the file stem
  without ``-violation``, for example ``drug-primary-class``.

Findings are results, not exceptions: :func:`run_checks` returns a :class:`QCReport`, and
:meth:`QCReport.raise_for_findings` raises only when asked.

>>> from myeloma_kg.kb import KnowledgeBase
>>> report = KnowledgeBase.load().check()
>>> "drug-primary-class" in report.checks and "regimen-component" in report.checks
True
>>> report.conforms == (len(report.findings) == 0)
True
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING

import pyoxigraph as ox
from rdflib import Graph, URIRef
from rdflib.namespace import RDF, SH

from .errors import KnowledgeBaseError
from .resources import queries_dir, shapes_dir

if TYPE_CHECKING:  # pragma: no cover
    from .kb import KnowledgeBase

__all__ = ["QCFinding", "QCReport", "run_checks", "knowledge_shapes_path", "qc_query_paths"]

SHAPES_FILE = "knowledge.shapes.ttl"
_SEVERITY = {str(SH.Violation): "violation", str(SH.Warning): "warning", str(SH.Info): "info"}


@dataclass(frozen=True)
class QCFinding:
    """One problem found in the knowledge base.

    :param check: the check id: a shape's local name or a query's file stem without ``-violation``.
    :param focus: the IRI (or blank-node id) of the node at fault.
    :param message: what is wrong and how to fix it, written for a curator.
    :param engine: ``"shacl"`` or ``"sparql"``.
    :param severity: ``"violation"`` (default), ``"warning"`` or ``"info"``.
    :param path: the property the SHACL result is about, when there is one.
    :param value: the offending value, when the SHACL result names one.
    """

    check: str
    focus: str
    message: str
    engine: str
    severity: str = "violation"
    path: str | None = None
    value: str | None = None

    def to_dict(self) -> dict[str, str | None]:
        """A JSON-ready form."""
        return {
            "check": self.check,
            "focus": self.focus,
            "message": self.message,
            "engine": self.engine,
            "severity": self.severity,
            "path": self.path,
            "value": self.value,
        }


@dataclass(frozen=True)
class QCReport:
    """The findings of one quality-control run.

    :param findings: every finding, sorted by check then focus.
    :param checks: the ids of the checks that ran (shapes and queries).
    """

    findings: tuple[QCFinding, ...]
    checks: tuple[str, ...] = field(default=())

    @property
    def conforms(self) -> bool:
        """True when no check found anything."""
        return not self.findings

    def __len__(self) -> int:
        return len(self.findings)

    def by_check(self) -> dict[str, list[QCFinding]]:
        """The findings grouped by check id."""
        grouped: dict[str, list[QCFinding]] = {}
        for finding in self.findings:
            grouped.setdefault(finding.check, []).append(finding)
        return grouped

    def to_dict(self) -> dict[str, object]:
        """A JSON-ready form: ``conforms``, ``checks`` and ``findings``."""
        return {
            "conforms": self.conforms,
            "checks": list(self.checks),
            "findings": [f.to_dict() for f in self.findings],
        }

    def format_text(self) -> str:
        """One line per finding (``check  focus  message``) and a closing count."""
        lines = [
            f"[{f.check}] {f.focus}: {f.message}" + (f" (value: {f.value})" if f.value else "")
            for f in self.findings
        ]
        lines.append(
            f"{len(self.findings)} finding(s) from {len(self.checks)} checks"
            if self.findings else f"knowledge base passes all {len(self.checks)} checks"
        )
        return "\n".join(lines)

    def raise_for_findings(self) -> None:
        """Raise when there are findings.

        :raises KnowledgeBaseError: listing the findings.
        """
        if self.findings:
            raise KnowledgeBaseError("knowledge-base check failed:\n" + self.format_text())


def knowledge_shapes_path() -> Path:
    """The SHACL shapes file for the knowledge base."""
    return shapes_dir() / SHAPES_FILE


def qc_query_paths() -> list[Path]:
    """The QC violation queries, sorted by name."""
    return sorted((queries_dir() / "qc").glob("*-violation.rq"))


@cache
def _shapes_graph(path: Path) -> Graph:
    try:
        return Graph().parse(path, format="turtle")
    except Exception as exc:
        raise KnowledgeBaseError(f"{path}: cannot parse the knowledge-base shapes: {exc}") from exc


def _local(iri: str) -> str:
    for sep in ("#", "/"):
        if sep in iri:
            iri = iri.rsplit(sep, 1)[1]
    return iri


def _check_id(results: Graph, result: object, shapes: Graph) -> str:
    """Name a SHACL result by the nearest named shape: the source shape, or the node shape that holds
    an anonymous property shape."""
    source = results.value(result, SH.sourceShape)
    if isinstance(source, URIRef):
        return _local(str(source))
    parent = shapes.value(predicate=SH.property, object=source)
    if isinstance(parent, URIRef):
        return _local(str(parent))
    return "shape"


def shacl_findings(kb: KnowledgeBase, shapes_path: Path | None = None) -> tuple[list[QCFinding], list[str]]:
    """Run the knowledge-base shapes over the asserted graph.

    :param kb: the knowledge base.
    :param shapes_path: another shapes file (default: :func:`knowledge_shapes_path`).
    :returns: the findings and the ids of the named shapes that ran.
    :raises KnowledgeBaseError: when the shapes cannot be read or pySHACL fails.
    """
    import pyshacl

    path = shapes_path or knowledge_shapes_path()
    shapes = _shapes_graph(path)
    try:
        _conforms, results, _text = pyshacl.validate(
            data_graph=kb.graph, shacl_graph=shapes, inference="none", allow_warnings=True
        )
    except Exception as exc:
        raise KnowledgeBaseError(f"{path}: SHACL validation failed to run: {exc}") from exc
    findings = []
    for result in results.subjects(RDF.type, SH.ValidationResult):
        messages = sorted(str(m) for m in results.objects(result, SH.resultMessage))
        path_node = results.value(result, SH.resultPath)
        value = results.value(result, SH.value)
        findings.append(QCFinding(
            check=_check_id(results, result, shapes),
            focus=str(results.value(result, SH.focusNode)),
            message=messages[0] if messages else "SHACL constraint violated",
            engine="shacl",
            severity=_SEVERITY.get(str(results.value(result, SH.resultSeverity)), "violation"),
            path=str(path_node) if path_node is not None else None,
            value=str(value) if value is not None else None,
        ))
    named = set()
    for shape in shapes.subjects(SH.message, None):
        if isinstance(shape, URIRef):
            named.add(_local(str(shape)))
        else:
            parent = shapes.value(predicate=SH.property, object=shape)
            if isinstance(parent, URIRef):
                named.add(_local(str(parent)))
    return findings, sorted(named)


def sparql_findings(kb: KnowledgeBase, paths: Iterable[Path] | None = None) -> tuple[list[QCFinding], list[str]]:
    """Run the QC violation queries over the knowledge base's Oxigraph store.

    :param kb: the knowledge base.
    :param paths: other query files (default: :func:`qc_query_paths`).
    :returns: the findings and the ids of the queries that ran.
    :raises KnowledgeBaseError: when a query does not parse or lacks ``?focus``/``?message``.
    """
    findings: list[QCFinding] = []
    ran: list[str] = []
    for path in (qc_query_paths() if paths is None else list(paths)):
        check = path.stem.removesuffix("-violation")
        ran.append(check)
        try:
            solutions = kb.store.query(path.read_text(encoding="utf-8"))
        except (SyntaxError, OSError, ValueError) as exc:
            raise KnowledgeBaseError(f"{path}: cannot run the QC query: {exc}") from exc
        if not isinstance(solutions, ox.QuerySolutions):
            raise KnowledgeBaseError(f"{path}: a QC query must be a SELECT")
        names = {v.value for v in solutions.variables}
        if not {"focus", "message"} <= names:
            raise KnowledgeBaseError(f"{path}: a QC query must select ?focus and ?message")
        for row in solutions:
            focus, message = row["focus"], row["message"]
            findings.append(QCFinding(
                check=check,
                focus=focus.value if focus is not None else "",
                message=message.value if message is not None else f"{check} violated",
                engine="sparql",
            ))
    return findings, ran


def run_checks(kb: KnowledgeBase) -> QCReport:
    """Run every knowledge-base check (shapes, then queries).

    :param kb: the knowledge base to check.
    :returns: the report, findings sorted by check id then focus.
    :raises KnowledgeBaseError: when a shape or query file is itself broken.
    """
    shacl, shape_ids = shacl_findings(kb)
    sparql, query_ids = sparql_findings(kb)
    findings = sorted(shacl + sparql, key=lambda f: (f.check, f.focus, f.message))
    return QCReport(findings=tuple(findings), checks=tuple(shape_ids + query_ids))
