"""Every parse of an input file: patient documents as JSON, YAML, JSON Lines or RDF.

Parse errors become :class:`~myeloma_kg.errors.ParseError` with file, line and column; nothing
here shows a traceback to the user.
"""

from __future__ import annotations

import datetime as _dt
import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from .errors import ParseError, UsageError

JSON_SUFFIXES = {".json"}
YAML_SUFFIXES = {".yaml", ".yml"}
JSONL_SUFFIXES = {".jsonl", ".ndjson"}
RDF_FORMATS = {
    ".ttl": "turtle",
    ".nt": "nt",
    ".jsonld": "json-ld",
    ".n3": "n3",
    ".rdf": "xml",
    ".owl": "xml",
}


@dataclass
class RawDocument:
    """One patient document as read from its source, before conversion to RDF.

    ``data`` is the JSON/YAML mapping; ``rdf`` is the text of an RDF document with its format.
    ``position`` is the 1-based index of the document within ``source`` (line number for JSON Lines).
    ``error`` is set instead of ``data`` when that one document could not be parsed (JSON Lines),
    so a batch can account for it.
    """

    source: str
    position: int
    data: dict[str, Any] | None = None
    rdf: tuple[str, str] | None = None
    error: ParseError | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def patient_id(self) -> str | None:
        """The document's ``id`` when it has a string one."""
        if isinstance(self.data, dict):
            pid = self.data.get("id")
            return str(pid) if pid is not None else None
        return None


def _jsonable(value: Any) -> Any:
    """Turn YAML's native dates into ISO strings so that JSON-LD types them as xsd:date."""
    if isinstance(value, _dt.datetime):
        return value.date().isoformat() if value.time() == _dt.time() else value.isoformat()
    if isinstance(value, _dt.date):
        return value.isoformat()
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_jsonable(v) for v in value]
    return value


def parse_json_text(text: str, source: str = "<input>") -> Any:
    """Parse JSON text, raising :class:`ParseError` with line and column.

    >>> parse_json_text('{"id": "pt-1" "age": 67}', "pt.json")
    Traceback (most recent call last):
    ...
    myeloma_kg.errors.ParseError: pt.json:1:15: malformed JSON: Expecting ',' delimiter
    """
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise ParseError(f"malformed JSON: {exc.msg}", source=source, line=exc.lineno, column=exc.colno) from None
    except RecursionError:
        raise ParseError("malformed JSON: the document is nested too deeply", source=source) from None


class _DocumentLoader(yaml.SafeLoader):
    """YAML's safe loader without implicit timestamps.

    Dates stay the strings the author wrote, so that an impossible date such as ``2021-13-40`` reaches
    validation (which names the field) instead of crashing the YAML parser, and ``2021-01-10`` is typed
    ``xsd:date`` by the JSON-LD context either way.
    """


_DocumentLoader.yaml_implicit_resolvers = {
    first: [(tag, regexp) for tag, regexp in resolvers if tag != "tag:yaml.org,2002:timestamp"]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}


def parse_yaml_text(text: str, source: str = "<input>") -> list[Any]:
    """Parse YAML text (one or more documents), raising :class:`ParseError` with line and column."""
    try:
        return [_jsonable(d) for d in yaml.load_all(text, Loader=_DocumentLoader) if d is not None]
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark else None
        col = mark.column + 1 if mark else None
        problem = exc.problem or exc.context or "syntax error"
        raise ParseError(f"malformed YAML: {problem}", source=source, line=line, column=col) from None
    except yaml.YAMLError as exc:
        raise ParseError(f"malformed YAML: {exc}", source=source) from None
    except RecursionError:
        raise ParseError("malformed YAML: the document is nested too deeply", source=source) from None
    except (ValueError, TypeError) as exc:  # a constructor rejected a value (for example a bad !!binary)
        raise ParseError(f"malformed YAML: {exc}", source=source) from None


def _documents_from(value: Any, source: str) -> list[dict[str, Any]]:
    if isinstance(value, list):
        docs = value
    elif isinstance(value, dict) and isinstance(value.get("patients"), list):
        docs = value["patients"]
    else:
        docs = [value]
    out = []
    for i, doc in enumerate(docs, start=1):
        if not isinstance(doc, dict):
            raise ParseError(
                f"document {i} is a {type(doc).__name__}, expected a mapping of patient fields "
                "(id, assessmentDate, lines, ...)",
                source=source,
            )
        out.append(doc)
    return out


def read_documents(path: str | Path) -> Iterator[RawDocument]:
    """Yield every patient document in a file or directory.

    Supported: ``.json`` (one document, a list, or ``{"patients": [...]}``), ``.yaml``/``.yml``
    (also multi-document streams), ``.jsonl`` (one document per line; a malformed line yields a
    :class:`RawDocument` with ``error`` set and the run goes on), and RDF files (``.ttl``, ``.nt``,
    ``.jsonld``). A directory is read in sorted order, recursively.

    :raises UsageError: when the path does not exist or has an unknown suffix.
    :raises ParseError: when a whole file is malformed.
    """
    p = Path(path)
    if p.is_dir():
        for child in sorted(p.rglob("*")):
            if child.is_file() and child.suffix.lower() in (
                JSON_SUFFIXES | YAML_SUFFIXES | JSONL_SUFFIXES | set(RDF_FORMATS)
            ):
                yield from read_documents(child)
        return
    if not p.exists():
        raise UsageError(f"no such file: {p}")
    suffix = p.suffix.lower()
    source = str(p)
    if suffix not in JSON_SUFFIXES | YAML_SUFFIXES | JSONL_SUFFIXES | set(RDF_FORMATS):
        raise UsageError(
            f"{p}: unknown file type {suffix!r}; use .json, .yaml, .jsonl, .ttl, .nt or .jsonld"
        )
    try:
        text = p.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise ParseError(f"the file is not UTF-8 text (byte {exc.start})", source=source) from None
    except OSError as exc:
        raise UsageError(f"cannot read {p}: {exc.strerror or exc}") from None
    if suffix in JSONL_SUFFIXES:
        yield from read_jsonl_text(text, source)
    elif suffix in JSON_SUFFIXES:
        for i, doc in enumerate(_documents_from(parse_json_text(text, source), source), start=1):
            yield RawDocument(source=source, position=i, data=doc)
    elif suffix in YAML_SUFFIXES:
        docs: list[dict[str, Any]] = []
        for value in parse_yaml_text(text, source):
            docs.extend(_documents_from(value, source))
        for i, doc in enumerate(docs, start=1):
            yield RawDocument(source=source, position=i, data=doc)
    elif suffix in RDF_FORMATS:
        yield RawDocument(source=source, position=1, rdf=(text, RDF_FORMATS[suffix]))
    else:
        raise UsageError(
            f"{p}: unknown file type {suffix!r}; use .json, .yaml, .jsonl, .ttl, .nt or .jsonld"
        )


def read_jsonl_text(text: str, source: str = "<input>") -> Iterator[RawDocument]:
    """Yield one :class:`RawDocument` per non-blank line of JSON Lines text.

    A malformed line becomes a document with ``error`` set, so that batch runs lose nothing.
    """
    for lineno, line in enumerate(text.splitlines(), start=1):
        if line.strip():
            yield parse_jsonl_line(line, source, lineno)


def iter_jsonl_lines(path: str | Path) -> Iterator[tuple[int, str]]:
    """The non-blank lines of a JSON Lines file with their line numbers, read lazily (for cohort runs:
    the lines are decoded by the workers, and a huge file is never held in memory at once).

    :raises ParseError: when the file is not UTF-8 text.
    """
    source = str(path)
    try:
        with open(path, encoding="utf-8") as fh:
            for lineno, line in enumerate(fh, start=1):
                if line.strip():
                    yield lineno, line
    except UnicodeDecodeError as exc:
        raise ParseError(f"the file is not UTF-8 text (byte {exc.start})", source=source) from None


def parse_jsonl_line(line: str, source: str, lineno: int) -> RawDocument:
    """One line of JSON Lines as a :class:`RawDocument` (``error`` set when the line is not one JSON object)."""
    try:
        value = json.loads(line)
    except json.JSONDecodeError as exc:
        return RawDocument(
            source=source,
            position=lineno,
            error=ParseError(f"malformed JSON: {exc.msg}", source=source, line=lineno, column=exc.colno),
        )
    except RecursionError:
        return RawDocument(
            source=source,
            position=lineno,
            error=ParseError("malformed JSON: the document is nested too deeply", source=source, line=lineno),
        )
    if not isinstance(value, dict):
        return RawDocument(
            source=source,
            position=lineno,
            error=ParseError("each line must be one JSON object (a patient document)", source=source, line=lineno),
        )
    return RawDocument(source=source, position=lineno, data=value)


def parse_document_text(text: str, fmt: str, source: str = "<input>") -> list[RawDocument]:
    """Parse text given its format name (``json``, ``yaml``, ``jsonl``, ``turtle``, ``nt``, ``json-ld``)."""
    fmt = fmt.lower()
    if fmt == "json":
        return [RawDocument(source, i, data=d) for i, d in enumerate(_documents_from(parse_json_text(text, source), source), 1)]
    if fmt in {"yaml", "yml"}:
        docs: list[dict[str, Any]] = []
        for value in parse_yaml_text(text, source):
            docs.extend(_documents_from(value, source))
        return [RawDocument(source, i, data=d) for i, d in enumerate(docs, 1)]
    if fmt in {"jsonl", "ndjson"}:
        return list(read_jsonl_text(text, source))
    if fmt in {"turtle", "ttl", "nt", "ntriples", "json-ld", "jsonld"}:
        norm = {"ttl": "turtle", "ntriples": "nt", "jsonld": "json-ld"}.get(fmt, fmt)
        return [RawDocument(source, 1, rdf=(text, norm))]
    raise UsageError(f"unknown input format {fmt!r}")
