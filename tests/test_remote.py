"""The same rules in a real SPARQL server: Oxigraph server (the `oxigraph` package of the test extra).

The server is started on a free port of 127.0.0.1 in its own process group, the knowledge base is pushed
through the Graph Store Protocol (`myeloma-kg push`), every vignette runs through the remote path
(`Engine(reasoner=Reasoner(store=RemoteStore(...)))`) and must give the local engine's result, and the
server is stopped by its pid.
"""

from __future__ import annotations

import json
import shutil
import socket
import subprocess
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest
from click.testing import CliRunner
from expectations import canonical
from SPARQLWrapper import JSON, SPARQLWrapper

from myeloma_kg.cli import main
from myeloma_kg.patient import load_patient, patient_iri
from myeloma_kg.reason import Reasoner
from myeloma_kg.recommend import Engine, default_engine
from myeloma_kg.remote import RemoteStore, RemoteStoreError, graph_store_url

pytestmark = pytest.mark.slow

VIGNETTES = sorted((Path(__file__).parent / "end_to_end" / "vignettes").glob("*/patient.yaml"))
OXIGRAPH = shutil.which("oxigraph")


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="module")
def oxigraph_server(tmp_path_factory):
    """An Oxigraph server on 127.0.0.1 (in-memory); yields its base URL; stopped by pid afterwards."""
    if OXIGRAPH is None:
        pytest.skip("the `oxigraph` executable is not installed (pip install oxigraph, or pip install -e '.[test]')")
    port = _free_port()
    log = tmp_path_factory.mktemp("oxigraph") / "server.log"
    with open(log, "wb") as out:
        process = subprocess.Popen([OXIGRAPH, "serve", "--bind", f"127.0.0.1:{port}"], stdout=out,
                                   stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                urllib.request.urlopen(base + "/query?query=ASK%7B%7D", timeout=2).read()
                break
            except (urllib.error.URLError, OSError):
                if process.poll() is not None or time.monotonic() > deadline:
                    pytest.fail(f"oxigraph server did not start: {log.read_text()}")
                time.sleep(0.1)
        yield base
    finally:
        process.terminate()  # by pid
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)


@pytest.fixture(scope="module")
def pushed(oxigraph_server):
    """Push the knowledge base (default graph) and two patients (named graphs) with the CLI."""
    patients = Path(__file__).parent / "end_to_end" / "vignettes" / "V01" / "patient.yaml"
    result = CliRunner().invoke(main, ["push", "--endpoint", oxigraph_server + "/query", "--patients", str(patients)],
                                catch_exceptions=False)
    assert result.exit_code == 0, result.output
    assert "pushed the knowledge base" in result.output and "pushed 1 patient graph" in result.output
    return oxigraph_server


@pytest.fixture(scope="module")
def remote_engine(pushed):
    store = RemoteStore(pushed + "/query", pushed + "/update")
    return Engine(reasoner=Reasoner(store=store))



@pytest.mark.parametrize("path", VIGNETTES, ids=[p.parent.name for p in VIGNETTES])
def test_vignette_same_result_remote(remote_engine, path: Path) -> None:
    doc = load_patient(path)
    remote = remote_engine.run([doc])[0][0].to_dict()
    local = default_engine().run([doc])[0][0].to_dict()
    assert canonical(remote) == canonical(local)
    assert [o["regimen"] for o in remote["options"]] == [o["regimen"] for o in local["options"]]
    assert [o["strength"] for o in remote["options"]] == [o["strength"] for o in local["options"]]


def test_batches_leave_only_the_knowledge_base(remote_engine, pushed) -> None:
    from myeloma_kg.remote import knowledge_base_ntriples

    remote_engine.run([load_patient(VIGNETTES[0])])  # a batch of its own, whichever tests ran before
    store = remote_engine.reasoner._external
    store.flush()
    import pyoxigraph as ox

    expected = len(set(ox.parse(knowledge_base_ntriples(), format=ox.RdfFormat.N_TRIPLES)))
    assert len(store) == expected
    assert store.requests["query"] > 0 and store.requests["update"] > 0


def test_pushed_patient_graph(pushed) -> None:
    sw = SPARQLWrapper(pushed + "/query")
    sw.setQuery("""PREFIX res: <https://w3id.org/myeloma-kg/result/>
        SELECT ?g ?json WHERE { GRAPH ?g { ?p res:recommendation ?r . ?r res:json ?json } }""")
    sw.setReturnFormat(JSON)
    rows = sw.queryAndConvert()["results"]["bindings"]
    assert [r["g"]["value"] for r in rows] == [patient_iri("v01")]
    local = default_engine().run([load_patient(VIGNETTES[0])])[0][0].to_dict()
    assert canonical(json.loads(rows[0]["json"]["value"])) == canonical(json.loads(json.dumps(local)))


def test_cli_recommend_endpoint(pushed) -> None:
    import myeloma_kg.recommend as recommend_module

    saved = recommend_module._ENGINE
    try:
        path = str(VIGNETTES[1])
        result = CliRunner().invoke(main, ["recommend", path, "--format", "json", "--endpoint", pushed + "/query",
                                           "--update-endpoint", pushed + "/update"], catch_exceptions=False)
        assert result.exit_code == 0, result.output
        assert isinstance(recommend_module._ENGINE.reasoner._external, RemoteStore)
    finally:
        recommend_module._ENGINE = saved
    local = default_engine().run([load_patient(path)])[0][0].to_dict()
    assert canonical(json.loads(result.output)) == canonical(json.loads(json.dumps(local)))


def test_named_graph_mode(pushed) -> None:
    """push --graph IRI, then reason with ?default-graph-uri=IRI: everything stays in that graph."""
    graph = "urn:myeloma-kg:test:kb"
    result = CliRunner().invoke(main, ["push", "--endpoint", pushed + "/query", "--graph", graph],
                                catch_exceptions=False)
    assert result.exit_code == 0, result.output
    store = RemoteStore(f"{pushed}/query?default-graph-uri={graph}", pushed + "/update")
    assert store.graph == graph
    engine = Engine(reasoner=Reasoner(store=store))
    doc = load_patient(VIGNETTES[2])
    remote = engine.run([doc])[0][0].to_dict()
    assert canonical(remote) == canonical(default_engine().run([doc])[0][0].to_dict())
    count = len(store)
    default_count = len(RemoteStore(pushed + "/query"))
    assert count == default_count  # the KB in the named graph, the batch cleaned up again


def test_clear_errors(pushed) -> None:
    from myeloma_kg.remote import use_remote_engine

    with pytest.raises(RemoteStoreError, match="does not hold the myeloma-kg knowledge base"):
        use_remote_engine(f"{pushed}/query?default-graph-uri=urn:empty", pushed + "/update")
    with pytest.raises(RemoteStoreError, match="cannot reach"):
        RemoteStore(f"http://127.0.0.1:{_free_port()}/query", timeout=5).query("ASK {}")
    with pytest.raises(RemoteStoreError, match="HTTP 400|QueryBadFormed"):
        RemoteStore(pushed + "/query").query("SELECT ?x WHERE { ?x ")


def test_graph_store_url_defaults() -> None:
    assert graph_store_url("http://127.0.0.1:7878/query") == "http://127.0.0.1:7878/store"
    assert graph_store_url("http://h:3030/kg/sparql") == "http://h:3030/kg/data"
    assert graph_store_url("http://h:3030/kg/query?default-graph-uri=urn:g") == "http://h:3030/kg/data"


def test_remote_store_refuses_forked_use() -> None:
    """Forked cohort workers must not reason in one shared graph (they would see each other's patients)."""
    import os

    store = RemoteStore(f"http://127.0.0.1:{_free_port()}/query")
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # pragma: no cover - the child reports through the pipe
        try:
            store.query("ASK {}")
            message = b"no error"
        except RemoteStoreError as exc:
            message = str(exc).encode()
        except BaseException as exc:  # noqa: BLE001 - report whatever happened
            message = repr(exc).encode()
        os.write(write, message)
        os._exit(0)
    os.close(write)
    os.waitpid(pid, 0)
    with os.fdopen(read, "rb") as fh:
        assert b"--jobs 1" in fh.read()
