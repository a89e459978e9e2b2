"""The client for Label Studio ML backends: the HTTP protocol that Label
Studio's own server speaks to a model server built with `label-studio-ml`.

`Client` sends what Label Studio sends, field by field, so such backends plug
in unchanged: `GET /health`, `POST /setup`, `POST /predict` and
`POST /webhook`, the set served by both label-studio-ml 1.0.x (PyPI) and the
newer backends. `normalise_url` and `is_allowed` check a backend URL against
the operators' allow-list before anything is sent to it.

What a backend does with what it gets (tests/mlbackend runs the real 1.0.9):

- 1.0.x keeps one model per server process, loaded by `/setup`; until then
  `/predict` answers 500 "Model is not loaded". Label Studio calls `/setup`
  before each round of predictions; callers should too. 1.0.x ignores the
  `project` and `label_config` of `/predict` and reads no `extra_params`.
- `/setup` answers the model version as a string or as a number.
- Training runs in the background: `/webhook` answers at once.

Pure module: no ORM, no Flask. Failures are `BackendDown` (the backend cannot
be reached, is too slow, or fails: retry later) or `BadResponse` (it answers
what the protocol does not allow); both name the URL and what failed.
"""

from __future__ import annotations

import logging
import math
import re
from collections.abc import Iterable
from typing import Any
from urllib.parse import urlsplit

import requests

__all__ = ["BackendDown", "BackendError", "BadResponse", "Client", "is_allowed", "normalise_url"]

log = logging.getLogger(__name__)

_DEFAULT_PORTS = {"http": 80, "https": 443}
# Letters, digits, dots and hyphens, or an IPv6 address: anything else in a
# host ("%65vil", "a\\b", unicode look-alikes) is refused, not interpreted.
_HOST = re.compile(r"[a-z0-9.-]+|\[[0-9a-f:.]+\]")
# The protocol's events and the payload keys Label Studio sends with them;
# `project` must carry "id" and "label_config", which the backends read.
_WEBHOOK_KEYS = {
    "ANNOTATION_CREATED": ("annotation", "task", "project"),
    "ANNOTATION_UPDATED": ("annotation", "task", "project"),
    "START_TRAINING": ("project",),
}


class BackendError(Exception):
    """An ML backend call that failed; the message names the URL and what failed."""


class BackendDown(BackendError):
    """The backend cannot be reached, did not answer in time, or answered 5xx."""


class BadResponse(BackendError):
    """The backend answered, but not what the protocol allows."""


def normalise_url(url: str) -> str:
    """`url` as "scheme://host[:port][/path]", lower-case scheme and host,
    without a default port or a trailing "/"; ValueError says what is wrong."""
    text = url.strip() if isinstance(url, str) else ""
    if not text:
        raise ValueError("an ML backend URL is needed, like http://ml.example.org:9090")
    if any(ch.isspace() or ord(ch) < 32 or ch == "\\" for ch in text):
        raise ValueError(f"{text!r}: an ML backend URL cannot hold spaces, control characters or backslashes")
    parts = urlsplit(text)
    scheme = parts.scheme.lower()
    if scheme not in _DEFAULT_PORTS:
        raise ValueError(f"{text}: an ML backend URL must start with http:// or https://")
    if "@" in parts.netloc:
        # http://allowed@evil goes to evil: credentials never belong in the URL.
        raise ValueError(f"{text}: an ML backend URL cannot carry a user name or password (the part before @)")
    host = parts.netloc.rsplit(":", 1)[0] if not parts.netloc.endswith("]") else parts.netloc
    host = host.lower()
    if not host or not _HOST.fullmatch(host):
        raise ValueError(f"{text}: an ML backend URL needs a host name or IP address, in ASCII")
    try:
        port = parts.port
    except ValueError:
        raise ValueError(f"{text}: the port must be a number from 1 to 65535") from None
    if port == 0:
        raise ValueError(f"{text}: the port must be a number from 1 to 65535")
    if parts.query or parts.fragment or text.endswith(("?", "#")):
        raise ValueError(f"{text}: an ML backend URL cannot have a query (?) or a fragment (#)")
    netloc = host if port in (None, _DEFAULT_PORTS[scheme]) else f"{host}:{port}"
    return f"{scheme}://{netloc}{parts.path.rstrip('/')}"


def is_allowed(url: str, allowed: Iterable[str]) -> bool:
    """Whether `url` is one of the `allowed` URLs, compared after normalise_url.

    The exact match is the guard against server-side request forgery: no
    prefix, suffix or pattern matching. A URL that is not valid is not allowed.
    """
    if isinstance(allowed, str):
        raise TypeError("allowed must be a list of URLs, not one URL")
    try:
        wanted = normalise_url(url)
    except ValueError:
        return False
    for entry in allowed:
        try:
            if normalise_url(entry) == wanted:
                return True
        except ValueError as why:
            # A bad entry matches nothing either way; say so, the operator can fix it.
            log.warning("ML backend allow-list entry skipped: %s", why)
    return False


class Client:
    """Label Studio's side of the ML backend protocol, for one backend URL.

    Every request has `timeout` seconds (to connect, and for each read), and
    redirects are not followed: the allow-list names the only host we call.
    """

    # Tasks per /predict request; Label Studio predicts in batches of 100 too.
    batch_size = 100

    def __init__(self, url: str, *, timeout: float = 5.0, session: requests.Session | None = None):
        self.url = normalise_url(url)
        self.timeout = timeout
        self.session = session or requests.Session()

    def health(self) -> dict:
        """GET /health: {"status": "UP", ...}."""
        body = self._call("GET", "health")
        if not isinstance(body, dict):
            raise self._bad(f"answered GET /health with {_kind(body)}, not an object")
        return body

    def setup(self, project: str, label_config: str, *, model_version: str | None = None,
              extra_params: dict | None = None, hostname: str = "", access_token: str = "") -> str | None:
        """POST /setup: load the model for the project's config; the model version it reports.

        `hostname` and `access_token` are where and how a backend may fetch
        task media (Label Studio sends its own URL and the project owner's token).
        """
        body = self._call("POST", "setup", {
            "project": project,
            "schema": label_config,
            "hostname": hostname,
            "access_token": access_token,
            "model_version": model_version,
            "extra_params": extra_params,
        })
        if not isinstance(body, dict):
            raise self._bad(f"answered POST /setup with {_kind(body)}, not an object")
        version = body.get("model_version")
        return None if version is None else str(version)

    def predict(self, tasks: list[dict], *, project: str, label_config: str,
                model_version: str | None = None) -> list[dict]:
        """POST /predict in batches: one {"result", "score", "model_version"} per task, in task order.

        Call `setup` first (see the module docstring). A backend that answers
        one prediction for a batch of several tasks cannot take batches: as
        Label Studio does, we then ask it task by task.
        """
        for n, task in enumerate(tasks):
            if not isinstance(task, dict) or not isinstance(task.get("data"), dict):
                raise ValueError(f"task {n + 1} must be an object with a 'data' object, "
                                 'like {"id": 1, "data": {...}}')
        predictions: list[dict] = []
        for start in range(0, len(tasks), self.batch_size):
            batch = tasks[start:start + self.batch_size]
            predictions += self._predict_batch(batch, project, label_config, model_version)
        return predictions

    def webhook(self, action: str, payload: dict) -> dict:
        """POST /webhook {"action": action, **payload}, in Label Studio's shapes:
        ANNOTATION_CREATED {"annotation", "task", "project"}, START_TRAINING {"project"}.

        The answer is whatever the backend says (1.0.x: {"job_id": ...}); the
        training it starts runs on after it answers.
        """
        if "action" in payload:
            raise ValueError("the webhook payload cannot hold its own 'action'; pass it as the action")
        for key in _WEBHOOK_KEYS.get(action, ("project",)):
            if not isinstance(payload.get(key), dict):
                raise ValueError(f"a {action} webhook needs a {key!r} object in its payload")
        missing = [key for key in ("id", "label_config") if key not in payload["project"]]
        if missing:
            raise ValueError(f"the webhook's project needs {' and '.join(map(repr, missing))}: the backends read them")
        body = self._call("POST", "webhook", {"action": action, **payload})
        if not isinstance(body, dict):
            raise self._bad(f"answered POST /webhook with {_kind(body)}, not an object")
        return body

    # -- the wire -------------------------------------------------------------

    def _predict_batch(self, batch: list[dict], project: str, label_config: str,
                       model_version: str | None) -> list[dict]:
        body = self._call("POST", "predict", {
            "tasks": batch,
            "model_version": model_version,
            "project": project,
            "label_config": label_config,
            # Label Studio's task-data login and context for interactive
            # labeling; we have neither, but backends unpack these keys.
            "params": {"login": None, "password": None, "context": None},
        })
        # label-studio-ml answers {"results": [...], ...}; older custom backends a bare list.
        if isinstance(body, dict):
            results, default_version = body.get("results"), body.get("model_version")
        else:
            results, default_version = body, None
        if not isinstance(results, list):
            raise self._bad(f"answered POST /predict with {_kind(body)} without a list of results")
        if len(results) == 1 and len(batch) > 1:
            log.warning("the ML backend at %s answered 1 prediction for %d tasks: asking task by task",
                        self.url, len(batch))
            return [one for task in batch for one in self._predict_batch([task], project, label_config,
                                                                         model_version)]
        if len(results) != len(batch):
            ids = [task.get("id") for task in batch[:5]]
            log.error("the ML backend at %s answered %d predictions for %d tasks (first task ids %s)",
                      self.url, len(results), len(batch), ids)
            raise self._bad(f"answered POST /predict with {len(results)} predictions for {len(batch)} tasks; "
                            "it must answer one per task, in order")
        return [self._prediction(item, n, default_version) for n, item in enumerate(results)]

    def _prediction(self, item: Any, n: int, default_version: Any) -> dict:
        if not isinstance(item, dict) or not isinstance(item.get("result"), list):
            raise self._bad(f"answered POST /predict with prediction {n + 1} as {_kind(item)} "
                            "without a list under 'result'")
        score = item.get("score")
        if score is not None:
            # A number, or one in a string: Label Studio takes both.
            try:
                score = float(score)
            except (TypeError, ValueError):
                score = math.nan
            if isinstance(item["score"], bool) or not math.isfinite(score):
                raise self._bad(f"answered POST /predict with prediction {n + 1} scored {item['score']!r}, "
                                "which is not a finite number")
        # Each prediction's own version first, as Label Studio reads it.
        version = item.get("model_version") or default_version or "undefined"
        return {"result": item["result"], "score": score, "model_version": str(version)}

    def _call(self, method: str, path: str, body: dict | None = None) -> Any:
        what = f"{method} /{path}"
        try:
            response = self.session.request(method, f"{self.url}/{path}", json=body, timeout=self.timeout,
                                            allow_redirects=False)
        except requests.ConnectTimeout as exc:  # also a ConnectionError: check it first
            raise BackendDown(f"the ML backend at {self.url} could not be reached within {self.timeout:g} s "
                              f"({what})") from exc
        except requests.Timeout as exc:
            raise BackendDown(f"the ML backend at {self.url} did not answer {what} within {self.timeout:g} s") from exc
        except requests.ConnectionError as exc:
            raise BackendDown(f"the ML backend at {self.url} could not be reached ({what}): {_reason(exc)}") from exc
        except requests.RequestException as exc:
            raise BackendDown(f"the ML backend at {self.url} failed {what}: {exc}") from exc
        status = response.status_code
        if 300 <= status < 400:
            raise self._bad(f"answered {what} with a redirect (HTTP {status} to {response.headers.get('Location')}), "
                            "which we do not follow")
        if status >= 500:
            raise BackendDown(f"the ML backend at {self.url} failed {what} with HTTP {status}: {_detail(response)}")
        if status >= 400:
            raise self._bad(f"answered {what} with HTTP {status}: {_detail(response)}")
        try:
            return response.json()
        except ValueError:
            raise self._bad(f"answered {what} with something that is not JSON: {response.text[:100]!r}") from None

    def _bad(self, problem: str) -> BadResponse:
        return BadResponse(f"the ML backend at {self.url} {problem}")


def _kind(value: Any) -> str:
    return {dict: "an object", list: "a list", str: "a string", bool: "a boolean",
            type(None): "null"}.get(type(value), "a number")


def _reason(exc: requests.ConnectionError) -> str:
    # requests wraps urllib3's retry error, which wraps the socket's; the last
    # clause of that is the words: "[Errno 111] Connection refused".
    inner = exc.args[0] if exc.args else exc
    return str(getattr(inner, "reason", inner)).rsplit(": ", 1)[-1]


def _detail(response: requests.Response) -> str:
    """The backend's own error words: label-studio-ml puts them under "detail"."""
    try:
        body = response.json()
    except ValueError:
        body = None
    if isinstance(body, dict) and isinstance(body.get("detail") or body.get("error"), str):
        text = body.get("detail") or body.get("error")
    else:
        text = response.text
    text = " ".join(text.split())
    return text[:200] + ("..." if len(text) > 200 else "") if text else "(no body)"
