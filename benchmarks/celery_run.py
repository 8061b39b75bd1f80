"""The index DAG on a real CeleryExecutor, from scratch, on this machine; then the same corpus in one process.

    python benchmarks/celery_run.py                        # hotpotqa-dev, 4 shards, two workers
    python benchmarks/celery_run.py --limit 60 --shard-size 15 --out-stem /tmp/smoke   # a quick check

In a temporary folder it starts
- Redis, the Celery broker: Debian's `redis-server` (`apt-get install redis-server`), on a free loopback port,
  nothing persisted;
- PostgreSQL, Airflow's metadata database and Celery's result backend (Airflow refuses SQLite for any executor
  but the sequential one): a throwaway cluster made with Debian's `initdb` and started with `pg_ctl` (run as
  the `postgres` user when this script runs as root, since PostgreSQL refuses root), trust authentication on
  loopback, fsync off;
- Airflow 3 with `CeleryExecutor` (the `celery` extra: apache-airflow-providers-celery, psycopg2, asyncpg):
  `airflow db migrate`, then `api-server` (the tasks' execution API), `scheduler`, `dag-processor` and two
  `airflow celery worker`s, concurrency 1 each, with distinct Celery hostnames. No triggerer: the DAG defers
  nothing. `worker-1` also consumes the `store` queue, where `HIPPOGRAPH_STORE_QUEUE=store` sends `plan` and
  `commit`; the stage tasks go to the default queue, which both consume.

It triggers `hippograph_index` on the corpus (`airflow dags trigger --conf`), waits for the run, reads which
worker ran each task from the metadata database, indexes the same corpus in one process (`hippograph index
CORPUS --db reference.duckdb`, same config), compares the two stores table by table, stops everything and
writes `<out-stem>.md` and `<out-stem>.json`. Every process imports hippograph from this checkout (a folder of
links first on PYTHONPATH), whichever checkout the environment's editable install points at.

Both workers run on this one machine, so the machine's hostname cannot tell them apart: each worker's
processes get `[core] hostname_callable` pointing at a function that returns that worker's Celery hostname,
which Airflow then records as the task instance's `hostname`. Each worker's own log ("Executing workload in
Celery") is counted too, as a cross-check that does not depend on that setting.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

import duckdb
import numpy as np

REPO_ROOT = Path(__file__).resolve().parents[1]
DEFAULT_CORPUS = REPO_ROOT.parent / "shared" / "data" / "hotpotqa-dev" / "corpus.jsonl"
DAG_ID = "hippograph_index"
BIN = Path(sys.executable).parent
STORE_QUEUE = "store"
CPU_FLAGS = ("avx2", "avx512f", "avx512_vnni", "avx512_bf16", "avx_vnni", "amx_bf16", "amx_int8", "amx_tile")


def log(message: str) -> None:
    print(f"[{datetime.now().strftime('%H:%M:%S')}] {message}", flush=True)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def cpu_info() -> dict:
    text = Path("/proc/cpuinfo").read_text()
    model = re.search(r"^model name\s*:\s*(.+)$", text, re.M)
    flags = set(re.search(r"^flags\s*:\s*(.+)$", text, re.M).group(1).split())
    return {"model": model.group(1).strip() if model else platform.processor(), "cores": os.cpu_count(),
            "flags": [f for f in CPU_FLAGS if f in flags]}


def checkout_packages(base: Path) -> Path:
    """A folder that, first on PYTHONPATH, makes `import hippograph` load this checkout's code, laid out as
    pyproject.toml's package-dir maps it (src/hippograph, with pipeline/, graph/, indexing/ as subpackages),
    whatever checkout the environment's editable install points at."""
    import tomllib

    package_dir = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["package-dir"]
    root = base / "checkout-packages"
    top = root / "hippograph"
    top.mkdir(parents=True)
    for entry in (REPO_ROOT / package_dir["hippograph"]).iterdir():
        if entry.name != "__pycache__":
            (top / entry.name).symlink_to(entry)
    for name, folder in package_dir.items():
        if name != "hippograph" and not (root / name.replace(".", "/")).exists():
            (root / name.replace(".", "/")).symlink_to(REPO_ROOT / folder)
    return root


def with_pythonpath(env: dict, *folders: Path) -> dict:
    return {**env, "PYTHONPATH": os.pathsep.join([*map(str, folders), *filter(None, [env.get("PYTHONPATH")])])}


def command_output(args: list[str]) -> str:
    try:
        return subprocess.run(args, capture_output=True, text=True, timeout=60).stdout.strip()
    except (OSError, subprocess.TimeoutExpired) as error:
        return f"unavailable ({error})"


class Services:
    """Processes this script started, each in its own process group with its own log file."""

    def __init__(self, logs: Path):
        self.logs = logs
        self.procs: list[tuple[str, subprocess.Popen]] = []

    def start(self, name: str, args: list[str], env: dict) -> subprocess.Popen:
        out = open(self.logs / f"{name}.log", "ab")
        proc = subprocess.Popen(args, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True,
                                cwd=self.logs)
        out.close()
        self.procs.append((name, proc))
        log(f"started {name} (pid {proc.pid})")
        return proc

    def check_alive(self) -> None:
        for name, proc in self.procs:
            if proc.poll() is not None:
                raise RuntimeError(f"{name} exited with {proc.returncode}:\n{self.tail(name)}")

    def tail(self, name: str, lines: int = 40) -> str:
        path = self.logs / f"{name}.log"
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:]) if path.exists() else ""

    def stop_all(self, grace: float = 60.0) -> dict[str, dict]:
        """SIGTERM to each process group, newest first; SIGKILL only what is still there after `grace` s."""
        stopped = {}
        for name, proc in reversed(self.procs):
            entry = {"pid": proc.pid, "killed": False}
            if proc.poll() is None:
                try:
                    os.killpg(proc.pid, signal.SIGTERM)
                except ProcessLookupError:
                    pass
                try:
                    proc.wait(timeout=grace)
                except subprocess.TimeoutExpired:
                    os.killpg(proc.pid, signal.SIGKILL)
                    proc.wait(timeout=30)
                    entry["killed"] = True
            entry["returncode"] = proc.returncode
            entry["group_left"] = group_alive(proc.pid)
            if entry["group_left"]:  # a child that outlived its leader: end it too
                try:
                    os.killpg(proc.pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
            stopped[name] = entry
            log(f"stopped {name}: {entry}")
        self.procs = []
        return stopped


def group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
        return True
    except ProcessLookupError:
        return False
    except PermissionError:
        return True


# ---- broker and database --------------------------------------------------------------------------


def start_redis(services: Services, base: Path) -> int:
    port = free_port()
    (base / "redis").mkdir()
    services.start("redis", ["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save", "",
                             "--appendonly", "no", "--dir", str(base / "redis")], dict(os.environ))
    import redis

    client = redis.Redis(host="127.0.0.1", port=port)
    for _ in range(100):
        try:
            if client.ping():
                return port
        except redis.exceptions.ConnectionError:
            time.sleep(0.1)
    raise RuntimeError(f"redis-server did not answer:\n{services.tail('redis')}")


class Postgres:
    """A throwaway PostgreSQL cluster in `base/pg`, owned by the `postgres` user when we are root."""

    def __init__(self, base: Path):
        self.data, self.run_dir, self.logfile = base / "pg", base / "pg-run", base / "logs" / "postgres.log"
        self.port = free_port()
        self.as_user = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
        self.bindir = Path(shutil.which("initdb") or "initdb").resolve().parent  # Debian: /usr/lib/postgresql/N/bin
        self.started = False

    def _run(self, args: list[str]) -> None:
        result = subprocess.run(self.as_user + args, capture_output=True, text=True, timeout=300)
        if result.returncode:
            raise RuntimeError(f"{' '.join(args)} failed:\n{result.stdout}\n{result.stderr}")

    def start(self) -> str:
        self.run_dir.mkdir()
        self.data.mkdir(mode=0o700)
        self.logfile.touch()
        if self.as_user:
            for path in (self.run_dir, self.data, self.logfile):
                shutil.chown(path, "postgres", "postgres")
        self._run([str(self.bindir / "initdb"), "-D", str(self.data), "-U", "airflow", "--auth=trust", "-E", "UTF8",
                   "--no-instructions"])
        options = (f"-p {self.port} -k {self.run_dir} -c listen_addresses=127.0.0.1 -c fsync=off "
                   "-c synchronous_commit=off -c full_page_writes=off -c max_connections=200")
        self._run([str(self.bindir / "pg_ctl"), "-D", str(self.data), "-l", str(self.logfile), "-o", options, "-w",
                   "start"])
        self.started = True
        import psycopg2

        con = psycopg2.connect(host="127.0.0.1", port=self.port, user="airflow", dbname="postgres")
        try:
            con.autocommit = True
            con.cursor().execute("CREATE DATABASE airflow")
        finally:
            con.close()
        return f"airflow@127.0.0.1:{self.port}/airflow"

    def stop(self) -> dict:
        if not self.started:
            return {}
        self._run([str(self.bindir / "pg_ctl"), "-D", str(self.data), "-m", "fast", "-w", "stop"])
        self.started = False
        return {"stopped": "pg_ctl stop -m fast"}

    def connect(self):
        import psycopg2

        con = psycopg2.connect(host="127.0.0.1", port=self.port, user="airflow", dbname="airflow")
        con.autocommit = True
        return con


# ---- Airflow --------------------------------------------------------------------------------------


def airflow_env(base: Path, db_url: str, redis_port: int, api_port: int) -> dict:
    from cryptography.fernet import Fernet

    env = with_pythonpath({k: v for k, v in os.environ.items() if not k.startswith(("AIRFLOW", "HIPPOGRAPH_"))},
                          checkout_packages(base))
    env.update({
        "AIRFLOW_HOME": str(base / "airflow"),
        "AIRFLOW__CORE__DAGS_FOLDER": str(REPO_ROOT / "dags"),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__CORE__EXECUTOR": "CeleryExecutor",
        "AIRFLOW__CORE__FERNET_KEY": Fernet.generate_key().decode(),
        "AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION": "False",
        "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"http://127.0.0.1:{api_port}/execution/",
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"postgresql+psycopg2://{db_url}",
        "AIRFLOW__CELERY__BROKER_URL": f"redis://127.0.0.1:{redis_port}/0",
        "AIRFLOW__CELERY__RESULT_BACKEND": f"db+postgresql+psycopg2://{db_url}",
        "AIRFLOW__CELERY__WORKER_CONCURRENCY": "1",
        "AIRFLOW__API__HOST": "127.0.0.1",
        "AIRFLOW__API__PORT": str(api_port),
        "AIRFLOW__API__WORKERS": "1",
        "AIRFLOW__API__BASE_URL": f"http://127.0.0.1:{api_port}",
        "AIRFLOW__API__SECRET_KEY": secrets.token_hex(16),
        "AIRFLOW__API_AUTH__JWT_SECRET": secrets.token_hex(32),
        # Runs only when triggered: an unpaused @daily DAG would otherwise get a scheduled run of its own.
        "AIRFLOW__SCHEDULER__USE_JOB_SCHEDULE": "False",
        # Parse the DAG file when it appears, then seldom: each parse imports hippograph on a busy machine.
        "AIRFLOW__DAG_PROCESSOR__MIN_FILE_PROCESS_INTERVAL": "300",
        "HIPPOGRAPH_STORE_QUEUE": STORE_QUEUE,
    })
    return env


def airflow_cmd(*args: str) -> list[str]:
    return [str(BIN / "airflow"), *args]


def worker_env(env: dict, base: Path, celery_hostname: str) -> dict:
    """Airflow records `[core] hostname_callable()` as a task instance's hostname: here, the worker's name."""
    lib = base / "pylib"
    lib.mkdir(exist_ok=True)
    (lib / "celery_run_hostname.py").write_text(
        "import os\n\n\ndef hostname():\n    return os.environ['CELERY_RUN_WORKER']\n", encoding="utf-8")
    return with_pythonpath({**env, "CELERY_RUN_WORKER": celery_hostname,
                            "AIRFLOW__CORE__HOSTNAME_CALLABLE": "celery_run_hostname.hostname"}, lib)


def wait_for(what: str, check, services: Services, timeout: float, every: float = 2.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        services.check_alive()
        value = check()
        if value:
            return value
        time.sleep(every)
    raise TimeoutError(f"timed out after {timeout:.0f} s waiting for {what}")


def query(pg: Postgres, sql: str, params=()) -> list[tuple]:
    con = pg.connect()
    try:
        with con.cursor() as cur:
            cur.execute(sql, params)
            return cur.fetchall()
    finally:
        con.close()


def workers_registered(redis_port: int, env: dict) -> list[str]:
    from celery import Celery

    app = Celery(broker=env["AIRFLOW__CELERY__BROKER_URL"])
    try:
        replies = app.control.inspect(timeout=2.0).active_queues() or {}
        return sorted(replies)
    finally:
        app.close()


def worker_log_counts(services: Services, names: list[str]) -> dict[str, dict[str, int]]:
    """Per worker, the tasks its own log says it executed ("Executing workload in Celery: ... task_id=...")."""
    counts = {}
    for name in names:
        text = (services.logs / f"{name}.log").read_text(errors="replace")
        tasks: dict[str, int] = {}
        for line in text.splitlines():
            if "Executing workload in Celery" in line:
                match = re.search(r"task_id='([^']+)'", line)
                key = match.group(1) if match else "?"
                tasks[key] = tasks.get(key, 0) + 1
        counts[name] = tasks
    return counts


# ---- store comparison -----------------------------------------------------------------------------

SKIPPED_COLUMNS = ("embedding", "ingested_at", "indexed_at")  # vectors compared apart; load times differ


def store_rows(path: Path) -> dict[str, object]:
    """Every table's rows sorted (without load times and the write counter), and the vectors of each table
    that has them, in the order of the other columns (as tests/conftest.py's store_contents does)."""
    con = duckdb.connect(str(path), read_only=True)
    try:
        tables = [t for (t,) in con.execute(
            "SELECT table_name FROM information_schema.tables WHERE table_schema = 'main' ORDER BY 1").fetchall()]
        rows: dict[str, object] = {}
        for table in tables:
            columns = [c for (c,) in con.execute(
                "SELECT column_name FROM information_schema.columns WHERE table_name = ? ORDER BY ordinal_position",
                [table]).fetchall()]
            kept = [c for c in columns if c not in SKIPPED_COLUMNS]
            shown = ["round(similarity, 3)" if c == "similarity" else c for c in kept]
            where = " WHERE key <> 'generation'" if table == "meta" else ""
            rows[table] = con.execute(f"SELECT {', '.join(shown)} FROM {table}{where} ORDER BY ALL").fetchall()
            if "embedding" in columns:
                ordered = con.execute(f"SELECT embedding FROM {table} ORDER BY {', '.join(kept)}").fetchall()
                rows[f"{table}.embedding"] = np.array([v for (v,) in ordered], dtype=np.float32)
        return rows
    finally:
        con.close()


def compare_stores(a: Path, b: Path, min_cosine: float = 0.9999) -> dict:
    left, right = store_rows(a), store_rows(b)
    tables = {}
    for name in sorted(set(left) | set(right)):
        x, y = left.get(name), right.get(name)
        if x is None or y is None:
            tables[name] = {"equal": False, "note": "missing in one store"}
        elif name.endswith(".embedding"):
            entry = {"rows": [len(x), len(y)]}
            if x.shape != y.shape:
                entry.update(equal=False, note="shapes differ")
            elif len(x):
                norms = np.linalg.norm(x, axis=1) * np.linalg.norm(y, axis=1)
                cosine = np.where(norms > 0, (x * y).sum(axis=1) / np.where(norms > 0, norms, 1), 1.0)
                entry.update(min_cosine=float(cosine.min()), equal=bool(cosine.min() >= min_cosine))
            else:
                entry["equal"] = True
            tables[name] = entry
        else:
            x_set, y_set = set(map(repr, x)), set(map(repr, y))  # rows may hold lists
            only_a, only_b = sorted(x_set - y_set), sorted(y_set - x_set)
            entry = {"rows": [len(x), len(y)], "equal": x == y}
            if not entry["equal"]:
                entry.update(only_in_dag=len(only_a), only_in_reference=len(only_b),
                             examples=[r[:200] for r in (only_a[:3] + only_b[:3])])
            tables[name] = entry
    return {"equal": all(t["equal"] for t in tables.values()), "min_cosine": min_cosine, "tables": tables}


# ---- the run --------------------------------------------------------------------------------------


def run(args) -> dict:
    base = Path(tempfile.mkdtemp(prefix="hippograph-celery-"))
    base.chmod(0o755)  # the postgres user must reach its cluster inside
    (base / "logs").mkdir()
    services = Services(base / "logs")
    pg = Postgres(base)
    result: dict = {"started": datetime.now(timezone.utc).isoformat(timespec="seconds"), "temp_dir": str(base)}
    try:
        corpus = Path(args.corpus).resolve()
        if args.limit:
            lines = corpus.read_text(encoding="utf-8").splitlines()[: args.limit]
            corpus = base / "corpus.jsonl"
            corpus.write_text("\n".join(lines) + "\n", encoding="utf-8")
        documents = sum(1 for line in corpus.read_text(encoding="utf-8").splitlines() if line.strip())
        result["corpus"] = {"path": str(args.corpus), "documents": documents, "limit": args.limit}

        redis_port = start_redis(services, base)
        db_url = pg.start()
        log(f"redis on {redis_port}, postgres on {pg.port}")
        api_port = free_port()
        env = airflow_env(base, db_url, redis_port, api_port)
        code = subprocess.run([sys.executable, "-c", "import os, hippograph, hippograph.pipeline.stages as s; "
                               "print(*(os.path.realpath(m.__file__) for m in (hippograph, s)))"], env=env, capture_output=True, text=True)
        result["hippograph_code"] = code.stdout.strip() or code.stderr[-500:]
        log(f"hippograph from {result['hippograph_code']}")
        result["loadavg_before"] = os.getloadavg()

        begin = time.monotonic()
        migrate = subprocess.run(airflow_cmd("db", "migrate"), env=env, capture_output=True, text=True, timeout=900)
        if migrate.returncode:
            raise RuntimeError(f"airflow db migrate failed:\n{migrate.stdout[-3000:]}\n{migrate.stderr[-3000:]}")
        result["db_migrate_s"] = round(time.monotonic() - begin, 1)
        log(f"airflow db migrate: {result['db_migrate_s']} s")

        begin = time.monotonic()
        services.start("api-server", airflow_cmd("api-server"), env)
        services.start("scheduler", airflow_cmd("scheduler"), env)
        services.start("dag-processor", airflow_cmd("dag-processor"), env)
        host = socket.gethostname()
        workers = {}
        for i in range(1, args.workers + 1):
            name, celery_hostname = f"worker-{i}", f"worker{i}@{host}"
            queues = f"default,{STORE_QUEUE}" if i == 1 else "default"
            services.start(name, airflow_cmd("celery", "worker", "--celery-hostname", celery_hostname,
                                             "--concurrency", "1", "--queues", queues, "--skip-serve-logs",
                                             "--pid", str(base / f"{name}.pid")),
                           worker_env(env, base, celery_hostname))
            workers[name] = {"celery_hostname": celery_hostname, "queues": queues}
        result["workers"] = workers

        def api_up():
            try:
                import urllib.request

                with urllib.request.urlopen(f"http://127.0.0.1:{api_port}/api/v2/version", timeout=5) as r:
                    return r.status == 200
            except OSError:
                return False

        wait_for("the api-server", api_up, services, 300)
        wait_for(f"{args.workers} Celery workers",
                 lambda: len(workers_registered(redis_port, env)) >= args.workers, services, 300, 3)
        wait_for(f"{DAG_ID} to be parsed", lambda: query(
            pg, "SELECT 1 FROM dag WHERE dag_id = %s AND NOT is_paused AND NOT is_stale", (DAG_ID,)), services, 600)
        errors = query(pg, "SELECT filename, stacktrace FROM import_error")
        if errors:
            raise RuntimeError(f"DAG import errors: {errors}")
        result["startup_s"] = round(time.monotonic() - begin, 1)
        log(f"Airflow up in {result['startup_s']} s: workers {workers_registered(redis_port, env)}")

        store = base / "run" / "store.duckdb"
        store.parent.mkdir()
        conf = {"source": str(corpus), "db": str(store), "work_dir": "", "shard_size": args.shard_size,
                "config": json.loads(args.config), "delete_missing": False}
        run_id = f"celery_run_{datetime.now().strftime('%Y%m%dT%H%M%S')}"
        begin = time.monotonic()  # the clock starts when `airflow dags trigger` has created the run
        trigger = subprocess.run(airflow_cmd("dags", "trigger", DAG_ID, "--run-id", run_id, "--conf", json.dumps(conf)),
                                 env=env, capture_output=True, text=True, timeout=300)
        if trigger.returncode:
            raise RuntimeError(f"trigger failed:\n{trigger.stdout[-2000:]}\n{trigger.stderr[-2000:]}")
        trigger_s = time.monotonic() - begin
        begin = time.monotonic()
        log(f"triggered {run_id} ({trigger_s:.1f} s): {json.dumps(conf)}")

        def finished():
            rows = query(pg, "SELECT state FROM dag_run WHERE dag_id = %s AND run_id = %s", (DAG_ID, run_id))
            return rows and rows[0][0] in ("success", "failed") and rows[0][0]

        state = wait_for(f"run {run_id}", finished, services, args.timeout, 1.0)
        wall = time.monotonic() - begin
        result["loadavg_after_run"] = os.getloadavg()
        log(f"run {run_id}: {state} in {wall:.1f} s")
        (start, end), = query(pg, "SELECT start_date, end_date FROM dag_run WHERE dag_id = %s AND run_id = %s",
                              (DAG_ID, run_id))
        plan_xcom = query(pg, "SELECT value FROM xcom WHERE dag_id = %s AND run_id = %s AND task_id = 'plan' "
                          "AND key = 'return_value'", (DAG_ID, run_id))
        shards = plan_xcom[0][0] if plan_xcom else []
        shards = json.loads(shards) if isinstance(shards, (str, bytes)) else shards
        tis = query(pg, "SELECT task_id, map_index, state, hostname, queue, try_number, start_date, end_date "
                    "FROM task_instance WHERE dag_id = %s AND run_id = %s ORDER BY start_date NULLS LAST, task_id, "
                    "map_index", (DAG_ID, run_id))
        tasks = [{"task_id": t, "map_index": m, "shard": Path(shards[m]).name if 0 <= m < len(shards) else None,
                  "state": s, "hostname": h, "queue": q, "try_number": n,
                  "start": b.isoformat() if b else None,
                  "seconds": round((e - b).total_seconds(), 1) if b and e else None}
                 for t, m, s, h, q, n, b, e in tis]
        result["dag_run"] = {"run_id": run_id, "state": state, "wall_s": round(wall, 1), "trigger_s": round(trigger_s, 1),
                             "run_s": round((end - start).total_seconds(), 1) if start and end else None,
                             "shards": len(shards), "shard_size": args.shard_size, "conf": conf}
        result["tasks"] = tasks
        result["worker_logs"] = worker_log_counts(services, list(workers))
        if state != "success":
            result["scheduler_log_tail"] = services.tail("scheduler", 60)
    except BaseException:
        for name, _ in services.procs:
            print(f"---- {name} (last lines) ----\n{services.tail(name, 30)}", file=sys.stderr)
        args.keep = True
        raise
    finally:
        result["shutdown"] = services.stop_all()
        try:
            result["shutdown"]["postgres"] = pg.stop()
        except Exception as error:  # report it, keep the results
            result["shutdown"]["postgres"] = {"error": str(error)}
    result["shutdown_clean"] = all(not v.get("killed") and not v.get("group_left") for k, v in
                                   result["shutdown"].items() if k != "postgres") and "error" not in \
        result["shutdown"].get("postgres", {})

    if result["dag_run"]["state"] == "success" and not args.no_reference:
        reference = base / "run" / "reference.duckdb"
        begin = time.monotonic()
        index = subprocess.run([str(BIN / "hippograph"), "index", str(corpus), "--db", str(reference),
                                "--config", args.config, "--json"], capture_output=True, text=True,
                               env={k: v for k, v in env.items() if not k.startswith("HIPPOGRAPH_")})
        if index.returncode:
            raise RuntimeError(f"hippograph index failed:\n{index.stderr[-3000:]}")
        result["reference"] = {"command": f"hippograph index CORPUS --db reference.duckdb --config '{args.config}'",
                               "wall_s": round(time.monotonic() - begin, 1)}
        result["loadavg_after_reference"] = os.getloadavg()
        log(f"single-process index: {result['reference']['wall_s']} s")
        result["comparison"] = compare_stores(store, reference)
        log(f"stores equal: {result['comparison']['equal']}")
    if args.keep:
        log(f"kept {base}")
    else:
        shutil.rmtree(base, ignore_errors=True)
    return result


def versions() -> dict:
    from importlib.metadata import version

    packages = ("apache-airflow", "apache-airflow-providers-celery", "celery", "redis", "psycopg2-binary", "torch",
                "hippograph")
    found = {}
    for name in packages:
        try:
            found[name] = version(name)
        except Exception:
            found[name] = None
    found["redis-server"] = command_output(["redis-server", "--version"])
    found["postgres"] = command_output(["postgres", "--version"])
    found["python"] = platform.python_version()
    found["git_commit"] = command_output(["git", "-C", str(REPO_ROOT), "rev-parse", "--short", "HEAD"])
    return found


def summary(result: dict) -> dict:
    """Per worker: the tasks it ran (by the task instances' hostname) and the busy seconds."""
    per_worker: dict[str, dict] = {}
    for task in result.get("tasks", []):
        entry = per_worker.setdefault(task["hostname"] or "(none)", {"tasks": 0, "busy_s": 0.0, "by_stage": {}})
        entry["tasks"] += 1
        entry["busy_s"] = round(entry["busy_s"] + (task["seconds"] or 0), 1)
        label = task["task_id"] if task["map_index"] < 0 else f"{task['task_id']}[{task['map_index']}]"
        entry["by_stage"].setdefault(task["task_id"], []).append(label)
    return per_worker


def logs_agree(result: dict) -> bool:
    """Each worker's own log names the same tasks, stage by stage, as the task instances' hostnames give it."""
    for name, worker in result["workers"].items():
        by_hostname: dict[str, int] = {}
        for task in result["tasks"]:
            if task["hostname"] == worker["celery_hostname"]:
                by_hostname[task["task_id"]] = by_hostname.get(task["task_id"], 0) + 1
        if by_hostname != result["worker_logs"].get(name, {}):
            return False
    return True


def write_markdown(result: dict, path: Path) -> None:
    run = result["dag_run"]
    cpu = result["cpu"]
    flags = ", ".join(cpu["flags"]) or "none of " + ", ".join(CPU_FLAGS)
    lines = [
        "# The index DAG on CeleryExecutor (`benchmarks/celery_run.py`)",
        "",
        f"{result['started']}; {cpu['model']}, {cpu['cores']} cores, flags: {flags}.",
        f"Corpus: `{result['corpus']['path']}`, {result['corpus']['documents']} documents"
        + (f" (first {result['corpus']['limit']})" if result["corpus"]["limit"] else "")
        + f"; {run['shards']} shards of up to {run['shard_size']}; config `{json.dumps(run['conf']['config'])}`.",
        f"Airflow {result['versions']['apache-airflow']}, apache-airflow-providers-celery "
        f"{result['versions']['apache-airflow-providers-celery']}, Celery {result['versions']['celery']}, "
        f"{result['versions']['redis-server'].split(' sha=')[0]}, {result['versions']['postgres']}; "
        f"hippograph at {result['versions']['git_commit']}.",
        "",
        "| | |",
        "|---|---|",
        f"| run state | **{run['state']}** |",
        f"| wall time, run triggered (`airflow dags trigger` returned) to run finished | {run['wall_s']} s |",
        f"| dag_run start to end (metadata DB) | {run['run_s']} s |",
        f"| Airflow start-up (api-server, scheduler, dag-processor, workers, DAG parsed) | {result['startup_s']} s |",
    ]
    if "reference" in result:
        lines.append(f"| single process, `hippograph index` (models loaded once) | {result['reference']['wall_s']} s |")
        lines.append(f"| stores equal (every table; vectors cosine >= {result['comparison']['min_cosine']}) | "
                     f"**{'yes' if result['comparison']['equal'] else 'NO'}** |")
    lines.append(f"| clean shutdown (every process exited on SIGTERM / pg_ctl stop) | "
                 f"{'yes' if result['shutdown_clean'] else 'no'} |")
    loads = [("before", "loadavg_before"), ("after the DAG run", "loadavg_after_run"),
             ("after the single-process index", "loadavg_after_reference")]
    lines += ["", "Load average (1, 5, 15 min) on these 2 cores, other jobs included: " + "; ".join(
        f"{label} {', '.join(f'{x:.1f}' for x in result[key])}" for label, key in loads if key in result) + "."]
    lines += ["", "Tasks per worker (task instance `hostname`; worker-1 also consumes the `store` queue). Each "
              "worker's own log names the same tasks: " + ("**yes**" if result["logs_agree"] else "**NO**") + ".", "",
              "| worker | tasks | busy s | tasks by stage | own log: workloads executed |", "|---|---|---|---|---|"]
    celery_names = {w["celery_hostname"]: name for name, w in result["workers"].items()}
    for hostname, entry in sorted(result["summary"].items()):
        name = celery_names.get(hostname, hostname)
        stages = "; ".join(f"{', '.join(v)}" for v in entry["by_stage"].values())
        own = result["worker_logs"].get(name, {})
        lines.append(f"| {name} (`{hostname}`) | {entry['tasks']} | {entry['busy_s']} | {stages} | "
                     f"{sum(own.values())} |")
    lines += ["", "| task | shard | worker | queue | state | try | s |", "|---|---|---|---|---|---|---|"]
    for t in result["tasks"]:
        label = t["task_id"] if t["map_index"] < 0 else f"{t['task_id']}[{t['map_index']}]"
        lines.append(f"| {label} | {t['shard'] or ''} | {celery_names.get(t['hostname'], t['hostname'])} | "
                     f"{t['queue']} | {t['state']} | {t['try_number']} | {t['seconds']} |")
    if "comparison" in result:
        lines += ["", "| table | rows (DAG, single process) | equal | min cosine |", "|---|---|---|---|"]
        for name, t in result["comparison"]["tables"].items():
            cosine = f"{t['min_cosine']:.6f}" if "min_cosine" in t else ""
            lines.append(f"| {name} | {', '.join(map(str, t.get('rows', [])))} | {'yes' if t['equal'] else 'NO'} | "
                         f"{cosine} |")
    lines.append("")
    path.write_text("\n".join(lines), encoding="utf-8")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--corpus", default=str(DEFAULT_CORPUS), help="a .jsonl file or a folder (default: %(default)s)")
    parser.add_argument("--limit", type=int, default=0, help="only the first N lines of a .jsonl corpus (smoke runs)")
    parser.add_argument("--shard-size", type=int, default=250, help="documents per shard (default %(default)s)")
    parser.add_argument("--workers", type=int, default=2, help="Celery workers, concurrency 1 each (default 2)")
    parser.add_argument("--config", default="{}", help="Config options as a JSON object, for both runs")
    parser.add_argument("--timeout", type=float, default=3600, help="seconds to wait for the DAG run")
    parser.add_argument("--no-reference", action="store_true", help="skip the single-process index and comparison")
    parser.add_argument("--keep", action="store_true", help="keep the temporary folder (stores, logs)")
    parser.add_argument("--render-only", action="store_true", help="rewrite <stem>.md from <stem>.json, run nothing")
    parser.add_argument("--out-stem", default=str(REPO_ROOT / "benchmarks" / "results" / "celery_run"),
                        help="write <stem>.md and <stem>.json (default %(default)s)")
    args = parser.parse_args()
    json.loads(args.config)
    for tool in ("redis-server", "initdb", "pg_ctl"):
        if shutil.which(tool) is None and not args.render_only:
            parser.error(f"{tool} not found: apt-get install redis-server postgresql")

    stem = Path(args.out_stem)
    if args.render_only:
        result = json.loads(stem.with_suffix(".json").read_text(encoding="utf-8"))
        result.update(summary=summary(result), logs_agree=logs_agree(result))
    else:
        result = run(args)
        result.update(cpu=cpu_info(), versions=versions(), summary=summary(result), logs_agree=logs_agree(result))
    stem.parent.mkdir(parents=True, exist_ok=True)
    stem.with_suffix(".json").write_text(json.dumps(result, indent=2, default=str) + "\n", encoding="utf-8")
    write_markdown(result, stem.with_suffix(".md"))
    print(stem.with_suffix(".md").read_text(encoding="utf-8"))
    ok = (result["dag_run"]["state"] == "success" and result.get("comparison", {"equal": True})["equal"]
          and result["logs_agree"])
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
