"""Who may use what: every view declares it, and the others get 401/403/404."""
from __future__ import annotations

import pytest

from annotate import create_app
from annotate.extensions import db
from annotate.models import AuditEntry, User
from tests.conftest import csrf_token_from

OPERATOR_PAGES = [
    ("GET", "/operator/users"),
    ("POST", "/operator/users/1/roles"),
    ("GET", "/operator/teams"),
    ("POST", "/operator/teams"),
    ("GET", "/operator/teams/1"),
    ("POST", "/operator/teams/1"),
    ("POST", "/operator/teams/1/members/1/remove"),
]


def test_every_view_declares_who_may_use_it(app):
    undeclared = [
        rule.rule for rule in app.url_map.iter_rules()
        if rule.endpoint != "static" and not hasattr(app.view_functions[rule.endpoint], "access")
    ]
    assert undeclared == []


@pytest.mark.parametrize("method,path", OPERATOR_PAGES)
def test_operator_pages_refuse_annotators_and_requesters(client, auth, people, method, path):
    operator = people.make("operator")
    for roles in ((), ("requester",)):
        auth.login(people.make(*roles))
        response = client.open(path, method=method, data={"role": "operator", "granted": "1", "name": "x", "email": operator.email})
        assert response.status_code == 403
        assert operator.email not in response.get_data(as_text=True)  # no data leaks with the refusal
        auth.logout()


def test_annotator_cannot_grant_themselves_a_role(client, auth, people, app):
    annotator = people.make()
    auth.login(annotator)
    client.post(f"/operator/users/{annotator.id}/roles", data={"role": "operator", "granted": "1"})
    with app.app_context():
        assert db.session.get(User, annotator.id).is_operator is False


def test_operator_grants_and_takes_away_roles_and_it_is_logged(client, auth, people, app):
    operator = people.make("operator")
    worker = people.make(email="worker@example.org")
    auth.login(operator)
    page = client.get("/operator/users?q=worker").get_data(as_text=True)
    assert "worker@example.org" in page and operator.email not in page
    client.post(f"/operator/users/{worker.id}/roles", data={"role": "requester", "granted": "1"})
    with app.app_context():
        assert db.session.get(User, worker.id).roles == ["annotator", "requester"]
    client.post(f"/operator/users/{worker.id}/roles", data={"role": "requester", "granted": "0"})
    with app.app_context():
        assert db.session.get(User, worker.id).roles == ["annotator"]
        actions = [(e.action, e.actor_id, e.target_id) for e in db.session.query(AuditEntry).order_by(AuditEntry.id)]
        assert actions == [("grant_requester", operator.id, worker.id), ("revoke_requester", operator.id, worker.id)]


def test_an_operator_cannot_drop_their_own_operator_role(client, auth, people, app):
    operator = people.make("operator")
    auth.login(operator)
    response = client.post(f"/operator/users/{operator.id}/roles", data={"role": "operator", "granted": "0"})
    assert response.status_code == 400
    assert "cannot take away their own operator role" in response.get_data(as_text=True)


def test_operator_creates_a_team_and_members_become_requesters(client, auth, people, app):
    operator = people.make("operator")
    member = people.make(email="ml@example.org")
    auth.login(operator)
    response = client.post("/operator/teams", data={"name": "Vision team"})
    team_path = response.headers["Location"]
    response = client.post(team_path, data={"email": "ml@example.org"})
    assert response.status_code == 302
    page = client.get(team_path).get_data(as_text=True)
    assert "Vision team" in page and "ml@example.org" in page
    assert client.post("/operator/teams", data={"name": "Vision team"}).status_code == 409
    assert "is already in Vision team" in client.post(team_path, data={"email": "ml@example.org"}).get_data(as_text=True)
    assert "no account for nobody@example.org" in client.post(team_path, data={"email": "nobody@example.org"}).get_data(as_text=True)
    auth.logout()
    auth.login(member)
    home = client.get("/").get_data(as_text=True)
    assert "annotator, requester" in home and "Vision team" in home


def test_forms_need_the_csrf_token(tmp_path, redis_url, people):
    app = create_app({"TESTING": True, "INSTANCE_PATH": str(tmp_path / "i"), "REDIS_URL": redis_url,
                      "DATABASE_URL": f"sqlite:///{tmp_path / 'csrf.db'}", "FAST_PASSWORD_HASH": True})
    with app.app_context():
        from annotate.models import Base

        Base.metadata.create_all(db.engine)
        from annotate.services import accounts

        accounts.create_user("csrf@example.org", "C", "correct horse battery")
    client = app.test_client()
    form = {"email": "csrf@example.org", "password": "correct horse battery"}
    refused = client.post("/login", data=form)
    assert refused.status_code == 400 and "CSRF" in refused.get_data(as_text=True)
    token = csrf_token_from(client.get("/login").get_data(as_text=True))
    assert client.post("/login", data={**form, "csrf_token": token}).status_code == 302
    # A session request to the API that changes state needs the header too...
    assert client.post("/api/tokens/", json={"name": "x"}).status_code == 400
    token = csrf_token_from(client.get("/account/tokens").get_data(as_text=True))
    created = client.post("/api/tokens/", json={"name": "x"}, headers={"X-CSRFToken": token})
    assert created.status_code == 201
    # ...but a token request carries no cookie to forge, so it needs none.
    fresh = app.test_client()
    response = fresh.post("/api/tokens/", json={"name": "y"}, headers={"Authorization": f"Token {created.get_json()['key']}"})
    assert response.status_code == 201
