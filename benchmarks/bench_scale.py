"""Scaling: grow one store to 10k, 25k, 50k and 100k passages and measure each size.

    python benchmarks/bench_scale.py [--sizes 10000,25000,50000,100000] [--db PATH] [--out DIR]
    python benchmarks/bench_scale.py --sizes 100000 --db GROWN.duckdb --resume results/scale.json

`--resume`: go on growing the store an earlier run left at --db (its largest size), keeping that run's
rows; the new sizes' index times add to its cumulative one.

Corpus: the three shared corpora (hotpotqa-dev, musique-dev, 2wiki: 9,003 documents), then generated
encyclopedic documents about invented people, towns, organisations and works (`generated_documents`:
seeded, so every run makes the same ones). Each generated document is about one entity and names
others, drawn from the entities before it, so the graph stays connected as it grows, as a wiki does.

The store grows by index runs: the documents up to each size are indexed incrementally on top of the
last size, so the index time of a size is the sum of the runs that built it (a run's merge and publish
grow with the store, so this is close to indexing from scratch, and costs a quarter of it). Per size:
- whole-index time and passages/s; store size;
- a 1% incremental run (new generated documents): its publish time (the write step: prepare, write
  and publish the store's new version) against a plain copy of the store file (copy and fsync): the
  median of three such runs, after one that settles the store after growth (see `measure`);
- a fresh query process: RSS after loading bm25, dense and hipporag (and its peak), and the p50/p95 of
  each mode over the 149 questions of the dev sets, asked one at a time after load.
Writes `scale.json`, `scale.md` and `scale.png` to --out (default benchmarks/results).
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench_index import dev_questions, timed_queries
from bench_publish import published_by
from bench_query_latency import WARM_UP, cpu

ROOT = Path(__file__).resolve().parent
DATA = ROOT.parent.parent / "shared" / "data"
SHARED_CORPORA = [DATA / name / "corpus.jsonl" for name in ("hotpotqa-dev", "musique-dev", "2wiki-corpus")]
MODES = ("bm25", "dense", "hipporag")
WRITE_STEP = ("prepare", "write", "publish")  # `IndexReport.seconds` of update_store: the store's new version
STEADY_RUNS = 3  # 1% runs measured per size, after one that settles the store


# ---- the generated corpus ------------------------------------------------------------------------

_ONSETS = "b br c ch d dr f g gr h j k l m n p pr r s st t th tr v w z".split()
_VOWELS = "a e i o u ae ai ea ie ou".split()
_CODAS = "n r l s th m nd rk st ck ld rn".split()
_PLACE_ENDINGS = "ford by ton wick ham stead bridge mouth field holm".split()
_OCCUPATIONS = "painter engineer composer novelist architect botanist politician physician sculptor cartographer".split()
_ORG_KINDS = ["newspaper", "rowing club", "brewery", "publishing house", "university", "railway company", "orchestra"]
_WORK_KINDS = ["novel", "symphony", "opera", "atlas", "treatise", "play", "film"]
_NATIONS = ["Valdorian", "Mereshi", "Tarnish", "Oskeli", "Brenvic", "Caluran"]
_RIVERS = ["Orne", "Sallow", "Keld", "Mire", "Tavy", "Wend", "Ussel"]


def _syllables(rng: random.Random, count: int) -> str:
    return "".join(rng.choice(_ONSETS) + rng.choice(_VOWELS) + rng.choice(_CODAS) for _ in range(count))


def _name(rng: random.Random, kind: str) -> str:
    if kind == "person":
        return f"{_syllables(rng, 1).title()} {_syllables(rng, 2).title()}"
    if kind == "town":
        return _syllables(rng, 1).title() + rng.choice(_PLACE_ENDINGS)
    if kind == "org":
        return f"{_syllables(rng, 2).title()} {rng.choice(_ORG_KINDS).title()}"
    return f"The {_syllables(rng, 1).title()} {rng.choice(['Garden', 'Winter', 'Crossing', 'Lantern', 'Harbour', 'Orchard'])}"


def _text(rng: random.Random, kind: str, name: str, seen: dict[str, list[str]]) -> str:
    def other(k: str) -> str:
        return rng.choice(seen[k]) if seen[k] else _name(rng, k)

    year = rng.randint(1700, 1990)
    if kind == "person":
        return (f"{name} ({year}–{year + rng.randint(30, 90)}) was a {rng.choice(_NATIONS)} {rng.choice(_OCCUPATIONS)} "
                f"born in {other('town')}. {name.split()[0]} studied at {other('org')} and in {year + 25} married "
                f"{other('person')}. {name.split()[-1]} is best known for {other('work')}, and served as mayor of "
                f"{other('town')} from {year + 40}.")
    if kind == "town":
        return (f"{name} is a market town on the river {rng.choice(_RIVERS)}, founded in {year} by {other('person')}. "
                f"Its population was {rng.randint(800, 90000):,} in {rng.randint(1900, 2020)}. The town is home to "
                f"{other('org')}, and lies {rng.randint(3, 80)} km from {other('town')}.")
    if kind == "org":
        return (f"The {name} is a {rng.choice(_NATIONS)} institution founded in {year} by {other('person')} in "
                f"{other('town')}. Its first director was {other('person')}. In {year + rng.randint(5, 60)} it "
                f"merged with {other('org')} and moved to {other('town')}.")
    return (f"{name} is a {year} {rng.choice(_WORK_KINDS)} by {other('person')}, first published by {other('org')} "
            f"in {other('town')}. It is set in {other('town')} and was adapted by {other('person')} in "
            f"{year + rng.randint(3, 40)}.")


def generated_documents(count: int, start: int = 0, seed: int = 13) -> list[dict[str, str]]:
    """`count` generated documents from number `start` on; document n is the same in every call."""
    rng = random.Random(seed)
    seen: dict[str, list[str]] = {k: [] for k in ("person", "town", "org", "work")}
    documents = []
    for number in range(start + count):
        kind = ("person", "person", "town", "org", "work")[number % 5]
        name = _name(rng, kind)
        text = _text(rng, kind, name, seen)
        seen[kind].append(name)
        if number >= start:
            documents.append({"id": f"gen-{number:06d}", "title": name, "text": text})
    return documents


# ---- measurements ----------------------------------------------------------------------------------


def index_run(db: Path, documents: list[dict]) -> dict:
    from hippograph import Config
    from hippograph.pipeline.run import index_documents
    from hippograph.pipeline.sources import documents_from_records

    start = time.perf_counter()
    report = index_documents(db, documents_from_records(documents), Config(), progress=False)
    return {"seconds": time.perf_counter() - start, "passages": report.passages, "stages": report.seconds}


def copy_seconds(db: Path) -> float:
    """A plain copy of the store file, made durable: what publishing by copy costs at least."""
    target = db.with_name(db.name + ".copytest")
    start = time.perf_counter()
    shutil.copyfile(db, target)
    with open(target, "rb") as handle:
        os.fsync(handle.fileno())
    elapsed = time.perf_counter() - start
    target.unlink()
    return elapsed


def query_process(db: Path) -> dict:
    """Latency and RSS measured in a fresh process, so the figures are a query process's own."""
    run = subprocess.run([sys.executable, __file__, "--query-worker", str(db)], capture_output=True, text=True, check=True)
    return json.loads(run.stdout.strip().splitlines()[-1])


def query_worker(db: Path) -> None:
    from hippograph import Memory

    questions = dev_questions()
    memory = Memory(db)
    for mode in MODES:
        memory.retrieve(WARM_UP, mode=mode)
    result = {"passages": memory.stats().passages, "rss_mb": _status_mb("VmRSS")}
    for mode in MODES:
        result[mode] = timed_queries(memory, mode, questions)
    result["peak_rss_mb"] = _status_mb("VmHWM")
    print(json.dumps(result))


def _status_mb(field: str) -> float:
    line = next(l for l in Path("/proc/self/status").read_text().splitlines() if l.startswith(field + ":"))
    return round(int(line.split()[1]) / 1024, 1)


# ---- the run ---------------------------------------------------------------------------------------


def corpus_up_to(size: int) -> list[dict]:
    from hippograph.pipeline.sources import read_jsonl_records

    shared = [record for path in SHARED_CORPORA for _, record in read_jsonl_records(path)]
    return shared[:size] + generated_documents(max(0, size - len(shared)))


def measure(sizes: list[int], db: Path, earlier: list[dict] = ()) -> list[dict]:
    """Grow the store at `db` to each size and measure it; `earlier`: the rows of the run that grew it so far."""
    rows = list(earlier)
    indexed = rows[-1]["documents"] if rows else 0
    index_seconds = rows[-1]["index_seconds"] if rows else 0.0
    extra = sum(len(r["incremental_write_steps"]) * r["incremental_documents"] for r in rows)  # 1% runs' documents
    largest = corpus_up_to(max(sizes))
    for size in sizes:
        run = index_run(db, largest[indexed:size])
        indexed, index_seconds = size, index_seconds + run["seconds"]
        print(f"{size} documents: indexed in {index_seconds:.0f} s", file=sys.stderr, flush=True)
        copy = copy_seconds(db)
        # 1% runs of new documents (numbered beyond any size's). The first settles the store after the
        # growth run: it replays (or, past a tenth of the store, copies) that run's large delta; the three
        # after it are what a scheduled run of a few new documents costs from then on (their median).
        methods, write_steps = [], []
        for _ in range(1 + STEADY_RUNS):
            increment = generated_documents(size // 100, start=1_000_000 + extra)
            extra += len(increment)
            method, incremental = published_by(lambda: index_run(db, increment), db)
            methods.append(method)
            write_steps.append(sum(incremental["stages"].get(s, 0.0) for s in WRITE_STEP))
        queries = query_process(db)
        rows.append({
            "documents": size, "index_seconds": round(index_seconds, 1),
            "index_documents_per_s": round(size / index_seconds, 1),
            "store_mb": round(db.stat().st_size / 1e6, 1), "copy_seconds": round(copy, 2),
            "incremental_documents": len(increment), "incremental_seconds": round(incremental["seconds"], 2),
            "incremental_publish_seconds": round(statistics.median(write_steps[1:]), 2),
            "incremental_write_steps": [round(w, 2) for w in write_steps],  # the settling run's first
            "incremental_published_by": methods,
            "last_run_stages": run["stages"], **queries,
        })
        print(json.dumps(rows[-1]), file=sys.stderr, flush=True)
    return rows


def render(result: dict) -> str:
    lines = [
        "# Scaling: one store grown to each size\n",
        f"Command: `{result['command']}`  ",
        f"CPU: {result['machine']['cpu']} ({', '.join(result['machine']['features'])}), {os.cpu_count()} cores. "
        f"{result['note']}\n",
        "| documents (passages) | index s | documents/s | store MB | copy s | 1% run: docs, s, publish s | query RSS MB (peak) "
        "| bm25 p50/p95 ms | dense p50/p95 ms | hipporag p50/p95 ms |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in result["sizes"]:
        lines.append(
            f"| {r['documents']:,} ({r['passages']:,}) | {r['index_seconds']} | {r['index_documents_per_s']} | {r['store_mb']} | {r['copy_seconds']} "
            f"| {r['incremental_documents']}, {r['incremental_seconds']}, {r['incremental_publish_seconds']} "
            f"({r['incremental_published_by'][-1]}) "
            f"| {r['rss_mb']} ({r['peak_rss_mb']}) | "
            + " | ".join(f"{r[m]['p50_ms']} / {r[m]['p95_ms']}" for m in MODES) + " |"
        )
    return "\n".join(lines) + "\n"


def plot(result: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")  # files only, no screen
    import matplotlib.pyplot as plt

    sizes = [r["documents"] for r in result["sizes"]]
    panels = [
        ("index time (s)", {"whole index": [r["index_seconds"] for r in result["sizes"]]}),
        ("store (MB)", {"store file": [r["store_mb"] for r in result["sizes"]]}),
        ("publish (s)", {"1% run publish": [r["incremental_publish_seconds"] for r in result["sizes"]],
                         "file copy": [r["copy_seconds"] for r in result["sizes"]]}),
        ("query process RSS (MB)", {"after load": [r["rss_mb"] for r in result["sizes"]]}),
        ("query p50 (ms)", {m: [r[m]["p50_ms"] for r in result["sizes"]] for m in MODES}),
    ]
    figure, axes = plt.subplots(1, len(panels), figsize=(4 * len(panels), 3.4))
    for axis, (title, series) in zip(axes, panels):
        for label, values in series.items():
            axis.plot(sizes, values, marker="o", label=label)
        axis.set_title(title)
        axis.set_xlabel("documents")
        axis.legend(fontsize=7)
    figure.tight_layout()
    figure.savefig(path, dpi=110)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--sizes", default="10000,25000,50000,100000")
    parser.add_argument("--db", type=Path, help="grow the store here (new file); default: a temporary file")
    parser.add_argument("--out", type=Path, default=ROOT / "results")
    parser.add_argument("--note", default="", help="what else ran on the machine meanwhile, for the record")
    parser.add_argument("--resume", type=Path, help="the results (scale.json) of the run that grew --db so far")
    parser.add_argument("--query-worker", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.query_worker:
        return query_worker(args.query_worker)
    sizes = sorted(int(s) for s in args.sizes.split(","))
    earlier = json.loads(args.resume.read_text()) if args.resume else None
    if earlier and not (args.db and args.db.exists()):
        parser.error("--resume needs --db: the store that run grew")
    if earlier and sizes[0] <= earlier["sizes"][-1]["documents"]:
        parser.error(f"--sizes must be larger than the resumed run's largest, {earlier['sizes'][-1]['documents']}")
    with tempfile.TemporaryDirectory() as scratch:
        db = args.db or Path(scratch) / "scale.duckdb"
        if db.exists() and not earlier:
            parser.error(f"{db} exists: the benchmark grows a new store (or give --resume)")
        rows = measure(sizes, db, earlier["sizes"] if earlier else [])
    command = "python benchmarks/bench_scale.py --sizes " + args.sizes
    if earlier:
        command = f"{earlier['command']}, then {command} --resume scale.json on its store"
    notes = [earlier["note"]] if earlier and earlier["note"] else []
    result = {"command": command, "machine": cpu(), "note": " ".join(notes + [args.note]).strip(), "sizes": rows}
    args.out.mkdir(exist_ok=True)
    (args.out / "scale.json").write_text(json.dumps(result, indent=2) + "\n")
    (args.out / "scale.md").write_text(render(result))
    plot(result, args.out / "scale.png")
    print(render(result))


if __name__ == "__main__":
    main()
