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

from hippograph import Config, Memory
from hippograph.pipeline.run import index_documents
from hippograph.pipeline.sources import read_documents

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


def one_run(db: Path, documents, config: Config, arm: str) -> dict:
    if arm == "copy":  # the full copy: what every publish did before the twin, and the twin's fallback
        for suffix in (".prev", ".delta"):
            sibling(db, suffix).unlink(missing_ok=True)
    before, twin = inode(db), inode(sibling(db, ".prev"))
    start = time.perf_counter()
    report = index_documents(db, documents, config)
    total = time.perf_counter() - start
    after = inode(db)
    published_by = "none" if after == before else "twin" if after == twin else "copy"
    seconds = report.seconds
    publish_step = sum(seconds.get(step, 0.0) for step in PUBLISH_STEPS)
    return {
        "indexed": report.indexed, "passages": report.passages, "published_by": published_by,
        "seconds": seconds, "publish_step_s": round(publish_step, 3), "stages_s": round(total - publish_step, 3),
        "total_s": round(total, 3), "sizes": sizes(db),
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


def churn(db: Path, documents, config: Config, cycles: int) -> list[dict]:
    """Delete the documents and index them again, `cycles` times: does the file grow?"""
    rounds = []
    for _ in range(cycles):
        Memory(db, config).delete([d.doc_id for d in documents])
        report = index_documents(db, documents, config)
        rounds.append({"indexed": report.indexed, "sizes": sizes(db), **free_blocks(db)})
    return rounds


def run(args: argparse.Namespace) -> dict:
    documents = read_documents([args.corpus])
    batches = [documents[i * args.docs:(i + 1) * args.docs] for i in range(args.runs)]
    config = Config()
    arms = args.arms.split(",")
    load_before = os.getloadavg()
    with tempfile.TemporaryDirectory(dir=args.scratch) as scratch:
        scratch = Path(scratch)
        stores = {}
        for arm in arms:
            (scratch / arm).mkdir()
            stores[arm] = scratch / arm / "store.duckdb"
            shutil.copyfile(args.store, stores[arm])  # the original store is never written
        reference = copy_reference(args.store, scratch)
        runs: dict[str, list[dict]] = {arm: [] for arm in arms}
        for number, batch in enumerate(batches, 1):
            for arm in arms:
                runs[arm].append(one_run(stores[arm], batch, config, arm))
                print(arm, number, json.dumps(runs[arm][-1]), flush=True)
        after_runs = {arm: {**sizes(stores[arm]), **free_blocks(stores[arm])} for arm in arms}
        churned = {arm: churn(stores[arm], batches[0], config, args.cycles) for arm in arms}
    return {
        "label": args.label, "command": " ".join([Path(sys.executable).name, *sys.argv]),
        "commit": git_commit(), "machine": machine(), "load_average_before": load_before,
        "load_average_after": os.getloadavg(), "store": str(args.store), "store_bytes": args.store.stat().st_size,
        "corpus": str(args.corpus), "docs_per_run": args.docs, "copy_reference_s": reference, "runs": runs,
        "after_runs": after_runs, "churn": churned,
    }


def git_commit() -> str:
    import hippograph

    checkout = Path(hippograph.__file__).resolve().parents[2]
    result = subprocess.run(["git", "-C", str(checkout), "rev-parse", "--short", "HEAD"], capture_output=True, text=True)
    return f"{checkout}@{result.stdout.strip()}"


# ---- the summary -----------------------------------------------------------------------------------


def arm_rows(result: dict) -> list[dict]:
    rows = []
    for arm, runs in result["runs"].items():
        steady = [r for r in runs if r["published_by"] == ("twin" if arm == "twin" else "copy")]
        rows.append({
            "name": f"{result['label']}/{arm}", "runs": len(steady),
            "published_by": sorted({r["published_by"] for r in runs}),
            "stages_s": statistics.median(r["stages_s"] for r in steady),
            "publish_step_s": statistics.median(r["publish_step_s"] for r in steady),
            "publish_steps": {step: statistics.median(r["seconds"].get(step, 0.0) for r in steady) for step in PUBLISH_STEPS},
            "sizes_after_runs": result["after_runs"][arm],
            "churn_sizes": [c["sizes"]["store"] for c in result["churn"][arm]],
            "reference_s": statistics.median(result["copy_reference_s"]),
        })
    return rows


def render(results: list[dict]) -> str:
    first = results[0]
    rows = [row for result in results for row in arm_rows(result)]
    mb = 1e6
    lines = [
        f"# Publishing a 1% write: {Path(first['store']).name} ({first['store_bytes'] / mb:.0f} MB), "
        f"{first['docs_per_run']} new documents a run\n",
        f"Machine: {first['machine']['cpu']}, {first['machine']['cores']} cores, {first['machine']['memory_gb']} GB; "
        "ext4 without reflink. Load averages (1, 5, 15 min) before and after each invocation: "
        + "; ".join(f"{r['label']}: {r['load_average_before']} → {r['load_average_after']}" for r in results) + "\n",
        "Commands:\n",
        *[f"- `{r['command']}` (code: {r['commit']})" for r in results],
        "",
        "Medians over the runs that published as their arm does (a twin arm's first run copies: no `.prev` yet).",
        "The write step is all `update_store` does: preparing the version to write (a copy of the store, or `.prev`",
        "with the last write replayed), the write's own transaction, and publishing (checkpoint, sync, delta, rename).",
        "",
        "| arm | runs | stages s | write step s | prepare | write | publish | vs copying the file | store MB after | + .prev + .delta MB |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for row in rows:
        steps, after = row["publish_steps"], row["sizes_after_runs"]
        extra = (after.get("prev", 0) + after.get("delta", 0)) / mb
        lines.append(
            f"| {row['name']} | {row['runs']} | {row['stages_s']:.2f} | **{row['publish_step_s']:.3f}** | "
            f"{steps['prepare']:.3f} | {steps['write']:.3f} | {steps['publish']:.3f} | "
            f"{100 * row['publish_step_s'] / row['reference_s']:.0f}% | {after['store'] / mb:.1f} | {extra:.1f} |"
        )
    references = ", ".join(f"{statistics.median(r['copy_reference_s']):.2f} s ({r['label']})" for r in results)
    lines += [
        "",
        f"Copying the store file and syncing the copy (the least a full-copy publish pays): {references} (median of 3).",
        "",
        "The store after each of the delete-and-index-again rounds of the first run's documents (MB):",
        "",
        *[f"- {row['name']}: " + ", ".join(f"{size / mb:.1f}" for size in row["churn_sizes"]) for row in rows],
        "",
    ]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--store", type=Path, default=Path("/work/bench/2wiki_v5.duckdb"))
    parser.add_argument("--corpus", type=Path, default=DATA / "musique-dev" / "corpus.jsonl")
    parser.add_argument("--docs", type=int, default=61, help="new documents a run (61: 1%% of 2wiki's 6,119)")
    parser.add_argument("--runs", type=int, default=10)
    parser.add_argument("--cycles", type=int, default=5, help="delete-and-index-again rounds after the runs")
    parser.add_argument("--arms", default="twin,copy")
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
