"""What publishing a small write to a large store costs: a full copy of the store against bringing the
previous version (`<store>.prev`) up to date with the last write's changes (`<store>.delta`).

    python benchmarks/bench_publish.py [--store /work/bench/2wiki_v5.duckdb] [--arms twin,copy] [--label new]
    python benchmarks/bench_publish.py --summarize A.json B.json --out benchmarks/results/publish_2wiki

Each arm indexes the same new documents (--docs per run, held-out musique-dev passages by default)
into its own copy of the store, run after run, through the normal index path (`index_documents`),
the arms taking turns so a busy machine slows them alike. Arm "twin" publishes as the code at hand
does; arm "copy" removes `.prev` before each run, so every publish copies the store (under code that
predates the twin, every publish does anyway: run it there with `--arms copy --label old`). The
original store is only read. Then --cycles rounds of deleting the first run's documents and indexing
them again show whether the file grows. Writes one JSON per invocation; --summarize renders them.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import duckdb

from bench_index import DATA, machine

from hippograph import Config, IndexReport, Memory
from hippograph.pipeline.commit import StageTimer, StoreState, commit
from hippograph.pipeline.run import run_stages
from hippograph.pipeline.sources import read_documents
from hippograph.pipeline.stages import StageOutput

ROOT = Path(__file__).resolve().parent
PUBLISH_STEPS = ("prepare", "write", "publish")  # the write step: all `update_store` does (old code: "write" only)


def sibling(path: Path, suffix: str) -> Path:
    return path.with_name(path.name + suffix)


def inode(path: Path) -> int | None:
    return path.stat().st_ino if path.exists() else None


def sizes(db: Path) -> dict[str, int]:
    files = {"store": db, "prev": sibling(db, ".prev"), "delta": sibling(db, ".delta")}
    return {name: path.stat().st_size for name, path in files.items() if path.exists()}


def free_blocks(db: Path) -> dict[str, int]:
    con = duckdb.connect(str(db), read_only=True)
    try:
        _, _, block_size, total, used, free, *_ = con.execute("PRAGMA database_size").fetchall()[0]
        return {"block_size": block_size, "total_blocks": total, "used_blocks": used, "free_blocks": free}
    finally:
        con.close()


# Key columns of each table, suffixed to make a scaled copy's extra rows distinct (subjects, objects and
# phrases too, so the copy has as many distinct facts and phrases as rows).
SCALED_COLUMNS = {
    "documents": ["doc_id"], "passages": ["passage_id", "doc_id"], "passage_embeddings": ["passage_id"],
    "triples": ["passage_id", "subject", "object"], "passage_phrases": ["passage_id", "phrase"],
    "passage_entities": ["passage_id"], "phrases": ["phrase"], "facts": ["subject", "object"],
    "synonyms": ["phrase_a", "phrase_b"], "memories": ["doc_id"], "memory_keys": ["doc_id"],
}


def scaled_copy(source: Path, target: Path, factor: int) -> None:
    """`source` copied to `target` with every row repeated `factor` times under suffixed keys: a store as
    a corpus `factor` times larger would make, to show how each way of publishing scales."""
    shutil.copyfile(source, target)
    con = duckdb.connect(str(target))
    try:
        for table, keys in SCALED_COLUMNS.items():
            columns = [c for (c,) in con.execute(
                "SELECT column_name FROM information_schema.columns WHERE table_name = ? ORDER BY ordinal_position",
                [table]).fetchall()]
            con.execute(f"CREATE OR REPLACE TEMP TABLE original AS SELECT * FROM {table}")
            for copy in range(1, factor):
                select = ", ".join(f"{c} || ' ~{copy}'" if c in keys else c for c in columns)
                con.execute(f"INSERT INTO {table} SELECT {select} FROM original")
        con.execute("CHECKPOINT")
    finally:
        con.close()


def stage(db: Path, documents, config: Config) -> tuple[StageOutput, dict[str, float]]:
    """Run the index stages over `documents` once (every arm commits the same output): what the arms
    would each compute alike, and the machine's noise, kept out of the comparison."""
    report = IndexReport(documents=len(documents))
    output = run_stages(documents, config, StageTimer(report), StoreState.read(db, vectors=False).known)
    return output, report.seconds


def drop_twin(db: Path) -> None:
    """Make the next write copy the store: what every publish did before the twin, and its fallback."""
    for suffix in (".prev", ".delta"):
        sibling(db, suffix).unlink(missing_ok=True)


def published_by(write, db: Path) -> tuple[str, object]:
    """Run `write()`; how it published, told by the files: the twin's file becomes the store."""
    before, twin = inode(db), inode(sibling(db, ".prev"))
    result = write()
    after = inode(db)
    return ("none" if after == before else "twin" if after == twin else "copy"), result


def one_run(db: Path, output: StageOutput, config: Config, arm: str) -> dict:
    if arm == "copy":
        drop_twin(db)
    start = time.perf_counter()
    method, report = published_by(lambda: commit(db, output, config), db)
    total = time.perf_counter() - start
    seconds = report.seconds
    publish_step = sum(seconds.get(step, 0.0) for step in PUBLISH_STEPS)
    return {
        "indexed": report.indexed, "passages": report.passages, "published_by": method, "seconds": seconds,
        "publish_step_s": round(publish_step, 3), "commit_s": round(total, 3), "sizes": sizes(db),
    }


def copy_reference(store: Path, scratch: Path, repeats: int = 3) -> list[float]:
    """Seconds to copy the store file and sync the copy: the least a full-copy publish pays."""
    times = []
    for _ in range(repeats):
        target = scratch / "reference-copy.duckdb"
        start = time.perf_counter()
        shutil.copyfile(store, target)
        with open(target, "rb") as handle:
            os.fsync(handle.fileno())
        times.append(round(time.perf_counter() - start, 3))
        target.unlink()
    return times


def churn(db: Path, output: StageOutput, config: Config, arm: str, cycles: int) -> list[dict]:
    """Delete the documents of `output` and commit them again, `cycles` times: does the file grow?"""
    rounds = []
    doc_ids = [d.doc_id for d in output.documents]
    for _ in range(cycles):
        if arm == "copy":
            drop_twin(db)
        deleted_by, _ = published_by(lambda: Memory(db, config).delete(doc_ids), db)
        if arm == "copy":
            drop_twin(db)
        indexed_by, report = published_by(lambda: commit(db, output, config), db)
        rounds.append({"published_by": [deleted_by, indexed_by], "indexed": report.indexed, "sizes": sizes(db),
                       **free_blocks(db)})
    return rounds


def run(args: argparse.Namespace) -> dict:
    documents = read_documents([args.corpus])
    config = Config()
    arms = args.arms.split(",")
    load_before = os.getloadavg()
    with tempfile.TemporaryDirectory(dir=args.scratch) as scratch:
        scratch = Path(scratch)
        stores = {}
        source = args.store
        if args.scale > 1:
            source = scratch / "scaled.duckdb"
            scaled_copy(args.store, source, args.scale)
        for arm in arms:
            (scratch / arm).mkdir()
            stores[arm] = scratch / arm / "store.duckdb"
            shutil.copyfile(source, stores[arm])  # the original store is never written
        reference = copy_reference(source, scratch)
        store_bytes = source.stat().st_size
        with duckdb.connect(str(source), read_only=True) as con:
            store_documents = con.execute("SELECT count(*) FROM documents").fetchall()[0][0]
        runs: dict[str, list[dict]] = {arm: [] for arm in arms}
        stages, outputs = [], []
        for number in range(args.runs):
            output, seconds = stage(stores[arms[0]], documents[number * args.docs:(number + 1) * args.docs], config)
            stages.append(seconds)
            outputs.append(output)
            for arm in arms:  # in turn, so a busy machine slows them alike
                runs[arm].append(one_run(stores[arm], output, config, arm))
                print(arm, number + 1, json.dumps(runs[arm][-1]), flush=True)
        after_runs = {arm: {**sizes(stores[arm]), **free_blocks(stores[arm])} for arm in arms}
        churned = {arm: churn(stores[arm], outputs[0], config, arm, args.cycles) for arm in arms}
    return {
        "label": args.label, "command": " ".join([Path(sys.executable).name, *sys.argv]),
        "commit": git_commit(), "machine": machine(), "load_average_before": load_before,
        "load_average_after": os.getloadavg(), "store": str(args.store), "scale": args.scale, "store_bytes": store_bytes,
        "store_documents": store_documents,
        "corpus": str(args.corpus), "docs_per_run": args.docs, "copy_reference_s": reference, "stages": stages,
        "runs": runs, "after_runs": after_runs, "churn": churned,
    }


def git_commit() -> str:
    import hippograph

    checkout = Path(hippograph.__file__).resolve().parents[2]
    result = subprocess.run(["git", "-C", str(checkout), "rev-parse", "--short", "HEAD"], capture_output=True, text=True)
    return f"{checkout}@{result.stdout.strip()}"


# ---- the summary -----------------------------------------------------------------------------------


def arm_rows(result: dict) -> list[dict]:
    stages = statistics.median(sum(v for k, v in seconds.items() if k != "load_models") for seconds in result["stages"])
    rows = []
    for arm, runs in result["runs"].items():
        steady = [r for r in runs if r["published_by"] == ("twin" if arm == "twin" else "copy")]
        if not steady:
            continue
        rows.append({
            "name": f"{result['label']}/{arm}", "runs": len(steady), "stages_s": stages,
            "read_merge_s": statistics.median(r["seconds"].get("read_store", 0) + r["seconds"].get("merge", 0) for r in steady),
            "publish_step_s": statistics.median(r["publish_step_s"] for r in steady),
            "publish_steps": {step: statistics.median(r["seconds"].get(step, 0.0) for r in steady) for step in PUBLISH_STEPS},
            "sizes_after_runs": result["after_runs"][arm],
            "churn": [(c["sizes"]["store"], "/".join(c["published_by"])) for c in result["churn"][arm]],
            "reference_s": statistics.median(result["copy_reference_s"]),
        })
    return rows


def render(results: list[dict]) -> str:
    first = results[0]
    rows = [row for result in results for row in arm_rows(result)]
    mb = 1e6
    loads = "; ".join(f"{r['label']}: {fmt_load(r['load_average_before'])} before, {fmt_load(r['load_average_after'])} after"
                      for r in results)
    scaled = f", its rows repeated {first['scale']} times" if first["scale"] > 1 else ""
    share = 100 * first["docs_per_run"] / first["store_documents"]
    lines = [
        f"# Publishing a small write: {Path(first['store']).name}{scaled} ({first['store_bytes'] / mb:.0f} MB, "
        f"{first['store_documents']:,} documents), {first['docs_per_run']} new documents a run ({share:.1f}%)\n",
        f"Machine: {first['machine']['cpu']}, {first['machine']['cores']} cores, {first['machine']['memory_gb']} GB, "
        f"ext4 without reflink. Shared with other work: load average (1, 5, 15 min) {loads}.\n",
        "Commands:\n",
        *[f"- `{r['command']}` (code: {r['commit']})" for r in results],
        "",
        "Medians over the runs that published as their arm does (a twin arm's first run copies: no `.prev` yet).",
        "The stages (chunk, extract, embed, compress) ran once a run, their output committed to every arm; each",
        "commit then reads the store and merges (read + merge), and runs the write step: all `update_store` does,",
        "i.e. preparing the version to write (a copy of the store, or `.prev` with the last write replayed), the",
        "write's own transaction, and publishing (checkpoint, sync, delta, link, rename). Code before the twin",
        "reports the whole write step as `write`.",
        "",
        "| arm | runs | stages s | read + merge s | write step s | prepare | write | publish | vs copying the file | store MB after | + .prev + .delta MB |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for row in rows:
        steps, after = row["publish_steps"], row["sizes_after_runs"]
        extra = (after.get("prev", 0) + after.get("delta", 0)) / mb
        lines.append(
            f"| {row['name']} | {row['runs']} | {row['stages_s']:.1f} | {row['read_merge_s']:.2f} | "
            f"**{row['publish_step_s']:.3f}** | {steps['prepare']:.3f} | {steps['write']:.3f} | {steps['publish']:.3f} | "
            f"{100 * row['publish_step_s'] / row['reference_s']:.0f}% | {after['store'] / mb:.1f} | {extra:.1f} |"
        )
    references = ", ".join(f"{statistics.median(r['copy_reference_s']):.2f} s ({r['label']})" for r in results)
    lines += ["", f"Copying the store file and syncing the copy (the least a full copy costs): {references} (median of 3).", ""]
    if any(row["churn"] for row in rows):
        lines += [
            "The store after each round of deleting the first run's documents and committing them again (MB; how",
            "the delete and the commit published):",
            "",
            *[f"- {row['name']}: " + ", ".join(f"{size / mb:.1f} ({how})" for size, how in row["churn"]) for row in rows],
            "",
        ]
    return "\n".join(lines)


def fmt_load(load: list[float]) -> str:
    return "/".join(f"{x:.1f}" for x in load)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--store", type=Path, default=Path("/work/bench/2wiki_v5.duckdb"))
    parser.add_argument("--corpus", type=Path, default=DATA / "musique-dev" / "corpus.jsonl")
    parser.add_argument("--docs", type=int, default=61, help="new documents a run (61: 1%% of 2wiki's 6,119)")
    parser.add_argument("--runs", type=int, default=10)
    parser.add_argument("--cycles", type=int, default=5, help="delete-and-index-again rounds after the runs")
    parser.add_argument("--arms", default="twin,copy")
    parser.add_argument("--scale", type=int, default=1, help="publish to a copy of the store with its rows repeated N times")
    parser.add_argument("--label", default="new")
    parser.add_argument("--scratch", type=Path, default=None, help="where the store copies go (default: the temp dir)")
    parser.add_argument("--json", type=Path, help="write the result here")
    parser.add_argument("--summarize", type=Path, nargs="+", help="render these results instead of running")
    parser.add_argument("--out", type=Path, help="with --summarize: write <out>.md and <out>.json")
    args = parser.parse_args()
    if args.summarize:
        results = [json.loads(path.read_text()) for path in args.summarize]
        table = render(results)
        print(table)
        if args.out:
            args.out.with_suffix(".md").write_text(table)
            args.out.with_suffix(".json").write_text(json.dumps(results, indent=2) + "\n")
        return
    result = run(args)
    if args.json:
        args.json.write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
