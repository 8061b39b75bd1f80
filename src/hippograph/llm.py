"""The LLM client: any OpenAI-compatible endpoint (vLLM, Ollama, llama.cpp's server, OpenAI), with a completion
cache beside the store.

    client = llm_client(config)             # None unless config.llm_base_url is set: no LLM, no network
    reply = client.complete(messages, prompt_version="ner-1")
    parse_json(reply.content)               # repaired JSON, or None

Requests go through the official `openai` package, which retries 429s, 5xx replies, timeouts and connection
errors with exponential back-off (`llm_max_retries`, honouring Retry-After). At most `llm_max_concurrency`
requests are in flight per process. Every reply that came back is cached (`diskcache`: SQLite, safe for
many processes at once), keyed by everything that shapes it; a call that failed is never cached, so a
re-run repeats no call that succeeded and retries the ones that failed. A server that fails
`GIVE_UP_AFTER` calls in a row is left alone for `COOL_DOWN` seconds, so a run whose server died finishes
on its fallbacks instead of waiting out every retry.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from hippograph.config import Config
from hippograph.errors import HippographError
from hippograph.types import LLMUsage

log = logging.getLogger("hippograph")

GIVE_UP_AFTER = 3  # failed calls in a row after which the server counts as down
COOL_DOWN = 60.0  # seconds a server that is down is left alone
_THINKING = re.compile(r"<think>.*?(?:</think>|$)", re.DOTALL)  # reasoning some models put into the content
_CODE_FENCE = re.compile(r"^```(?:json)?\s*|\s*```$")


class LLMUnavailable(HippographError):
    """A request failed after its retries (or the server is down): the caller falls back."""


class LLMDown(LLMUnavailable):
    """The server failed `GIVE_UP_AFTER` calls in a row and is left alone for a while: nothing was sent."""


class _JSONModeRefused(Exception):
    pass


@dataclass(frozen=True)
class Completion:
    """One reply: its text (reasoning blocks removed), why it ended, the tokens the server counted, and
    whether it came from the cache."""

    content: str
    finish_reason: str | None = None
    tokens_in: int = 0
    tokens_out: int = 0
    cached: bool = False


def cache_folder(db_path: str | Path) -> Path:
    """Where a store's completion cache lives unless `llm_cache_dir` says otherwise: beside the store."""
    db_path = Path(db_path)
    return db_path.with_name(db_path.name + ".llm-cache")


def with_cache_beside(config: Config, db_path: str | Path) -> Config:
    """`config` with `llm_cache_dir` set to the folder beside the store, unless it names one already."""
    if config.llm_base_url is None or config.llm_cache_dir is not None:
        return config
    return config.replace(llm_cache_dir=str(cache_folder(db_path)))


def llm_client(config: Config) -> "LLMClient | None":
    """The client for `config`, shared by the threads of this process; None without `llm_base_url`."""
    if config.llm_base_url is None:
        return None
    key = (config.llm_base_url, config.llm_model, config.llm_api_key_env, config.llm_timeout,
           config.llm_max_retries, config.llm_max_concurrency, config.llm_cache_dir)
    with _clients_lock:
        if key not in _clients:
            _clients[key] = LLMClient(config)
        return _clients[key]


_clients: dict[tuple, "LLMClient"] = {}
_clients_lock = threading.Lock()


class CompletionCache:
    """Replies by request key, in a folder several processes may share (diskcache, SQLite in WAL mode)."""

    def __init__(self, folder: str | Path):
        import diskcache

        self._cache = diskcache.Cache(str(folder))

    def get(self, key: str) -> dict | None:
        return self._cache.get(key)

    def set(self, key: str, value: dict) -> None:
        self._cache.set(key, value)


class LLMClient:
    """Chat completions against `config.llm_base_url`: cached, retried, bounded in concurrency."""

    def __init__(self, config: Config):
        import openai

        self.config = config
        self._openai = openai
        # A local server needs no key, but the client insists on one.
        api_key = os.environ.get(config.llm_api_key_env) or "no-key"
        self._client = openai.OpenAI(
            base_url=config.llm_base_url, api_key=api_key, timeout=config.llm_timeout, max_retries=config.llm_max_retries
        )
        self._slots = threading.BoundedSemaphore(config.llm_max_concurrency)
        self.cache = CompletionCache(config.llm_cache_dir) if config.llm_cache_dir else None
        self.json_mode = config.llm_json_mode  # turned off if the server refuses response_format
        self._failures = 0
        self._down_until = 0.0
        self._lock = threading.Lock()

    def complete(self, messages: list[dict[str, str]], prompt_version: str, json_reply: bool = True) -> Completion:
        """The reply to `messages`, from the cache or the server; raises LLMUnavailable when the server
        fails (after its retries) or is down."""
        request = self._request(messages, json_reply)
        key = request_key(request, prompt_version)
        if self.cache is not None and (hit := self.cache.get(key)) is not None:
            return Completion(**{**hit, "cached": True})
        try:
            completion = self._send(request)
        except _JSONModeRefused:
            return self.complete(messages, prompt_version, json_reply)
        if self.cache is not None:
            self.cache.set(key, asdict(completion))
        return completion

    def _request(self, messages: list[dict[str, str]], json_reply: bool) -> dict[str, Any]:
        config = self.config
        request = {"model": config.llm_model, "messages": messages, "temperature": config.llm_temperature,
                   "seed": config.llm_seed, "max_tokens": config.llm_max_tokens}
        if json_reply and self.json_mode:
            request["response_format"] = {"type": "json_object"}
        return request

    def _send(self, request: dict[str, Any]) -> Completion:
        if time.monotonic() < self._down_until:
            raise LLMDown(f"the LLM at {self.config.llm_base_url} failed {GIVE_UP_AFTER} calls in a row; "
                                 f"not asking it for {COOL_DOWN:.0f} s")
        try:
            with self._slots:
                response = self._client.chat.completions.create(**request)
        except self._openai.BadRequestError as error:
            if "response_format" in request:
                log.warning("hippograph: the LLM server refused JSON mode (%s); asking for plain text", error)
                self.json_mode = False
                raise _JSONModeRefused() from None
            raise self._failed(error) from None
        except self._openai.OpenAIError as error:
            raise self._failed(error) from None
        if not getattr(response, "choices", None):
            raise self._failed(f"a reply without choices: {str(response)[:200]}")
        self._succeeded()
        return _completion(response)

    def _failed(self, error: object) -> LLMUnavailable:
        with self._lock:
            self._failures += 1
            if self._failures >= GIVE_UP_AFTER:
                self._down_until = time.monotonic() + COOL_DOWN
        return LLMUnavailable(f"LLM request to {self.config.llm_base_url} failed: {error}")

    def _succeeded(self) -> None:
        with self._lock:
            self._failures = 0


def _completion(response: Any) -> Completion:
    choice = response.choices[0]
    content = (getattr(choice.message, "content", None) or "") if choice.message is not None else ""
    content = _THINKING.sub("", content).strip()
    if not content and choice.finish_reason == "length":
        log.warning("hippograph: an LLM reply ran out of tokens before it said anything; raise llm_max_tokens")
    usage = getattr(response, "usage", None)
    return Completion(
        content, choice.finish_reason,
        getattr(usage, "prompt_tokens", 0) or 0, getattr(usage, "completion_tokens", 0) or 0,
    )


def request_key(request: dict[str, Any], prompt_version: str) -> str:
    """A hash of everything that shapes a reply: model, messages, sampling, reply format, prompt version."""
    shaping = {**request, "prompt_version": prompt_version}
    return hashlib.sha256(json.dumps(shaping, sort_keys=True).encode("utf-8")).hexdigest()


def parse_json(content: str) -> Any:
    """The JSON object or list in a reply, repaired where broken (`json-repair`); None if there is none."""
    import json_repair

    text = _CODE_FENCE.sub("", content.strip())
    if not text:
        return None
    try:
        value = json_repair.loads(text)
    except (ValueError, RecursionError):
        return None
    return value if isinstance(value, (dict, list)) and value else None


def reply_list(value: Any, key: str) -> list:
    """The list a parsed reply holds: under `key`, or the reply itself, or its only list value; else []."""
    if isinstance(value, list):
        return value
    if isinstance(value, dict):
        if isinstance(value.get(key), list):
            return value[key]
        lists = [v for v in value.values() if isinstance(v, list)]
        if len(lists) == 1:
            return lists[0]
    return []


# ---- asking: one request, its reply checked, asked once more if invalid ---------------------------------

RETRY_NOTE = "Your reply was not what was asked for: {problem}. Reply again with the JSON object only."


class InvalidReply(ValueError):
    """A reply that is not what the prompt asked for; the message says what is wrong, for the retry."""


@dataclass
class Tally:
    """What a piece of work (one passage, say) cost, counted as its requests happen."""

    calls: int = 0
    hits: int = 0
    invalid: int = 0
    tokens_in: int = 0
    tokens_out: int = 0
    failed: bool = field(default=False)

    def count(self, reply: Completion) -> None:
        if reply.cached:  # spent on an earlier run
            self.hits += 1
            return
        self.calls += 1
        self.tokens_in += reply.tokens_in
        self.tokens_out += reply.tokens_out

    def usage(self) -> LLMUsage:
        return LLMUsage(self.calls, self.hits, self.invalid, int(self.failed), self.tokens_in, self.tokens_out)


def ask(
    client: "LLMClient", messages: list[dict[str, str]], prompt_version: str, parse: Callable[[str], Any],
    tally: Tally | None = None,
) -> Any:
    """`parse(reply)` of the reply to `messages`; an invalid reply is asked once more, with a note on what
    was wrong. Raises InvalidReply or LLMUnavailable when that fails too."""
    tally = Tally() if tally is None else tally
    for attempt in range(2):
        try:
            reply = client.complete(messages, prompt_version)
        except LLMDown:  # nothing was sent
            raise
        except LLMUnavailable:
            tally.calls += 1
            raise
        tally.count(reply)
        try:
            return parse(reply.content)
        except InvalidReply as problem:
            tally.invalid += 1
            if attempt == 1:
                raise
            messages = [*messages, {"role": "assistant", "content": reply.content},
                        {"role": "user", "content": RETRY_NOTE.format(problem=problem)}]
