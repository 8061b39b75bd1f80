"""`hippograph` command line: each command is one `Memory` method. JSON for machines, tables for people."""

from __future__ import annotations

import argparse
import functools
import json
import math
import os
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path

from hippograph.config import CONFIG_ENV, default_db_path, load_config
from hippograph.errors import HippographError, InputError
from hippograph.graph.export import FORMATS
from hippograph.memory import Memory
from hippograph.pipeline.shards import DEFAULT_SHARD_SIZE
from hippograph.pipeline.sources import DEFAULT_MAX_DOCUMENT_BYTES
from hippograph.registry import load_plugins, retrievers
from hippograph.types import IndexReport, Retrieval, RetrievedPassage


def main(argv: Sequence[str] | None = None) -> int:
    try:
        load_plugins()  # before the parser, which lists the registered modes
        args = _parser().parse_args(argv)
        code = args.run(args)
        sys.stdout.flush()  # so that a closed pipe (`| head`) shows here, not at exit
        return code
    except HippographError as error:
        print(f"hippograph: error: {error}", file=sys.stderr)
        return 1
    except BrokenPipeError:
        _discard_stdout()
        print("hippograph: error: the output was closed before all of it was written", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("hippograph: interrupted; the store is as it was before this command", file=sys.stderr)
        return 130


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="hippograph", description="Knowledge-graph memory for RAG.")
    store = argparse.ArgumentParser(add_help=False)
    store.add_argument("--db", type=Path, default=None, help=f"store file (default: $HIPPOGRAPH_DB or {default_db_path()})")
    store.add_argument("--config", default=None, metavar="JSON",
                       help=f"Config options: a JSON file or object, e.g. '{{\"build_graph\": false}}' (default: ${CONFIG_ENV})")
    commands = parser.add_subparsers(required=True, metavar="COMMAND")
    add = functools.partial(commands.add_parser, parents=[store])

    index = add("index", help="index .txt/.md/.jsonl files, directories, or - for stdin")
    index.add_argument("paths", nargs="+", metavar="PATH")
    max_mb = DEFAULT_MAX_DOCUMENT_BYTES / 1e6
    index.add_argument("--max-document-mb", type=float, default=max_mb, help=f"largest document accepted (default {max_mb:g})")
    index.add_argument("--work-dir", type=Path, default=None,
                       help="run the stages over shard files kept here, so a killed run resumes where it stopped")
    index.add_argument("--shard-size", type=int, default=DEFAULT_SHARD_SIZE,
                       help=f"documents per shard with --work-dir (default {DEFAULT_SHARD_SIZE})")
    index.add_argument("--json", action="store_true", help="print the report as JSON")
    index.set_defaults(run=_index)

    query = add("query", help="retrieve passages for a question")
    query.add_argument("question", nargs="?")
    query.add_argument("--questions", type=Path, help="JSONL file of {\"question\": ...}; one JSON answer per line")
    query.add_argument("--mode", choices=retrievers.names(), default="hipporag")
    query.add_argument("--top-k", type=int, default=5)
    query.add_argument("--json", action="store_true")
    query.set_defaults(run=_query)

    answer = add("answer", help="retrieve, then answer from the passages citing them by doc_id: the LLM's "
                 "answer with one configured, else the offline draft")
    answer.add_argument("question")
    answer.add_argument("--mode", choices=retrievers.names(), default="hipporag")
    answer.add_argument("--top-k", type=int, default=5)
    answer.add_argument("--json", action="store_true")
    answer.set_defaults(run=_answer)

    serve = add("serve", help="answer retrieve and answer requests over HTTP, read-only (extra: server)")
    serve.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1: this machine only)")
    serve.add_argument("--port", type=int, default=8000)
    serve.add_argument("--token-env", metavar="NAME",
                       help="require `Authorization: Bearer <token>`, the token read from this environment variable")
    serve.set_defaults(run=_serve)

    mcp = add("mcp", help="serve the retrieve and answer tools to an agent host over stdio (extra: mcp)")
    mcp.set_defaults(run=_mcp)

    delete = add("delete", help="remove documents and everything derived from them")
    delete.add_argument("doc_ids", nargs="+", metavar="ID")
    delete.add_argument("--json", action="store_true")
    delete.set_defaults(run=_delete)

    stats = add("stats", help="what the store holds")
    stats.add_argument("--json", action="store_true")
    stats.set_defaults(run=_stats)

    evaluate = add("eval", help="Recall@k of retrieval modes on questions with supporting_ids")
    evaluate.add_argument("--corpus", type=Path, required=True, help="JSONL corpus to index first")
    evaluate.add_argument("--questions", type=Path, required=True)
    evaluate.add_argument("--modes", default="bm25,dense,hipporag")
    evaluate.add_argument("--k", default="2,5,10", help="comma-separated cut-offs")
    evaluate.add_argument("--answer-top-k", type=int, default=5,
                          help="passages the LLM answers from, with an LLM configured (default 5)")
    evaluate.add_argument("--json", action="store_true")
    evaluate.add_argument("--save", type=Path, metavar="FILE", help="also write the results as JSON to FILE")
    evaluate.set_defaults(run=_eval)

    imports = add("import-triples", help="add triples made elsewhere: JSONL of doc_id, subject, predicate, object, "
                                           "or HippoRAG's OpenIE results (.json)")
    imports.add_argument("file", type=Path, metavar="FILE")
    imports.add_argument("--lenient", action="store_true",
                         help="leave invalid records out, counted by reason, instead of refusing the file")
    imports.add_argument("--json", action="store_true")
    imports.set_defaults(run=_import_triples)

    export = add("export-graph", help="write the passage-entity graph as GraphML or GEXF (for Gephi, yEd)")
    export.add_argument("--format", choices=FORMATS, default="graphml")
    export.add_argument("--out", type=Path, default=None, help="output file (default: hippograph.FORMAT)")
    export.add_argument("--force", action="store_true", help="overwrite the output file if it exists")
    export.add_argument("--json", action="store_true")
    export.set_defaults(run=_export_graph)
    return parser


def _memory(args: argparse.Namespace, db: Path | None = None) -> Memory:
    return Memory(db or args.db, load_config(args.config))


def _print(args: argparse.Namespace, result: dict, summary: str) -> int:
    """One JSON object with --json, else the summary for people; exit code 0."""
    print(_json(result) if args.json else summary)
    return 0


def _json(value: object) -> str:
    """Strict JSON, as every --json line is printed: NaN and infinity (a score may be either) become null."""
    return json.dumps(_finite(value), allow_nan=False)


def _finite(value: object) -> object:
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {key: _finite(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [_finite(item) for item in value]
    return value


def _discard_stdout() -> None:
    """Point stdout at /dev/null, so that Python's flush at exit does not fail on the closed pipe again."""
    try:
        stdout = sys.stdout.fileno()
    except (OSError, ValueError):  # no file descriptor: captured, as in tests
        return
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, stdout)
    os.close(devnull)


def _index(args: argparse.Namespace) -> int:
    if not (math.isfinite(args.max_document_mb) and args.max_document_mb > 0):
        raise InputError(f"--max-document-mb must be a positive number, not {args.max_document_mb}")
    memory = _memory(args)
    report = memory.index_paths(
        args.paths, stdin=sys.stdin.buffer, progress=sys.stderr.isatty(),
        max_document_bytes=int(args.max_document_mb * 1e6), work_dir=args.work_dir, shard_size=args.shard_size,
    )
    return _print(args, report.to_dict(), (
        f"{memory.db_path}: {report.indexed} indexed, {report.unchanged} unchanged, {report.passages} passages, "
        f"{report.triples} triples, {report.new_phrases} new phrases, {report.synonym_edges} synonym edges"
        + _llm_summary(report)))


def _llm_summary(report: IndexReport) -> str:
    usage = report.llm
    if not (usage.llm_calls or usage.cache_hits or usage.fallbacks or usage.gist_fallbacks):
        return ""
    gists = f", {usage.gist_fallbacks} documents to the offline gist" if usage.gist_fallbacks else ""
    return (f"\nLLM: {usage.llm_calls} calls, {usage.cache_hits} cache hits, {usage.invalid_replies} invalid replies, "
            f"{usage.fallbacks} passages fell back to spaCy{gists}, {usage.tokens_in} tokens in, {usage.tokens_out} out")


def _query(args: argparse.Namespace) -> int:
    if (args.question is None) == (args.questions is None):
        raise InputError("give either a QUESTION or --questions FILE.jsonl")
    if args.top_k < 1:
        raise InputError("--top-k must be at least 1")
    memory = _memory(args)
    if args.question is not None:
        retrieval = memory.retrieve(args.question, mode=args.mode, top_k=args.top_k)
        print(_json(retrieval.to_dict()) if args.json else _retrieval_table(retrieval))
        return 0
    from hippograph.evaluate import read_question_records

    records = [record for _, record in read_question_records(args.questions)]
    retrievals = memory.retrieve_many([r["question"] for r in records], mode=args.mode, top_k=args.top_k)
    for record, retrieval in zip(records, retrievals):
        out = retrieval.to_dict()
        if "id" in record:
            out = {"id": record["id"], **out}
        print(_json(out) if args.json else _retrieval_table(retrieval) + "\n")
    return 0


def _answer(args: argparse.Namespace) -> int:
    if args.top_k < 1:
        raise InputError("--top-k must be at least 1")
    result = _memory(args).answer(args.question, mode=args.mode, top_k=args.top_k)
    if result.note:
        print(f"hippograph: {result.note}", file=sys.stderr)
    if args.json:
        print(json.dumps(result.to_dict()))
        return 0
    lines = [f"{result.question}  [{result.mode}]"]
    if result.answer is not None:
        drafted = " (offline draft)" if result.source == "draft" else ""
        lines.append(f"answer: {result.answer}{drafted}    citations: {', '.join(result.citations) or '(none)'}")
    lines.append(_passage_table(result.passages))
    print("\n".join(lines))
    return 0


def _delete(args: argparse.Namespace) -> int:
    deleted = _memory(args).delete(args.doc_ids)
    missing = sorted(set(args.doc_ids) - set(deleted))
    summary = f"deleted {len(deleted)} document(s)" + (f"; not found: {', '.join(missing)}" if missing else "")
    return _print(args, {"deleted": deleted, "not_found": missing}, summary)


def _serve(args: argparse.Namespace) -> int:
    try:
        import uvicorn

        from hippograph.service import create_app
    except ImportError:
        raise InputError('`hippograph serve` needs the server extra: pip install "hippograph[server]"') from None
    token = os.environ.get(args.token_env) if args.token_env else None
    if args.token_env and not token:
        raise InputError(f"${args.token_env} is unset or empty: it should hold the bearer token")
    if token is None and args.host not in ("127.0.0.1", "localhost", "::1"):
        raise InputError(f"serving on {args.host}, beyond this machine, needs a token: add --token-env NAME")
    db = args.db or default_db_path()
    if not Path(db).is_file():
        raise InputError(f"no store at {db}: index documents into it first (`hippograph index`)")
    uvicorn.run(create_app(db, load_config(args.config), token), host=args.host, port=args.port)
    return 0


def _mcp(args: argparse.Namespace) -> int:
    try:
        from hippograph.mcp_server import create_server
    except ImportError:
        raise InputError('`hippograph mcp` needs the mcp extra: pip install "hippograph[mcp]"') from None
    db = args.db or default_db_path()
    if not Path(db).is_file():
        raise InputError(f"no store at {db}: index documents into it first (`hippograph index`)")
    create_server(db, load_config(args.config)).run("stdio")
    return 0


def _stats(args: argparse.Namespace) -> int:
    stats = _memory(args).stats().to_dict()
    return _print(args, stats, format_table([[k, v] for k, v in stats.items()], ["", "value"]))


def _eval(args: argparse.Namespace) -> int:
    from hippograph.evaluate import evaluate, load_questions

    modes = [m.strip() for m in args.modes.split(",") if m.strip()]
    unknown = [m for m in modes if m not in retrievers]
    if unknown:
        raise InputError(f"unknown mode(s) {', '.join(unknown)}; choose from {', '.join(retrievers.names())}")
    try:
        ks = sorted({int(k) for k in args.k.split(",")})
    except ValueError:
        raise InputError(f"--k takes comma-separated whole numbers, not {args.k!r}") from None
    questions = load_questions(args.questions)
    with tempfile.TemporaryDirectory() as scratch:
        # Without --db the corpus goes into a throw-away store, never into the user's default one.
        memory = _memory(args, args.db or Path(scratch) / "eval.duckdb")
        memory.index_paths([args.corpus], progress=sys.stderr.isatty())
        results = evaluate(memory, questions, modes, ks, args.answer_top_k)
    document = {"corpus": str(args.corpus), "questions": len(questions), "results": [r.to_dict() for r in results]}
    if args.save:
        args.save.write_text(_json(document) + "\n")
    if args.json:
        print(_json(document))
    else:
        answered = [f"AR@{k}" for k in ks if results[0].answer_recall] + ["EM", "F1"] * (results[0].exact_match is not None)
        header = ["mode"] + [f"R@{k}" for k in ks] + ["p50 ms", "p95 ms"] + answered
        rows = [[r.mode] + [f"{r.recall[k]:.1f}" for k in ks] + [f"{r.latency_ms_p50:.1f}", f"{r.latency_ms_p95:.1f}"]
                + [f"{r.answer_recall[k]:.1f}" for k in ks if r.answer_recall]
                + ([f"{r.exact_match:.1f}", f"{r.f1:.1f}"] if r.exact_match is not None else [])
                for r in results]
        by = f"; EM and F1 of the {'LLM' if results[0].answers_by == 'llm' else 'offline draft'} answers" if results[0].answers_by else ""
        print(f"{len(questions)} questions, {args.corpus}{by}\n" + format_table(rows, header))
    return 0


def _import_triples(args: argparse.Namespace) -> int:
    report = _memory(args).import_triples(args.file, lenient=args.lenient)
    invalid = "".join(f"\n  {count} left out: {reason}" for reason, count in sorted(report.invalid.items()))
    return _print(args, report.to_dict(), (
        f"{args.file}: {report.imported} imported, {report.skipped} skipped (already stored), "
        f"{report.new_phrases} new phrases, {report.new_facts} new facts, {report.synonym_edges} synonym edges"
        + invalid))


def _export_graph(args: argparse.Namespace) -> int:
    result = _memory(args).export_graph(args.out, args.format, force=args.force)
    return _print(args, result.to_dict(), f"wrote {result.nodes} nodes and {result.edges} edges to {result.path}")


def _passage_table(passages: Sequence[RetrievedPassage]) -> str:
    rows = [[i + 1, f"{p.score:.4f}", p.doc_id, _clip(p.title, 30), _clip(p.text, 70)] for i, p in enumerate(passages)]
    header = ["#", "score", "doc_id", "title", "text"]
    if any(p.reason for p in passages):  # memory modes say which key matched
        rows = [row + [_clip(p.reason or "", 50)] for row, p in zip(rows, passages)]
        header.append("matched key")
    return format_table(rows, header)


def _retrieval_table(retrieval: Retrieval) -> str:
    out = [f"{retrieval.question}  [{retrieval.mode}]", _passage_table(retrieval.passages)]
    if retrieval.facts:
        facts = [[f"{f.score:.3f}", f"({f.subject}; {f.predicate}; {f.object})"] for f in retrieval.facts]
        out += ["seed facts:", format_table(facts, ["score", "fact"])]
    if retrieval.clues:
        clues = [[c.kind, f"{c.weight:.3f}", _clip(c.text, 110)] for c in retrieval.clues]
        out += ["clues:", format_table(clues, ["kind", "weight", "clue"])]
    if retrieval.draft_answer is not None:
        draft = retrieval.draft_answer
        out.append(f"draft answer: {draft.text or '-'}" + (f"  (from {draft.passage_id})" if draft.passage_id else ""))
    return "\n".join(out)


def _clip(text: str, width: int) -> str:
    text = " ".join(text.split())
    return text if len(text) <= width else text[: width - 1] + "…"


def format_table(rows: Sequence[Sequence[object]], header: Sequence[str]) -> str:
    cells = [[str(c) for c in header]] + [[str(c) for c in row] for row in rows]
    widths = [max(len(row[i]) for row in cells) for i in range(len(header))]
    lines = ["  ".join(c.ljust(w) for c, w in zip(row, widths)).rstrip() for row in cells]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
