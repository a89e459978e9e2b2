"""Settings: embedded defaults, and a wrong value stops start-up with one line."""
from __future__ import annotations

import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from annotate import config, create_app
from annotate.config import ConfigError

REPO = Path(__file__).resolve().parent.parent


def test_defaults_use_sqlite_and_embedded_redis_under_instance(tmp_path):
    settings = config.load(tmp_path, env={})
    assert settings["DATABASE_URL"] == f"sqlite:///{tmp_path / 'annotate.db'}"
    assert settings["REDIS_URL"] is None
    assert settings["MEDIA_ROOT"] == str(tmp_path / "media")


def test_the_secret_key_is_generated_once_into_instance(tmp_path):
    first = config.load(tmp_path, env={})["SECRET_KEY"]
    assert len(first) == 64
    assert stat.S_IMODE((tmp_path / "secret_key").stat().st_mode) == 0o600
    assert config.load(tmp_path, env={})["SECRET_KEY"] == first
    assert config.load(tmp_path, env={"SECRET_KEY": "from env"})["SECRET_KEY"] == "from env"


@pytest.mark.parametrize("env,words", [
    ({"DATABASE_URL": "not a url"}, "DATABASE_URL is not a database URL"),
    ({"DATABASE_URL": "mysql://x@y/z"}, "DATABASE_URL must be sqlite:///... or postgresql+psycopg://..."),
    ({"REDIS_URL": "localhost:6379"}, "REDIS_URL must start with redis://"),
    ({"LOGIN_MAX_FAILURES": "five"}, "LOGIN_MAX_FAILURES must be a whole number"),
    ({"DEADLINE_WINDOW_SECONDS": "a day"}, "DEADLINE_WINDOW_SECONDS must be a whole number, not 'a day'"),
    ({"DEADLINE_WINDOW_SECONDS": "86400000"}, "DEADLINE_WINDOW_SECONDS must be at most 2592000, not 86400000"),
    ({"QUALIFICATION_RETAKE_AFTER_SECONDS": "-60"}, "QUALIFICATION_RETAKE_AFTER_SECONDS must be at least 0, not -60"),
])
def test_malformed_values_are_refused_by_name(tmp_path, env, words):
    with pytest.raises(ConfigError, match=words.replace(".", r"\.").replace("+", r"\+")):
        config.load(tmp_path, env=env)


def test_matching_settings_default_to_a_day_and_15_minutes(tmp_path):
    def matching_settings(env):
        settings = config.load(tmp_path, env=env)
        return settings["DEADLINE_WINDOW_SECONDS"], settings["QUALIFICATION_RETAKE_AFTER_SECONDS"]

    assert matching_settings({}) == (24 * 3600, 15 * 60)
    assert matching_settings({"DEADLINE_WINDOW_SECONDS": "7200", "QUALIFICATION_RETAKE_AFTER_SECONDS": "0"}) == (7200, 0)


def test_a_bad_matching_setting_stops_create_app_naming_the_variable(tmp_path, redis_url):
    with pytest.raises(ConfigError, match="^QUALIFICATION_RETAKE_AFTER_SECONDS must be a whole number, not '15m'$"):
        create_app({"INSTANCE_PATH": str(tmp_path), "DATABASE_URL": f"sqlite:///{tmp_path}/x.db",
                    "REDIS_URL": redis_url, "QUALIFICATION_RETAKE_AFTER_SECONDS": "15m"})


def test_postgresql_urls_get_the_installed_driver(tmp_path):
    url = config.load(tmp_path, env={"DATABASE_URL": "postgresql://u:p@h/db"})["DATABASE_URL"]
    assert url == "postgresql+psycopg://u:p@h/db"


def test_an_unreachable_database_stops_start_up(tmp_path, redis_url):
    with pytest.raises(ConfigError, match="DATABASE_URL: cannot connect to the database"):
        create_app({"INSTANCE_PATH": str(tmp_path), "DATABASE_URL": "postgresql+psycopg://nobody@127.0.0.1:1/none",
                    "REDIS_URL": redis_url}, check_services=True)


def test_an_unreachable_redis_stops_start_up(tmp_path):
    with pytest.raises(ConfigError, match="REDIS_URL: cannot reach Redis"):
        create_app({"INSTANCE_PATH": str(tmp_path), "DATABASE_URL": f"sqlite:///{tmp_path}/x.db",
                    "REDIS_URL": "redis://127.0.0.1:1/0"}, check_services=True)


def test_the_command_line_says_what_is_wrong_in_one_line(tmp_path):
    env = {**os.environ, "INSTANCE_PATH": str(tmp_path), "DATABASE_URL": "postgresql://nobody@127.0.0.1:1/none",
           "REDIS_URL": "redis://127.0.0.1:1/0"}
    done = subprocess.run([sys.executable, "-m", "annotate", "db", "upgrade"], cwd=REPO, env=env,
                          capture_output=True, text=True, timeout=60)
    assert done.returncode != 0
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("annotate: DATABASE_URL: cannot connect"), done.stderr
