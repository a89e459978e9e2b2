"""Signing up, in and out, as a person does in the browser."""
from __future__ import annotations

import datetime as dt

from annotate.extensions import db
from annotate.models import User


def test_sign_up_creates_an_annotator_who_is_signed_in(client, app):
    response = client.post("/signup", data={"name": "Ada", "email": "Ada@Example.org", "password": "long enough pw"})
    assert response.status_code == 302
    page = client.get("/").get_data(as_text=True)
    assert "Hello, Ada" in page
    assert "Your roles: <strong>annotator</strong>" in page
    with app.app_context():
        user = db.session.query(User).filter_by(email="ada@example.org").one()
        assert user.password_hash.startswith("$argon2id$")
        assert "long enough pw" not in user.password_hash
        assert (user.is_requester, user.is_operator) == (False, False)


def test_sign_up_refuses_bad_input_with_words(client, people):
    taken = people.make()
    cases = [
        ({"name": "A", "email": "not-an-email", "password": "long enough pw"}, "is not an email address"),
        ({"name": "", "email": "a@example.org", "password": "long enough pw"}, "a name is required"),
        ({"name": "A", "email": "a@example.org", "password": "short"}, "at least 10 characters"),
        ({"name": "A", "email": taken.email.upper(), "password": "long enough pw"}, "already exists"),
    ]
    for form, words in cases:
        response = client.post("/signup", data=form)
        assert response.status_code in (400, 409)
        assert words in response.get_data(as_text=True)
    assert client.get("/").status_code == 302  # still nobody signed in


def test_sign_in_and_out(client, auth, people):
    person = people.make()
    assert auth.login(person).status_code == 302
    assert "Hello, Test Person" in client.get("/").get_data(as_text=True)
    auth.logout()
    response = client.get("/")
    assert response.status_code == 302 and response.headers["Location"].endswith("/login")


def test_wrong_password_and_unknown_email_read_the_same(client, auth, people):
    person = people.make()
    wrong = auth.login(person, password="not the password")
    unknown = client.post("/login", data={"email": "nobody@example.org", "password": "whatever pw"})
    assert wrong.status_code == unknown.status_code == 400
    assert "wrong email or password" in wrong.get_data(as_text=True)
    assert "wrong email or password" in unknown.get_data(as_text=True)


def test_repeated_failures_lock_the_account_even_for_the_right_password(client, auth, people, app):
    person = people.make()
    for _ in range(app.config["LOGIN_MAX_FAILURES"]):
        auth.login(person, password="guess guess guess")
    locked = auth.login(person)
    assert locked.status_code == 429
    assert "too many failed sign-ins: try again in 15 minutes" in locked.get_data(as_text=True)
    # Once the lock runs out, the right password works again.
    with app.app_context():
        with db.transaction() as session:
            session.get(User, person.id).locked_until = dt.datetime.now(dt.UTC) - dt.timedelta(seconds=1)
    assert auth.login(person).status_code == 302


def test_sign_in_starts_a_fresh_session(client, auth, people):
    person = people.make()
    with client.session_transaction() as session:
        session["planted"] = "by an attacker"
    auth.login(person)
    with client.session_transaction() as session:
        assert "planted" not in session
        assert session["_user_id"] == str(person.id)


def test_session_cookie_is_http_only_and_same_site(client, auth, people):
    person = people.make()
    response = auth.login(person)
    cookie = response.headers["Set-Cookie"]
    assert "HttpOnly" in cookie and "SameSite=Lax" in cookie


def test_next_only_goes_to_our_own_pages(client, people):
    person = people.make()
    response = client.post("/login?next=https://evil.example/", data={"email": person.email, "password": person.password})
    assert response.headers["Location"] == "/"
    client.post("/logout")
    response = client.post("/login?next=/account/tokens", data={"email": person.email, "password": person.password})
    assert response.headers["Location"] == "/account/tokens"


def test_a_signed_out_visitor_is_sent_to_sign_in(client):
    response = client.get("/account/tokens")
    assert response.status_code == 302
    assert "/login?next=/account/tokens" in response.headers["Location"]
