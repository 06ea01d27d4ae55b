"""``myeloma-kg serve`` (a SPARQL 1.1 endpoint) and ``myeloma-kg push`` (load a remote SPARQL store)."""

from __future__ import annotations

import sys

import click

from ..errors import KnowledgeBaseError, UsageError
from ..recommend import PROFILES
from ._exits import exit_codes


@click.command()
@click.option("--host", default="127.0.0.1", show_default=True,
              help="Address to listen on. Anything but a loopback address exposes the endpoint to the network.")
@click.option("--port", type=click.IntRange(0, 65535), default=7878, show_default=True, help="Port (0: any free port).")
@click.option("--patients", type=click.Path(exists=True), default=None,
              help="Patient documents (file or directory) to load, each validated, reasoned and put in a named "
                   "graph named by its patient IRI. Invalid documents are reported and skipped.")
@click.option("--update-token", envvar="MYELOMA_KG_UPDATE_TOKEN", default=None, metavar="TOKEN",
              help="Allow SPARQL Update to clients that send `Authorization: Bearer TOKEN` "
                   "(default: read-only; also read from $MYELOMA_KG_UPDATE_TOKEN).")
@click.option("--timeout", type=click.FloatRange(0.1, 3600), default=10.0, show_default=True,
              help="Seconds a query (or /recommend) may run before it is stopped (503).")
@click.option("--max-results", type=click.IntRange(1, None), default=10000, show_default=True,
              help="Most solutions (SELECT) or triples (CONSTRUCT/DESCRIBE) one query may return (else 422).")
@click.option("--max-body", type=click.IntRange(1024, None), default=1_000_000, show_default=True,
              help="Largest request body in bytes (else 413).")
@click.option("--workers", type=click.IntRange(1, 64), default=2, show_default=True,
              help="Worker processes answering queries, each with a copy of the dataset.")
@click.option("--quiet", "-q", is_flag=True, help="Do not log requests.")
def serve(host: str, port: int, patients: str | None, update_token: str | None, timeout: float, max_results: int,
          max_body: int, workers: int, quiet: bool) -> None:
    """Serve the knowledge graph as a SPARQL 1.1 endpoint at /sparql, with POST /recommend, GET /health
    and a query page at /.

    The default graph holds the ontology with its OWL 2 RL inferences; each --patients document is a
    named graph. Read-only unless --update-token is given; SERVICE and LOAD are always refused.
    """
    from ..endpoint import EndpointConfig
    from ..endpoint import serve as run_server

    config = EndpointConfig(host=host, port=port, patients=patients, update_token=update_token, timeout=timeout,
                            max_results=max_results, max_body=max_body, workers=workers, quiet=quiet)
    with exit_codes():
        try:
            run_server(config, echo=lambda line: click.echo(line, err=True))
        except OSError as exc:
            click.echo(f"error: cannot listen on {host}:{port}: {exc.strerror or exc}", err=True)
            sys.exit(1)


@click.command()
@click.option("--endpoint", required=True, metavar="URL",
              help="SPARQL query endpoint of the store, e.g. http://localhost:7878/query (Oxigraph), "
                   "http://localhost:3030/ds/sparql (Fuseki), http://localhost:7200/repositories/ID (GraphDB).")
@click.option("--store", "store_url", default=None, metavar="URL",
              help="Graph Store Protocol URL. Default from --endpoint: <base>/store (Oxigraph), /<dataset>/data "
                   "(Fuseki), /repositories/<id>/rdf-graphs/service (GraphDB, RDF4J).")
@click.option("--graph", default=None, metavar="IRI",
              help="Put the knowledge base in this named graph instead of the default graph (then run "
                   "`recommend --endpoint 'URL?default-graph-uri=IRI'`).")
@click.option("--patients", type=click.Path(exists=True), default=None,
              help="Also push these patient documents, each with its derived facts and recommendation, into a "
                   "named graph named by its patient IRI.")
@click.option("--profile", type=click.Choice(PROFILES), default="default", show_default=True,
              help="Profile of the pushed patients' recommendations.")
@click.option("--append", is_flag=True, help="Add to the graphs (POST) instead of replacing them (PUT).")
@click.option("--token", envvar="MYELOMA_KG_SPARQL_TOKEN", default=None, metavar="TOKEN",
              help="Bearer token for the store (also read from $MYELOMA_KG_SPARQL_TOKEN).")
def push(endpoint: str, store_url: str | None, graph: str | None, patients: str | None, profile: str, append: bool,
         token: str | None) -> None:
    """Load the knowledge base (with its OWL 2 RL closure) into a SPARQL 1.1 store through the Graph Store
    Protocol, so that `myeloma-kg recommend --endpoint URL` can reason there.

    Blank nodes are skolemised (sent as https://w3id.org/myeloma-kg/.well-known/genid/ IRIs) so that the
    rules can address them across requests. Exit codes: 0 done, 1 some patients skipped (invalid),
    3 the store refused or could not be reached.
    """
    from ..remote import (
        RemoteStore,
        graph_store_put,
        graph_store_url,
        knowledge_base_ntriples,
    )

    gsp = store_url or graph_store_url(endpoint)
    try:
        data = knowledge_base_ntriples()
        sent = data.count(b"\n")
        graph_store_put(gsp, data, graph=graph, replace=not append, token=token)
        where = f"graph <{graph}>" if graph else "the default graph"
        query_url = endpoint
        if graph:
            import urllib.parse

            query_url += ("&" if urllib.parse.urlsplit(endpoint).query else "?") + urllib.parse.urlencode(
                {"default-graph-uri": graph})
        count = len(RemoteStore(query_url, token=token))
        click.echo(f"pushed the knowledge base ({sent} triples) to {where} of {gsp}; it now holds {count} triples",
                   err=True)
        skipped_any = False
        if patients:
            from ..endpoint import load_patient_graphs

            loaded, skipped = load_patient_graphs(patients, profile=profile)
            for doc, triples in loaded:
                import pyoxigraph as ox

                body = ox.serialize(triples, format=ox.RdfFormat.N_TRIPLES)
                graph_store_put(gsp, body, graph=doc.iri, replace=not append, token=token)
            for item in skipped:
                skipped_any = True
                click.echo(f"skipped {item.source} ({item.patient or 'no id'}): "
                           + "; ".join(item.reasons[:3]), err=True)
            click.echo(f"pushed {len(loaded)} patient graph(s)" + (f"; skipped {len(skipped)}" if skipped else ""),
                       err=True)
    except KnowledgeBaseError as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(3)
    except UsageError as exc:
        raise click.UsageError(str(exc)) from None
    if skipped_any:
        sys.exit(1)
