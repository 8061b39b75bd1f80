"""Memory records whose lead sentence does not fit their budget: what the clipped gist should keep.

A record keeps at most `memory_budget` (0.25) of its document's bytes, lead sentence first. When the lead
alone is longer than that (short documents, long leads: most of hotpotqa-dev's misses against dense), the
gist is the lead's first words and the record holds nothing else. Two alternatives for those records, every
other record as `compress` writes it:
- the lead clipped to half the room, the other half filled with key facts (the triples the gist does not say);
- the lead without function words (spaCy's English stop words), then clipped: more content words fit.
Each record is keyed as memory mode keys it (title and whole record) and ranked by cosine to the question;
Recall@2 / @5 as `hippograph eval` computes it.

    python benchmarks/ablation_memory_clipped_lead.py STORE_DIR   # hotpotqa-dev.duckdb, musique-dev.duckdb in it

Writes benchmarks/results/ablation_memory_clipped_lead.md.
"""

from __future__ import annotations

import sys
from pathlib import Path

from ablation_memory_gist import key_recall
from spacy.lang.en.stop_words import STOP_WORDS

from hippograph import Config, Document
from hippograph.pipeline import compress
from hippograph.pipeline.chunk import sentences
from hippograph.pipeline.embed import embedder_for
from hippograph.retrievers import Snapshot
from hippograph.types import MemoryRecord, PassageFacts, Triple

ROOT = Path(__file__).resolve().parent.parent
BUDGET = Config().memory_budget


def clipped_lead(document: Document) -> str | None:
    """The document's lead sentence as a gist cleans it, if it does not fit the record's budget."""
    lead = next((compress._without_parentheses(s) for s in sentences(document.text)), "")
    return lead if compress._bytes(lead) > compress.record_budget(document, BUDGET) else None


def half_lead_then_facts(document: Document, facts: list[PassageFacts]) -> MemoryRecord:
    lead = clipped_lead(document)
    if lead is None:
        return compress.compress_document(document, facts, BUDGET)
    room = compress.record_budget(document, BUDGET)
    gist = compress._clip(lead, room // 2)
    said = compress.ranked_fact_statements([t for f in facts for t in f.triples], gist)
    key_facts = [said[i] for i in compress.fitting(said, room - compress._bytes(gist) - 2)]  # "; " between facts, roughly
    return record(document, gist, key_facts)


def telegraphic_lead(document: Document, facts: list[PassageFacts]) -> MemoryRecord:
    lead = clipped_lead(document)
    if lead is None:
        return compress.compress_document(document, facts, BUDGET)
    short = " ".join(w for w in lead.split() if w.lower().strip(".,;:\"'") not in STOP_WORDS)
    return record(document, compress._clip(short, compress.record_budget(document, BUDGET)), [])


def record(document: Document, gist: str, key_facts: list[str]) -> MemoryRecord:
    whole = compress.record_text(gist, key_facts)
    return MemoryRecord(document.doc_id, gist, key_facts, [whole] if whole else [], len(document.text.encode()))


def recall(store: Path, dataset: str, policy) -> tuple[dict[int, float], float, int]:
    snapshot = Snapshot.read(store)
    texts: dict[str, tuple[str, list[str]]] = {}
    for doc_id, title, text in zip(snapshot.passages.doc_ids, snapshot.passages.titles, snapshot.passages.texts):
        texts.setdefault(doc_id, (title, []))[1].append(text)
    triples: dict[str, list[Triple]] = {}
    for row, (subject, predicate, obj, passage_id) in enumerate(snapshot.graph.fact_passages):
        triples.setdefault(passage_id.rsplit("#", 1)[0], []).append(Triple(passage_id, row, subject, predicate, obj))
    ids = list(texts)
    documents = [Document(d, texts[d][0], " ".join(texts[d][1])) for d in ids]
    records = [policy(doc, [PassageFacts(f"{doc.doc_id}#0", triples.get(doc.doc_id, []), [])]) for doc in documents]
    clipped = sum(clipped_lead(doc) is not None for doc in documents)
    ratio = sum(r.kept_bytes for r in records) / sum(r.source_bytes for r in records)
    # keyed as the compress stage keys records (corpus precision)
    keys = embedder_for(Config()).encode_corpus(
        [compress.key_text(texts[r.doc_id][0], r.keys[0] if r.keys else "") for r in records])
    return key_recall(dataset, ids, keys), round(ratio, 3), clipped


def main() -> None:
    store_dir = Path(sys.argv[1]) if len(sys.argv) > 1 else ROOT / "benchmarks" / ".cache"
    policies = (("lead clipped (compress)", lambda doc, facts: compress.compress_document(doc, facts, BUDGET)),
                ("clipped lead at half the room, then key facts", half_lead_then_facts),
                ("clipped lead without function words", telegraphic_lead))
    lines = [f"# Memory records whose lead does not fit (budget {BUDGET})", "",
             f"`python benchmarks/ablation_memory_clipped_lead.py STORE_DIR` (stores of `hippograph eval`)", "",
             "| dataset | records with a clipped lead | clipped lead | ratio | R@2 | R@5 |", "|---|---|---|---|---|---|"]
    for dataset in ("hotpotqa-dev", "musique-dev"):
        for name, policy in policies:
            found, ratio, clipped = recall(store_dir / f"{dataset}.duckdb", dataset, policy)
            lines.append(f"| {dataset} | {clipped} | {name} | {ratio} | {found[2]} | {found[5]} |")
            print(lines[-1], flush=True)
    table = "\n".join(lines) + "\n"
    (ROOT / "benchmarks" / "results" / "ablation_memory_clipped_lead.md").write_text(table)
    print(table)


if __name__ == "__main__":
    main()
