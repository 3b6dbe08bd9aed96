"""Privacy rights: export everything held about a resident, and erase it for real.

The completeness tests walk ``Base.metadata``: a table or text column added without a rule in
``models.privacy.COLUMNS`` fails them, and so does a row about the resident missing from the export
or a trace of them left anywhere in the database after erasure.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from typing import Any

import pytest
from sqlalchemy import JSON, String, Text, func, select

from gateway.database import get_database
from models import AuditEvent, Base, Listing, Match, Message, Resident
from models.audit import audit
from models.outbox import queue_sms
from models.privacy import COLUMNS, EXPORTED, NOT_ABOUT_RESIDENTS, erase_resident, export_resident, is_erased
from models.queue import queue_callback
from models.residents import find_resident
from sms.flows import handle_inbound
from tests.call_simulator import SimulatedCall, flask_poster
from tests.conftest import API_TOKEN, ROOT
from tests.delivery_support import HELPER, REQUESTER, add_listing, bodies, post_match
from workers.sending import deliver

TOKEN = {"Authorization": f"Bearer {API_TOKEN}"}
# The requester's number in every form it may have been written in.
REQUESTER_FORMS = ("+31612345002", "0612345002", "06-12345002", "612345002", "%2B31612345002")
# Words only the requester ever wrote or keyed.
REQUESTER_WORDS = ("Zonnebloemstraat", "Kerkpad", "mevrouw Jansen", "2034")


def _text_columns(table: Any) -> list[Any]:
    return [c for c in table.columns if isinstance(c.type, (String, Text, JSON))]


# --- completeness over the schema -------------------------------------------------------------------


def _unclassified(metadata: Any) -> list[str]:
    problems = []
    for name, table in metadata.tables.items():
        if name in NOT_ABOUT_RESIDENTS:
            continue
        if name not in COLUMNS or name not in EXPORTED:
            problems.append(f"table {name!r}: add it to models.privacy.COLUMNS and EXPORTED (or NOT_ABOUT_RESIDENTS)")
            continue
        missing = {c.name for c in _text_columns(table)} - set(COLUMNS[name])
        if missing:
            problems.append(f"{name}: no privacy rule for {sorted(missing)}")
    return problems


def test_every_table_and_text_column_has_a_rule():
    """A new table, or a new text column, fails here until it says what erasure does to it."""
    assert _unclassified(Base.metadata) == []
    assert set(COLUMNS) <= set(Base.metadata.tables), "a rule for a table that no longer exists"
    for name, rules in COLUMNS.items():
        assert set(rules) <= set(Base.metadata.tables[name].columns.keys()), name


def test_a_table_added_without_a_rule_is_caught():
    from sqlalchemy import Column, ForeignKey, Integer, MetaData, Table

    metadata = MetaData()
    for table in Base.metadata.tables.values():
        table.to_metadata(metadata)
    Table("resident_notes", metadata, Column("id", Integer, primary_key=True),
          Column("resident_id", ForeignKey("residents.id")), Column("text", Text))
    metadata.tables["listings"].append_column(Column("nickname", String(40)))
    assert sorted(_unclassified(metadata)) == sorted([
        "listings: no privacy rule for ['nickname']",
        "table 'resident_notes': add it to models.privacy.COLUMNS and EXPORTED (or NOT_ABOUT_RESIDENTS)",
    ])


def test_tables_said_to_hold_nothing_about_residents_do_not_point_at_them():
    for name in NOT_ABOUT_RESIDENTS:
        table = Base.metadata.tables[name]
        assert not [fk for fk in table.foreign_keys if fk.column.table.name in COLUMNS], name


# --- a resident with something in every table ---------------------------------------------------------


def _everything(app, webhooks, fake_twilio) -> dict[str, Any]:  # type: ignore[no-untyped-def]
    """The requester phones (a recorded request), texts, is matched with a helper, texts them."""
    call = SimulatedCall(flask_poster(webhooks), from_=REQUESTER).start()
    call.press("1").press("1").press("2034").press("1").press("1").record(5)
    webhooks.sms(REQUESTER, "VRAAG boodschappen Zonnebloemstraat 2034")
    offer_id = add_listing(app, HELPER, "offer", postcode="2011")
    with get_database(app).transaction() as session:
        requester = find_resident(session, REQUESTER)
        requester.name = "mevrouw Jansen"
        request = session.scalars(select(Listing).where(Listing.resident_id == requester.id,
                                                        Listing.channel == "sms")).one()
        request_id = request.id
        item = queue_callback(session, "callback_requested", resident_id=requester.id,
                              dedupe_key="test:requester:callback")
        item.note = "Woont aan de Kerkpad, bel na 10 uur op 06-12345002"
        audit(session, "broker.note", actor_type="broker", object_type="resident", object_id=requester.id,
              detail={"said": "nummer 0612345002"})
    response = post_match(app.test_client(), request_id, offer_id, note="mevrouw Jansen, Kerkpad")
    assert response.status_code == 201
    webhooks.delivered(fake_twilio, HELPER)
    webhooks.sms(HELPER, "ja")
    webhooks.sms(REQUESTER, "Ik woon aan het Kerkpad, tot zaterdag")
    assert bodies(fake_twilio, HELPER)[-1].endswith("Ik woon aan het Kerkpad, tot zaterdag")
    with get_database(app).transaction() as session:
        requester = find_resident(session, REQUESTER)
        return {"resident_id": requester.id, "request_id": request_id, "offer_id": offer_id,
                "match_id": response.get_json()["id"], "recording_sid": call.last_recording_sid}


def _rows_about(session, resident_id: int) -> dict[str, set[int]]:  # type: ignore[no-untyped-def]
    """Every row of every table that points at the resident (a new table with a resident's key is found
    here by itself), and the matches of their listings."""
    found: dict[str, set[int]] = {"residents": {resident_id}}
    for table in Base.metadata.sorted_tables:
        for fk in table.foreign_keys:
            if fk.column.table.name == "residents":
                found.setdefault(table.name, set()).update(
                    session.scalars(select(table.c.id).where(fk.parent == resident_id)))
    listings = found.get("listings") or {-1}
    found["matches"] = set(session.scalars(select(Match.id).where(
        Match.request_id.in_(listings) | Match.offer_id.in_(listings))))
    return found


def test_the_export_holds_every_row_about_the_resident(notify_app, webhooks, fake_twilio, session):
    made = _everything(notify_app, webhooks, fake_twilio)
    with get_database(notify_app).transaction() as tx:
        exported = export_resident(tx, tx.get(Resident, made["resident_id"]))
        about = _rows_about(tx, made["resident_id"])
    json.dumps(exported)  # plain JSON values
    for table, ids in about.items():
        section = "resident" if table == "residents" else table
        exported_ids = {exported["resident"]["id"]} if table == "residents" else {r["id"] for r in exported[section]}
        assert ids <= exported_ids, f"{table}: {sorted(ids - exported_ids)} missing from the export"
    assert exported["resident"]["phone"] == REQUESTER and exported["resident"]["name"] == "mevrouw Jansen"
    assert [r["recording_sid"] for r in exported["recordings"]] == [made["recording_sid"]]
    assert any("Zonnebloemstraat" in m["body"] for m in exported["messages"])
    assert any(e["action"] == "broker.note" for e in exported["audit_events"])
    assert [m["id"] for m in exported["matches"]] == [made["match_id"]]
    # The other person's data is not theirs to take home.
    assert HELPER not in json.dumps(exported)


def _all_text(session) -> list[tuple[str, str, str]]:  # type: ignore[no-untyped-def]
    """(table, column, value) of every text value in the database."""
    found = []
    for table in Base.metadata.sorted_tables:
        columns = _text_columns(table)
        if not columns:  # counts and dates only
            continue
        for row in session.execute(select(*columns)):
            for column, value in zip(columns, row):
                if value is not None:
                    found.append((table.name, column.name, value if isinstance(value, str) else json.dumps(value)))
    return found


def test_erasure_leaves_no_number_or_word_of_theirs_and_keeps_the_counts(notify_app, webhooks, fake_twilio,
                                                                         session):
    made = _everything(notify_app, webhooks, fake_twilio)
    counts = {name: session.scalar(select(func.count()).select_from(table))
              for name, table in Base.metadata.tables.items()}
    with notify_app.app_context(), get_database(notify_app).transaction() as tx:
        erasure = erase_resident(tx, tx.get(Resident, made["resident_id"]), actor_type="system", via="test")
    assert erasure is not None and erasure.partners_told == 1 and erasure.recordings == 1

    session.expire_all()
    leftovers = [(t, c, v) for t, c, v in _all_text(session)
                 if any(form in v for form in REQUESTER_FORMS + REQUESTER_WORDS)]
    assert leftovers == []
    # Twilio's copy of the recording is gone too, and ours says so.
    assert fake_twilio.deleted_recordings() == [made["recording_sid"]]
    recorded = session.scalars(select(Listing).where(Listing.recording_sid == made["recording_sid"])).one()
    assert not recorded.has_recording and recorded.recording_deleted_at is not None
    # The rows that counts need are all still there (a few were added: the partner's news, the audit line).
    for name, before in counts.items():
        assert session.scalar(select(func.count()).select_from(Base.metadata.tables[name])) >= before, name
    resident = session.get(Resident, made["resident_id"])
    assert is_erased(resident) and resident.opted_out and resident.name is None and resident.postcode is None
    assert session.get(Match, made["match_id"]).status == "cancelled"
    # The helper keeps their own data and hears that the appointment is off.
    helper = find_resident(session, HELPER)
    assert helper is not None and session.get(Listing, made["offer_id"]).postcode == "2011"
    assert bodies(fake_twilio, HELPER)[-1].startswith("BUUV: de afspraak voor boodschappen gaat niet door.")
    # Audited without the number.
    [event] = session.scalars(select(AuditEvent).where(AuditEvent.action == "resident.erase")).all()
    assert event.object_id == str(made["resident_id"]) and event.detail["via"] == "test"
    assert not any(form in json.dumps(event.detail) for form in REQUESTER_FORMS)


def test_a_second_erasure_does_nothing(notify_app, session):
    add_listing(notify_app, REQUESTER, "request")
    with get_database(notify_app).transaction() as tx:
        resident = find_resident(tx, REQUESTER)
        assert erase_resident(tx, resident, actor_type="system", via="test") is not None
        assert erase_resident(tx, resident, actor_type="system", via="test") is None
    assert session.scalar(select(func.count()).where(AuditEvent.action == "resident.erase")) == 1


def test_jobs_queued_for_an_erased_resident_find_nothing_to_do(notify_app, fake_twilio, session):
    """A send job and an inbound job already in Redis when the erasure commits run afterwards and do nothing."""
    add_listing(notify_app, REQUESTER, "request")
    db = get_database(notify_app)
    with db.transaction() as tx:
        resident = find_resident(tx, REQUESTER)
        outbound = Message(direction="outbound", resident_id=resident.id, phone=REQUESTER, body="Uw vraag staat",
                           status="pending", purpose="reply", attempts=0)
        inbound = Message(direction="inbound", raw_from=REQUESTER, body="VRAAG Zonnebloemstraat",
                          status="received", twilio_sid="SM" + "a" * 32)
        tx.add_all([outbound, inbound])
        tx.flush()
        outbound_id, inbound_id = outbound.id, inbound.id
    with notify_app.app_context(), db.transaction() as tx:
        erase_resident(tx, find_resident(tx, REQUESTER), actor_type="system", via="test")
    sent_before = len(fake_twilio.messages())
    assert deliver(db, notify_app.config, outbound_id) is None
    with db.transaction() as tx:
        assert handle_inbound(tx, inbound_id) is None
    assert len(fake_twilio.messages()) == sent_before
    session.expire_all()
    assert session.get(Message, outbound_id).status == "blocked"
    assert session.get(Message, inbound_id).body == "" and session.get(Message, inbound_id).raw_from is None
    assert find_resident(session, REQUESTER) is None  # no resident was made again from the old message


def test_after_erasure_the_api_knows_neither_the_number_nor_the_id(notify_app, session):
    listing_id = add_listing(notify_app, REQUESTER, "request")
    client = notify_app.test_client()
    resident_id = session.scalars(select(Resident.id).where(Resident.phone == REQUESTER)).one()
    by_id = client.get(f"/api/v1/residents/{resident_id}", headers=TOKEN)
    assert by_id.status_code == 200 and by_id.get_json()["phone"] == REQUESTER
    assert client.get(f"/api/v1/residents/{REQUESTER}", headers=TOKEN).get_json()["id"] == resident_id
    with notify_app.app_context(), get_database(notify_app).transaction() as tx:
        erase_resident(tx, tx.get(Resident, resident_id), actor_type="system", via="test")
    assert client.get(f"/api/v1/residents/{REQUESTER}", headers=TOKEN).status_code == 404
    assert client.get(f"/api/v1/residents/{resident_id}", headers=TOKEN).status_code == 404
    listing = client.get(f"/api/v1/listings/{listing_id}", headers=TOKEN).get_json()
    assert listing["phone"] is None and listing["status"] == "cancelled" and listing["postcode"] is None
    assert client.get("/api/v1/residents/0", headers=TOKEN).status_code in (400, 404)
    assert client.get("/api/v1/residents/99999999999999999999999", headers=TOKEN).status_code == 404


# --- the commands -------------------------------------------------------------------------------------------


def _run(*args: str, database_url: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    from tests.test_cli import base_env

    return subprocess.run([sys.executable, "-m", "gateway.cli", *args], cwd=ROOT, env=base_env(database_url),
                          input=stdin, capture_output=True, text=True, timeout=120)


@pytest.fixture
def cli_app(database_url, fake_twilio):  # type: ignore[no-untyped-def]
    """An app on the database the commands will use; outside the demo erase needs Twilio's settings."""
    from tests.conftest import app_config, running_app

    with running_app(app_config(database_url, fake_twilio)) as app:
        yield app


def test_export_and_erase_from_the_command_line(cli_app, database_url, fake_twilio):
    add_listing(cli_app, REQUESTER, "request")
    env_url = cli_app.config["DATABASE_URL"]
    exported = _run("export-resident", "06-12345002", database_url=env_url)
    assert exported.returncode == 0, exported.stderr
    data = json.loads(exported.stdout)
    assert data["resident"]["phone"] == REQUESTER and len(data["listings"]) == 1

    extra = {"TWILIO_ACCOUNT_SID": cli_app.config["TWILIO_ACCOUNT_SID"],
             "TWILIO_AUTH_TOKEN": cli_app.config["TWILIO_AUTH_TOKEN"],
             "TWILIO_PHONE_NUMBER": cli_app.config["TWILIO_PHONE_NUMBER"],
             "TWILIO_API_BASE_URL": fake_twilio.base_url}
    from tests.test_cli import base_env

    def erase(*args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "gateway.cli", "erase-resident", *args], cwd=ROOT,
                              env={**base_env(env_url), **extra}, input=stdin, capture_output=True, text=True,
                              timeout=120)

    refused = erase(REQUESTER, stdin="n\n")
    assert refused.returncode != 0 and "nothing erased" in refused.stderr
    with get_database(cli_app).transaction() as tx:
        assert find_resident(tx, REQUESTER) is not None
    done = erase(REQUESTER, "--yes")
    assert done.returncode == 0, done.stderr
    assert REQUESTER not in done.stdout and "erased resident" in done.stdout
    with get_database(cli_app).transaction() as tx:
        assert find_resident(tx, REQUESTER) is None
    again = erase(REQUESTER, "--yes")
    assert again.returncode != 0 and "no resident with that number" in again.stderr


@pytest.mark.parametrize("phone", ["twaalf", "12", "+3161234"])
def test_a_phone_that_is_not_a_number_is_a_clear_error(tmp_path, phone):
    from models.migrate import upgrade
    from sqlalchemy import create_engine

    url = f"sqlite:///{tmp_path / 'x.sqlite3'}"
    upgrade(create_engine(url))
    for command in (("export-resident", phone), ("erase-resident", phone, "--yes")):
        result = _run(*command, database_url=url)
        assert result.returncode != 0
        assert "not a phone number" in result.stderr and "Traceback" not in result.stderr


def test_an_unknown_number_is_a_clear_error(tmp_path):
    from models.migrate import upgrade
    from sqlalchemy import create_engine

    url = f"sqlite:///{tmp_path / 'x.sqlite3'}"
    upgrade(create_engine(url))
    result = _run("export-resident", REQUESTER, database_url=url)
    assert result.returncode != 0 and "no resident with that number" in result.stderr
