"""A small RAG app on hippograph: index documents, retrieve evidence with hipporag, answer with citations.

    python examples/rag_app.py DOCUMENTS "your question" [--db app.duckdb] [--config settings.json]

DOCUMENTS is a .txt/.md/.jsonl file or a folder of them; indexing again skips what is already stored.
With an OpenAI-compatible endpoint configured (`llm_base_url` in --config or $HIPPOGRAPH_CONFIG, see the
README), the LLM answers from the evidence and cites the passages it used. Offline, the app prints the
evidence and hippograph's draft answer (an entity of the type the question asks for, from the evidence).
"""

from __future__ import annotations

import argparse
import sys
import textwrap

from hippograph import HippographError, Memory, load_config


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("documents", help="a .txt/.md/.jsonl file or a folder of them")
    parser.add_argument("question")
    parser.add_argument("--db", default="rag_app.duckdb", help="the memory's store file")
    parser.add_argument("--config", help="Config options: a JSON file or object (default: $HIPPOGRAPH_CONFIG)")
    parser.add_argument("--top-k", type=int, default=5)
    args = parser.parse_args(argv)
    try:
        memory = Memory(args.db, load_config(args.config))
        report = memory.index_paths([args.documents])
        print(f"{report.documents} documents: {report.indexed} indexed, {report.unchanged} already stored\n")
        answer = memory.answer(args.question, mode="hipporag", top_k=args.top_k)
    except HippographError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    print("Evidence:")
    for rank, passage in enumerate(answer.passages, 1):
        cited = "*" if passage.doc_id in answer.citations else " "
        print(f"{cited}{rank}. [{passage.doc_id}] {passage.title}: {textwrap.shorten(passage.text, 90)}")
    by = "the LLM" if answer.source == "llm" else "offline draft"
    print(f"\nAnswer ({by}): {answer.answer or '(none found)'}")
    print(f"Citations: {', '.join(answer.citations) or '(none)'}")
    if answer.note:
        print(f"Note: {answer.note}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
