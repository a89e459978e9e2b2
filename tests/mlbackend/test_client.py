"""The ML backend ml against the real label-studio-ml 1.0.9 server (see
conftest.py), and against stand-ins for the failures a real one will not show."""
from __future__ import annotations

import logging
import socket
import time

import pytest
import requests

from annotate.assist.mlbackend import BackendDown, BadResponse, Client, is_allowed, normalise_url

CONFIG = ('<View><Text name="text" value="$text"/><Choices name="sentiment" toName="text">'
          '<Choice value="Positive"/><Choice value="Negative"/></Choices></View>')
# Label Studio's project reference: "<project id>.<created_at timestamp>".
PROJECT = "7.1735689600"
PROJECT_DICT = {"id": 7, "title": "Reviews", "label_config": CONFIG, "created_at": "2025-01-01T00:00:00Z"}


def task(n: int, text: str) -> dict:
    return {"id": n, "data": {"text": text}}


def choice_of(prediction: dict) -> str:
    return prediction["result"][0]["value"]["choices"][0]


def counting(client: Client) -> list[str]:
    """The URLs the client requests from now on."""
    sent: list[str] = []
    client.session.hooks["response"].append(lambda response, **kw: sent.append(response.request.url))
    return sent


def eventually(check, what: str, seconds: float = 30) -> None:
    """Wait for check() to hold: the backend trains in the background."""
    deadline = time.monotonic() + seconds
    while not check():
        assert time.monotonic() < deadline, f"the ML backend did not {what} within {seconds} s"
        time.sleep(0.1)


@pytest.fixture
def ml(backend) -> Client:
    return Client(backend.url + "/")


# -- the real server ------------------------------------------------------------


def test_health_says_up(ml):
    assert ml.health()["status"] == "UP"


def test_setup_hands_the_model_its_config_and_returns_the_version(backend, ml):
    assert ml.setup(PROJECT, CONFIG, hostname="https://annotate.example", access_token="t0k") == "INITIAL"
    got = backend.received("setup")[-1]
    assert (got["label_config"], got["hostname"], got["access_token"]) == (CONFIG, "https://annotate.example", "t0k")

    # A version the backend does not have: 1.0.9 falls back to its initial model.
    assert ml.setup(PROJECT, CONFIG, model_version="INITIAL") == "INITIAL"
    assert backend.received("setup")[-1]["model_version"] == "INITIAL"


def test_predict_answers_one_prediction_per_task_in_order_across_batches(ml):
    ml.setup(PROJECT, CONFIG)
    ml.batch_size = 3
    sent = counting(ml)
    texts = ["a good film", "dull", "great fun", "bad", "GOOD", "meh", "not great", "boring"]

    predictions = ml.predict([task(n, t) for n, t in enumerate(texts)], project=PROJECT, label_config=CONFIG)

    assert len(sent) == 3 and all(url.endswith("/predict") for url in sent)
    assert [choice_of(p) for p in predictions] == ["Positive", "Negative", "Positive", "Negative",
                                                   "Positive", "Negative", "Positive", "Negative"]
    assert [p["score"] for p in predictions] == [0.9, 0.6, 0.9, 0.6, 0.9, 0.6, 0.9, 0.6]
    assert {p["model_version"] for p in predictions} == {"keywords-initial"}
    assert all(set(p) == {"result", "score", "model_version"} for p in predictions)
    assert ml.predict([], project=PROJECT, label_config=CONFIG) == [] and len(sent) == 3


def test_a_prediction_without_its_own_version_takes_the_response_version(ml):
    ml.setup(PROJECT, CONFIG)
    [prediction] = ml.predict([task(1, "__no_version__")], project=PROJECT, label_config=CONFIG)
    assert prediction["model_version"] == "INITIAL"


def test_a_backend_that_answers_one_prediction_per_batch_is_asked_task_by_task(ml):
    ml.setup(PROJECT, CONFIG)
    sent = counting(ml)
    tasks = [task(1, "good"), task(2, "__first_only__"), task(3, "bad")]

    predictions = ml.predict(tasks, project=PROJECT, label_config=CONFIG)

    assert len(sent) == 1 + 3
    assert [choice_of(p) for p in predictions] == ["Positive", "Negative", "Negative"]


def test_the_wrong_number_of_predictions_is_a_bad_response_and_logged(ml, caplog):
    ml.setup(PROJECT, CONFIG)
    tasks = [task(1, "good"), task(2, "__wrong_count__"), task(3, "bad")]

    with caplog.at_level(logging.ERROR, logger="annotate.assist.mlbackend"), pytest.raises(BadResponse) as caught:
        ml.predict(tasks, project=PROJECT, label_config=CONFIG)

    assert str(caught.value) == (f"the ML backend at {ml.url} answered POST /predict with 4 predictions "
                                 "for 3 tasks; it must answer one per task, in order")
    assert "4 predictions for 3 tasks (first task ids [1, 2, 3])" in caplog.text


def test_webhooks_reach_the_model_and_training_gives_a_new_version(start_backend):
    backend = start_backend()  # its own model dir: training changes what setup answers
    ml = Client(backend.url)

    # 1.0.9 holds no model until /setup: predict first and it fails (HTTP 500).
    with pytest.raises(BackendDown, match="HTTP 500: ValueError: Model is not loaded"):
        ml.predict([task(1, "good")], project=PROJECT, label_config=CONFIG)
    assert ml.setup(PROJECT, CONFIG) == "INITIAL"

    annotation = {"id": 31, "result": [{"from_name": "sentiment", "to_name": "text", "type": "choices",
                                        "value": {"choices": ["Positive"]}}], "lead_time": 4.2}
    created = ml.webhook("ANNOTATION_CREATED", {"annotation": annotation, "task": task(1, "good"),
                                                "project": PROJECT_DICT})
    training = ml.webhook("START_TRAINING", {"project": PROJECT_DICT})
    assert created["job_id"].isdigit() and training["job_id"].isdigit()

    eventually(lambda: len(backend.received("fit")) == 2, "train on both events")
    by_event = {fit["event"]: fit for fit in backend.received("fit")}
    assert by_event["ANNOTATION_CREATED"]["annotation"] == annotation
    assert by_event["ANNOTATION_CREATED"]["task"] == task(1, "good")
    assert by_event["START_TRAINING"]["project"] == PROJECT_DICT
    assert by_event["START_TRAINING"]["job_id"] == training["job_id"]

    # The latest finished job is the trained model: setup loads it and names it.
    version = training["job_id"]
    eventually(lambda: ml.setup(PROJECT, CONFIG) == version, f"load the model {version} on /setup")
    [prediction] = ml.predict([task(1, "good")], project=PROJECT, label_config=CONFIG)
    assert prediction["model_version"] == f"keywords-{version}"


# -- what Label Studio sends ------------------------------------------------------


def test_requests_carry_label_studios_fields(stub):
    client = Client(stub.url)
    stub.answer("/setup", body={"model_version": 3})
    stub.answer("/predict", body={"results": [{"result": [], "score": 1}], "model_version": "v1"})

    assert client.setup(PROJECT, CONFIG, model_version="v1", extra_params={"k": 1}) == "3"
    assert client.predict([task(1, "x")], project=PROJECT, label_config=CONFIG, model_version="v1") == [
        {"result": [], "score": 1.0, "model_version": "v1"}]
    client.webhook("START_TRAINING", {"project": PROJECT_DICT})

    assert stub.requests == [
        ("POST", "/setup", {"project": PROJECT, "schema": CONFIG, "hostname": "", "access_token": "",
                            "model_version": "v1", "extra_params": {"k": 1}}),
        ("POST", "/predict", {"tasks": [task(1, "x")], "model_version": "v1", "project": PROJECT,
                              "label_config": CONFIG, "params": {"login": None, "password": None, "context": None}}),
        ("POST", "/webhook", {"action": "START_TRAINING", "project": PROJECT_DICT}),
    ]


def test_tasks_must_be_label_studio_tasks(stub):
    with pytest.raises(ValueError, match=r"task 2 must be an object with a 'data' object, like \{\"id\": 1"):
        Client(stub.url).predict([task(1, "x"), {"text": "y"}], project=PROJECT, label_config=CONFIG)
    assert stub.requests == []


def test_a_bare_list_of_predictions_is_accepted(stub):
    stub.answer("/predict", body=[{"result": [{"x": 1}], "score": None}])
    assert Client(stub.url).predict([task(1, "x")], project=PROJECT, label_config=CONFIG) == [
        {"result": [{"x": 1}], "score": None, "model_version": "undefined"}]


@pytest.mark.parametrize(("answer", "words"), [
    ({"results": "nope"}, "with an object without a list of results"),
    ({"results": [{"score": 0.5}]}, "with prediction 1 as an object without a list under 'result'"),
    ({"results": [{"result": [], "score": "high"}]}, "with prediction 1 scored 'high', which is not a finite number"),
    ({"results": [{"result": [], "score": True}]}, "scored True, which is not a finite number"),
    ({"results": [{"result": [], "score": float("nan")}]}, "scored nan, which is not a finite number"),
])
def test_predictions_of_the_wrong_shape_are_bad_responses(stub, answer, words):
    stub.answer("/predict", body=answer)
    with pytest.raises(BadResponse, match=words):
        Client(stub.url).predict([task(1, "x")], project=PROJECT, label_config=CONFIG)


def test_answers_that_are_not_the_protocol_are_bad_responses(stub):
    client = Client(stub.url)
    stub.answer("/health", raw=b"<html>hello</html>", headers={"Content-Type": "text/html"})
    with pytest.raises(BadResponse, match=r"answered GET /health with something that is not JSON: '<html>hello"):
        client.health()
    stub.answer("/health", body=["UP"])
    with pytest.raises(BadResponse, match="answered GET /health with a list, not an object"):
        client.health()
    stub.answer("/setup", 404, raw=b"Not Found", headers={})
    with pytest.raises(BadResponse, match="answered POST /setup with HTTP 404: Not Found"):
        client.setup(PROJECT, CONFIG)


def test_redirects_are_not_followed(stub):
    stub.answer("/health", 302, raw=b"", headers={"Location": "http://169.254.169.254/latest"})
    with pytest.raises(BadResponse, match=r"redirect \(HTTP 302 to http://169.254.169.254/latest\)"):
        Client(stub.url).health()
    assert len(stub.requests) == 1


def test_a_failing_backend_is_down_with_its_own_words(stub):
    stub.answer("/predict", 500, body={"status": 500, "detail": "KeyError: 'text'", "result": {"traceback": "..."}})
    with pytest.raises(BackendDown, match=r"failed POST /predict with HTTP 500: KeyError: 'text'$"):
        Client(stub.url).predict([task(1, "x")], project=PROJECT, label_config=CONFIG)


@pytest.mark.parametrize(("action", "payload", "words"), [
    ("ANNOTATION_CREATED", {"annotation": {"id": 1}, "project": PROJECT_DICT}, "needs a 'task' object"),
    ("START_TRAINING", {}, "needs a 'project' object"),
    ("START_TRAINING", {"project": {"id": 7}}, "project needs 'label_config'"),
    ("START_TRAINING", {"action": "X", "project": PROJECT_DICT}, "cannot hold its own 'action'"),
])
def test_webhook_payloads_must_have_label_studios_shape(stub, action, payload, words):
    with pytest.raises(ValueError, match=words):
        Client(stub.url).webhook(action, payload)
    assert stub.requests == []


# -- a backend that is not there ----------------------------------------------------


def test_a_closed_port_is_down_at_once():
    with requests.Session() as session, socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))  # bound, never listening: connections are refused
        client = Client(f"http://127.0.0.1:{sock.getsockname()[1]}", timeout=5, session=session)
        started = time.monotonic()
        with pytest.raises(BackendDown, match=r"could not be reached \(GET /health\): .*Connection refused"):
            client.health()
    assert time.monotonic() - started < 2.5


def test_a_server_that_never_answers_is_down_after_the_timeout(silent_server):
    client = Client(silent_server, timeout=0.5)
    started = time.monotonic()
    with pytest.raises(BackendDown) as caught:
        client.predict([task(1, "x")], project=PROJECT, label_config=CONFIG)
    assert str(caught.value) == f"the ML backend at {silent_server} did not answer POST /predict within 0.5 s"
    assert 0.4 < time.monotonic() - started < 5


# -- URLs and the allow-list ----------------------------------------------------------


@pytest.mark.parametrize(("url", "normal"), [
    ("http://ml.example.org:9090", "http://ml.example.org:9090"),
    ("  HTTP://ML.Example.org:9090/  ", "http://ml.example.org:9090"),
    ("https://ml.example.org:443/models/sentiment//", "https://ml.example.org/models/sentiment"),
    ("http://ml.example.org:80", "http://ml.example.org"),
    ("http://[::1]:9090/", "http://[::1]:9090"),
    ("http://10.0.0.5:9090", "http://10.0.0.5:9090"),
])
def test_normalise_url(url, normal):
    assert normalise_url(url) == normal
    assert normalise_url(normal) == normal


@pytest.mark.parametrize(("url", "words"), [
    ("", "URL is needed"),
    ("ml.example.org:9090", "must start with http:// or https://"),
    ("ftp://ml.example.org", "must start with http:// or https://"),
    ("file:///etc/passwd", "must start with http:// or https://"),
    ("http://", "needs a host"),
    ("http:///predict", "needs a host"),
    ("http://allowed.example@evil.example", "cannot carry a user name or password"),
    ("http://user:pass@allowed.example", "cannot carry a user name or password"),
    ("http://allowed.example\\@evil.example", "backslashes"),
    ("http://allowed .example", "spaces"),
    ("http://%65vil.example", "needs a host"),
    ("http://ml.example.org:99999", "port must be a number"),
    ("http://ml.example.org:http", "port must be a number"),
    ("http://ml.example.org/?next=evil", "cannot have a query"),
    ("http://ml.example.org/#x", "fragment"),
])
def test_normalise_url_refuses(url, words):
    with pytest.raises(ValueError, match=words):
        normalise_url(url)
    with pytest.raises(ValueError, match=words):
        Client(url)


ALLOWED = ["http://ml.example.org:9090/", "https://models.example.org/sentiment"]


@pytest.mark.parametrize(("url", "allowed"), [
    ("http://ml.example.org:9090", True),
    ("HTTP://ML.EXAMPLE.ORG:9090/", True),
    ("https://models.example.org:443/sentiment/", True),
    ("http://evil.example", False),
    ("http://ml.example.org:9091", False),
    ("https://ml.example.org:9090", False),
    ("http://ml.example.org:9090/other", False),
    ("https://models.example.org/sentiment/../admin", False),
    ("https://models.example.org", False),
    ("http://ml.example.org:9090@evil.example", False),
    ("http://ml.example.org.evil.example:9090", False),
    ("http://evil.example/http://ml.example.org:9090", False),
    ("not a url", False),
])
def test_is_allowed_is_an_exact_match(url, allowed):
    assert is_allowed(url, ALLOWED) is allowed


def test_is_allowed_skips_bad_entries_and_refuses_a_single_string(caplog):
    assert is_allowed("http://ml.example.org", ["ftp://nope", "http://ml.example.org/"])
    assert "allow-list entry skipped: ftp://nope" in caplog.text
    assert not is_allowed("http://ml.example.org", [])
    with pytest.raises(TypeError):
        is_allowed("http://ml.example.org", "http://ml.example.org")
