"""Workbench benchmark: the labeling page in Chromium against gunicorn.

Loads a live text-classification project (the ready config, hotkeys 1-3),
serves the app under gunicorn, signs an annotator in with Playwright driving
Debian's chromium, and labels --micro-tasks micro-tasks with the keyboard:
a hotkey per item, Ctrl+Enter to the next item, a click on "Submit
micro-task" on the last one. Prints, over the micro-tasks after the warm-up:

- the time from pressing submit to the next micro-task's first item being
  ready for input (painted), median and p95, and its parts: the submit
  request, the next request, and rendering in Label Studio; measured in the
  page (window.workbench.switches, performance.now());
- the bytes the page transferred on its first load with an empty cache, and
  on a reload (the browser revalidates static files: 304s).

    .venv/bin/python bench/workbench.py
    .venv/bin/python bench/workbench.py --micro-tasks 50 --items 5
    .venv/bin/python bench/workbench.py --database postgresql+psycopg://... --redis redis://...
"""
from __future__ import annotations

import argparse
import io
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

from gunicorn_server import REPO, gunicorn  # noqa: E402  (bench/ is on the path when run as a script)

sys.path.insert(0, str(REPO))

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--disable-quic"]
PASSWORD = "benchmark pw"
WARM_UP = 3


def run_jobs() -> None:
    from rq import SimpleWorker

    from annotate.queue import queue

    q = queue()
    SimpleWorker([q], connection=q.connection).work(burst=True)


def prepare(args, folder: Path) -> tuple[dict, int]:
    """The schema, a live project with enough micro-tasks, and an annotator."""
    from annotate import create_app
    from annotate.extensions import db, redis
    from annotate.labelconfig import TEMPLATES
    from annotate.models import Base
    from annotate.services import accounts, ingest, projects, teams, work

    overrides = {"INSTANCE_PATH": str(folder), "FAST_PASSWORD_HASH": True,
                 "DATABASE_URL": args.database or f"sqlite:///{folder / 'bench.db'}"}
    if args.redis:
        overrides["REDIS_URL"] = args.redis
    app = create_app(overrides, check_services=False)
    with app.app_context():
        Base.metadata.drop_all(db.engine)
        Base.metadata.create_all(db.engine)
        redis.client.flushdb()
        operator = accounts.create_user("op@bench.org", "Op", PASSWORD, roles=("operator",))
        team = teams.create_team(operator, "Bench")
        accounts.create_user("req@bench.org", "Req", PASSWORD)
        requester = teams.add_member(operator, team, "req@bench.org")
        project_id = projects.create_project(requester, team, {
            "title": "Reviews", "label_config": TEMPLATES["text_classification"].xml, "overlap": 1,
            "items_per_micro_task": args.items, "pay_per_micro_task": 50, "estimated_seconds_per_micro_task": 60,
            "lease_seconds": 900, "instructions": "Pick the **tone** of each review."})
        n = (args.micro_tasks + WARM_UP + 2) * args.items
        lines = "".join(json.dumps({"text": f"Review {i}: the parcel came on time and the product works well."})
                        + "\n" for i in range(n))
        ingest.start_import(requester, project_id, [("items.jsonl", io.BytesIO(lines.encode()))])
        run_jobs()
        work.publish_project(requester, project_id)
        run_jobs()
        accounts.create_user("annotator@bench.org", "Annotator", PASSWORD)
        settings = {"DATABASE_URL": app.config["DATABASE_URL"], "REDIS_URL": redis.url}
    return settings, project_id


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def transferred(page) -> dict[str, int]:
    """Bytes over the wire for the document and everything it loaded (Resource Timing)."""
    return page.evaluate("""() => {
      const entries = [...performance.getEntriesByType('navigation'), ...performance.getEntriesByType('resource')];
      const out = {total: 0, encoded: 0, count: entries.length, label_studio_js: 0};
      for (const e of entries) {
        out.total += e.transferSize; out.encoded += e.encodedBodySize;
        if (e.name.includes('label-studio') && e.name.endsWith('.js')) out.label_studio_js += e.transferSize;
      }
      return out;
    }""")


def label(page, args, base: str, project_id: int) -> None:
    page.goto(f"{base}/login")
    page.fill("input[name=email]", "annotator@bench.org")
    page.fill("input[name=password]", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url(f"{base}/")

    page.goto(f"{base}/work?project={project_id}")
    page.wait_for_function("window.workbench && window.workbench.ready", timeout=30_000)
    first = transferred(page)
    page.reload()
    page.wait_for_function("window.workbench && window.workbench.ready", timeout=30_000)
    again = transferred(page)
    page.evaluate("window.benchMarker = 'no page load since'")

    total = args.micro_tasks + WARM_UP
    for done in range(total):
        for i in range(args.items):
            page.keyboard.press(str(1 + (done + i) % 3))
            if i < args.items - 1:
                page.keyboard.press("Control+Enter")
        page.click("#wb-next")  # "Submit micro-task"
        page.wait_for_function(f"window.workbench.switches.length >= {done + 1}", timeout=30_000)
    assert page.evaluate("window.benchMarker") == "no page load since", "the page reloaded between micro-tasks"
    switches = page.evaluate("window.workbench.switches")[WARM_UP:]
    parts = {k: [s[k] for s in switches] for k in ("total", "submit", "next", "render")}

    print(f"\nsubmit -> next micro-task ready for input, over {len(switches)} micro-tasks "
          f"of {args.items} items (after {WARM_UP} not counted):")
    print(f"  median {statistics.median(parts['total']):6.1f} ms   p95 {pct(parts['total'], .95):6.1f} ms   "
          f"(target: median <= 150 ms)")
    for name, words in (("submit", "submit request"), ("next", "next request"), ("render", "render in Label Studio")):
        print(f"  {words:<24} median {statistics.median(parts[name]):6.1f} ms   p95 {pct(parts[name], .95):6.1f} ms")
    print(f"\nfirst load of /work, empty cache: {first['total'] / 1024:,.0f} KiB transferred in {first['count']} "
          f"responses (Label Studio's main.js {first['label_studio_js'] / 1024:,.0f} KiB; no compression)")
    print(f"reload, warm cache:               {again['total'] / 1024:,.0f} KiB transferred in {again['count']} "
          "responses (static files revalidated)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--database")
    parser.add_argument("--redis")
    parser.add_argument("--micro-tasks", type=int, default=50)
    parser.add_argument("--items", type=int, default=10, help="items per micro-task")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--threads", type=int, default=4)
    args = parser.parse_args()
    if not Path(CHROMIUM).exists():
        sys.exit(f"no chromium at {CHROMIUM}: install Debian's chromium package")
    from playwright.sync_api import sync_playwright

    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        settings, project_id = prepare(args, folder)
        with gunicorn(settings, folder, args.workers, args.threads) as port:
            print(f"workbench benchmark: {'PostgreSQL' if args.database else 'SQLite'} with "
                  f"{'a Redis server' if args.redis else 'embedded Redis'}, gunicorn {args.workers} workers x "
                  f"{args.threads} threads, Chromium at {CHROMIUM}; {os.cpu_count()} cores")
            with sync_playwright() as playwright:
                browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
                page = browser.new_context(viewport={"width": 1280, "height": 900}).new_page()
                label(page, args, f"http://127.0.0.1:{port}", project_id)
                browser.close()
    print("\nreproduce: .venv/bin/python bench/workbench.py --micro-tasks "
          f"{args.micro_tasks} --items {args.items}")


if __name__ == "__main__":
    main()
