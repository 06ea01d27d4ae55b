#!/usr/bin/env python
"""Bounded load test of ``myeloma-kg serve`` (issue 5): concurrent clients on 127.0.0.1 for a fixed time.

    python benchmarks/endpoint_load.py [--clients 32] [--duration 30] [--recommend-share 0.2] [--json out.json]

By default a server is started for the run (``myeloma-kg serve`` on a free port of 127.0.0.1 with the
vignette patients loaded, in its own process group) and stopped by its pid afterwards; ``--url`` targets a
server that is already running instead (it must hold the same patients, or pass ``--patients``).

Each client keeps one HTTP/1.1 connection and loops until the time is up, sending either

* a **rule query**: one of ``queries/api/*.rq`` (the queries behind the engine), ``?profile`` bound with
  VALUES where the query has it, run with ``default-graph-uri`` = the knowledge base + one patient graph
  (so it selects that patient's recommendations, constraints, advice ...), Accept SPARQL JSON or Turtle; or
* a ``POST /recommend`` with one vignette patient (share ``--recommend-share``).

Clients run as threads spread over ``--processes`` client processes. Reported per kind and overall:
requests, throughput, latency p50/p95/p99/max and errors (any non-2xx answer or transport error), as JSON
and as a short table. Traffic goes to the loopback address only; the run stops by itself.
Target (issue 5): no errors, p95 under 100 ms for the rule queries on the 2-core machine.
"""

from __future__ import annotations

import argparse
import http.client
import json
import multiprocessing
import os
import platform
import random
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
VIGNETTES = ROOT / "tests" / "end_to_end" / "vignettes"
KB_GRAPH = "https://w3id.org/myeloma-kg/graph/kb"
PROFILE = "https://w3id.org/myeloma-kg/profile/default"
TARGET_P95_MS = 100.0


def _percentile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(q / 100 * (len(ordered) - 1))))
    return ordered[index]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


# ------------------------------------------------------------------------------------------- workload


def _patients(folder: Path) -> list[dict[str, Any]]:
    import yaml

    out = []
    for path in sorted(folder.glob("*/patient.yaml")) if folder.is_dir() else [folder]:
        out.append(json.loads(json.dumps(yaml.safe_load(path.read_text()), default=str)))
    return out


def _rule_queries() -> list[tuple[str, str, str]]:
    """(name, query text, accept) for every API query, the profile bound where the query uses it."""
    from myeloma_kg.queries import IRI, api_query, with_values
    from myeloma_kg.resources import queries_dir

    out = []
    for path in sorted((queries_dir() / "api").glob("*.rq")):
        query = api_query(path.stem)
        text = query.text
        if "?profile" in text:
            text = with_values(text, {"profile": [IRI(PROFILE)]})
        accept = "text/turtle" if "CONSTRUCT" in text.upper().split("WHERE")[0] else "application/sparql-results+json"
        out.append((path.stem, text, accept))
    return out


def _client_process(host: str, port: int, threads: int, start_at: float, stop_at: float, warmup_until: float,
                    share: float, seed: int, patient_iris: list[str], patients: list[dict[str, Any]],
                    queue: Any) -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    queries = _rule_queries()
    bodies = [json.dumps(p).encode() for p in patients]
    records: list[tuple[str, str, int, float]] = []
    lock = threading.Lock()

    def client(index: int) -> None:
        rng = random.Random(seed * 1000 + index)
        conn = http.client.HTTPConnection(host, port, timeout=60)
        local: list[tuple[str, str, int, float]] = []
        while time.time() < start_at:
            time.sleep(0.01)
        while True:
            now = time.time()
            if now >= stop_at:
                break
            if rng.random() < share:
                kind, name = "recommend", "POST /recommend"
                method, path = "POST", "/recommend"
                body = bodies[rng.randrange(len(bodies))]
                headers = {"Content-Type": "application/json", "Accept": "application/json"}
            else:
                name, text, accept = queries[rng.randrange(len(queries))]
                kind = "query"
                graph = patient_iris[rng.randrange(len(patient_iris))]
                params = urllib.parse.urlencode([("default-graph-uri", KB_GRAPH), ("default-graph-uri", graph)])
                method, path = "POST", "/sparql?" + params
                body = text.encode()
                headers = {"Content-Type": "application/sparql-query", "Accept": accept}
            started = time.perf_counter()
            try:
                conn.request(method, path, body=body, headers=headers)
                response = conn.getresponse()
                response.read()
                status = response.status
                if response.getheader("Connection", "").lower() == "close":
                    conn.close()
            except (OSError, http.client.HTTPException):
                status = 0
                conn.close()
                conn = http.client.HTTPConnection(host, port, timeout=60)
            elapsed = (time.perf_counter() - started) * 1000
            if now >= warmup_until:
                local.append((kind, name, status, elapsed))
        conn.close()
        with lock:
            records.extend(local)

    workers = [threading.Thread(target=client, args=(i,), daemon=True) for i in range(threads)]
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    queue.put(records)


# ------------------------------------------------------------------------------------------- report


def summarise(records: list[tuple[str, str, int, float]], seconds: float) -> dict[str, Any]:
    def block(rows: list[tuple[str, str, int, float]]) -> dict[str, Any]:
        latencies = [r[3] for r in rows]
        errors = [r for r in rows if not 200 <= r[2] < 300]
        statuses: dict[str, int] = {}
        for r in errors:
            statuses[str(r[2])] = statuses.get(str(r[2]), 0) + 1
        return {
            "requests": len(rows),
            "throughput_per_s": round(len(rows) / seconds, 1) if seconds else None,
            "p50_ms": round(_percentile(latencies, 50), 1),
            "p95_ms": round(_percentile(latencies, 95), 1),
            "p99_ms": round(_percentile(latencies, 99), 1),
            "max_ms": round(max(latencies), 1) if latencies else None,
            "errors": len(errors),
            "error_statuses": statuses,
        }

    by_kind = {kind: block([r for r in records if r[0] == kind]) for kind in ("query", "recommend")}
    names = sorted({r[1] for r in records if r[0] == "query"})
    by_query = {name: block([r for r in records if r[1] == name]) for name in names}
    return {"overall": block(records), "by_kind": by_kind, "by_query": by_query}


def table(result: dict[str, Any]) -> str:
    lines = [f"{'':26} {'requests':>9} {'req/s':>8} {'p50 ms':>8} {'p95 ms':>8} {'p99 ms':>8} {'max ms':>8} {'errors':>7}"]

    def row(label: str, b: dict[str, Any]) -> None:
        if b["requests"]:
            lines.append(f"{label:26} {b['requests']:>9} {b['throughput_per_s']:>8} {b['p50_ms']:>8} {b['p95_ms']:>8} "
                         f"{b['p99_ms']:>8} {b['max_ms']:>8} {b['errors']:>7}")

    row("all", result["summary"]["overall"])
    row("rule queries", result["summary"]["by_kind"]["query"])
    row("POST /recommend", result["summary"]["by_kind"]["recommend"])
    for name, b in result["summary"]["by_query"].items():
        row(f"  {name}", b)
    q = result["summary"]["by_kind"]["query"]
    verdict = "met" if q["requests"] and q["errors"] == 0 and result["summary"]["overall"]["errors"] == 0 \
        and q["p95_ms"] < TARGET_P95_MS else "NOT met"
    lines.append(f"target (no errors, rule-query p95 < {TARGET_P95_MS:g} ms): {verdict}")
    return "\n".join(lines)


# ------------------------------------------------------------------------------------------- server


def start_server(patients: Path, workers: int, timeout: float) -> tuple[subprocess.Popen, str, Path]:
    port = _free_port()
    log = Path(tempfile.mkstemp(prefix="myeloma-kg-serve-", suffix=".log")[1])
    folder = Path(tempfile.mkdtemp(prefix="myeloma-kg-load-"))
    for i, p in enumerate(sorted(patients.glob("*/patient.yaml")) if patients.is_dir() else [patients]):
        (folder / f"{i:03d}-{p.parent.name}.yaml").write_text(p.read_text())
    cmd = [sys.executable, "-c", "from myeloma_kg.cli import main; main()", "serve", "--port", str(port),
           "--patients", str(folder), "--workers", str(workers), "--timeout", str(timeout), "--quiet"]
    with open(log, "wb") as out:
        process = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                   start_new_session=True)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 180
    while True:
        try:
            urllib.request.urlopen(url + "/health", timeout=2).read()
            return process, url, log
        except OSError:
            if process.poll() is not None or time.monotonic() > deadline:
                stop_server(process)
                raise SystemExit(f"the server did not start:\n{log.read_text()}") from None
            time.sleep(0.2)


def stop_server(process: subprocess.Popen) -> None:
    if process.poll() is None:
        os.kill(process.pid, signal.SIGTERM)  # by pid; the server stops its own workers
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)  # its own process group, started above
            process.wait(timeout=10)


# ------------------------------------------------------------------------------------------- main


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--clients", type=int, default=32)
    parser.add_argument("--duration", type=float, default=30.0, help="measured seconds")
    parser.add_argument("--warmup", type=float, default=3.0, help="seconds of load before measuring")
    parser.add_argument("--recommend-share", type=float, default=0.2, help="fraction of requests that are /recommend")
    parser.add_argument("--processes", type=int, default=4, help="client processes (threads are spread over them)")
    parser.add_argument("--workers", type=int, default=2, help="server worker processes (when starting one)")
    parser.add_argument("--timeout", type=float, default=10.0, help="server query time limit (when starting one)")
    parser.add_argument("--patients", type=Path, default=VIGNETTES, help="patient documents (folder of */patient.yaml)")
    parser.add_argument("--url", default=None, help="use this running server instead of starting one")
    parser.add_argument("--seed", type=int, default=5)
    parser.add_argument("--json", type=Path, default=None, help="also write the result here")
    args = parser.parse_args(argv)
    if not 1 <= args.clients <= 256 or not 0 < args.duration <= 600:
        parser.error("--clients 1..256 and --duration up to 600 s")

    patients = _patients(args.patients)
    from myeloma_kg.patient import patient_iri

    patient_iris = [patient_iri(str(p["id"])) for p in patients]
    process = None
    url = args.url
    if url is None:
        process, url, _ = start_server(args.patients, args.workers, args.timeout)
    parts = urllib.parse.urlsplit(url)
    if parts.hostname not in ("127.0.0.1", "localhost", "::1"):
        parser.error("the load test only targets a server on this machine (127.0.0.1)")
    try:
        health = json.loads(urllib.request.urlopen(url + "/health", timeout=10).read())
        missing = set(p["id"] for p in patients) - set(health.get("patients", []))
        if missing:
            print(f"warning: the server lacks {len(missing)} of the patients; their queries select nothing",
                  file=sys.stderr)
        ctx = multiprocessing.get_context("spawn")
        queue = ctx.Queue()
        n_proc = max(1, min(args.processes, args.clients))
        per = [args.clients // n_proc + (1 if i < args.clients % n_proc else 0) for i in range(n_proc)]
        start_at = time.time() + 3.0
        warmup_until = start_at + args.warmup
        stop_at = warmup_until + args.duration
        procs = [ctx.Process(target=_client_process, args=(parts.hostname, parts.port, n, start_at, stop_at, warmup_until,
                                                          args.recommend_share, args.seed + i, patient_iris, patients,
                                                          queue), daemon=True)
                 for i, n in enumerate(per) if n]
        for p in procs:
            p.start()
        records: list[tuple[str, str, int, float]] = []
        for _ in procs:
            records.extend(queue.get(timeout=args.duration + args.warmup + 120))
        for p in procs:
            p.join(timeout=10)
        after = json.loads(urllib.request.urlopen(url + "/health", timeout=10).read())
    finally:
        if process is not None:
            stop_server(process)

    result = {
        "benchmark": "endpoint_load",
        "when": time.strftime("%Y-%m-%dT%H:%M:%S"),
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version(), "platform": platform.platform()},
        "settings": {"clients": args.clients, "duration_s": args.duration, "warmup_s": args.warmup,
                     "recommend_share": args.recommend_share, "client_processes": len(procs),
                     "server_workers": health["workers"]["configured"], "patients": len(patients)},
        "summary": summarise(records, args.duration),
        "server_workers_replaced": after["workers"]["replaced"],
    }
    result["target_met"] = (result["summary"]["overall"]["errors"] == 0
                            and result["summary"]["by_kind"]["query"]["p95_ms"] < TARGET_P95_MS)
    print(json.dumps(result, indent=2))
    print(table(result), file=sys.stderr)
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(result, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
