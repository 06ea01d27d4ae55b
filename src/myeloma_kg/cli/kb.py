"""``myeloma-kg kb``: statistics, checks and export of the knowledge base.

Exit codes: 0 success; 3 ``kb check`` found problems; 4 the knowledge base itself is broken
(a file does not parse, a shape or query is invalid).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import click

from ..errors import KnowledgeBaseError
from ..kb import KnowledgeBase

EXIT_FINDINGS = 3
EXIT_BROKEN_KB = 4


def _load() -> KnowledgeBase:
    try:
        return KnowledgeBase.load()
    except KnowledgeBaseError as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(EXIT_BROKEN_KB)


@click.group()
def kb() -> None:
    """Inspect, check and export the knowledge base."""


@kb.command()
@click.option("--format", "fmt", type=click.Choice(["table", "json"]), default="table", show_default=True,
              help="Output as an aligned table or as a JSON object.")
def stats(fmt: str) -> None:
    """Count the knowledge base's triples, terms and individuals by type."""
    counts = _load().stats()
    if fmt == "json":
        click.echo(json.dumps(counts, indent=2))
        return
    width = max(len(k) for k in counts)
    for key, value in counts.items():
        click.echo(f"{key.replace('_', ' ').ljust(width)}  {value:>6}")


@kb.command()
@click.option("--format", "fmt", type=click.Choice(["text", "json"]), default="text", show_default=True,
              help="Findings as lines of text or as a JSON report.")
def check(fmt: str) -> None:
    """Run the knowledge-base checks (SHACL shapes and QC queries).

    Exits 0 when the knowledge base passes, 3 when a check found a problem.
    """
    knowledge = _load()
    try:
        report = knowledge.check()
    except KnowledgeBaseError as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(EXIT_BROKEN_KB)
    if fmt == "json":
        click.echo(json.dumps(report.to_dict(), indent=2))
    else:
        click.echo(report.format_text())
    sys.exit(0 if report.conforms else EXIT_FINDINGS)


@kb.command()
@click.option("--format", "fmt", type=click.Choice(["ttl", "owl", "jsonld"]), default="ttl", show_default=True,
              help="Turtle, RDF/XML (owl) or JSON-LD.")
@click.option("--out", "out", type=click.Path(dir_okay=False, writable=True, path_type=Path), default=None,
              help="File to write; standard output when left out.")
@click.option("--inferred", is_flag=True, help="Include the OWL 2 RL closure.")
def export(fmt: str, out: Path | None, inferred: bool) -> None:
    """Export the whole knowledge base as one merged file."""
    data = _load().serialize(fmt, inferred=inferred)
    if out is None:
        click.echo(data.decode("utf-8"), nl=False)
    else:
        out.write_bytes(data)
        click.echo(f"wrote {out} ({len(data)} bytes)", err=True)
