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
- the first load of the page with an empty browser cache, signed in: the
  bytes transferred and the time from navigation start to the first item
  shown in Label Studio, on loopback (the first visit after the server
  started, which compresses the static files once, then a visit on the warm
  server) and on an emulated link (--link, Mbit/s and round-trip ms, through
  Chromium's network emulation; median of --loads loads);
- a repeat visit (a new navigation with the browser cache warm: versioned
  static files come from the cache without a request), on loopback and on
  the emulated link, and a reload.

    .venv/bin/python bench/workbench.py
    .venv/bin/python bench/workbench.py --micro-tasks 50 --items 5 --link 10:40
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


def transferred(page) -> dict[str, float]:
    """Bytes over the wire for the document and everything it loaded (Resource
    Timing), how many of them went to the server (a cache hit transfers 0
    bytes), and when the first item was on screen."""
    return page.evaluate("""() => {
      const entries = [...performance.getEntriesByType('navigation'), ...performance.getEntriesByType('resource')];
      const out = {total: 0, decoded: 0, count: entries.length, requests: 0, label_studio_js: 0,
                   ready_ms: window.workbench.firstReadyAt};
      for (const e of entries) {
        out.total += e.transferSize; out.decoded += e.decodedBodySize;
        if (e.transferSize > 0) out.requests += 1;
        if (e.name.includes('label-studio') && e.name.includes('.js')) out.label_studio_js += e.transferSize;
      }
      return out;
    }""")


def load(context, url: str, link: tuple[float, float] | None = None) -> tuple[dict, object]:
    """Open the page in `context` (over an emulated link if given); its figures once the first item is shown."""
    page = context.new_page()
    if link:
        mbit, rtt = link
        cdp = context.new_cdp_session(page)
        cdp.send("Network.enable")
        cdp.send("Network.emulateNetworkConditions", {"offline": False, "latency": rtt,
                                                      "downloadThroughput": mbit * 1e6 / 8,
                                                      "uploadThroughput": mbit * 1e6 / 8})
    page.goto(url)
    page.wait_for_function("window.workbench && window.workbench.ready", timeout=120_000)
    return transferred(page), page


def first_loads(browser, url: str, signed_in: dict, args) -> dict[str, list[dict]]:
    """First loads, each in a new context (an empty HTTP cache, the same signed-in cookie)."""
    runs: dict[str, list[dict]] = {"cold server": [], "loopback": [], "link": [], "repeat": [], "reload": [],
                                   "link repeat": []}
    for n in range(args.loads + 1):
        context = browser.new_context(viewport={"width": 1280, "height": 900}, storage_state=signed_in)
        figures, page = load(context, url)
        runs["cold server" if n == 0 else "loopback"].append(figures)
        if n >= 1:
            page.goto(url)  # a repeat visit: a new navigation, the cache warm
            page.wait_for_function("window.workbench && window.workbench.ready", timeout=30_000)
            runs["repeat"].append(transferred(page))
            page.reload()
            page.wait_for_function("window.workbench && window.workbench.ready", timeout=30_000)
            runs["reload"].append(transferred(page))
        context.close()
    for _ in range(args.loads):
        context = browser.new_context(viewport={"width": 1280, "height": 900}, storage_state=signed_in)
        figures, page = load(context, url, args.link)
        runs["link"].append(figures)
        page.goto(url)  # the emulation holds for the page: a repeat visit over the same link
        page.wait_for_function("window.workbench && window.workbench.ready", timeout=30_000)
        runs["link repeat"].append(transferred(page))
        context.close()
    return runs


def summary(runs: list[dict]) -> str:
    kib = statistics.median(r["total"] for r in runs) / 1024
    ready = statistics.median(r["ready_ms"] for r in runs)
    first = runs[0]
    return (f"{kib:7,.0f} KiB in {first['count']} responses ({first['requests']} from the server), "
            f"first item shown at {ready:6,.0f} ms")


def label(browser, args, base: str, project_id: int) -> None:
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    page = context.new_page()
    page.goto(f"{base}/login")
    page.fill("input[name=email]", "annotator@bench.org")
    page.fill("input[name=password]", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url(f"{base}/")
    url = f"{base}/work?project={project_id}"
    loads = first_loads(browser, url, context.storage_state(), args)

    page.goto(url)
    page.wait_for_function("window.workbench && window.workbench.ready", timeout=30_000)
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
    mbit, rtt = args.link
    first = loads["loopback"][0]
    print(f"\nfirst load of /work, empty browser cache, median of {args.loads} (the page's own "
          f"{first['decoded'] / 1024:,.0f} KiB; Label Studio's main.js {first['label_studio_js'] / 1024:,.0f} KiB "
          "over the wire):")
    rows = [("  loopback, first visit after start", "cold server", " (compresses static files once)"),
            ("  loopback", "loopback", ""),
            (f"  {mbit:g} Mbit/s, {rtt:g} ms round trip", "link", " (Chromium's network emulation)"),
            ("repeat visit, warm cache", "repeat", ""),
            (f"  {mbit:g} Mbit/s, {rtt:g} ms round trip", "link repeat", ""),
            ("reload, warm cache", "reload", "")]
    for title, kind, note in rows:
        print(f"{title:<36} {summary(loads[kind])}{note}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--database")
    parser.add_argument("--redis")
    parser.add_argument("--micro-tasks", type=int, default=50)
    parser.add_argument("--items", type=int, default=10, help="items per micro-task")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--threads", type=int, default=4)
    parser.add_argument("--loads", type=int, default=3, help="first loads measured per kind (median printed)")
    parser.add_argument("--link", default="10:40", help="emulated link for a first load: Mbit/s:round-trip ms")
    args = parser.parse_args()
    mbit, _, rtt = args.link.partition(":")
    args.link = (float(mbit), float(rtt or 0))
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
                label(browser, args, f"http://127.0.0.1:{port}", project_id)
                browser.close()
    servers = (f" --database {args.database}" if args.database else "") + (f" --redis {args.redis}" if args.redis else "")
    print("\nreproduce: .venv/bin/python bench/workbench.py --micro-tasks "
          f"{args.micro_tasks} --items {args.items} --link {args.link[0]:g}:{args.link[1]:g}{servers}")


if __name__ == "__main__":
    main()
