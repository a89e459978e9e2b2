"""Matching benchmark: `next` without a project over many filtered projects.

Loads --projects live projects with different filters (required languages,
content categories, skill minimums, a 10% share cap on some, priorities,
pay, deadlines on a fifth of them, EUR or GBP pay on a fifth, ranked at the
operators' exchange rates) and --annotators annotators with random profiles and skill levels,
rebuilds the dispatch state from SQL, then:

1. next p99 over HTTP against gunicorn, paced like bench/dispatch.py: --clients
   annotators (drawn from all of them) loop next then submit with a think
   time so that together they offer --rate cycles/s; once with `next` without
   a project (matching over every live project), once with `?project=` on
   one project without filters (the single-project path), same clients,
   same think time, alternating in --rounds rounds (ABBA: matching first in
   odd rounds, the single project first in even ones), after a warm-up of
   each. Each line says the clients, think time and offered rate.
2. The time `skills.recompute_levels()` takes for everyone after a
   project-wide re-estimation (every AnnotatorScore of one project changed).
3. On a simulated day, in-process through the services: the share of the
   micro-tasks that went to the top 10% of annotators, on one project without
   a cap and on one with a 10% cap, with annotators whose activity is skewed.

    .venv/bin/python bench/matching.py                     # SQLite + embedded Redis
    createdb -h 127.0.0.1 -U postgres bench
    .venv/bin/python bench/matching.py --database postgresql+psycopg://postgres@127.0.0.1/bench \
        --redis redis://127.0.0.1:6379/14
    .venv/bin/python bench/matching.py --only skills --items 20 --plain-items 100   # the recompute alone

`--only` runs some of the phases (load, refresh, skills, day) after the set-up.
The recompute prints its CPU seconds beside the wall-clock time: this process's
and, on a PostgreSQL server on this machine, those of the server processes
serving the database. `BENCH_PROFILE=<file>` writes a cProfile of the second
recompute. Prints figures; asserts nothing about time.
"""
from __future__ import annotations

import argparse
import datetime as dt
import io
import json
import os
import random
import sys
import tempfile
import time
from pathlib import Path

from gunicorn_server import REPO, gunicorn  # noqa: E402  (bench/ is on the path when run as a script)

sys.path.insert(0, str(REPO))

from cpu import cpu_seconds  # noqa: E402
from dispatch import CONFIG, alternating, flush_to_disk, pct, report, run_jobs, run_phase  # noqa: E402

LANGUAGES = ["en", "de", "fr", "es", "it", "pt", "nl", "pl"]
EXCHANGE_RATES = {"EUR": "1.08", "GBP": "1.27"}  # RANKING_EXCHANGE_RATES of the benchmark's app and server
CATEGORIES = ["violence", "adult", "medical"]
PHASES = ("load", "refresh", "skills", "day")


def _bulk_annotators(session, n: int, skill_ids: list[int], rng: random.Random) -> list[int]:
    """n annotators with random profiles and levels, inserted set-wise (creating them one by one
    through accounts.create_user would time password hashing, not matching)."""
    import sqlalchemy as sa

    from annotate.models import Profile, SkillLevel, User, utcnow

    now = utcnow()
    start = session.scalar(sa.select(sa.func.coalesce(sa.func.max(User.id), 0))) + 1
    ids = list(range(start, start + n))
    session.execute(sa.insert(User), [{"id": i, "email": f"m{i}@bench.org", "name": f"M{i}", "password_hash": "x",
                                       "is_annotator": True, "is_requester": False, "is_operator": False,
                                       "failed_logins": 0, "created_at": now} for i in ids])
    profiles, levels = [], []
    for i in ids:
        langs = ["en"] + rng.sample(LANGUAGES[1:], rng.choice([0, 1, 1, 2, 3]))
        out = rng.sample(CATEGORIES, rng.choice([0, 0, 0, 1, 2]))
        profiles.append({"user_id": i, "languages": [{"code": c, "level": "fluent"} for c in langs],
                         "opted_out_categories": out, "liked_kinds": [], "updated_at": now})
        for skill in rng.sample(skill_ids, rng.randint(0, len(skill_ids))):
            levels.append({"annotator_id": i, "skill_id": skill, "level": rng.randint(10, 95), "confidence": 0.5,
                           "evidence": {}, "updated_at": now})
    session.execute(sa.insert(Profile), profiles)
    if levels:
        session.execute(sa.insert(SkillLevel), levels)
    if session.get_bind().dialect.name == "postgresql":
        session.execute(sa.text("SELECT setval(pg_get_serial_sequence('\"user\"', 'id'), "
                                "(SELECT max(id) FROM \"user\"))"))
    return ids


def _project(requester: int, team: int, title: str, items: int, settings: dict) -> int:
    from annotate.services import ingest, projects, work

    project_id = projects.create_project(requester, team, {
        "title": title, "label_config": CONFIG, "overlap": 3, "items_per_micro_task": 10, "lease_seconds": 900,
        **settings})
    lines = "".join(json.dumps({"text": f"{title} item {i} " + "word " * 12}) + "\n" for i in range(items))
    ingest.start_import(requester, project_id, [("items.jsonl", io.BytesIO(lines.encode()))])
    run_jobs()
    work.publish_project(requester, project_id)
    return project_id


def prepare(args, folder: Path):
    from annotate import create_app
    from annotate.extensions import db, redis
    from annotate.models import Base
    from annotate.services import accounts, skills, teams, work

    overrides = {"INSTANCE_PATH": str(folder), "FAST_PASSWORD_HASH": True,
                 "DATABASE_URL": args.database or f"sqlite:///{folder / 'bench.db'}",
                 "RANKING_EXCHANGE_RATES": EXCHANGE_RATES}
    if args.redis:
        overrides["REDIS_URL"] = args.redis
    app = create_app(overrides, check_services=False)
    rng = random.Random(13)
    with app.app_context():
        Base.metadata.drop_all(db.engine)
        Base.metadata.create_all(db.engine)
        redis.client.flushdb()
        operator = accounts.create_user("op@bench.org", "Op", "benchmark pw", roles=("operator",))
        team = teams.create_team(operator, "Bench")
        accounts.create_user("req@bench.org", "Req", "benchmark pw")
        requester = teams.add_member(operator, team, "req@bench.org")
        skill_ids = [skills.create_skill(operator, f"Skill {i}").id for i in range(10)]
        t0 = time.perf_counter()
        filters = {"languages": 0, "categories": 0, "skills": 0, "capped": 0, "deadlines": 0, "currencies": 0}
        plain = _project(requester, team, "plain", args.plain_items, {"pay_per_micro_task": 50,
                                                                "estimated_seconds_per_micro_task": 60})
        for i in range(args.projects - 1):
            estimate = rng.choice([30, 60, 90, 120])
            settings = {"pay_per_micro_task": (estimate * 1200 + 3599) // 3600 + rng.randint(0, 150),
                        "estimated_seconds_per_micro_task": estimate, "priority": rng.choice([0, 0, 0, 0, 1])}
            if rng.random() < 0.4:
                settings["required_languages"] = rng.sample(LANGUAGES, rng.choice([1, 1, 2]))
                filters["languages"] += 1
            if rng.random() < 0.3:
                settings["content_categories"] = [rng.choice(CATEGORIES)]
                filters["categories"] += 1
            if rng.random() < 0.3:
                settings["max_share_per_annotator"] = 0.1
                filters["capped"] += 1
            if rng.random() < 0.2:  # from 2 hours to 3 days away: some rank as due soon
                settings["deadline"] = (dt.datetime.now(dt.UTC) + dt.timedelta(hours=rng.uniform(2, 72))).isoformat()
                filters["deadlines"] += 1
            if rng.random() < 0.2:
                settings["currency"] = rng.choice(["EUR", "GBP"])
                filters["currencies"] += 1
            project_id = _project(requester, team, f"p{i}", args.items, settings)
            if rng.random() < 0.5:
                asked = rng.sample(skill_ids, rng.choice([1, 1, 2]))
                skills.set_project_skills(requester, project_id,
                                          [{"skill_id": s, "min_level": rng.choice([20, 40, 60, 80])} for s in asked])
                filters["skills"] += 1
        run_jobs()
        made = time.perf_counter() - t0
        with db.transaction() as session:
            annotator_ids = _bulk_annotators(session, args.annotators, skill_ids, rng)
        t0 = time.perf_counter()
        counts = work.rebuild()
        rebuilt = time.perf_counter() - t0
        clients = rng.sample(annotator_ids, args.clients)
        keys = [accounts.create_token(a, "bench").key for a in clients]
        settings = {"DATABASE_URL": app.config["DATABASE_URL"], "REDIS_URL": redis.url,
                    "RANKING_EXCHANGE_RATES": ",".join(f"{c}:{r}" for c, r in EXCHANGE_RATES.items())}
    print(f"{args.projects} live projects of {args.items:,} items made in {made:.1f} s; filters: "
          f"{filters['languages']} with languages, {filters['categories']} with a content category, "
          f"{filters['skills']} with skill minimums, {filters['capped']} with a 10% cap, "
          f"{filters['deadlines']} with a deadline, {filters['currencies']} paid in EUR or GBP; "
          f"{args.annotators:,} annotators; rebuild from SQL {rebuilt:.1f} s ({counts})")
    return app, settings, plain, keys, annotator_ids, operator, requester, team


def refresh_cost(app) -> None:
    """What the score job's matching hook costs: the project's rate and its annotators' pace."""
    import sqlalchemy as sa

    from annotate.extensions import db
    from annotate.models import MicroTask
    from annotate.services import scoring, work

    with app.app_context():
        done = list(db.session.scalars(sa.select(MicroTask.id).where(MicroTask.status == "done").limit(200)))
        db.session.rollback()
        t0 = time.perf_counter()
        for mt in done:  # what the queued score jobs would do first, so there is scored work to measure pace on
            scoring.score_micro_task(mt)
        scored = (time.perf_counter() - t0) / max(len(done), 1)
        t0 = time.perf_counter()
        for mt in done:
            work.refresh_matching(mt)
        per = (time.perf_counter() - t0) / max(len(done), 1)
        t0 = time.perf_counter()
        everyone = work.refresh_matching()
        full = time.perf_counter() - t0
    print(f"\nmatching refresh after scoring: {per * 1000:.1f} ms per micro-task (mean of {len(done)}; scoring "
          f"itself took {scored * 1000:.1f} ms each); every live project and annotator: {full:.2f} s ({everyone})")


def _server_pids(session) -> list[int]:
    """PostgreSQL server processes serving this database, when they run on this machine."""
    import sqlalchemy as sa

    if session.get_bind().dialect.name != "postgresql":
        return []
    pids = session.scalars(sa.text("SELECT pid FROM pg_stat_activity WHERE datname = current_database()")).all()
    return [pid for pid in pids if Path(f"/proc/{pid}").exists()]


def _timed(label: str, call, profile: str | None = None):
    """Run `call`, print its wall-clock and CPU seconds (this process, and the database server's)."""
    from annotate.extensions import db

    pids = _server_pids(db.session)
    db.session.rollback()
    server = {pid: cpu_seconds(pid) for pid in pids}
    t0, c0 = time.perf_counter(), time.process_time()
    if profile:
        import cProfile

        profiler = cProfile.Profile()
        result = profiler.runcall(call)
        profiler.dump_stats(profile)
    else:
        result = call()
    wall, cpu = time.perf_counter() - t0, time.process_time() - c0
    spent = f"{cpu:.2f} s CPU here"
    if pids:
        spent += f", {sum(cpu_seconds(pid) - before for pid, before in server.items()):.2f} s in PostgreSQL"
    print(f"  {label}: {wall:.2f} s ({spent}; {result})")


def recompute_after_reestimation(app, annotator_ids: list[int], project_id: int, rng: random.Random) -> None:
    """AnnotatorScores for everyone on a few projects, then one project's all change (what
    reestimate_project does), then the time of recomputing every level."""
    import sqlalchemy as sa

    from annotate.extensions import db
    from annotate.models import AnnotatorScore, Project, utcnow
    from annotate.services import skills

    with app.app_context():
        project_ids = list(db.session.scalars(sa.select(Project.id).where(Project.status == "live")))
        now = utcnow()
        rows = []
        for a in annotator_ids:
            for p in rng.sample(project_ids, 3) + ([project_id] if rng.random() < 0.5 else []):
                total = rng.randint(0, 20)
                n_items = total + rng.randint(0, 200)
                rows.append({"annotator_id": a, "project_id": p, "quality": rng.random(), "agreement": rng.random(),
                             "gold_right": rng.randint(0, total), "gold_total": total, "n_items": n_items,
                             "details": {}, "updated_at": now})
        scored = set(db.session.execute(sa.select(AnnotatorScore.annotator_id, AnnotatorScore.project_id)).all())
        unique = {(r["annotator_id"], r["project_id"]): r for r in rows
                  if (r["annotator_id"], r["project_id"]) not in scored}
        with db.transaction() as session:
            session.execute(sa.insert(AnnotatorScore), list(unique.values()))
        print(f"\nskill levels: {len(unique):,} annotator scores over {len(project_ids)} projects")
        _timed("recompute_levels() for everyone, first time", skills.recompute_levels)
        with db.transaction() as session:  # the project-wide re-estimation moves everyone's agreement there
            session.execute(sa.update(AnnotatorScore).where(AnnotatorScore.project_id == project_id)
                            .values(agreement=AnnotatorScore.agreement * 0.8))
        _timed("recompute_levels() for everyone after re-estimating one project", skills.recompute_levels,
               os.environ.get("BENCH_PROFILE"))


def simulated_day(app, requester: int, team: int, rng: random.Random, annotators: int = 100,
                  micro_tasks: int = 200) -> None:
    """Skewed activity (Pareto weights) on one project, without and with a 10% cap, in-process."""
    import sqlalchemy as sa

    from annotate.extensions import db
    from annotate.models import Assignment
    from annotate.queue import queue
    from annotate.services import accounts, work

    def choice(label: str) -> list[dict]:
        return [{"from_name": "sentiment", "to_name": "text", "type": "choices", "value": {"choices": [label]}}]

    with app.app_context():
        people = [accounts.create_user(f"day{i}@bench.org", f"D{i}", "benchmark pw") for i in range(annotators)]
        weights = [rng.paretovariate(1.2) for _ in people]
        for cap in (None, 0.1):
            settings = {"pay_per_micro_task": 50, "estimated_seconds_per_micro_task": 60, "overlap": 1}
            if cap:
                settings["max_share_per_annotator"] = cap
            # Score jobs queued by the load (and by the day before) are not part of the day: only the split runs.
            queue().empty()
            project_id = _project(requester, team, f"day cap={cap}", micro_tasks * 10, settings)
            run_jobs()
            done, asks = 0, 0
            while done < micro_tasks and asks < micro_tasks * 50:
                asks += 1
                who = rng.choices(people, weights)[0]
                got = work.next_assignment(who, project_id)
                db.session.rollback()
                if got is None:
                    continue
                work.submit(who, got["assignment_id"], [{"item_id": i["id"], "result": choice("Positive"),
                                                         "seconds": 2.0} for i in got["items"]])
                db.session.rollback()
                done += 1
            counts = sorted((n for _a, n in db.session.execute(
                sa.select(Assignment.annotator_id, sa.func.count()).where(
                    Assignment.project_id == project_id, Assignment.status == "submitted")
                .group_by(Assignment.annotator_id))), reverse=True)
            db.session.rollback()
            top = sum(counts[:annotators // 10])
            print(f"  {'with a 10% cap' if cap else 'without a cap '}: {done} micro-tasks to {len(counts)} of "
                  f"{annotators} annotators; top 10% took {top / max(done, 1):.0%}, the busiest "
                  f"{counts[0] / max(done, 1):.0%} ({asks} requests)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--database")
    parser.add_argument("--redis")
    parser.add_argument("--projects", type=int, default=100)
    parser.add_argument("--items", type=int, default=1000, help="items per project (micro-tasks of 10, overlap 3)")
    parser.add_argument("--plain-items", type=int, default=30_000,
                        help="items of the filter-free project the single-project phase works on")
    parser.add_argument("--annotators", type=int, default=10_000)
    parser.add_argument("--clients", type=int, default=100, help="annotators working over HTTP during the load")
    parser.add_argument("--seconds", type=float, default=20)
    parser.add_argument("--rate", type=float, default=300, help="offered cycles/s (bench/dispatch.py's default)")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--rounds", type=int, default=2, help="rounds that alternate matching and the single project")
    parser.add_argument("--only", default=",".join(PHASES),
                        help=f"the phases to run after the set-up, comma-separated ({', '.join(PHASES)})")
    args = parser.parse_args()
    only = [p.strip() for p in args.only.split(",") if p.strip()]
    unknown = [p for p in only if p not in PHASES]
    if unknown:
        parser.error(f"--only: {', '.join(unknown)} is not a phase; the phases are {', '.join(PHASES)}")
    rng = random.Random(7)
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        print(f"matching benchmark on {'PostgreSQL' if args.database else 'SQLite'} with "
              f"{'a Redis server' if args.redis else 'embedded Redis'}; gunicorn {args.workers} workers x "
              f"{args.threads} threads; {os.cpu_count()} cores in all (shared with other work: figures are noisy)")
        app, settings, plain, keys, annotator_ids, operator, requester, team = prepare(args, folder)
        with app.app_context():
            from annotate.extensions import db

            flush_to_disk(db.engine)
        if "load" in only:
            think = max(0.0, args.clients / args.rate - 0.01)
            with gunicorn(settings, folder, args.workers, args.threads) as port:
                time.sleep(1)
                run_phase("warm-up (not counted)", port, keys, 0, 5, think=think)
                run_phase("warm-up, single project (not counted)", port, keys, plain, 5, think=think)
                # Rounds that alternate the two, so that both see the same machine (on PostgreSQL
                # the first write to each page after the set-up's checkpoint logs the whole page).
                matched, single = alternating(port, keys, [(0, plain)] * args.rounds, args.seconds / args.rounds,
                                              think)
                report(f"next without a project, matching over {args.projects} projects ({args.rounds} rounds)",
                       keys, think, matched)
                report(f"next?project={plain} (single-project path, same clients, alternating with those rounds)",
                       keys, think, single)
                print(f"\n  next p99 matching / single project: "
                      f"{pct(matched['next'], .99) / pct(single['next'], .99):.2f} (target at most 1.5)")
        if "refresh" in only:
            refresh_cost(app)
        if "skills" in only:
            recompute_after_reestimation(app, annotator_ids, plain, rng)
        if "day" in only:
            print("\na simulated day on one project, 100 annotators with Pareto(1.2) activity:")
            simulated_day(app, requester, team, rng)


if __name__ == "__main__":
    main()
