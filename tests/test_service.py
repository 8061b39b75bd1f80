"""The HTTP service answers what `Memory` answers, refuses bad requests with a 422 that says why (never a
500), asks for the token when it has one, and picks up a newly published store on its next request."""

from __future__ import annotations

import shutil

import pytest
from fastapi.testclient import TestClient

from hippograph import Memory
from hippograph.service import MAX_QUESTION_CHARS, create_app


@pytest.fixture(scope="module")
def client(demo_store):
    return TestClient(create_app(demo_store))


def test_retrieve_and_answer_are_memory_s(client, demo_store, demo_question_records):
    memory = Memory(demo_store)
    for record in demo_question_records[:4]:
        for mode in ("hipporag", "memorag"):
            got = client.post("/retrieve", json={"question": record["question"], "mode": mode, "top_k": 3})
            assert got.status_code == 200
            expected = memory.retrieve(record["question"], mode=mode, top_k=3).to_dict()
            assert [p["passage_id"] for p in got.json()["passages"]] == [p["passage_id"] for p in expected["passages"]]
    answered = client.post("/answer", json={"question": demo_question_records[0]["question"]})
    assert answered.status_code == 200 and answered.json()["source"] == "draft"
    assert answered.json()["answer"] == memory.answer(demo_question_records[0]["question"]).answer


def test_stats_health_and_the_schema(client):
    assert client.get("/stats").json()["documents"] == 42
    assert client.get("/health").json()["status"] == "ok"
    assert {"/retrieve", "/answer", "/stats", "/health"} <= set(client.get("/openapi.json").json()["paths"])


@pytest.mark.parametrize("body, says", [
    ({}, "question"),
    ({"question": ""}, "question"),
    ({"question": "   "}, "blank"),
    ({"question": "x" * (MAX_QUESTION_CHARS + 1)}, "question"),
    ({"question": "q" * 1_000_000}, "question"),
    ({"question": "Who?", "top_k": 0}, "top_k"),
    ({"question": "Who?", "top_k": 1000}, "top_k"),
    ({"question": "Who?", "top_k": "five"}, "top_k"),
    ({"question": "Who?", "mode": "psychic"}, "unknown mode 'psychic'"),
])
def test_a_bad_request_is_a_422_that_says_why(client, body, says):
    response = client.post("/retrieve", json=body)
    assert response.status_code == 422
    assert says in str(response.json()["detail"])


def test_a_token_is_asked_for_when_set(demo_store):
    client = TestClient(create_app(demo_store, token="s3cret"))
    question = {"question": "Who designed the Veloria Bridge?"}
    assert client.post("/retrieve", json=question).status_code == 401
    assert client.post("/retrieve", json=question, headers={"Authorization": "Bearer wrong"}).status_code == 401
    assert client.post("/retrieve", json=question, headers={"Authorization": "Bearer s3cret"}).status_code == 200
    assert client.get("/health").status_code == 200  # for load balancers


def test_a_published_store_is_served_on_the_next_request(tmp_path, demo_store):
    db = tmp_path / "live.duckdb"
    shutil.copy(demo_store, db)
    client = TestClient(create_app(db))
    question = {"question": "Who painted the Lantern Room murals?", "mode": "bm25", "top_k": 1}
    before = client.post("/retrieve", json=question).json()["passages"][0]["doc_id"]
    Memory(db).index([{"id": "new", "title": "Lantern Room murals",
                       "text": "The Lantern Room murals were painted by Ione Vasquez in 1911."}])
    after = client.post("/retrieve", json=question).json()["passages"][0]["doc_id"]
    assert before != "new" and after == "new"


def test_serve_refuses_a_missing_store_and_an_open_address_without_a_token(tmp_path, demo_store, capsys):
    from hippograph.cli import main

    assert main(["serve", "--db", str(tmp_path / "none.duckdb")]) == 1
    assert "no store at" in capsys.readouterr().err
    assert main(["serve", "--db", str(demo_store), "--host", "0.0.0.0"]) == 1
    assert "needs a token" in capsys.readouterr().err
    assert main(["serve", "--db", str(demo_store), "--token-env", "HIPPOGRAPH_TEST_UNSET_TOKEN"]) == 1
    assert "unset or empty" in capsys.readouterr().err


def test_hippograph_serve_answers_over_a_real_socket(demo_store):
    import socket
    import subprocess
    import sys
    import time

    import httpx

    with socket.socket() as probe:  # a free loopback port
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    server = subprocess.Popen([sys.executable, "-m", "hippograph.cli", "serve", "--db", str(demo_store), "--port", str(port)],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 120
        while True:
            try:
                if httpx.get(f"{url}/health", timeout=5).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert server.poll() is None and time.monotonic() < deadline, "the server did not come up"
            time.sleep(0.5)
        got = httpx.post(f"{url}/retrieve", json={"question": "Who designed the Veloria Bridge?", "top_k": 2}, timeout=60)
        assert got.status_code == 200 and len(got.json()["passages"]) == 2
    finally:
        server.terminate()
        server.wait(timeout=30)
