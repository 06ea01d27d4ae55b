"""Run the rules in any SPARQL 1.1 store: an adapter that makes a remote store look like pyoxigraph's.

:class:`RemoteStore` offers what :class:`myeloma_kg.reason.Reasoner` needs from a store — ``query``,
``extend``, ``remove`` and ``in`` — over the SPARQL 1.1 Protocol (queries and updates sent with
SPARQLWrapper), so that the same derivation and API queries run unchanged in Oxigraph server, Apache
Jena Fuseki, GraphDB or any other SPARQL 1.1 store::

    myeloma-kg push --endpoint http://localhost:7878/query          # once: the KB + closure
    myeloma-kg recommend --endpoint http://localhost:7878/query \\
        --update-endpoint http://localhost:7878/update patient.yaml

What the store must hold and support:

* **The knowledge base and its OWL 2 RL closure in the default graph** (``myeloma-kg push`` loads it
  through the Graph Store Protocol). A patient batch's triples are inserted into the default graph too
  and deleted again when the batch ends. Oxigraph server keeps its default graph apart from the named
  graphs (unless started with ``--union-default-graph``); Fuseki does the same unless its dataset is
  configured with ``unionDefaultGraph``. To work in a named graph instead, push with ``--graph IRI`` and
  give the endpoint as ``URL?default-graph-uri=IRI``: queries then run with that graph as their default
  graph and the batch's triples are written into it.
* **SPARQL 1.1 Query** (SELECT, ASK, CONSTRUCT; ``VALUES``, property paths, ``NOT EXISTS``) and
  **SPARQL 1.1 Update** (``INSERT DATA`` / ``DELETE DATA``) for the reasoning batch.

Blank nodes cannot be addressed across requests, so every blank node is *skolemised* on the way out
(``_:b`` is sent as ``<https://w3id.org/myeloma-kg/.well-known/genid/b>``) and turned back into the same
blank node on the way in; ``push`` skolemises the knowledge base the same way. Later queries and deletes
therefore name the same nodes. (A consequence: in the remote store ``isBlank()`` is false for these
nodes; no derivation or API query depends on it.)

One reasoner at a time per store (or per ``default-graph-uri`` graph): batches of different clients
would see each other's patients. Give concurrent clients a graph each (``push --graph``).
"""

from __future__ import annotations

import os
import re
import threading
import urllib.error
import urllib.parse
import urllib.request
import warnings
from collections.abc import Iterable, Iterator
from functools import lru_cache
from typing import Any

import pyoxigraph as ox

from .errors import KnowledgeBaseError

#: Prefix of skolem IRIs (RDF 1.1 §3.5 recommends the ``/.well-known/genid/`` path).
SKOLEM_PREFIX = "https://w3id.org/myeloma-kg/.well-known/genid/"

#: Environment variable holding a bearer token sent with every request (for ``myeloma-kg serve
#: --update-token`` or a store behind a token-checking proxy).
TOKEN_ENV = "MYELOMA_KG_SPARQL_TOKEN"

_RDF_ACCEPT = "application/n-triples, text/turtle;q=0.9, application/rdf+xml;q=0.5"
_QUERY_FORM = re.compile(
    r"^(?:\s|#[^\n]*\n)*(?:(?:PREFIX\s+[^\s:]*:\s*<[^>]*>|BASE\s*<[^>]*>)(?:\s|#[^\n]*\n)*)*"
    r"(SELECT|ASK|CONSTRUCT|DESCRIBE)\b",
    re.IGNORECASE,
)


class RemoteStoreError(KnowledgeBaseError):
    """The remote SPARQL store refused a request or could not be reached."""


# ---------------------------------------------------------------- skolemisation

def skolemise(term: Any) -> Any:
    """A blank node as its skolem IRI; other terms unchanged.

    >>> skolemise(ox.BlankNode("b1"))
    <NamedNode value=https://w3id.org/myeloma-kg/.well-known/genid/b1>
    """
    if isinstance(term, ox.BlankNode):
        return ox.NamedNode(SKOLEM_PREFIX + term.value)
    if isinstance(term, ox.Triple):
        return ox.Triple(skolemise(term.subject), skolemise(term.predicate), skolemise(term.object))
    return term


def deskolemise(term: Any) -> Any:
    """A skolem IRI as the blank node it stands for; other terms unchanged.

    >>> deskolemise(ox.NamedNode("https://w3id.org/myeloma-kg/.well-known/genid/b1"))
    <BlankNode value=b1>
    """
    if isinstance(term, ox.NamedNode) and term.value.startswith(SKOLEM_PREFIX):
        return ox.BlankNode(term.value[len(SKOLEM_PREFIX):])
    if isinstance(term, ox.Triple):
        return ox.Triple(deskolemise(term.subject), deskolemise(term.predicate), deskolemise(term.object))
    return term


def skolemise_ntriples(data: bytes) -> bytes:
    """Rewrite every blank node of an N-Triples/N-Quads document as its skolem IRI (used by ``push``)."""
    out = []
    for quad in ox.parse(data, format=ox.RdfFormat.N_QUADS):
        out.append(ox.Quad(skolemise(quad.subject), quad.predicate, skolemise(quad.object), quad.graph_name))
    if all(isinstance(q.graph_name, ox.DefaultGraph) for q in out):
        return ox.serialize((ox.Triple(q.subject, q.predicate, q.object) for q in out), format=ox.RdfFormat.N_TRIPLES)
    return ox.serialize(out, format=ox.RdfFormat.N_QUADS)


# ---------------------------------------------------------------- reading query text

_PROTECTED = re.compile(
    r'"""(?:[^"\\]|\\.|"(?!""))*(?:"""|$)'
    r"|'''(?:[^'\\]|\\.|'(?!''))*(?:'''|$)"
    r'|"(?:[^"\\\n\r]|\\.)*(?:"|$)'
    r"|'(?:[^'\\\n\r]|\\.)*(?:'|$)"
    r'|<[^<>"{}|^`\\\x00-\x20]*>'
    r"|#[^\n\r]*"
    r"|[?$][A-Za-z0-9_\u00B7\u00C0-\U000EFFFF]+",
    re.DOTALL,
)


def mask_sparql(text: str) -> str:
    """The query text with its strings, IRIs and comments replaced by ``_`` and its variables by
    spaces (same length, so offsets still match the original).

    What is left are keywords, punctuation, prefixed names and numbers, so keyword and function
    searches cannot be fooled by a string, an IRI, a comment or a variable name.

    >>> mask_sparql('SELECT ?x { ?x <urn:service> "load" } # SERVICE')
    'SELECT    {    _____________ ______ } _________'
    """
    return _PROTECTED.sub(_mask, text)


def _mask(match: re.Match[str]) -> str:
    chunk = match.group(0)
    if len(chunk) < 2:
        return chunk  # a lone `?` (path modifier) or `$`
    return (" " if chunk[0] in "?$" else "_") * len(chunk)


_TERM_TEST = re.compile(r"(?<![\w:.\-])(isIRI|isURI|isBlank)\s*\(", re.IGNORECASE)


def _closing_paren(masked: str, start: int) -> int:
    depth = 0
    for i in range(start, len(masked)):
        if masked[i] == "(":
            depth += 1
        elif masked[i] == ")":
            depth -= 1
            if depth == 0:
                return i
    return -1


def rewrite_term_tests(query: str) -> str:
    """Make ``isIRI``/``isURI``/``isBlank`` see skolem IRIs as the blank nodes they stand for.

    The query's logic is unchanged: ``isIRI(x)`` becomes ``(isIRI(x) && !STRSTARTS(STR(x), genid))`` and
    ``isBlank(x)`` becomes ``(isBlank(x) || (isIRI(x) && STRSTARTS(STR(x), genid)))``.

    >>> rewrite_term_tests("ASK { ?s ?p ?o FILTER(isBlank(?o)) }").count("STRSTARTS")
    1
    """
    masked = mask_sparql(query)
    match = _TERM_TEST.search(masked)
    if match is None:
        return query
    open_at = match.end() - 1
    close_at = _closing_paren(masked, open_at)
    if close_at < 0:
        return query  # unbalanced: leave it to the store's parser to report
    arg = rewrite_term_tests(query[open_at + 1:close_at])
    genid = f'"{SKOLEM_PREFIX}"'
    if match.group(1).lower() == "isblank":
        new = f"(isBlank({arg}) || (isIRI({arg}) && STRSTARTS(STR({arg}), {genid})))"
    else:
        new = f"({match.group(1)}({arg}) && !STRSTARTS(STR({arg}), {genid}))"
    return query[:match.start()] + new + rewrite_term_tests(query[close_at + 1:])


# ---------------------------------------------------------------- results that look like pyoxigraph's

class RemoteSolution:
    """One row of a SELECT result: ``solution["var"]`` (or a Variable, or a position) gives a term or None."""

    __slots__ = ("_names", "_values")

    def __init__(self, names: dict[str, int], values: list[Any]) -> None:
        self._names = names
        self._values = values

    def __getitem__(self, key: str | int | ox.Variable) -> Any:
        if isinstance(key, int):
            return self._values[key]
        name = key.value if isinstance(key, ox.Variable) else str(key)
        index = self._names.get(name)
        return None if index is None else self._values[index]

    def __iter__(self) -> Iterator[Any]:
        return iter(self._values)

    def __len__(self) -> int:
        return len(self._values)

    def __repr__(self) -> str:
        pairs = " ".join(f"{n}={self._values[i]}" for n, i in self._names.items() if self._values[i] is not None)
        return f"<RemoteSolution {pairs}>"


class RemoteSolutions:
    """A SELECT result: iterable over :class:`RemoteSolution`, with ``variables`` like pyoxigraph's."""

    def __init__(self, variables: list[ox.Variable], rows: list[RemoteSolution]) -> None:
        self.variables = variables
        self._rows = rows

    def __iter__(self) -> Iterator[RemoteSolution]:
        return iter(self._rows)

    def __len__(self) -> int:
        return len(self._rows)


class RemoteBoolean:
    """An ASK result (``bool(result)``)."""

    def __init__(self, value: bool) -> None:
        self.value = value

    def __bool__(self) -> bool:
        return self.value

    def __eq__(self, other: object) -> bool:
        return bool(other) == self.value

    def __hash__(self) -> int:
        return hash(self.value)

    def __repr__(self) -> str:
        return f"<RemoteBoolean {self.value}>"


# ---------------------------------------------------------------- the store

def _split_endpoint(url: str) -> tuple[str, list[str]]:
    """Remove ``default-graph-uri`` parameters from an endpoint URL; return the URL and the graphs."""
    parts = urllib.parse.urlsplit(url)
    if not parts.query:
        return url, []
    params = urllib.parse.parse_qsl(parts.query, keep_blank_values=True)
    graphs = [v for k, v in params if k == "default-graph-uri"]
    rest = urllib.parse.urlencode([(k, v) for k, v in params if k != "default-graph-uri"])
    return urllib.parse.urlunsplit(parts._replace(query=rest)), graphs


def query_form(text: str) -> str:
    """``SELECT``, ``ASK``, ``CONSTRUCT`` or ``DESCRIBE`` for a query text (after its prologue).

    >>> query_form("# a comment\\nPREFIX ex: <http://e/>\\nconstruct { ?s ?p ?o } WHERE { ?s ?p ?o }")
    'CONSTRUCT'
    """
    match = _QUERY_FORM.match(text)
    if match is None:
        raise RemoteStoreError("cannot tell the form of the query (SELECT, ASK, CONSTRUCT or DESCRIBE)")
    return match.group(1).upper()


class RemoteStore:
    """A SPARQL 1.1 store seen through the parts of pyoxigraph's ``Store`` API the reasoner uses.

    :param endpoint: the SPARQL query endpoint (``http://localhost:7878/query`` for Oxigraph server,
        ``http://localhost:3030/ds/sparql`` for Fuseki). ``?default-graph-uri=IRI`` in the URL makes the
        store work in that named graph instead of the default graph.
    :param update_endpoint: the SPARQL Update endpoint; by default the query endpoint.
    :param token: a bearer token sent with every request (default: ``$MYELOMA_KG_SPARQL_TOKEN``).
    :param timeout: seconds before a request is abandoned.
    :param batch_size: triples per ``INSERT DATA`` / ``DELETE DATA`` request (also bounded by
        ``max_request_bytes``).

    Removals are buffered and sent as one ``DELETE DATA`` before the next query, insert or membership
    test, when the buffer is full, when everything this store inserted has been removed again (the end
    of a reasoning batch) and on :meth:`flush` / :meth:`close`. Membership tests (``quad in store``)
    are answered from the batch lookup made right after each CONSTRUCT (one request for all its
    triples), or by an ASK. One store object serves one reasoner in one process (a forked copy refuses
    to work: its batches would overlap its siblings' in the same graph).
    """

    def __init__(self, endpoint: str, update_endpoint: str | None = None, *, token: str | None = None,
                 timeout: float = 120.0, batch_size: int = 2000, max_request_bytes: int = 192_000) -> None:
        self.endpoint, graphs = _split_endpoint(endpoint)
        if len(graphs) > 1:
            raise RemoteStoreError("give at most one default-graph-uri in the endpoint URL")
        self.graph: str | None = graphs[0] if graphs else None
        self.update_endpoint = _split_endpoint(update_endpoint)[0] if update_endpoint else self.endpoint
        self.token = token if token is not None else os.environ.get(TOKEN_ENV) or None
        self.timeout = timeout
        self.batch_size = batch_size
        self.max_request_bytes = max_request_bytes
        self.requests: dict[str, int] = {"query": 0, "update": 0}
        self._pending_deletes: dict[ox.Quad, None] = {}
        self._live: set[ox.Quad] = set()
        self._known: dict[ox.Quad, bool] = {}
        self._labels: set[str] = set()
        self._lock = threading.RLock()
        self._pid = os.getpid()

    def __repr__(self) -> str:
        graph = f" graph={self.graph}" if self.graph else ""
        return f"<RemoteStore {self.endpoint}{graph}>"

    # ------------------------------------------------------------ HTTP
    def _wrapper(self, endpoint: str, text: str, form: str) -> Any:
        """A SPARQLWrapper for one request; ``form`` is the query form, or ``INSERT`` for an update
        (set explicitly: SPARQLWrapper's own guess can be misled by words in comments)."""
        from SPARQLWrapper import POST, SPARQLWrapper

        sw = SPARQLWrapper(endpoint, updateEndpoint=self.update_endpoint)
        sw.setOnlyConneg(True)
        sw.setMethod(POST)
        sw.setTimeout(max(1, int(self.timeout)))
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            sw.setQuery(text)
        sw.queryType = form
        if self.token:
            sw.addCustomHttpHeader("Authorization", f"Bearer {self.token}")
        return sw

    def _send(self, sw: Any, what: str) -> tuple[bytes, str]:
        from SPARQLWrapper.SPARQLExceptions import SPARQLWrapperException

        if os.getpid() != self._pid:
            # A forked worker would reason in the same graph as its siblings and see their patients.
            raise RemoteStoreError("a RemoteStore cannot be shared with other processes: batches in one store "
                                   "must not overlap; run cohorts against a remote store with --jobs 1")
        self.requests[what] += 1
        try:
            response = sw.query().response
            return response.read(), response.headers.get("Content-Type", "")
        except SPARQLWrapperException as exc:
            raise RemoteStoreError(f"{self._where(sw)}: {_short(exc)}") from None
        except urllib.error.HTTPError as exc:
            body = exc.read().decode("utf-8", "replace").strip()
            raise RemoteStoreError(f"{self._where(sw)}: HTTP {exc.code} {exc.reason}: {body[:500]}") from None
        except (urllib.error.URLError, OSError) as exc:
            reason = getattr(exc, "reason", exc)
            raise RemoteStoreError(f"{self._where(sw)}: cannot reach the store: {reason}") from None

    def _where(self, sw: Any) -> str:
        return f"SPARQL store {sw.updateEndpoint if sw.isSparqlUpdateRequest() else sw.endpoint}"

    def _select_or_ask(self, text: str, *, dataset: bool = True) -> Any:
        from SPARQLWrapper import JSON

        sw = self._wrapper(self.endpoint, text, query_form(text))
        sw.setReturnFormat(JSON)
        if dataset and self.graph:
            sw.addParameter("default-graph-uri", self.graph)
        body, _ = self._send(sw, "query")
        try:
            return ox.parse_query_results(body, format=ox.QueryResultsFormat.JSON)
        except (SyntaxError, ValueError) as exc:
            raise RemoteStoreError(f"SPARQL store {self.endpoint}: unreadable results: {exc}") from None

    def update(self, text: str) -> None:
        """Send one SPARQL Update request (pending removals are sent first)."""
        with self._lock:
            self._flush_deletes()
            self._update(text)

    def _update(self, text: str) -> None:
        sw = self._wrapper(self.endpoint, text, "INSERT")
        self._send(sw, "update")

    # ------------------------------------------------------------ the Store API the reasoner uses
    def query(self, text: str) -> Any:
        """Run a query: SELECT → :class:`RemoteSolutions`, ASK → :class:`RemoteBoolean`,
        CONSTRUCT/DESCRIBE → a list of :class:`pyoxigraph.Triple` (blank nodes restored)."""
        form = query_form(text)
        text = _rewritten(text)
        with self._lock:
            self._flush_deletes()
            self._known.clear()
            if form in ("SELECT", "ASK"):
                result = self._select_or_ask(text)
                if isinstance(result, ox.QueryBoolean):
                    return RemoteBoolean(bool(result))
                return self._solutions(result)
            triples = self._construct(text)
            self._prefetch(triples)
            return triples

    def _solutions(self, result: Any) -> RemoteSolutions:
        variables = list(result.variables)
        names = {v.value: i for i, v in enumerate(variables)}
        fresh: dict[str, ox.BlankNode] = {}
        rows = [RemoteSolution(names, [self._in(solution[v], fresh) for v in variables]) for solution in result]
        return RemoteSolutions(variables, rows)

    def _construct(self, text: str) -> list[ox.Triple]:
        sw = self._wrapper(self.endpoint, text, "CONSTRUCT")
        sw.addCustomHttpHeader("Accept", _RDF_ACCEPT)
        if self.graph:
            sw.addParameter("default-graph-uri", self.graph)
        body, content_type = self._send(sw, "query")
        media = content_type.split(";")[0].strip().lower()
        fmt = ox.RdfFormat.from_media_type(media) if media else None
        if fmt is None:
            fmt = ox.RdfFormat.N_TRIPLES if media in ("text/plain", "") else None
        if fmt is None:
            raise RemoteStoreError(f"SPARQL store {self.endpoint}: unexpected CONSTRUCT result type {content_type!r}")
        fresh: dict[str, ox.BlankNode] = {}
        try:
            return [ox.Triple(self._in(q.subject, fresh), self._in(q.predicate, fresh), self._in(q.object, fresh))
                    for q in ox.parse(body, format=fmt)]
        except SyntaxError as exc:
            raise RemoteStoreError(f"SPARQL store {self.endpoint}: unreadable {media} result: {exc}") from None

    def extend(self, quads: Iterable[ox.Quad]) -> None:
        """Insert quads (``INSERT DATA`` in batches); blank nodes are skolemised."""
        with self._lock:
            self._flush_deletes()
            batch = [q for q in dict.fromkeys(_as_quad(q) for q in quads)]
            for chunk in self._chunks(batch):
                self._update("INSERT DATA {\n" + chunk + "}")
            for q in batch:
                self._live.add(q)
                self._known[q] = True

    def add(self, quad: ox.Quad) -> None:
        """Insert one quad."""
        self.extend([quad])

    def remove(self, quad: ox.Quad) -> None:
        """Delete one quad. Buffered: sent with the next request, or when the batch's quads are all removed."""
        with self._lock:
            quad = _as_quad(quad)
            self._pending_deletes[quad] = None
            self._live.discard(quad)
            self._known[quad] = False
            if len(self._pending_deletes) >= self.batch_size or not self._live:
                self._flush_deletes()

    def remove_many(self, quads: Iterable[ox.Quad]) -> None:
        """Delete quads with as few ``DELETE DATA`` requests as possible."""
        with self._lock:
            for quad in quads:
                quad = _as_quad(quad)
                self._pending_deletes[quad] = None
                self._live.discard(quad)
                self._known[quad] = False
            self._flush_deletes()

    def __contains__(self, quad: object) -> bool:
        quad = _as_quad(quad)  # type: ignore[arg-type]
        with self._lock:
            self._flush_deletes()
            known = self._known.get(quad)
            if known is not None:
                return known
            if self._has_unknown_blank_node(quad):
                return False  # a blank node this store never sent nor received cannot be there
            graph = quad.graph_name
            pattern = f"{self._term(quad.subject)} {self._term(quad.predicate)} {self._term(quad.object)}"
            if isinstance(graph, ox.DefaultGraph):
                result = bool(self._select_or_ask(f"ASK {{ {pattern} }}"))
            else:
                result = bool(self._select_or_ask(f"ASK {{ GRAPH {self._term(graph)} {{ {pattern} }} }}", dataset=False))
            self._known[quad] = result
            return result

    def flush(self) -> None:
        """Send the buffered removals now."""
        with self._lock:
            self._flush_deletes()

    def close(self) -> None:
        """Send the buffered removals (the store keeps no connection open)."""
        self.flush()

    def __enter__(self) -> RemoteStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __len__(self) -> int:
        """Number of triples in the default graph (or the ``default-graph-uri`` graph)."""
        with self._lock:
            self._flush_deletes()
            result = self._select_or_ask("SELECT (COUNT(*) AS ?n) WHERE { ?s ?p ?o }")
            return int(next(iter(result))["n"].value)

    # ------------------------------------------------------------ internals
    def _flush_deletes(self) -> None:
        if not self._pending_deletes:
            return
        quads = list(self._pending_deletes)
        for chunk in self._chunks(quads):
            self._update("DELETE DATA {\n" + chunk + "}")
        self._pending_deletes.clear()

    def _chunks(self, quads: list[ox.Quad]) -> Iterator[str]:
        """Quads as the body of INSERT/DELETE DATA, split by count and size."""
        lines: list[str] = []
        size = 0
        for quad in quads:
            triple = f"{self._term(quad.subject)} {self._term(quad.predicate)} {self._term(quad.object)} ."
            graph = quad.graph_name
            if isinstance(graph, ox.DefaultGraph) and self.graph:
                graph = ox.NamedNode(self.graph)
            line = triple if isinstance(graph, ox.DefaultGraph) else f"GRAPH {self._term(graph)} {{ {triple} }}"
            if lines and (len(lines) >= self.batch_size or size + len(line) > self.max_request_bytes):
                yield "\n".join(lines) + "\n"
                lines, size = [], 0
            lines.append(line)
            size += len(line) + 1
        if lines:
            yield "\n".join(lines) + "\n"

    def _term(self, term: Any) -> str:
        """A term in SPARQL syntax (N-Triples escaping), blank nodes skolemised."""
        if isinstance(term, ox.BlankNode):
            self._labels.add(term.value)
        return str(skolemise(term))

    def _in(self, term: Any, fresh: dict[str, ox.BlankNode]) -> Any:
        """A term received from the store: skolem IRIs become their blank nodes; the store's own blank
        nodes (fresh ones a CONSTRUCT template made) get labels unique to this process."""
        if term is None:
            return None
        if isinstance(term, ox.NamedNode):
            if term.value.startswith(SKOLEM_PREFIX):
                node = deskolemise(term)
                self._labels.add(node.value)
                return node
            return term
        if isinstance(term, ox.BlankNode):
            if term.value not in fresh:
                fresh[term.value] = ox.BlankNode()
            return fresh[term.value]
        if isinstance(term, ox.Triple):
            return ox.Triple(self._in(term.subject, fresh), self._in(term.predicate, fresh), self._in(term.object, fresh))
        return term

    def _has_unknown_blank_node(self, quad: ox.Quad) -> bool:
        return any(isinstance(t, ox.BlankNode) and t.value not in self._labels
                   for t in (quad.subject, quad.object, quad.graph_name))

    def _prefetch(self, triples: list[ox.Triple], chunk: int = 400) -> None:
        """Learn with one request per ``chunk`` triples which CONSTRUCT results the store already holds.

        The reasoner asks ``quad in store`` for each triple a CONSTRUCT returns; this answers those
        questions in bulk (a VALUES join), so that a rule costs a handful of requests, not one per triple.
        """
        todo = [ox.Quad(t.subject, t.predicate, t.object) for t in dict.fromkeys(triples)]
        todo = [q for q in todo if not self._has_unknown_blank_node(q)]
        for q in dict.fromkeys(ox.Quad(t.subject, t.predicate, t.object) for t in triples):
            self._known.setdefault(q, False)
        for start in range(0, len(todo), chunk):
            part = todo[start:start + chunk]
            rows = " ".join(f"({self._term(q.subject)} {self._term(q.predicate)} {self._term(q.object)})"
                            for q in part)
            result = self._select_or_ask(
                f"SELECT ?s ?p ?o WHERE {{ VALUES (?s ?p ?o) {{ {rows} }} ?s ?p ?o }}")
            fresh: dict[str, ox.BlankNode] = {}
            for solution in result:
                found = ox.Quad(self._in(solution["s"], fresh), self._in(solution["p"], fresh),
                                self._in(solution["o"], fresh))
                self._known[found] = True


@lru_cache(maxsize=512)
def _rewritten(text: str) -> str:
    return rewrite_term_tests(text)


def _as_quad(quad: Any) -> ox.Quad:
    if isinstance(quad, ox.Quad):
        return quad
    if isinstance(quad, ox.Triple):
        return ox.Quad(quad.subject, quad.predicate, quad.object)
    raise TypeError(f"not a quad: {quad!r}")


def _short(exc: Exception) -> str:
    text = str(exc)
    return text if len(text) <= 600 else text[:600] + " …"


# ---------------------------------------------------------------- wiring

def check_knowledge_base(store: RemoteStore) -> None:
    """Make sure the remote store holds the knowledge base (guideline recommendations present).

    :raises RemoteStoreError: when it does not, with how to fix it.
    """
    ask = "ASK { ?rec a <https://w3id.org/myeloma-kg/Recommendation> ; <https://w3id.org/myeloma-kg/recommends> ?o }"
    if not bool(store.query(ask)):
        where = f"graph <{store.graph}>" if store.graph else "default graph"
        raise RemoteStoreError(
            f"the {where} of {store.endpoint} does not hold the myeloma-kg knowledge base; "
            f"load it first with `myeloma-kg push --endpoint {store.endpoint}"
            + (f" --graph {store.graph}" if store.graph else "") + "`")


def remote_engine(endpoint: str, update_endpoint: str | None = None, *, check: bool = True, **options: Any) -> Any:
    """An :class:`~myeloma_kg.recommend.Engine` whose reasoning runs in a remote SPARQL store."""
    from .reason import Reasoner
    from .recommend import Engine

    store = RemoteStore(endpoint, update_endpoint, **options)
    if check:
        check_knowledge_base(store)
    return Engine(reasoner=Reasoner(store=store))


def use_remote_engine(endpoint: str, update_endpoint: str | None = None) -> Any:
    """Make the process-wide engine reason in a remote store (``myeloma-kg recommend --endpoint``).

    :raises RemoteStoreError: when the store cannot be reached or does not hold the knowledge base.
    """
    from .recommend import set_default_engine

    engine = remote_engine(endpoint, update_endpoint)
    set_default_engine(engine)
    return engine


# ---------------------------------------------------------------- Graph Store Protocol (push)

def graph_store_url(endpoint: str) -> str:
    """The SPARQL 1.1 Graph Store Protocol URL that goes with a query endpoint, by convention.

    >>> graph_store_url("http://localhost:7878/query")            # Oxigraph server
    'http://localhost:7878/store'
    >>> graph_store_url("http://localhost:3030/ds/sparql")         # Apache Jena Fuseki
    'http://localhost:3030/ds/data'
    >>> graph_store_url("http://localhost:7200/repositories/kg")   # GraphDB, RDF4J
    'http://localhost:7200/repositories/kg/rdf-graphs/service'
    """
    url, _ = _split_endpoint(endpoint)
    parts = urllib.parse.urlsplit(url)
    segments = [s for s in parts.path.split("/") if s]
    if len(segments) >= 2 and segments[-2] == "repositories":
        path = "/" + "/".join(segments) + "/rdf-graphs/service"
    elif len(segments) <= 1:
        path = "/store"
    else:
        path = "/" + "/".join(segments[:-1]) + "/data"
    return urllib.parse.urlunsplit(parts._replace(path=path, query="", fragment=""))


def graph_store_put(store_url: str, data: bytes, *, graph: str | None = None, media_type: str = "application/n-triples",
                    replace: bool = True, token: str | None = None, timeout: float = 600.0) -> int:
    """Send RDF to a graph with the Graph Store Protocol: PUT (replace) or POST (add).

    :param graph: the named graph IRI, or None for the default graph (``?default``).
    :returns: the HTTP status.
    :raises RemoteStoreError: when the store refuses or cannot be reached.
    """
    query = "default" if graph is None else urllib.parse.urlencode({"graph": graph})
    separator = "&" if urllib.parse.urlsplit(store_url).query else "?"
    request = urllib.request.Request(store_url + separator + query, data=data, method="PUT" if replace else "POST")
    request.add_header("Content-Type", media_type)
    token = token if token is not None else os.environ.get(TOKEN_ENV) or None
    if token:
        request.add_header("Authorization", f"Bearer {token}")
    target = f"graph <{graph}>" if graph else "the default graph"
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return response.status
    except urllib.error.HTTPError as exc:
        body = exc.read().decode("utf-8", "replace").strip()
        raise RemoteStoreError(f"graph store {store_url}: {target}: HTTP {exc.code} {exc.reason}: {body[:500]}") from None
    except (urllib.error.URLError, OSError) as exc:
        raise RemoteStoreError(f"graph store {store_url}: cannot reach it: {getattr(exc, 'reason', exc)}") from None


def knowledge_base_ntriples() -> bytes:
    """The knowledge base with its closure as N-Triples, blank nodes skolemised (what ``push`` sends)."""
    from .reason import knowledge_template

    return skolemise_ntriples(knowledge_template().ntriples)
