"""`myeloma-kg serve`: the SPARQL 1.1 Protocol endpoint, exercised with SPARQLWrapper as the client.

One server runs in this process (HTTP in a thread, queries in worker processes) on a free port of
127.0.0.1, with two vignette patients and one patient whose id tries to break out of a query; a second,
read-only server shares its dataset. Paths that SPARQLWrapper cannot express (the service description,
/recommend, /health, a DELETE) use urllib.
"""

from __future__ import annotations

import csv
import io
import json
import time
import urllib.error
import urllib.request
from pathlib import Path
from xml.dom.minidom import Document

import pytest
import yaml
from expectations import canonical
from rdflib import Graph
from SPARQLWrapper import (
    CSV,
    GET,
    JSON,
    JSONLD,
    N3,
    POST,
    POSTDIRECTLY,
    RDFXML,
    TSV,
    TURTLE,
    URLENCODED,
    XML,
    SPARQLWrapper,
)
from SPARQLWrapper.SPARQLExceptions import QueryBadFormed, Unauthorized

from myeloma_kg.endpoint import (
    KB_GRAPH,
    EndpointConfig,
    EndpointServer,
    forbidden_operation,
    is_data_update,
)
from myeloma_kg.patient import patient_iri
from myeloma_kg.queries import IRI, api_query, sparql_term, with_values

VIGNETTES = Path(__file__).parent / "end_to_end" / "vignettes"
TOKEN = "test-token-5c1e"
EVIL_ID = 'pt"} ; DROP ALL ; {<x>\nINSERT DATA { <urn:a> <urn:b> <urn:c> } #'
EVIL_DRUG = 'lenalidomide"} ; DROP ALL ; {>\n<urn:x> <urn:y> "z" . }'
MKG = "https://w3id.org/myeloma-kg/"
PREFIX = f"PREFIX mkg: <{MKG}>\n"


def _evil_patient(pid: str = EVIL_ID, drugs: list[str] | None = None) -> dict:
    return {"id": pid, "assessmentDate": "2026-01-10", "lines": [
        {"number": 1, "drugs": drugs or ["lenalidomide", "dexamethasone"], "start": "2024-01-01",
         "bestResponse": "PR", "progression": "2025-12-01", "progressionOnTherapy": True}]}


@pytest.fixture(scope="module")
def patients_dir(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("patients")
    for name in ("V01", "V22a"):
        (folder / f"{name}.yaml").write_text((VIGNETTES / name / "patient.yaml").read_text())
    (folder / "evil.json").write_text(json.dumps(_evil_patient()))
    (folder / "invalid.yaml").write_text(yaml.safe_dump(_evil_patient("bad-drug", ["lenalidomid"])))
    return folder


@pytest.fixture(scope="module")
def server(patients_dir):
    config = EndpointConfig(port=0, patients=patients_dir, update_token=TOKEN, timeout=2.0, max_results=5000,
                            max_body=200_000, workers=2, quiet=True)
    srv = EndpointServer(config).start()
    try:
        yield srv
    finally:
        srv.stop()


@pytest.fixture(scope="module")
def read_only(server):
    config = EndpointConfig(port=0, timeout=2.0, max_results=5000, max_body=200_000, workers=1, quiet=True)
    srv = EndpointServer(config, dataset=server.dataset).start()
    try:
        yield srv
    finally:
        srv.stop()


def sparql(srv: EndpointServer, query: str, fmt: str = JSON, method: str = GET, direct: bool = False) -> SPARQLWrapper:
    sw = SPARQLWrapper(srv.url + "/sparql")
    sw.setQuery(query)
    sw.setReturnFormat(fmt)
    sw.setMethod(method)
    sw.setOnlyConneg(True)
    if method == POST:
        sw.setRequestMethod(POSTDIRECTLY if direct else URLENCODED)
    return sw


def http(srv: EndpointServer, path: str, *, data: bytes | None = None, method: str | None = None,
         headers: dict[str, str] | None = None) -> tuple[int, dict[str, str], bytes]:
    request = urllib.request.Request(srv.url + path, data=data, method=method, headers=headers or {})
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, dict(response.headers), response.read()
    except urllib.error.HTTPError as exc:
        return exc.code, dict(exc.headers), exc.read()


def status_of(sw: SPARQLWrapper) -> tuple[int, str]:
    """Run a request that must fail; return its HTTP status and body."""
    try:
        sw.query()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()
    except QueryBadFormed as exc:
        return 400, str(exc)
    except Unauthorized as exc:
        return 401, str(exc)
    raise AssertionError("the request succeeded")


COUNT_RECS = PREFIX + "SELECT (COUNT(?r) AS ?n) WHERE { ?r a mkg:Recommendation }"


def _count(result: dict) -> int:
    return int(result["results"]["bindings"][0]["n"]["value"])


# ---------------------------------------------------------------- query paths and formats

@pytest.mark.parametrize("method,direct", [(GET, False), (POST, False), (POST, True)],
                         ids=["GET", "POST-form", "POST-sparql-query"])
def test_query_methods(server, method, direct) -> None:
    result = sparql(server, COUNT_RECS, JSON, method, direct).query()
    assert result.response.headers["Content-Type"].startswith("application/sparql-results+json")
    assert _count(result.convert()) > 20


def test_select_formats(server) -> None:
    query = PREFIX + "SELECT ?r ?rule WHERE { ?r a mkg:Recommendation ; mkg:ruleId ?rule } ORDER BY ?r LIMIT 5"
    rows_json = sparql(server, query, JSON).queryAndConvert()["results"]["bindings"]
    assert len(rows_json) == 5
    expected = [(b["r"]["value"], b["rule"]["value"]) for b in rows_json]

    xml = sparql(server, query, XML, POST).queryAndConvert()
    assert isinstance(xml, Document)
    uris = [n.firstChild.data for n in xml.getElementsByTagName("uri")]
    assert uris == [r for r, _ in expected]

    result = sparql(server, query, CSV, POST, direct=True).query()
    assert result.response.headers["Content-Type"].startswith("text/csv")
    rows = list(csv.reader(io.StringIO(result.convert().decode())))
    assert rows[0] == ["r", "rule"] and [tuple(r) for r in rows[1:]] == expected

    result = sparql(server, query, TSV).query()
    assert result.response.headers["Content-Type"].startswith("text/tab-separated-values")
    lines = result.convert().decode().splitlines()
    assert lines[0] == "?r\t?rule" and lines[1].split("\t")[0] == f"<{expected[0][0]}>"


def test_ask_formats(server) -> None:
    yes = PREFIX + "ASK { ?r a mkg:Recommendation }"
    assert sparql(server, yes, JSON).queryAndConvert()["boolean"] is True
    xml = sparql(server, PREFIX + "ASK { mkg:nothing a mkg:Recommendation }", XML, POST).queryAndConvert()
    assert xml.getElementsByTagName("boolean")[0].firstChild.data == "false"


@pytest.mark.parametrize("fmt,media,rdflib_format", [
    (TURTLE, "text/turtle", "turtle"), (N3, "application/n-triples", "nt"),
    (JSONLD, "application/ld+json", "json-ld"), (RDFXML, "application/rdf+xml", "xml")])
def test_construct_and_describe_formats(server, fmt, media, rdflib_format) -> None:
    query = PREFIX + "CONSTRUCT { ?r mkg:ruleId ?rule } WHERE { ?r a mkg:Recommendation ; mkg:ruleId ?rule } LIMIT 7"
    sw = sparql(server, query, fmt, POST, direct=True)
    if fmt == N3:  # ask for N-Triples explicitly
        sw.addCustomHttpHeader("Accept", "application/n-triples")
    result = sw.query()
    assert result.response.headers["Content-Type"].startswith(media)
    graph = Graph().parse(data=result.response.read(), format=rdflib_format)
    assert len(graph) == 7
    describe = sparql(server, "DESCRIBE <https://w3id.org/myeloma-kg/regimen/dvd>", fmt)
    if fmt == N3:
        describe.addCustomHttpHeader("Accept", "application/n-triples")
    graph = Graph().parse(data=describe.query().response.read(), format=rdflib_format)
    assert len(graph) > 5


def test_default_and_named_graph_uri(server) -> None:
    patients = {g: n for g, n in server.dataset.counts.items() if g}
    assert len(patients) == 3  # v01, v22a and the evil id; the invalid document was skipped
    graph = patient_iri("v01")
    count = PREFIX + "SELECT (COUNT(*) AS ?n) WHERE { ?s ?p ?o }"
    # default-graph-uri = a patient graph: the query sees only that graph
    sw = sparql(server, count, JSON)
    sw.addDefaultGraph(graph)
    assert _count(sw.queryAndConvert()) == patients[graph]
    # the knowledge base can be named too, and merged with the patient graph
    sw = sparql(server, count, JSON, POST)
    sw.addDefaultGraph(KB_GRAPH)
    sw.addDefaultGraph(graph)
    merged = _count(sw.queryAndConvert())
    assert merged >= patients[graph] + server.dataset.counts[""] - 50
    # named-graph-uri restricts what GRAPH ?g sees
    query = "SELECT DISTINCT ?g WHERE { GRAPH ?g { ?s ?p ?o } }"
    sw = sparql(server, query, JSON, POST, direct=True)
    sw.addNamedGraph(graph)
    assert [b["g"]["value"] for b in sw.queryAndConvert()["results"]["bindings"]] == [graph]
    # the API rule queries run over KB + patient graph and find the patient's recommendations
    rec_query = api_query("recommendations").text
    sw = sparql(server, rec_query, JSON, POST)
    sw.addDefaultGraph(KB_GRAPH)
    sw.addDefaultGraph(graph)
    rows = sw.queryAndConvert()["results"]["bindings"]
    assert rows and {r["patient"]["value"] for r in rows} == {graph}


def test_patient_graph_holds_recommendation(server) -> None:
    query = """PREFIX res: <https://w3id.org/myeloma-kg/result/>
    SELECT ?g ?json WHERE { GRAPH ?g { ?p res:recommendation ?r . ?r res:json ?json } }"""
    rows = sparql(server, query).queryAndConvert()["results"]["bindings"]
    assert len(rows) == 3
    for row in rows:
        data = json.loads(row["json"]["value"])
        assert row["g"]["value"] == patient_iri(data["patient"])
        assert {"options", "excluded", "facts"} <= set(data)


def test_service_description(server) -> None:
    status, headers, body = http(server, "/sparql", headers={"Accept": "text/turtle"})
    assert status == 200 and headers["Content-Type"].startswith("text/turtle")
    graph = Graph().parse(data=body, format="turtle")
    sd = "http://www.w3.org/ns/sparql-service-description#"
    from rdflib import URIRef

    assert (None, URIRef(sd + "endpoint"), URIRef(server.url + "/sparql")) in graph
    assert len(list(graph.objects(None, URIRef(sd + "namedGraph")))) == 3
    status, headers, _ = http(server, "/sparql", headers={"Accept": "application/ld+json"})
    assert status == 200 and headers["Content-Type"].startswith("application/ld+json")


# ---------------------------------------------------------------- updates

def _update(srv: EndpointServer, text: str, token: str | None = None, direct: bool = False) -> SPARQLWrapper:
    sw = SPARQLWrapper(srv.url + "/sparql", updateEndpoint=srv.url + "/sparql")
    sw.setMethod(POST)
    sw.setRequestMethod(POSTDIRECTLY if direct else URLENCODED)
    sw.setQuery(text)
    if token:
        sw.addCustomHttpHeader("Authorization", f"Bearer {token}")
    return sw


def test_update_refused_when_read_only(read_only) -> None:
    status, body = status_of(_update(read_only, "INSERT DATA { <urn:a> <urn:b> <urn:c> }"))
    assert status == 403 and "read-only" in body
    status, _ = status_of(_update(read_only, "DROP ALL", direct=True))
    assert status == 403
    assert sparql(read_only, PREFIX + "ASK { ?r a mkg:Recommendation }").queryAndConvert()["boolean"] is True


def test_update_needs_the_token(server) -> None:
    status, body = status_of(_update(server, "INSERT DATA { <urn:a> <urn:b> <urn:c> }"))
    assert status == 401 and "Bearer" in body
    status, _ = status_of(_update(server, "INSERT DATA { <urn:a> <urn:b> <urn:c> }", token="wrong"))
    assert status == 401
    ask = "ASK { <urn:a> <urn:b> <urn:c> }"
    assert sparql(server, ask).queryAndConvert()["boolean"] is False


def test_update_accepted_with_the_token(server) -> None:
    ask = "ASK { <urn:t:a> <urn:t:b> \"c\" }"
    response = _update(server, 'INSERT DATA { <urn:t:a> <urn:t:b> "c" }', token=TOKEN).query().response
    assert response.status == 204
    for _ in range(4):  # every worker sees it
        assert sparql(server, ask).queryAndConvert()["boolean"] is True
    # an update with a WHERE clause (the workers reload the data)
    _update(server, "DELETE WHERE { <urn:t:a> ?p ?o }", token=TOKEN, direct=True).query()
    for _ in range(4):
        assert sparql(server, ask).queryAndConvert()["boolean"] is False
    status, body = status_of(_update(server, "INSERT DATA { <urn:a> <urn:b> ", token=TOKEN))
    assert status == 400 and "malformed update" in body


def test_service_and_load_refused(server) -> None:
    for query in ["SELECT * WHERE { SERVICE <http://127.0.0.1:9/sparql> { ?s ?p ?o } }",
                  "select * { ?s ?p 1sErViCe <http://127.0.0.1:9/> { } }",
                  "SELECT * { ?s ?p ?o . FILTER(?s<?p)SERVICE<http://127.0.0.1:9/>{ ?s ?p ?o } }"]:
        status, body = status_of(sparql(server, query, JSON, POST))
        assert status == 403 and "SERVICE" in body
    for update in ["LOAD <file:///etc/passwd>", "LOAD <http://127.0.0.1:9/x> INTO GRAPH <urn:g>"]:
        status, body = status_of(_update(server, update, token=TOKEN))
        assert status == 403 and "LOAD" in body
    # the words inside strings, IRIs, comments or prefixed names are not keywords
    query = 'PREFIX ex: <urn:load:> SELECT * WHERE { ?s ?p ?o FILTER(?o != "SERVICE LOAD") OPTIONAL { ?s ex:service ?x } } LIMIT 1 # LOAD'
    assert sparql(server, query).queryAndConvert()["results"]["bindings"]


def test_forbidden_operation_and_data_updates() -> None:
    assert forbidden_operation("SELECT * { \\u0053ERVICE <http://e/> { } }") == "SERVICE"
    assert forbidden_operation("SELECT * { ?s ?p ?o } # service") is None
    assert forbidden_operation("SELECT * { ?s ?p service:x }") == "SERVICE"
    assert is_data_update("INSERT DATA { <a> <b> 'x' } ; DELETE DATA { <a> <b> 'y' }")
    assert not is_data_update("INSERT { ?s <b> 'x' } WHERE { ?s ?p ?o }")


# ---------------------------------------------------------------- errors and limits

def test_malformed_query_is_400_with_the_parser_message(server) -> None:
    status, body = status_of(sparql(server, "SELECT ?s WHERE { ?s ", JSON, POST))
    assert status == 400 and "malformed query" in body and "error at 1:" in body


def test_wrong_media_type_is_415(server) -> None:
    sw = sparql(server, "SELECT * { ?s ?p ?o } LIMIT 1", JSON, POST, direct=True)
    sw.addCustomHttpHeader("Content-Type", "text/plain")
    status, body = status_of(sw)
    assert status == 415 and "application/sparql-query" in body
    status, _, _ = http(server, "/recommend", data=b"id: x", headers={"Content-Type": "application/yaml"})
    assert status == 415


def test_unacceptable_format_is_406(server) -> None:
    sw = sparql(server, "SELECT * { ?s ?p ?o } LIMIT 1")
    sw.addCustomHttpHeader("Accept", "image/png")
    status, body = status_of(sw)
    assert status == 406 and "application/sparql-results+json" in body


def test_wrong_method_is_405(server) -> None:
    sw = sparql(server, "ASK {}")  # an update sent by GET
    sw.addParameter("update", "INSERT DATA { <urn:a> <urn:b> <urn:c> }")
    try:
        sw.query()
        raise AssertionError("GET with update= succeeded")
    except urllib.error.HTTPError as exc:
        assert exc.code == 405 and "POST" in exc.headers["Allow"]
    for method in ("DELETE", "PUT", "PATCH"):
        status, headers, _ = http(server, "/sparql", method=method, data=b"")
        assert status == 405 and headers["Allow"] == "GET, POST"
    status, headers, _ = http(server, "/recommend")
    assert status == 405 and headers["Allow"] == "POST"
    sw = SPARQLWrapper(server.url + "/health")  # a SPARQL POST to a GET-only resource
    sw.setQuery("ASK {}")
    sw.setMethod(POST)
    status, _ = status_of(sw)
    assert status == 405


def test_large_body_is_413(server) -> None:
    padding = "#" + "x" * 250_000 + "\n"
    status, body = status_of(sparql(server, padding + "ASK {}", JSON, POST, direct=True))
    assert status == 413 and "--max-body" in body
    assert sparql(server, "ASK {}").queryAndConvert()["boolean"] is True  # the server is still fine


def test_result_size_limit(server) -> None:
    status, body = status_of(sparql(server, "SELECT * WHERE { ?s ?p ?o }"))
    assert status == 422 and "more than 5000 results" in body
    status, _ = status_of(sparql(server, "CONSTRUCT WHERE { ?s ?p ?o }", TURTLE))
    assert status == 422
    assert len(sparql(server, "SELECT * WHERE { ?s ?p ?o } LIMIT 5000").queryAndConvert()["results"]["bindings"]) == 5000


# ---------------------------------------------------------------- /recommend and /health

def test_recommend_valid(server) -> None:
    patient = yaml.safe_load((VIGNETTES / "V01" / "patient.yaml").read_text())
    body = json.dumps(patient, default=str).encode()
    status, headers, data = http(server, "/recommend", data=body, headers={"Content-Type": "application/json"})
    assert status == 200 and headers["Content-Type"].startswith("application/json")
    rec = json.loads(data)
    from myeloma_kg.recommend import recommend

    assert rec == json.loads(json.dumps(recommend(VIGNETTES / "V01" / "patient.yaml").to_dict()))
    status, _, data = http(server, "/recommend?profile=s003-2025", data=body,
                           headers={"Content-Type": "application/json"})
    assert status == 200 and json.loads(data)["profile"] == "s003-2025"
    status, _, data = http(server, "/recommend?profile=nope", data=body, headers={"Content-Type": "application/json"})
    assert status == 400 and "unknown profile" in json.loads(data)["error"]


def test_recommend_invalid(server) -> None:
    body = json.dumps(_evil_patient("pt-1", ["lenalidomid"])).encode()
    status, _, data = http(server, "/recommend", data=body, headers={"Content-Type": "application/json"})
    report = json.loads(data)
    assert status == 400 and report["error"] == "invalid patient document"
    assert report["report"]["violations"][0]["path"] == "lines[0].drugs[0]"
    status, _, data = http(server, "/recommend", data=b"{not json", headers={"Content-Type": "application/json"})
    assert status == 400 and "malformed JSON" in json.loads(data)["error"]


def test_health_and_page(server) -> None:
    status, _, data = http(server, "/health")
    health = json.loads(data)
    assert status == 200 and health["status"] == "ok" and health["readOnly"] is False
    assert sorted(health["patients"]) == sorted(["v01", "v22a", EVIL_ID])
    assert [s["patient"] for s in health["skipped"]] == ["bad-drug"]
    status, headers, page = http(server, "/")
    assert status == 200 and headers["Content-Type"].startswith("text/html") and b"<textarea" in page
    assert b"http://" not in page and b"https://" not in page.replace(b"https://w3id.org/myeloma-kg/", b"")
    assert "default-src 'self'" in headers["Content-Security-Policy"]
    status, headers, script = http(server, "/static/app.js")
    assert status == 200 and b"application/sparql-query" in script
    assert http(server, "/static/../endpoint.py")[0] == 404


# ---------------------------------------------------------------- injection

def test_injection_through_with_values(server) -> None:
    """A patient id and a drug name full of quotes, braces, `>` and newlines stay data."""
    query = with_values(PREFIX + "SELECT ?g ?id WHERE { GRAPH ?g { ?p mkg:patientId ?id } }", {"id": [EVIL_ID]})
    rows = sparql(server, query, JSON, POST).queryAndConvert()["results"]["bindings"]
    assert [r["id"]["value"] for r in rows] == [EVIL_ID]
    assert rows[0]["g"]["value"] == patient_iri(EVIL_ID)
    query = with_values("SELECT ?name WHERE { BIND(?drug AS ?name) }", {"drug": [EVIL_DRUG]})
    assert "SELECT ?name WHERE { VALUES" in query and query.count("{") == 3
    rows = sparql(server, query, JSON).queryAndConvert()["results"]["bindings"]
    assert [r["name"]["value"] for r in rows] == [EVIL_DRUG]
    with pytest.raises(ValueError):
        sparql_term(IRI(MKG + 'drug/x> } ; DROP ALL ; {<'))
    assert sparql(server, "ASK { ?s ?p ?o }").queryAndConvert()["boolean"] is True
    assert sparql(server, "ASK { <urn:a> <urn:b> <urn:c> }").queryAndConvert()["boolean"] is False


def test_injection_through_recommend(server) -> None:
    before = server.dataset.counts[""]
    body = json.dumps(_evil_patient()).encode()
    status, _, data = http(server, "/recommend", data=body, headers={"Content-Type": "application/json"})
    assert status == 200 and json.loads(data)["patient"] == EVIL_ID
    body = json.dumps(_evil_patient("pt-2", [EVIL_DRUG, "dexamethasone"])).encode()
    status, _, data = http(server, "/recommend", data=body, headers={"Content-Type": "application/json"})
    assert status == 400 and "not a drug id" in json.loads(data)["report"]["violations"][0]["message"]
    assert server.dataset.counts[""] == before
    assert sparql(server, "ASK { <urn:a> <urn:b> <urn:c> }").queryAndConvert()["boolean"] is False
    assert sparql(server, "ASK { <urn:x> <urn:y> \"z\" }").queryAndConvert()["boolean"] is False


# ---------------------------------------------------------------- the same rules through this endpoint

def test_remote_store_against_this_endpoint(server) -> None:
    """RemoteStore reasons inside this endpoint (SPARQL Update with the token) like the local engine."""
    from myeloma_kg.patient import load_patient
    from myeloma_kg.reason import Reasoner
    from myeloma_kg.recommend import Engine, default_engine
    from myeloma_kg.remote import RemoteStore

    store = RemoteStore(server.url + "/sparql", token=TOKEN)
    before = len(store)
    engine = Engine(reasoner=Reasoner(store=store))
    doc = load_patient(VIGNETTES / "V13" / "patient.yaml")
    remote = engine.run([doc])[0][0].to_dict()
    local = default_engine().run([doc])[0][0].to_dict()
    assert canonical(remote) == canonical(local)
    assert len(store) == before  # the batch's triples are gone again



# ---------------------------------------------------------------- time limit (last: it replaces a worker)

def test_query_time_limit(server) -> None:
    started = time.monotonic()
    status, body = status_of(sparql(server, "SELECT (COUNT(*) AS ?n) WHERE { ?a ?b ?c . ?d ?e ?f . ?g ?h ?i }"))
    assert status == 503 and "time limit of 2 s" in body
    assert time.monotonic() - started < 10
    assert sparql(server, "ASK {}").queryAndConvert()["boolean"] is True  # the other worker answers
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        health = json.loads(http(server, "/health")[2])
        if health["workers"]["alive"] == 2 and health["workers"]["replaced"] >= 1:
            break
        time.sleep(0.5)
    assert health["workers"]["alive"] == 2 and health["workers"]["replaced"] >= 1
