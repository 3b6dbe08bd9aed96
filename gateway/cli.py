"""The `buurtlijn` command: demo, database, worker, accounts."""

from __future__ import annotations

import getpass
import logging
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterable
from typing import Any

import click

from models.vocabulary import BROKER_ROLES as ROLES


# The worker and its dispatcher run one thing at a time and use one pooled connection at once: a pool of
# two and one more in a pinch bounds them whatever the web's pool is (README, "Deploying").
ONE_AT_A_TIME = {"BUURTLIJN_DB_POOL_SIZE": 2, "BUURTLIJN_DB_MAX_OVERFLOW": 1}


def _app(needs: Iterable[str] | None = None, settings: dict[str, Any] | None = None):  # type: ignore[no-untyped-def]
    """The app, or one line naming the setting that stops it (``needs``: see gateway.config)."""
    from gateway import create_app
    from gateway.config import ConfigError

    try:
        return create_app(settings, needs=needs)
    except ConfigError as error:  # a setting to fix, not a bug: say which, without a traceback
        raise click.ClickException(str(error)) from error


@click.group()
def main() -> None:
    """Buurtlijn: the BUUV phone and SMS gateway."""
    from gateway.config import ConfigError, check_log_level

    level = os.environ.get("LOG_LEVEL") or "INFO"
    try:
        check_log_level("LOG_LEVEL", level)
    except ConfigError as error:
        raise click.ClickException(str(error)) from error
    logging.basicConfig(level=level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    from gateway.logs import install_scrubber

    install_scrubber()
    logging.getLogger("alembic.runtime.plugins").setLevel(logging.WARNING)


@main.group()
def db() -> None:
    """Database schema."""


@db.command("upgrade")
def db_upgrade() -> None:
    """Bring the schema up to date (Alembic upgrade head). Safe to run twice."""
    from gateway.config import DATABASE_NEEDS
    from gateway.database import get_database
    from models.migrate import upgrade

    app = _app(DATABASE_NEEDS)
    upgrade(get_database(app).engine)
    click.echo("database schema is up to date")


@main.command("create-broker")
@click.argument("email")
@click.option("--name", required=True, help="The broker's name, as colleagues know it.")
@click.option("--role", type=click.Choice(ROLES), default="broker", show_default=True,
              help="viewer: the municipality's account, which sees the reports and nothing else.")
@click.option("--phone", default=None, help="The broker's own phone: the gateway calls it to call residents back.")
def create_broker_command(email: str, name: str, role: str, phone: str | None) -> None:
    """Create a broker account; the password is read from standard input."""
    from gateway.config import DATABASE_NEEDS
    from gateway.database import get_database
    from models.accounts import AccountError, create_broker
    from models.audit import audit
    from models.phones import InvalidPhoneNumber

    if sys.stdin.isatty():
        password = getpass.getpass("Password: ")
        if getpass.getpass("Password again: ") != password:
            raise click.ClickException("the passwords differ")
    else:
        password = sys.stdin.readline().rstrip("\r\n")
    app = _app(DATABASE_NEEDS)
    try:
        with get_database(app).transaction() as session:
            broker = create_broker(session, email=email, name=name, role=role, phone=phone, password=password)
            audit(session, "broker.create", actor_type="system", object_type="broker", object_id=broker.id,
                  detail={"role": role, "via": "cli"})
    except (AccountError, InvalidPhoneNumber) as exc:
        raise click.ClickException(str(exc)) from exc
    click.echo(f"created {role} {broker.email}")


@main.command("create-api-client")
@click.argument("name")
@click.option("--scope", type=click.Choice(["read", "write"]), required=True,
              help="read: the GET calls; write: also posting listings and matches.")
def create_api_client_command(name: str, scope: str) -> None:
    """Create a client of the JSON API; its bearer token is printed this once (only a hash is kept)."""
    from gateway.config import DATABASE_NEEDS
    from gateway.database import get_database
    from models.api_clients import ApiClientError, create_api_client
    from models.audit import audit

    app = _app(DATABASE_NEEDS)
    try:
        with get_database(app).transaction() as session:
            client, token = create_api_client(session, name, scope)
            audit(session, "api_client.create", actor_type="system", object_type="api_client", object_id=client.id,
                  detail={"name": client.name, "scope": scope, "via": "cli"})
    except ApiClientError as exc:
        raise click.ClickException(str(exc)) from exc
    click.echo(f"created API client {client.name!r} ({scope}); its token, shown only now:", err=True)
    click.echo(token)


@main.command()
@click.option("--every", type=int, default=0,
              help="Keep running: dispatch notifications as they come, and sweep every N seconds (0: sweep once).")
@click.option("--parent", type=int, default=None, hidden=True,
              help="The worker that started this dispatcher: end when it ends.")
def sweep(every: int, parent: int | None) -> None:
    """Enqueue everything still waiting; with --every, the worker's dispatcher."""
    from workers.jobs import sweep as run_sweep

    if parent is not None:
        from workers.lifetime import die_with_parent

        # SIGKILL: a dispatcher has nothing to tidy (a cut sweep is the next one's work).
        die_with_parent(parent, signal.SIGKILL)

    app = _app(settings=ONE_AT_A_TIME if every else None)
    if not every:
        with app.app_context():
            click.echo(f"enqueued {run_sweep()} job(s)")
        return
    from workers.dispatch import dispatch_forever

    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    try:
        dispatch_forever(app, every, stop)
    except KeyboardInterrupt:
        pass


@main.command()
@click.option("--burst", is_flag=True, help="Stop when the queues are empty.")
def worker(burst: bool) -> None:
    """The RQ worker, with its scheduler, on the app's queues, plus the periodic sweep."""
    from rq import SimpleWorker
    from rq.serializers import JSONSerializer

    from gateway.config import WORKER_NEEDS
    from gateway.jobs import get_queue
    from workers.queue import QUEUE_NAMES
    from workers.runtime import set_worker_app

    app = _app(WORKER_NEEDS, ONE_AT_A_TIME)
    set_worker_app(app)
    queue = get_queue(app)
    if queue.in_process:  # the demo, whose settings are not required, runs its jobs in-process
        raise click.ClickException("REDIS_URL is not set: without Redis, jobs run inside the web process")
    # The sweep runs as its own process: a thread here could hold a lock
    # (imports, logging, the connection pool) at the moment RQ forks its
    # scheduler, and the scheduler would wait on it forever. The dispatcher
    # and the scheduler end when this process ends, even by SIGKILL
    # (workers/lifetime.py): the kernel signals them, as nothing here can.
    from workers.lifetime import forks_die_with_this_process

    forks_die_with_this_process()
    sweeper = None
    if not burst:
        sweeper = subprocess.Popen(
            [sys.executable, "-m", "gateway.cli", "sweep", "--every", str(app.config["BUURTLIJN_SWEEP_SECONDS"]),
             "--parent", str(os.getpid())]
        )
    # SimpleWorker runs each job in this process instead of forking a work horse per
    # job: the database and Twilio connections stay open, about 8x the notifications
    # per second (bench/notifications.py). Jobs are short and idempotent; a job that
    # kills the process is recovered by the sweep like a killed worker.
    from redis.exceptions import ConnectionError as RedisConnectionError
    from redis.exceptions import TimeoutError as RedisTimeoutError

    log = logging.getLogger("buurtlijn.worker")
    backoff = 1.0
    try:
        while True:
            # Redis gone (a restart, a failover) ends RQ's loop with an error. The
            # rows are safe in PostgreSQL: wait, reconnect, and let the sweep
            # enqueue whatever the lost Redis held.
            try:
                rq_worker = SimpleWorker(
                    [queue.rq_queue(name) for name in QUEUE_NAMES], connection=queue.redis,
                    serializer=JSONSerializer,
                )
                # RQ writes three lines per job at INFO: at a hundred messages a second
                # that is noise (and CPU); what matters is logged by the jobs themselves.
                rq_worker.work(with_scheduler=True, burst=burst, logging_level=rq_log_level())
                # RQ's loop also ends, quietly, when Redis fails under it; only a
                # burst or a stop signal (SIGTERM, Ctrl+C) ends this worker.
                if burst or getattr(rq_worker, "_shutdown_requested_date", None) is not None:
                    break
                log.warning("worker loop ended (Redis unavailable?); restarting in %.0fs", backoff)
            except (RedisConnectionError, RedisTimeoutError) as exc:
                log.warning("Redis unavailable (%s); reconnecting in %.0fs", type(exc).__name__, backoff)
            time.sleep(backoff)
            backoff = min(backoff * 2, 15.0)
    finally:
        if sweeper is not None:
            sweeper.terminate()
            try:
                sweeper.wait(10)
            except subprocess.TimeoutExpired:
                sweeper.kill()


def rq_log_level() -> str:
    """RQ's own per-job lines only when debugging (LOG_LEVEL=DEBUG); its warnings always."""
    from gateway.logs import library_level

    return logging.getLevelName(library_level(os.environ.get("LOG_LEVEL")))


DEMO_PASSWORD = "buurtlijn-demo"


@main.command()
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=5000, show_default=True, type=int)
def demo(host: str, port: int) -> None:
    """Run Buurtlijn on this machine: SQLite, jobs in-process, nothing really sent."""
    from gateway.database import get_database
    from models.migrate import upgrade
    from workers.dispatch import dispatch_forever

    os.environ["BUURTLIJN_DEMO"] = "1"
    os.environ.setdefault("BUURTLIJN_API_TOKEN", "demo-api-token")
    os.environ.pop("REDIS_URL", None)
    base = f"http://{host}:{port}"
    os.environ.setdefault("PUBLIC_BASE_URL", base)
    app = _app()
    upgrade(get_database(app).engine)
    _seed_demo_brokers(app)
    stop = threading.Event()
    # The same loop the worker's dispatcher runs: here, on SQLite, a sweep every 10 s.
    threading.Thread(target=dispatch_forever, args=(app, 10, stop), daemon=True).start()
    click.echo(
        f"""
Buurtlijn demo is running (SQLite at {app.config['DATABASE_URL'].removeprefix('sqlite:///')}).

  Phone simulator (text or call as a resident):  {base}/simulator
  Brokers' dashboard:                            {base}/dashboard
      log in as makelaar@buuv.example, makelaar2@buuv.example or coordinator@buuv.example,
      password {DEMO_PASSWORD}
  API:  curl -H 'Authorization: Bearer {os.environ['BUURTLIJN_API_TOKEN']}' {base}/api/v1/listings

Outbound SMS and calls are shown in the simulator, never sent. Stop with Ctrl+C.
"""
    )
    from werkzeug.serving import run_simple

    run_simple(host, port, app, threaded=True, use_reloader=False)


def _seed_demo_brokers(app) -> None:  # type: ignore[no-untyped-def]
    from sqlalchemy import func, select

    from gateway.database import get_database
    from models import Broker
    from models.accounts import create_broker

    # Their own phones are not numbers the README has a resident text from (0612340001, …).
    with get_database(app).transaction() as session:
        if session.scalar(select(func.count(Broker.id))):
            return
        create_broker(session, email="makelaar@buuv.example", name="Mila (makelaar)", role="broker",
                      phone="+31612349001", password=DEMO_PASSWORD)
        create_broker(session, email="makelaar2@buuv.example", name="Bram (makelaar)", role="broker",
                      phone="+31612349003", password=DEMO_PASSWORD)
        create_broker(session, email="coordinator@buuv.example", name="Cor (coordinator)", role="coordinator",
                      phone="+31612349002", password=DEMO_PASSWORD)


@main.command("purge-recordings")
def purge_recordings() -> None:
    """Delete recordings older than BUURTLIJN_RECORDING_RETENTION_DAYS, at Twilio and here (the sweep does this too)."""
    from workers.voice_jobs import purge_expired_recordings

    app = _app()
    with app.app_context():
        deleted, failed = purge_expired_recordings(app)
    click.echo(f"deleted {deleted} recording(s)" + (f", {failed} failed (see the log)" if failed else ""))
    if failed:
        raise SystemExit(1)


def _e164(phone: str) -> str:
    """PHONE in E.164; a clear error (exit 1) for what is not a number, before anything else is needed."""
    from models.phones import InvalidPhoneNumber, parse_phone

    try:
        return parse_phone(phone).e164
    except InvalidPhoneNumber as error:
        raise click.ClickException(f"not a phone number: {phone!r} ({error})") from error


def _resident_by_phone(session, e164: str):  # type: ignore[no-untyped-def]
    from models.residents import find_resident

    resident = find_resident(session, e164)
    if resident is None:
        raise click.ClickException("no resident with that number (or erased already)")
    return resident


@main.command("export-resident")
@click.argument("phone")
def export_resident_command(phone: str) -> None:
    """Print everything Buurtlijn holds about the resident with PHONE, as JSON."""
    import json

    from gateway.config import DATABASE_NEEDS
    from gateway.database import get_database
    from models.audit import audit
    from models.privacy import export_resident

    e164 = _e164(phone)
    app = _app(DATABASE_NEEDS)
    with get_database(app).transaction() as session:
        resident = _resident_by_phone(session, e164)
        exported = export_resident(session, resident)
        audit(session, "resident.export", actor_type="system", object_type="resident", object_id=resident.id,
              detail={"via": "cli"})
    click.echo(json.dumps(exported, ensure_ascii=False, indent=2, sort_keys=True))


@main.command("erase-resident")
@click.argument("phone")
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
def erase_resident_command(phone: str, yes: bool) -> None:
    """Erase everything Buurtlijn holds about the resident with PHONE (recordings at Twilio too)."""
    from gateway.database import get_database
    from models.privacy import erase_resident, holdings

    e164 = _e164(phone)
    app = _app()  # as purge-recordings: it deletes recordings at Twilio and tells match partners
    database = get_database(app)
    with database.transaction() as session:
        held = holdings(session, _resident_by_phone(session, e164))
        summary = (f"{len(held.listings)} listing(s), {len(held.messages)} message(s), {len(held.calls)} call(s), "
                   f"{len(held.callbacks)} queue item(s), {len(held.matches)} match(es)")
    if not yes and not click.confirm(f"Erase this resident: their number, name, postcode, notes and the words of "
                                     f"{summary}, and their recordings? This cannot be undone", err=True):
        raise click.ClickException("nothing erased")
    with app.app_context(), database.transaction() as session:
        erasure = erase_resident(session, _resident_by_phone(session, e164), actor_type="system", via="cli")
    assert erasure is not None
    click.echo(f"erased resident {erasure.resident_id}: {summary}; "
               f"{erasure.recordings} recording(s) to delete, {erasure.partners_told} match partner(s) told")


if __name__ == "__main__":
    main()
