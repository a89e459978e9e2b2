"""Many annotators at once, over HTTP, against a server with several processes."""
from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from annotate.extensions import db
from annotate.models import MicroTask
from annotate.services import accounts
from tests.conftest import choice
from annotate.services.integrity import violations

REPO = Path(__file__).resolve().parents[2]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _post(url: str, key: str, body: dict | None = None) -> tuple[int, dict | None]:
    request = urllib.request.Request(url, method="POST", data=json.dumps(body or {}).encode(),
                                     headers={"Authorization": f"Token {key}", "Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            raw = response.read()
            return response.status, (json.loads(raw) if raw else None)
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read() or b"null")


@pytest.mark.slow
def test_many_annotators_at_once_never_break_an_invariant(app, projects, people, tmp_path):
    project = projects.live(items=60, per_task=2, overlap=3)
    annotators = []
    with app.app_context():
        for _ in range(12):
            person = people.make()
            annotators.append(accounts.create_token(person.id, "load").key)
    port = _free_port()
    env = {**os.environ, "DATABASE_URL": app.config["DATABASE_URL"], "REDIS_URL": app.config["REDIS_URL"],
           "SECRET_KEY": "test", "INSTANCE_PATH": str(tmp_path / "server")}
    server = subprocess.Popen([sys.executable, "-m", "gunicorn", "--workers", "3", "--worker-class", "gthread",
                               "--threads", "4", "--bind", f"127.0.0.1:{port}", "wsgi:app"],
                              cwd=REPO, env=env, stdout=subprocess.DEVNULL, stderr=open(tmp_path / "server.log", "w"))
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                urllib.request.urlopen(base + "/healthz", timeout=1)
                break
            except OSError:
                time.sleep(0.2)
        errors: list[str] = []
        submitted = []

        def label(key: str) -> None:
            for _ in range(40):
                status, work = _post(f"{base}/api/work/next?project={project}", key)
                if status == 204:
                    return
                if status != 200:
                    errors.append(f"next: {status} {work}")
                    return
                annotations = [{"item_id": i["id"], "result": choice("Positive"), "seconds": 1} for i in work["items"]]
                # Every third submit is sent twice, as a flaky network would.
                for _ in range(2 if work["assignment_id"] % 3 == 0 else 1):
                    status, body = _post(f"{base}/api/work/{work['assignment_id']}/submit", key,
                                         {"annotations": annotations})
                    if status != 200:
                        errors.append(f"submit: {status} {body}")
                submitted.append(work["assignment_id"])

        threads = [threading.Thread(target=label, args=(key,)) for key in annotators]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=120)
    finally:
        server.terminate()
        server.wait(timeout=30)
    assert errors == []
    with app.app_context():
        assert violations(project) == []
        done = db.session.query(MicroTask).filter_by(project_id=project, status="done").count()
    # 30 micro-tasks x 3 annotators = 90 slots; 12 annotators can fill them all.
    assert done == 30 and len(set(submitted)) == 90
