"""hippograph over HTTP (`pip install "hippograph[server]"`; `hippograph serve --db FILE`): read-only.

    POST /retrieve  {"question": ..., "mode": "hipporag", "top_k": 5}  -> a Retrieval as JSON
    POST /answer    {"question": ..., "mode": "hipporag", "top_k": 5}  -> an Answer (the LLM's, or the draft)
    GET  /stats     -> what the store holds
    GET  /health    -> {"status": "ok", "generation": N}
    GET  /docs      -> the OpenAPI schema, browsable

Indexing stays the CLI's and the DAG's job: the service answers from the store's latest published file,
which `Memory` picks up on the next request after a publish. A bad request (no question, top_k out of
range, an unknown mode, a question over 10,000 characters) gets a 422 that says what is wrong. With a
token (`create_app(..., token=...)`, `hippograph serve --token-env NAME`), every route but /health asks
for `Authorization: Bearer <token>`.
"""

from __future__ import annotations

import hmac
from pathlib import Path
from typing import Any

from fastapi import Depends, FastAPI, HTTPException, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field, field_validator

from hippograph.config import Config
from hippograph.errors import InputError, StoreError
from hippograph.memory import Memory
from hippograph.registry import retrievers

MAX_QUESTION_CHARS = 10_000
MAX_TOP_K = 100


class Query(BaseModel):
    question: str = Field(min_length=1, max_length=MAX_QUESTION_CHARS)
    mode: str = "hipporag"
    top_k: int = Field(default=5, ge=1, le=MAX_TOP_K)

    @field_validator("question")
    @classmethod
    def _not_blank(cls, question: str) -> str:
        if not question.strip():
            raise ValueError("the question is blank")
        return question

    @field_validator("mode")
    @classmethod
    def _known_mode(cls, mode: str) -> str:
        if mode not in retrievers:
            raise ValueError(f"unknown mode {mode!r}; choose from {', '.join(retrievers.names())}")
        return mode


def create_app(db_path: str | Path, config: Config | None = None, token: str | None = None) -> FastAPI:
    """The HTTP app over the store at `db_path`; one `Memory` serves every request (it is thread-safe)."""
    from hippograph import __version__

    memory = Memory(db_path, config)
    app = FastAPI(title="hippograph", version=__version__, description=__doc__.split("\n\n")[0])

    def authorized(request: Request) -> None:
        if token is None:
            return
        given = request.headers.get("authorization", "")
        if not hmac.compare_digest(given.encode(), f"Bearer {token}".encode()):
            raise HTTPException(401, "a bearer token is required", headers={"WWW-Authenticate": "Bearer"})

    guarded = [Depends(authorized)]

    @app.exception_handler(InputError)
    async def _input_error(request: Request, error: InputError) -> JSONResponse:
        return JSONResponse({"detail": str(error)}, status_code=422)

    @app.exception_handler(StoreError)
    async def _store_error(request: Request, error: StoreError) -> JSONResponse:
        return JSONResponse({"detail": str(error)}, status_code=503)

    @app.post("/retrieve", dependencies=guarded)
    def retrieve(query: Query) -> dict[str, Any]:
        return memory.retrieve(query.question, mode=query.mode, top_k=query.top_k).to_dict()

    @app.post("/answer", dependencies=guarded)
    def answer(query: Query) -> dict[str, Any]:
        return memory.answer(query.question, mode=query.mode, top_k=query.top_k).to_dict()

    @app.get("/stats", dependencies=guarded)
    def stats() -> dict[str, Any]:
        return memory.stats().to_dict()

    @app.get("/health")
    def health() -> dict[str, Any]:
        return {"status": "ok", "generation": memory.stats().generation}

    return app
