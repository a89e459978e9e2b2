"""Dispatch benchmark: simulated annotators over HTTP against gunicorn.

Starts the app under gunicorn (gthread workers holding 100 keep-alive
connections), loads live projects, and runs annotators from a separate
process, each looping next then submit over its own keep-alive connection.
Prints p50/p90/p99 latency of next and submit with the clients, think time
and offered load beside them, label cycles per second (successful first
submits), and an invariant check over the database afterwards.

    .venv/bin/python bench/dispatch.py                       # SQLite + embedded Redis
    .venv/bin/python bench/dispatch.py --database postgresql+psycopg://postgres@127.0.0.1/test \
        --redis redis://127.0.0.1:6379/14
    .venv/bin/python bench/dispatch.py --big 1000000          # and: size does not matter

Phases: a warm-up; a closed loop without think time (throughput); a paced
load where annotators pause so that together they offer --rate cycles per
second (latency), all on a project of --items items; with --big N, the paced
load once more in --rounds rounds, each on a new project of --small items and
on one of N items (the small one first in odd rounds, the big one in even
ones), with next p99 of the two compared. In the paced
phases each annotator starts at a random moment of the first think time, as
in a steady state. The projects' items are bulk-loaded (COPY on
PostgreSQL) as the import job stores them, then split by the real publish job.
"""
from __future__ import annotations

import argparse
import asyncio
import multiprocessing
import os
import random
import sys
import tempfile
import time
from pathlib import Path

import orjson
from gunicorn_server import REPO, gunicorn  # noqa: E402  (bench/ is on the path when run as a script)

try:
    import uvloop  # bench/requirements.txt
except ImportError:
    uvloop = None

sys.path.insert(0, str(REPO))

CONFIG = """<View><Text name="text" value="$text"/>
<Choices name="sentiment" toName="text" choice="single">
<Choice value="Positive"/><Choice value="Negative"/><Choice value="Neutral"/></Choices></View>"""


def prepare(args, folder: Path) -> tuple[dict, dict[str, int], list[str]]:
    """Create the schema, the live projects (name -> id) and the annotators' tokens."""
    from annotate import create_app
    from annotate.extensions import db, redis
    from annotate.models import Base
    from annotate.services import accounts, projects, teams, work

    overrides = {"INSTANCE_PATH": str(folder), "FAST_PASSWORD_HASH": True,
                 "DATABASE_URL": args.database or f"sqlite:///{folder / 'bench.db'}"}
    if args.redis:
        overrides["REDIS_URL"] = args.redis
    app = create_app(overrides, check_services=False)
    with app.app_context():
        Base.metadata.drop_all(db.engine)
        Base.metadata.create_all(db.engine)
        redis.client.flushdb()
        operator = accounts.create_user("op@bench.org", "Op", "benchmark pw", roles=("operator",))
        team = teams.create_team(operator, "Bench")
        accounts.create_user("req@bench.org", "Req", "benchmark pw")
        requester = teams.add_member(operator, team, "req@bench.org")
        sizes = {"load": args.items}
        if args.big:
            sizes.update({f"small {i + 1}": args.small for i in range(args.rounds)}, big=args.big)
        project_ids = {}
        for name, count in sizes.items():
            started = time.perf_counter()
            project_id = projects.create_project(requester, team, {
                "title": f"bench {name}", "label_config": CONFIG, "overlap": 3, "items_per_micro_task": 10,
                "pay_per_micro_task": 50, "estimated_seconds_per_micro_task": 60, "lease_seconds": 900})
            load_items(project_id, count)
            loaded = time.perf_counter()
            work.publish_project(requester, project_id)
            run_jobs()
            print(f"project '{name}': {count:,} items loaded in {loaded - started:.1f} s, "
                  f"split and queued in {time.perf_counter() - loaded:.1f} s", flush=True)
            project_ids[name] = project_id
        # What the first request for work would do on a fresh Redis, done before the clock starts.
        work.ensure_dispatch_state(wait_seconds=600)
        keys = []
        for i in range(args.annotators):
            user = accounts.create_user(f"a{i}@bench.org", f"A{i}", "benchmark pw")
            keys.append(accounts.create_token(user, "bench").key)
        settings = {"DATABASE_URL": app.config["DATABASE_URL"], "REDIS_URL": redis.url}
        flush_to_disk(db.engine)
    return settings, project_ids, keys


def flush_to_disk(engine) -> None:
    """Write the bulk load out before the clock starts (PostgreSQL's CHECKPOINT, SQLite's log
    copied back), so that no phase measures the disk catching up with the set-up."""
    import sqlalchemy as sa

    started = time.perf_counter()
    with engine.connect() as connection:
        if engine.dialect.name == "postgresql":
            connection.execute(sa.text("CHECKPOINT"))
        else:
            connection.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")
    os.sync()
    print(f"set-up written to disk in {time.perf_counter() - started:.1f} s", flush=True)


def load_items(project_id: int, count: int) -> None:
    """Store `count` text items as the import job would (bench/ingest.py measures that job),
    with the driver's bulk path: COPY on PostgreSQL, executemany on SQLite."""
    from annotate.extensions import db
    from annotate.models import utcnow
    from annotate.models.base import UTCDateTime
    from annotate.services.ingest import canonical, content_hash

    with db.transaction() as session:
        connection = session.connection()
        dialect = connection.dialect
        process = UTCDateTime().dialect_impl(dialect).bind_processor(dialect)
        now = process(utcnow()) if process else utcnow()
        for start in range(0, count, 50_000):
            rows = []
            for i in range(start, min(count, start + 50_000)):
                data = {"text": f"item {i} " + "word " * 12}
                rows.append((project_id, canonical(data), content_hash(data), False, now))
            if dialect.name == "postgresql":
                driver = connection.connection.driver_connection
                with driver.cursor() as cursor, cursor.copy(
                        "COPY item (project_id, data, content_hash, is_gold, created_at) FROM STDIN") as copy:
                    for row in rows:
                        copy.write_row(row)
            else:
                connection.exec_driver_sql("INSERT INTO item (project_id, data, content_hash, is_gold, created_at) "
                                           "VALUES (?, ?, ?, ?, ?)", rows)


def run_jobs() -> None:
    from rq import SimpleWorker

    from annotate.queue import queue

    q = queue()
    SimpleWorker([q], connection=q.connection).work(burst=True)


# --- the load generator (a separate process) -------------------------------------


class Connection:
    """One keep-alive HTTP/1.1 connection, as a browser tab would hold."""

    def __init__(self, port: int, key: str):
        self.port, self.key = port, key
        self.reader = self.writer = None

    async def open(self) -> None:
        self.reader, self.writer = await asyncio.open_connection("127.0.0.1", self.port)

    async def post(self, path: str, body: bytes = b"") -> tuple[int, bytes]:
        self.writer.write(
            f"POST {path} HTTP/1.1\r\nHost: bench\r\nAuthorization: Token {self.key}\r\n"
            f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\nConnection: keep-alive\r\n\r\n".encode()
            + body)
        await self.writer.drain()
        head = await self.reader.readuntil(b"\r\n\r\n")
        status = int(head.split(b" ", 2)[1])
        length = 0
        for line in head.split(b"\r\n"):
            if line.lower().startswith(b"content-length:"):
                length = int(line.split(b":")[1])
        payload = await self.reader.readexactly(length) if length else b""
        return status, payload


async def annotator(port: int, key: str, project: int, stop_at: float, think: float, out: dict) -> None:
    rng = random.Random(key)
    if think:
        # Start at a random moment of the first think time, as in a steady state: 100 clients
        # that all ask at once measure a burst of 100 requests, not the offered rate. Connect
        # then, not before: gthread gives a new connection a thread that waits for its request.
        await asyncio.sleep(rng.uniform(0, think))
    conn = Connection(port, key)
    await conn.open()
    while time.perf_counter() < stop_at:
        started = time.perf_counter()
        status, payload = await conn.post(f"/api/work/next?project={project}")
        out["next"].append(time.perf_counter() - started)
        if status == 204:
            out["empty"] += 1
            await asyncio.sleep(0.2)
            continue
        if status != 200:
            out["errors"].append(f"next {status} {payload[:200]!r}")
            await asyncio.sleep(0.2)
            continue
        work = orjson.loads(payload)
        body = orjson.dumps({"annotations": [
            {"item_id": item["id"], "seconds": 2.0, "result": [{"from_name": "sentiment", "to_name": "text",
             "type": "choices", "value": {"choices": [rng.choice(["Positive", "Negative"])]}}]}
            for item in work["items"]]})
        if think:
            await asyncio.sleep(rng.uniform(0.5, 1.5) * think)
        started = time.perf_counter()
        status, payload = await conn.post(f"/api/work/{work['assignment_id']}/submit", body)
        out["submit"].append(time.perf_counter() - started)
        if status == 200:
            out["cycles"] += 1
        else:
            out["errors"].append(f"submit {status} {payload[:200]!r}")


def load(port: int, keys: list[str], project: int, seconds: float, think: float, queue) -> None:
    out = {"next": [], "submit": [], "cycles": 0, "empty": 0, "errors": []}

    async def main() -> None:
        stop_at = time.perf_counter() + seconds
        await asyncio.gather(*(annotator(port, key, project, stop_at, think, out) for key in keys))

    started, cpu = time.perf_counter(), time.process_time()
    if uvloop is not None:  # the load generator shares the 2 cores: the cheaper it is, the more is measured
        uvloop.run(main())
    else:
        asyncio.run(main())
    out["elapsed"], out["cpu"] = time.perf_counter() - started, time.process_time() - cpu
    queue.put(out)


def pct(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1000


SERVICE_GUESS = 0.01  # seconds of next + submit that the think time leaves room for


def run_phase(label: str, port: int, keys: list[str], project: int, seconds: float, think: float,
              show: bool = True) -> dict:
    """Run the annotators for `seconds` from a process of their own; print what they saw."""
    queue = multiprocessing.Queue()
    proc = multiprocessing.Process(target=load, args=(port, keys, project, seconds, think, queue))
    cpu_before = port.cpu_seconds() if hasattr(port, "cpu_seconds") else None
    proc.start()
    out = queue.get()
    proc.join()
    out["server_cpu"] = port.cpu_seconds() - cpu_before if cpu_before is not None else None
    if show:
        report(label, keys, think, out)
    return out


def merged(outs: list[dict]) -> dict:
    """The phases of several rounds as one."""
    out = {"next": [], "submit": [], "errors": []}
    for part in outs:
        for key in ("next", "submit", "errors"):
            out[key].extend(part[key])
    for key in ("cycles", "empty", "elapsed", "cpu"):
        out[key] = sum(part[key] for part in outs)
    cpus = [part["server_cpu"] for part in outs]
    out["server_cpu"] = None if None in cpus else sum(cpus)
    return out


def alternating(port: int, keys: list[str], pairs: list[tuple[int, int]], seconds: float,
                think: float) -> tuple[dict, dict]:
    """Paced phases on two projects, a pair a round, in the order ABBA...: whichever runs first
    after a change of project has the worse p99. Returns each side's rounds as one."""
    rounds: tuple[list, list] = ([], [])
    for i, pair in enumerate(pairs):
        for side in ((0, 1) if i % 2 == 0 else (1, 0)):
            rounds[side].append(run_phase("", port, keys, pair[side], seconds, think, show=False))
    return merged(rounds[0]), merged(rounds[1])


def report(label: str, keys: list[str], think: float, out: dict) -> None:
    rate = out["cycles"] / out["elapsed"]
    offered = ("closed loop, no think time" if not think else
               f"think {think * 1000:.0f} ms ±50%, offering {len(keys) / (think + SERVICE_GUESS):.0f} cycles/s")
    print(f"\n{label}: {len(keys)} annotators, {offered}, {out['elapsed']:.1f} s", flush=True)
    print(f"  label cycles/s (successful first submits): {rate:,.1f}")
    print(f"  next   p50 {pct(out['next'], .5):7.1f} ms  p90 {pct(out['next'], .9):7.1f} ms  "
          f"p99 {pct(out['next'], .99):7.1f} ms  ({len(out['next'])} requests, {out['empty']} empty)")
    print(f"  submit p50 {pct(out['submit'], .5):7.1f} ms  p90 {pct(out['submit'], .9):7.1f} ms  "
          f"p99 {pct(out['submit'], .99):7.1f} ms  ({len(out['submit'])} requests)")
    if out["server_cpu"] is not None and out["cycles"]:
        # CPU time, unlike wall time, hardly depends on what else the shared machine runs.
        server = out["server_cpu"] / out["cycles"] * 1000
        client = out["cpu"] / out["cycles"] * 1000
        print(f"  CPU per label cycle: gunicorn {server:.2f} ms, load generator {client:.2f} ms "
              f"(Redis and the database server not counted)")
    if out["errors"]:
        print(f"  errors: {len(out['errors'])}, first: {out['errors'][0]}")
    out["rate"] = rate


def load_average() -> str:
    return "load average " + " ".join(f"{x:.2f}" for x in os.getloadavg())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--database")
    parser.add_argument("--redis")
    parser.add_argument("--items", type=int, default=100_000,
                        help="items of the project the throughput and latency phases use (enough not to run out)")
    parser.add_argument("--big", type=int, default=0, help="also compare next p99 on a project of this many items")
    parser.add_argument("--small", type=int, default=10_000, help="the project --big is compared with")
    parser.add_argument("--rounds", type=int, default=4,
                        help="with --big, rounds of the comparison: a new small project and the big one")
    parser.add_argument("--annotators", type=int, default=100)
    parser.add_argument("--seconds", type=float, default=20)
    parser.add_argument("--rate", type=float, default=300, help="offered cycles/s in the paced phases")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--worker-class", default="gthread")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        t0 = time.perf_counter()
        print(f"dispatch benchmark on {'PostgreSQL' if args.database else 'SQLite'} with "
              f"{'a Redis server' if args.redis else 'embedded Redis'}; micro-tasks of 10 items, overlap 3; "
              f"{load_average()} before", flush=True)
        settings, projects, keys = prepare(args, folder)
        print(f"prepared in {time.perf_counter() - t0:.1f} s; gunicorn {args.workers} workers x {args.threads} "
              f"threads ({args.worker_class}); {os.cpu_count()} cores in all, load generator included "
              f"(on {'uvloop' if uvloop else 'asyncio'})", flush=True)
        think = max(0.0, args.annotators / args.rate - SERVICE_GUESS)
        with gunicorn(settings, folder, args.workers, args.threads, args.worker_class) as port:
            time.sleep(1)
            # Warm every worker thread up (imports, connection pools, compiled statements) before measuring.
            run_phase("warm-up (not counted)", port, keys, projects["load"], 5, think=0.0)
            run_phase(f"throughput, {args.items:,} items", port, keys, projects["load"], args.seconds, think=0.0)
            run_phase(f"latency at a stated load, {args.items:,} items", port, keys, projects["load"],
                      args.seconds, think=think)
            print(f"  ({load_average()})")
            if args.big:
                # Rounds that alternate a fresh small project with the big one, so that both see the
                # same machine; each round lasts as long as a small project's slots do at the
                # offered rate, with room to spare.
                seconds = min(args.seconds, 0.8 * args.small * 3 / 10 / args.rate)
                small, big = alternating(port, keys, [(projects[f"small {i + 1}"], projects["big"])
                                                      for i in range(args.rounds)], seconds, think)
                report(f"size: {args.small:,} items ({args.rounds} projects, one a round)", keys, think, small)
                report(f"size: {args.big:,} items ({args.rounds} rounds, alternating with the small ones)",
                       keys, think, big)
                print(f"\n  next p99 with {args.big:,} items / with {args.small:,}: "
                      f"{pct(big['next'], .99) / pct(small['next'], .99):.2f} (target at most 1.5)  ({load_average()})")
        from annotate import create_app
        from annotate.services.integrity import violations

        app = create_app({"INSTANCE_PATH": str(folder), **settings}, check_services=False)
        with app.app_context():
            found = violations()
        print(f"\ninvariant check over the database: {len(found)} violations" + (f": {found[:3]}" if found else ""))


if __name__ == "__main__":
    main()
