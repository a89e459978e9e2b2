"""Personal API tokens: shown once, stored hashed, sent as `Token <key>`."""
from __future__ import annotations

import datetime as dt
import re

import httpx
import pytest
from label_studio_sdk import LabelStudio
from label_studio_sdk.core.api_error import ApiError

from annotate.extensions import db
from annotate.models import ApiToken


def _create_on_page(client, name="pipeline") -> str:
    page = client.post("/account/tokens", data={"name": name}).get_data(as_text=True)
    match = re.search(r'<pre id="new-token-key">([^<]+)</pre>', page)
    assert match, "the new key is shown on the page"
    return match.group(1)


def test_a_token_is_shown_once_and_stored_only_as_a_hash(client, auth, people, app):
    auth.login(people.make())
    key = _create_on_page(client)
    assert key.count(".") == 0, "a key that looks like a JWT would make label-studio-sdk send Bearer"
    listing = client.get("/account/tokens").get_data(as_text=True)
    assert key not in listing
    assert key[:10] in listing and "pipeline" in listing
    with app.app_context():
        stored = db.session.query(ApiToken).one()
        assert stored.key_hash != key and key not in stored.key_hash


def test_the_token_header_authenticates_api_calls(client, auth, people):
    person = people.make()
    auth.login(person)
    key = _create_on_page(client)
    auth.logout()
    anonymous = client.get("/api/current-user/whoami")
    assert anonymous.status_code == 401
    assert anonymous.get_json()["detail"] == "Authentication credentials were not provided."
    response = client.get("/api/current-user/whoami", headers={"Authorization": f"Token {key}"})
    assert response.status_code == 200
    assert response.get_json()["email"] == person.email


def test_a_revoked_token_is_refused(client, auth, people):
    auth.login(people.make())
    key = _create_on_page(client)
    token_id = client.get("/api/tokens/").get_json()[0]["id"]
    client.post(f"/account/tokens/{token_id}/revoke")
    auth.logout()
    response = client.get("/api/current-user/whoami", headers={"Authorization": f"Token {key}"})
    assert response.status_code == 401
    body = response.get_json()
    assert body["detail"] == "Invalid token."
    assert set(body) >= {"id", "status_code", "version", "detail", "exc_info"}


def test_nobody_revokes_someone_elses_token(client, auth, people):
    owner, other = people.make(), people.make()
    auth.login(owner)
    key = _create_on_page(client)
    token_id = client.get("/api/tokens/").get_json()[0]["id"]
    auth.logout()
    auth.login(other)
    assert client.post(f"/account/tokens/{token_id}/revoke").status_code == 404
    assert client.delete(f"/api/tokens/{token_id}/").status_code == 404
    auth.logout()
    assert client.get("/api/current-user/whoami", headers={"Authorization": f"Token {key}"}).status_code == 200


def test_tokens_through_the_api(client, auth, people):
    auth.login(people.make())
    created = client.post("/api/tokens/", json={"name": "ci"})
    assert created.status_code == 201
    key = created.get_json()["key"]
    listed = client.get("/api/tokens/").get_json()
    assert [t["name"] for t in listed] == ["ci"] and "key" not in listed[0]
    assert client.delete(f"/api/tokens/{created.get_json()['id']}/").status_code == 204
    assert client.get("/api/tokens/").get_json()[0]["revoked"] is True
    auth.logout()
    assert client.get("/api/tokens/", headers={"Authorization": f"Token {key}"}).status_code == 401


def sdk_client(app, key: str) -> LabelStudio:
    """label-studio-sdk's own client, talking to the app in-process."""
    transport = httpx.WSGITransport(app=app)
    return LabelStudio(base_url="http://testserver", api_key=key,
                       httpx_client=httpx.Client(transport=transport, base_url="http://testserver"))


def test_label_studio_sdk_authenticates_with_our_token(client, auth, people, app):
    person = people.make()
    auth.login(person)
    key = _create_on_page(client)
    me = sdk_client(app, key).users.whoami()
    assert me.email == person.email
    with pytest.raises(ApiError) as refused:
        sdk_client(app, key + "x").users.whoami()
    assert refused.value.status_code == 401


def test_the_token_list_says_when_a_token_was_last_used_to_the_minute(client, auth, people, monkeypatch):
    from annotate.services import accounts

    auth.login(people.make())
    key = _create_on_page(client)
    assert client.get("/api/tokens/").get_json()[0]["last_used_at"] is None
    headers = {"Authorization": f"Token {key}"}
    assert client.get("/api/current-user/whoami", headers=headers).status_code == 200
    first = client.get("/api/tokens/").get_json()[0]["last_used_at"]
    assert first is not None
    assert client.get("/api/current-user/whoami", headers=headers).status_code == 200
    assert client.get("/api/tokens/").get_json()[0]["last_used_at"] == first  # not a write per call
    monkeypatch.setattr(accounts, "TOKEN_TOUCH_INTERVAL", dt.timedelta(0))  # as if a minute went by
    assert client.get("/api/current-user/whoami", headers=headers).status_code == 200
    assert client.get("/api/tokens/").get_json()[0]["last_used_at"] > first
