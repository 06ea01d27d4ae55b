"""``myeloma-kg recommend`` and ``myeloma-kg explain``: ranked, explained regimen options."""

from __future__ import annotations

import json
import sys

import click

from ..errors import DataError, KnowledgeBaseError, UnknownIdentifierError, UsageError
from ..recommend import PROFILES

FORMATS = ("text", "json", "ttl")


def _load_and_validate(path: str):
    """Load one patient and validate it; exit 1 with the report on stderr when invalid."""
    from ..patient import load_patient
    from ..validate import validate

    doc = load_patient(path)
    report = validate(doc)
    if not report.conforms:
        for v in report.violations:
            click.echo(str(v), err=True)
        click.echo(f"{doc.id}: invalid patient document ({len(report.violations)} error(s)); see above", err=True)
        sys.exit(1)
    return doc, report


@click.command()
@click.argument("patients", nargs=-1, required=True, type=click.Path())
@click.option("--format", "fmt", type=click.Choice(FORMATS), default="text", show_default=True,
              help="text for reading, json for the recommendation contract, ttl for the derived graph.")
@click.option("--profile", type=click.Choice(PROFILES), default="default", show_default=True,
              help="Guideline profile: which sources, jurisdiction and footnote reading to apply (R56).")
def recommend(patients: tuple[str, ...], fmt: str, profile: str) -> None:
    """Recommend regimens for patient documents (JSON, YAML or RDF).

    Exit codes: 0 done, 1 invalid patient (report on stderr), 2 usage error, 3 knowledge-base error.
    """
    from ..explain import render_text
    from ..recommend import default_engine

    try:
        engine = default_engine()
        for path in patients:
            doc, _ = _load_and_validate(path)
            results, store = engine.run([doc], profile, keep_store=True)
            rec = results[0]
            if fmt == "json":
                click.echo(json.dumps(rec.to_dict(), indent=2, ensure_ascii=False))
            elif fmt == "ttl":
                from ..queries import api_query

                from rdflib import Graph

                from ..reason import to_rdflib

                graph = Graph()
                for prefix, ns in (("mkg", "https://w3id.org/myeloma-kg/"), ("drug", "https://w3id.org/myeloma-kg/drug/"),
                                   ("reg", "https://w3id.org/myeloma-kg/regimen/"), ("pt", "https://w3id.org/myeloma-kg/patient/")):
                    graph.bind(prefix, ns)
                for t in store.query(api_query("patient-graph").text):
                    graph.add((to_rdflib(t.subject), to_rdflib(t.predicate), to_rdflib(t.object)))
                click.echo(graph.serialize(format="turtle"))
            else:
                click.echo(render_text(rec))
    except UsageError as exc:
        raise click.UsageError(str(exc)) from None
    except KnowledgeBaseError as exc:
        click.echo(f"knowledge-base error: {exc}", err=True)
        sys.exit(3)
    except DataError as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(1)


@click.command()
@click.argument("patient", type=click.Path())
@click.argument("regimen")
@click.option("--format", "fmt", type=click.Choice(("text", "json")), default="text", show_default=True)
@click.option("--profile", type=click.Choice(PROFILES), default="default", show_default=True)
def explain(patient: str, regimen: str, fmt: str, profile: str) -> None:
    """Explain one regimen for one patient: facts, situation, rules, sources and trial figures."""
    from ..explain import explain as explain_regimen
    from ..explain import render_explanation

    try:
        doc, _ = _load_and_validate(patient)
        ex = explain_regimen(doc, regimen, profile)
    except UnknownIdentifierError as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(2)
    except KnowledgeBaseError as exc:
        click.echo(f"knowledge-base error: {exc}", err=True)
        sys.exit(3)
    except DataError as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(1)
    if fmt == "json":
        click.echo(json.dumps(ex.to_dict(), indent=2, ensure_ascii=False))
    else:
        click.echo(render_explanation(ex))
