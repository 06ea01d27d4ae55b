"""The SPARQL files of ``queries/``: loading, header metadata and ordering.

Every ``.rq`` file opens with a comment header of ``# Key: value`` lines (Rule or Step, Title,
Source, When, Then, Output, Stage, Tests). The header is parsed here so that rule files can be
listed, ordered by stage, cited in explanations and checked by tests.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

from .errors import KnowledgeBaseError
from .resources import queries_dir

_HEADER_LINE = re.compile(r"^#\s*([A-Z][A-Za-z ]*):\s*(.*)$")


@dataclass(frozen=True)
class QueryFile:
    """One SPARQL file with its parsed header.

    :param path: the file.
    :param text: the whole query text.
    :param header: header fields (a field continued on following ``#   `` lines is joined).
    """

    path: Path
    text: str
    header: dict[str, str] = field(default_factory=dict)

    @property
    def name(self) -> str:
        """File stem, e.g. ``R9`` or ``administrations``."""
        return self.path.stem

    @property
    def rule_id(self) -> str | None:
        """The rule id the file encodes (``Rule:`` header), if any."""
        return self.header.get("Rule")

    @property
    def executable(self) -> str:
        """The text the stores run: :attr:`text` without its whole-line comments (see :func:`without_comments`)."""
        return without_comments(self.text)

    @property
    def insert_text(self) -> str | None:
        """The query as a SPARQL Update inserting its triples (see :func:`construct_as_insert`)."""
        return construct_as_insert(self.text)

    @property
    def stage(self) -> int:
        """Execution stage (``Stage:`` header); stages run in increasing order."""
        try:
            return int(self.header.get("Stage", "99"))
        except ValueError as exc:
            raise KnowledgeBaseError(f"{self.path}: Stage header must be an integer") from exc


@cache
def without_comments(text: str) -> str:
    """A query without the lines that are only a comment (the rule files' headers and notes).

    Oxigraph parses every query it runs, comments included (about 5 us per kilobyte): a patient's ~35
    queries carry ~40 KB of them. A comment line cannot be inside an IRI (no line breaks there); the text is
    kept whole when it has a long string literal, the one place a line starting with ``#`` is data.

    >>> without_comments("# Rule: R1\\nSELECT ?x WHERE {\\n  # why\\n  ?x a <urn:a#b> }")
    'SELECT ?x WHERE {\\n  ?x a <urn:a#b> }'
    """
    if '"""' in text or "'''" in text:
        return text
    return "\n".join(line for line in text.splitlines() if not line.lstrip().startswith("#"))


def positions(solutions: Any, *names: str) -> tuple[int, ...]:
    """The positions of these variables in the rows of a SELECT result (pyoxigraph's or a remote store's).

    Rows are read by position: a lookup by variable name costs pyoxigraph about 1 us (it tries a position
    first).
    """
    variables = [v.value for v in solutions.variables]
    return tuple(variables.index(name) for name in names)


_CONSTRUCT = re.compile(r"\bCONSTRUCT\s*\{", re.IGNORECASE)
_WHERE_AFTER = re.compile(r"\s*WHERE\b", re.IGNORECASE)


@cache
def construct_as_insert(text: str) -> str | None:
    """The SPARQL 1.1 Update that inserts what a ``CONSTRUCT { template } WHERE { ... }`` query builds.

    ``INSERT { template } WHERE { ... }`` instantiates the same template for the same solutions (fresh
    blank nodes per solution, triples with unbound variables skipped), but inside the store, without
    handing every triple to Python. None when the query does not have that plain form.

    >>> construct_as_insert("PREFIX a: <urn:a#>\\nCONSTRUCT { ?s a:p [ a:q 1 ] } WHERE { ?s a:r ?o }")
    'PREFIX a: <urn:a#>\\nINSERT { ?s a:p [ a:q 1 ] } WHERE { ?s a:r ?o }'
    """
    body = without_comments(text)
    match = _CONSTRUCT.search(body)
    if match is None:
        return None
    depth, end = 1, None
    for i in range(match.end(), len(body)):
        char = body[i]
        if char in "\"'<#":
            return None  # strings, IRIs or comments inside the template: keep the CONSTRUCT form
        if char == "{":
            depth += 1
        elif char == "}":
            depth -= 1
            if depth == 0:
                end = i
                break
    if end is None or not _WHERE_AFTER.match(body, end + 1):
        return None
    return body[: match.start()] + "INSERT {" + body[match.end(): end] + "}" + body[end + 1:]


def parse_header(text: str) -> dict[str, str]:
    """Parse the leading comment block of a query into fields.

    >>> parse_header("# Rule: R1\\n# Title: Line count\\n#   and relapse number\\nSELECT * {}")
    {'Rule': 'R1', 'Title': 'Line count and relapse number'}
    """
    fields: dict[str, str] = {}
    current: str | None = None
    for line in text.splitlines():
        if not line.startswith("#"):
            break
        match = _HEADER_LINE.match(line)
        if match:
            current = match.group(1)
            fields[current] = match.group(2).strip()
        elif current is not None:
            cont = line.lstrip("#").strip()
            if cont:
                fields[current] = (fields[current] + " " + cont).strip()
    return fields


def load_query(path: Path) -> QueryFile:
    """Read one query file."""
    text = path.read_text(encoding="utf-8")
    return QueryFile(path=path, text=text, header=parse_header(text))


@cache
def derivation_queries() -> tuple[QueryFile, ...]:
    """The CONSTRUCT queries that derive patient facts, in execution order.

    Normalisation steps (``queries/prepare``) and rules (``queries/rules``), sorted by stage then name.
    """
    files = sorted((queries_dir() / "prepare").glob("*.rq")) + sorted((queries_dir() / "rules").glob("*.rq"))
    queries = [load_query(p) for p in files]
    return tuple(sorted(queries, key=lambda q: (q.stage, q.name)))


@cache
def api_query(name: str) -> QueryFile:
    """A SELECT query of ``queries/api`` by file stem.

    :raises KnowledgeBaseError: when the file does not exist.
    """
    path = queries_dir() / "api" / f"{name}.rq"
    if not path.is_file():
        raise KnowledgeBaseError(f"missing query file {path}")
    return load_query(path)


#: The API queries that read the reasoner's batch stores (``Reasoner.batch``: :meth:`myeloma_kg.recommend.Engine.run`
#: and :func:`myeloma_kg.facts.read_facts`). Those stores hold only the knowledge-base triples that these and
#: the derivation rules can read; ``patient-graph`` and the explanation queries run on ``keep_store`` stores,
#: which hold the whole knowledge base.
BATCH_READERS = ("recommendations", "recommendation-details", "constraints", "constraint-details", "advice",
                 "advice-details", "advice-options", "option-assessments", "refractory-components", "situations",
                 "patient-facts")


def batch_readers() -> tuple[QueryFile, ...]:
    """The query files of :data:`BATCH_READERS`."""
    return tuple(api_query(name) for name in BATCH_READERS)


_IRI_FORBIDDEN = re.compile(r'[\x00-\x20<>"{}|^`\\]')


def sparql_term(value: object) -> str:
    """Serialise a value as a SPARQL term for a VALUES block, escaping it safely.

    Strings become literals with every special character escaped; ``IRI`` objects (anything with
    an ``iri`` or ``value`` attribute that looks like an IRI) become ``<...>`` after validation.

    >>> sparql_term(IRI("https://w3id.org/myeloma-kg/profile/default"))
    '<https://w3id.org/myeloma-kg/profile/default>'
    >>> sparql_term('pt"} ; DROP ALL ; {')
    '"pt\\\\"} ; DROP ALL ; {"'
    """
    if isinstance(value, IRI):
        if _IRI_FORBIDDEN.search(value.iri):
            raise ValueError(f"not a safe IRI: {value.iri!r}")
        return f"<{value.iri}>"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    text = str(value)
    escaped = (text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
               .replace("\r", "\\r").replace("\t", "\\t"))
    return f'"{escaped}"'


@dataclass(frozen=True)
class IRI:
    """An IRI to bind into a query (distinguishes IRIs from string literals)."""

    iri: str


def with_values(query: str, bindings: dict[str, list[object]]) -> str:
    """Bind variables by inserting a ``VALUES`` block at the start of the outermost WHERE clause.

    This is plain SPARQL 1.1, so it works on any store; values are escaped by :func:`sparql_term`,
    never concatenated raw.

    >>> with_values("SELECT ?x WHERE { ?x ?p ?profile }", {"profile": [IRI("urn:a")]})
    'SELECT ?x WHERE { VALUES (?profile) { (<urn:a>) }\\n ?x ?p ?profile }'
    """
    if not bindings:
        return query
    names = list(bindings)
    rows = list(zip(*(bindings[n] for n in names)))
    block = "VALUES (" + " ".join(f"?{n}" for n in names) + ") { " + " ".join(
        "(" + " ".join(sparql_term(v) for v in row) + ")" for row in rows) + " }\n"
    match = re.search(r"\bWHERE\s*\{", query, flags=re.IGNORECASE)
    if match is None:
        raise KnowledgeBaseError("query has no WHERE clause to bind values into")
    return query[: match.end()] + " " + block + query[match.end():]
