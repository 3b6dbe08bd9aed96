"""Every text a resident sends is readable by a broker: on its item, in their history, in the API.

A text the gateway could not place used to become an "Sms niet begrepen" item that showed the words
nowhere, and ten such texts were ten items. The same request texted twice was stored twice.
"""

from __future__ import annotations

from sqlalchemy import select

from models import Callback, Listing, Message
from tests.conftest import api_get
from tests.dashboard_support import logged_in, make_brokers

RESIDENT = "+31612345678"
TEXTS = ["Ik zoek hulp met boodschappen 2034", "vragg boodschapen 2034", "<b>help</b> with my garden please"]


def replies(fake, to: str = RESIDENT) -> list[str]:  # type: ignore[no-untyped-def]
    return [m["Body"] for m in fake.messages() if m["To"] == to]


def test_texts_nobody_could_place_gather_on_one_item_the_broker_can_read(app, twilio, fake_twilio, client, db):
    for body in TEXTS:
        assert twilio.sms(RESIDENT, body).status_code == 200

    [item] = db.scalars(select(Callback)).all()
    assert (item.reason, item.status) == ("unrecognised_message", "open")
    assert [m.callback_id for m in db.scalars(select(Message).where(Message.direction == "inbound"))] == [item.id] * 3
    # Each text is answered: a person will read it, and how to ask or offer next time.
    answers = replies(fake_twilio)
    assert len(answers) == 3 and all("VRAAG" in a and "AANBOD" in a for a in answers)

    [callback] = api_get(client, "/api/v1/callbacks")["callbacks"]
    assert callback["message"] == "\n".join(TEXTS)

    make_brokers(app)
    page = logged_in(app, "mila@buuv.example").get(f"/dashboard/items/{item.id}").get_data(as_text=True)
    section = page.split('id="texts"', 1)[1].split("</section>", 1)[0]
    shown = [section.index(body) for body in TEXTS[:2]]
    assert shown[1] < shown[0]  # newest first
    assert "&lt;b&gt;help&lt;/b&gt; with my garden please" in section and "<b>help</b>" not in section
    assert section.count("bij dit item") == 3


def test_a_new_item_gathers_again_once_the_broker_closed_the_last(app, twilio, db):
    twilio.sms(RESIDENT, "hallo?")
    first = db.scalars(select(Callback)).one()
    first.status, first.dedupe_key = "done", None  # a broker answered it
    db.commit()
    twilio.sms(RESIDENT, "nog een vraag")
    db.expire_all()
    items = db.scalars(select(Callback).order_by(Callback.id)).all()
    assert [(c.status, c.reason) for c in items] == [("done", "unrecognised_message"),
                                                     ("open", "unrecognised_message")]
    newest = db.scalars(select(Message).where(Message.body == "nog een vraag")).one()
    assert newest.callback_id == items[1].id


def test_other_texts_of_the_resident_show_in_their_history_on_any_item(app, twilio, db):
    twilio.sms(RESIDENT, "VRAAG boodschappen 2034")
    twilio.sms(RESIDENT, "Het mag ook volgende week")
    make_brokers(app)
    request_item = db.scalars(select(Callback).where(Callback.reason == "new_listing")).one()
    page = logged_in(app, "mila@buuv.example").get(f"/dashboard/items/{request_item.id}").get_data(as_text=True)
    section = page.split('id="texts"', 1)[1].split("</section>", 1)[0]
    assert section.index("Het mag ook volgende week") < section.index("VRAAG boodschappen 2034")


def test_the_same_request_texted_twice_is_one_listing_answered_twice(twilio, fake_twilio, db):
    twilio.sms(RESIDENT, "VRAAG boodschappen 2034")
    twilio.sms(RESIDENT, "VRAAG boodschappen 2034")
    [listing] = db.scalars(select(Listing)).all()
    assert [c.reason for c in db.scalars(select(Callback))] == ["new_listing"]
    first, second = replies(fake_twilio)
    assert first == second and first.startswith("Dank u! Uw vraag (boodschappen)")
    assert [m.listing_id for m in db.scalars(select(Message).where(Message.direction == "inbound"))] == [listing.id] * 2
    # Another request is another listing.
    twilio.sms(RESIDENT, "VRAAG vervoer naar de dokter 2034")
    db.expire_all()
    assert len(db.scalars(select(Listing)).all()) == 2
