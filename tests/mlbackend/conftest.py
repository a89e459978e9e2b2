"""Fixtures for the ML backend client tests: the real label-studio-ml 1.0.9
server running tests/mlbackend/model.py, and small stand-in servers for what
a real one will not do (answer nonsense, hang, redirect).

label-studio-ml 1.0.9 pins Flask 1.1.2, so it gets a venv of its own at
.mlbackend-venv (gitignored), built from requirements.txt with the base
interpreter of ours, once: a stamp names what was installed, and a file lock
keeps two pytest processes from building it at the same time. A failed build
fails the tests (it never skips them), with pip's words.
"""
from __future__ import annotations

import fcntl
import hashlib
import http.server
import json
import os
import shutil
import socket
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import requests

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
VENV = REPO / ".mlbackend-venv"
REQUIREMENTS = HERE / "requirements.txt"
# Settings of label-studio-ml that would change what the tests see (Redis jobs, the
# old per-project model store); the server runs with their defaults.
_BACKEND_ENV_DROPPED = ("USE_REDIS", "LABEL_STUDIO_ML_BACKEND_V2", "AUTO_UPDATE", "TEST_MODEL_RECORD",
                        "PYTHONPATH", "PYTHONHOME")


def _tail(text: str, lines: int = 30) -> str:
    return "\n".join(text.splitlines()[-lines:])


def backend_python() -> Path:
    """The separate venv's python, built first when it lacks the pinned packages."""
    base = getattr(sys, "_base_executable", None) or shutil.which("python3")
    digest = hashlib.sha256(REQUIREMENTS.read_bytes() + base.encode()).hexdigest()[:16]
    python = VENV / "bin" / "python"
    stamp = VENV / f".installed-{digest}"
    with open(VENV.with_name(VENV.name + ".lock"), "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # released when the file closes
        if stamp.exists() and python.exists():
            return python
        for command in ([base, "-m", "venv", "--clear", str(VENV)],
                        [str(python), "-m", "pip", "install", "--quiet", "-r", str(REQUIREMENTS)]):
            try:
                run = subprocess.run(command, capture_output=True, text=True, timeout=1200)
            except subprocess.TimeoutExpired:
                pytest.fail(f"building the label-studio-ml venv at {VENV}: {' '.join(command)} took over 20 minutes",
                            pytrace=False)
            if run.returncode:
                pytest.fail(f"building the label-studio-ml venv at {VENV}: {' '.join(command)} exited "
                            f"{run.returncode}:\n{_tail(run.stdout + run.stderr)}", pytrace=False)
        stamp.touch()
    return python


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class Backend:
    """One running label-studio-ml server and what its model recorded."""

    url: str
    model_dir: Path
    process: subprocess.Popen
    log: Path

    def received(self, kind: str | None = None) -> list[dict]:
        path = self.model_dir / "received.jsonl"
        lines = path.read_text().splitlines() if path.exists() else []
        records = [json.loads(line) for line in lines if line.strip()]
        return [r for r in records if kind is None or r["kind"] == kind]

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


@pytest.fixture(scope="session")
def start_backend(tmp_path_factory):
    """Start a fresh label-studio-ml server (own port, own model dir); all stop at the end."""
    python = backend_python()
    started: list[Backend] = []

    def start() -> Backend:
        model_dir = tmp_path_factory.mktemp("mlbackend")
        log = model_dir.with_suffix(".log")
        port = free_port()
        env = {k: v for k, v in os.environ.items() if k not in _BACKEND_ENV_DROPPED}
        with open(log, "w") as out:
            process = subprocess.Popen(
                [str(python), str(HERE / "server.py"), "--port", str(port), "--model-dir", str(model_dir)],
                cwd=HERE, env=env, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        backend = Backend(f"http://127.0.0.1:{port}", model_dir, process, log)
        started.append(backend)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if process.poll() is not None:
                pytest.fail(f"the label-studio-ml server exited ({process.returncode}) before answering /health:\n"
                            f"{_tail(log.read_text())}", pytrace=False)
            try:
                if requests.get(f"{backend.url}/health", timeout=1).ok:
                    return backend
            except requests.RequestException:
                pass
            time.sleep(0.1)
        pytest.fail(f"the label-studio-ml server did not answer /health within 60 s:\n{_tail(log.read_text())}",
                    pytrace=False)

    yield start
    for backend in started:
        backend.stop()


@pytest.fixture(scope="session")
def backend(start_backend) -> Backend:
    """The server most tests share; tests that train start their own."""
    return start_backend()


@dataclass
class Stub:
    """A stand-in backend: answers each path as told, and keeps what it was sent."""

    url: str = ""
    answers: dict[str, tuple[int, bytes, dict]] = field(default_factory=dict)
    requests: list[tuple[str, str, object]] = field(default_factory=list)

    def answer(self, path: str, status: int = 200, body: object = None, *, raw: bytes | None = None,
               headers: dict | None = None) -> None:
        content = raw if raw is not None else json.dumps(body if body is not None else {}).encode()
        self.answers[path] = (status, content, headers or {"Content-Type": "application/json"})


@pytest.fixture
def stub():
    state = Stub()

    class Handler(http.server.BaseHTTPRequestHandler):
        def _serve(self):
            length = int(self.headers.get("Content-Length") or 0)
            raw = self.rfile.read(length) if length else b""
            state.requests.append((self.command, self.path, json.loads(raw) if raw else None))
            status, content, headers = state.answers.get(self.path, (200, b"{}", {"Content-Type": "application/json"}))
            self.send_response(status)
            for name, value in headers.items():
                self.send_header(name, value)
            self.send_header("Content-Length", str(len(content)))
            self.end_headers()
            self.wfile.write(content)

        do_GET = do_POST = _serve

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    state.url = f"http://127.0.0.1:{server.server_port}"
    yield state
    server.shutdown()
    server.server_close()


@pytest.fixture
def silent_server():
    """The URL of a server that accepts connections and never says a word."""
    listener = socket.create_server(("127.0.0.1", 0))
    listener.settimeout(0.1)
    held: list[socket.socket] = []
    done = threading.Event()

    def accept():
        while not done.is_set():
            try:
                held.append(listener.accept()[0])
            except TimeoutError:
                continue

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{listener.getsockname()[1]}"
    done.set()
    thread.join()
    listener.close()
    for conn in held:
        conn.close()
