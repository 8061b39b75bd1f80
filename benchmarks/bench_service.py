"""Load test of `hippograph serve` on loopback: 8 concurrent clients, 2,000 hipporag retrievals, then the
same while two index runs publish new versions of the store.

    python benchmarks/bench_service.py STORE.duckdb [--requests 2000] [--clients 8]

The store is copied first (the publishing phase writes to the copy). Each client thread sends
`POST /retrieve` with the development questions in turn, over its own HTTP connection; a request that
does not return 200, or raises, is an error. In the second phase, which lasts until both runs have
published (and at least as many requests), the Airflow DAG runs twice (`dag.test()` on SQLite in a
throw-away AIRFLOW_HOME; `--publisher cli`: `hippograph index` instead), one new document each time,
and each run publishes a new store file; after each publish, a query for the new document's title
must find it.
Writes benchmarks/results/service_load_<store>_<publisher>.{json,md}.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import numpy as np

from bench_query_latency import QUERY_SETS, cpu

RESULTS = Path(__file__).resolve().parent / "results"
DAGS = Path(__file__).resolve().parent.parent / "dags"
NEW_DOCUMENTS = [
    {"id": "bench-new-1", "title": "Quillmere Observatory", "text": "The Quillmere Observatory was founded in 1907 by Ottilie Brandt."},
    {"id": "bench-new-2", "title": "Harrowgate Tidal Mill", "text": "The Harrowgate Tidal Mill was built in 1788 by the miller Jonas Pell."},
]


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def start_server(store: Path, port: int) -> subprocess.Popen:
    server = subprocess.Popen([sys.executable, "-m", "hippograph.cli", "serve", "--db", str(store), "--port", str(port)],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 300
    while True:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/health", timeout=5).status_code == 200:
                return server
        except httpx.TransportError:
            pass
        if server.poll() is not None or time.monotonic() > deadline:
            raise SystemExit("the server did not come up")
        time.sleep(0.5)


def load(
    url: str, questions: list[str], requests: int, clients: int, until: threading.Event | None = None
) -> dict[str, object]:
    """Send at least `requests` retrievals from `clients` threads, and go on until `until` is set; the
    latency of each, and the errors."""
    latencies, errors, lock = [], [], threading.Lock()
    issued = 0

    def next_request() -> int | None:
        nonlocal issued
        with lock:
            if issued >= requests and (until is None or until.is_set()):
                return None
            issued += 1
            return issued - 1

    def client() -> None:
        with httpx.Client(base_url=url, timeout=120) as http:
            while (i := next_request()) is not None:
                start = time.perf_counter()
                try:
                    response = http.post("/retrieve", json={"question": questions[i % len(questions)], "top_k": 5})
                    ok = response.status_code == 200
                    failure = None if ok else f"HTTP {response.status_code}"
                except httpx.HTTPError as error:
                    failure = type(error).__name__
                with lock:
                    latencies.append((time.perf_counter() - start) * 1000)
                    if failure:
                        errors.append(failure)

    start = time.perf_counter()
    with ThreadPoolExecutor(clients) as pool:
        for future in [pool.submit(client) for _ in range(clients)]:
            future.result()
    seconds = time.perf_counter() - start
    return {
        "requests": len(latencies), "errors": len(errors), "error_kinds": sorted(set(errors)),
        "seconds": round(seconds, 1), "requests_per_s": round(len(latencies) / seconds, 1),
        "p50_ms": round(float(np.percentile(latencies, 50)), 1), "p99_ms": round(float(np.percentile(latencies, 99)), 1),
    }


# Run the DAG once with a conf, as Airflow's own `dag.test()` does (see tests/test_dag.py).
DAG_RUN = """
import json, sys
from airflow.dag_processing.dagbag import DagBag
run = DagBag(dag_folder=sys.argv[1]).get_dag("hippograph_index").test(run_conf=json.loads(sys.argv[2]))
sys.exit(0 if str(run.state) == "success" else 1)
"""


def airflow_env(scratch: Path) -> dict[str, str]:
    """A throw-away Airflow home on SQLite, migrated, with the repository's DAG folder."""
    env = {**os.environ, "AIRFLOW_HOME": str(scratch / "airflow"), "AIRFLOW__CORE__DAGS_FOLDER": str(DAGS),
           "AIRFLOW__CORE__LOAD_EXAMPLES": "False"}
    subprocess.run([str(Path(sys.executable).with_name("airflow")), "db", "migrate"], env=env, check=True,
                   capture_output=True)
    return env


def publish_twice(store: Path, url: str, scratch: Path, publisher: str) -> list[dict[str, object]]:
    """Index one new document at a time into the store, by the DAG (`dag.test()`) or the CLI; each run
    publishes a new file. After each, ask for the document's title."""
    env = airflow_env(scratch) if publisher == "dag" else None
    found = []
    for document in NEW_DOCUMENTS:
        corpus = scratch / f"{document['id']}.jsonl"
        corpus.write_text(json.dumps(document) + "\n")
        start = time.perf_counter()
        if publisher == "dag":
            conf = {"source": str(corpus), "db": str(store), "work_dir": str(scratch / f"{document['id']}.work")}
            subprocess.run([sys.executable, "-c", DAG_RUN, str(DAGS), json.dumps(conf)], env=env, check=True,
                           capture_output=True)
        else:
            subprocess.run([sys.executable, "-m", "hippograph.cli", "index", str(corpus), "--db", str(store)],
                           check=True, capture_output=True)
        published = time.perf_counter() - start
        question = {"question": f"Who founded or built the {document['title']}?", "mode": "bm25", "top_k": 1}
        top = httpx.post(f"{url}/retrieve", json=question, timeout=120).json()["passages"][0]["doc_id"]
        found.append({"document": document["id"], "index_and_publish_s": round(published, 1),
                      "next_answer_top_doc": top, "reflects_publish": top == document["id"]})
    return found


def render(r: dict) -> str:
    def row(name: str, phase: dict) -> str:
        return (f"| {name} | {phase['requests']} | {phase['errors']} | {phase['requests_per_s']} | "
                f"{phase['p50_ms']} | {phase['p99_ms']} |")

    lines = [
        f"# Service load test: {r['store']} ({r['cpu']}, {', '.join(r['features'])})", "",
        f"`{r['command']}`: {r['clients']} concurrent clients on loopback, `POST /retrieve` (hipporag, top 5).", "",
        "| phase | requests | errors | requests/s | p50 ms | p99 ms |", "|---|---|---|---|---|---|",
        row("steady", r["steady"]),
        row(f"while two {'DAG runs' if r['publisher'] == 'dag' else '`hippograph index` runs'} publish", r["publishing"]), "",
        "After each publish, the next answer's top document:", "",
        *(f"- {p['document']}: {p['next_answer_top_doc']} (index run and publish {p['index_and_publish_s']} s)"
          for p in r["publishes"]),
    ]
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("store", type=Path)
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--publisher", choices=("dag", "cli"), default="dag",
                        help="what publishes during the second phase: the Airflow DAG (dag.test) or `hippograph index`")
    args = parser.parse_args()
    questions = [json.loads(line)["question"] for path in QUERY_SETS for line in path.read_text().splitlines() if line.strip()]
    with tempfile.TemporaryDirectory() as scratch:
        store = Path(scratch) / args.store.name
        shutil.copy(args.store, store)
        port = free_port()
        url = f"http://127.0.0.1:{port}"
        server = start_server(store, port)
        try:
            httpx.post(f"{url}/retrieve", json={"question": "warm-up"}, timeout=300)  # load the snapshot and graph
            steady = load(url, questions, args.requests, args.clients)
            publishes: list[dict[str, object]] = []
            published = threading.Event()

            def publisher() -> None:
                try:
                    publishes.extend(publish_twice(store, url, Path(scratch), args.publisher))
                finally:
                    published.set()

            thread = threading.Thread(target=publisher)
            thread.start()
            publishing = load(url, questions, args.requests, args.clients, until=published)
            thread.join()
        finally:
            server.terminate()
            server.wait(timeout=60)
    result = {
        "command": f"python benchmarks/bench_service.py {args.store.name} --requests {args.requests} "
                   f"--clients {args.clients} --publisher {args.publisher}",
        "store": args.store.name, "clients": args.clients, "publisher": args.publisher, **cpu(),
        "steady": steady, "publishing": publishing, "publishes": publishes,
    }
    name = f"service_load_{args.store.stem}_{args.publisher}"
    (RESULTS / f"{name}.json").write_text(json.dumps(result, indent=2) + "\n")
    (RESULTS / f"{name}.md").write_text(render(result))
    print(render(result))


if __name__ == "__main__":
    main()
