"""The operators' list of ML backends, on the console page: add, check, remove."""
from __future__ import annotations

import socket

from tests.conftest import TEXT_CONFIG


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_operators_keep_the_list_on_the_console(client, auth, people, teams):
    operator = people.make("operator")
    auth.login(operator)
    url = f"http://127.0.0.1:{closed_port()}"
    refused = client.post("/console/ml-backends", data={"name": "x", "url": "file:///etc/passwd"})
    assert refused.status_code == 400 and "url:" in refused.get_data(as_text=True)
    added = client.post("/console/ml-backends", data={"name": "Sentiment model", "url": url + "/"},
                        follow_redirects=True)
    page = added.get_data(as_text=True)
    assert "Sentiment model" in page and f"<code>{url}</code>" in page and "never" in page
    backend_id = int(page.split("/console/ml-backends/")[1].split("/")[0])
    checked = client.post(f"/console/ml-backends/{backend_id}/check", follow_redirects=True).get_data(as_text=True)
    assert "It did not answer: the ML backend at" in checked and "down at" in checked
    auth.logout()

    # A requester can now point a project at it; anywhere else is refused.
    requester = teams.requester()
    ok = client.post("/api/projects/", headers=requester.headers, json={
        "title": "x", "label_config": TEXT_CONFIG, "assist": "backend", "ml_backend_url": url})
    assert ok.status_code == 201 and ok.get_json()["ml_backend_url"] == url
    listed = client.get("/api/ml-backends", headers=requester.headers).get_json()
    assert [(b["name"], b["url"]) for b in listed] == [("Sentiment model", url)]

    # While a project uses it, it stays on the list.
    auth.login(operator)
    kept = client.post(f"/console/ml-backends/{backend_id}/remove")
    assert kept.status_code == 409 and "1 project(s) use" in kept.get_data(as_text=True)
    auth.logout()
    assert client.patch(f"/api/projects/{ok.get_json()['id']}", headers=requester.headers,
                        json={"assist": "none"}).status_code == 200
    auth.login(operator)
    gone = client.post(f"/console/ml-backends/{backend_id}/remove", follow_redirects=True).get_data(as_text=True)
    assert "ML backend removed" in gone and f"<code>{url}</code>" not in gone
