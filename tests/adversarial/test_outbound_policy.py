"""Toll fraud: Buurtlijn texts and dials only where the outbound policy (models/destinations.py) allows.

Every attack goes through the real path — signed webhooks, the sending code,
the real ``twilio`` client against the fake Twilio — and the proof is what
the fake Twilio received: nothing at all for a refused number.
"""

from __future__ import annotations

import pytest
from sqlalchemy import select, update

import texts
from models import AuditEvent, Call, Callback, Match, Message, Resident
from models.destinations import number_refusal, refusal
from tests.call_simulator import SimulatedCall, flask_poster
from tests.conftest import ACCOUNT_SID, GATEWAY_NUMBER, PUBLIC_BASE, TwilioWebhooks, parse_twiml
from tests.dashboard_support import MILA_PHONE, post, seed_listing
from tests.delivery_support import LANDLINE_HELPER, REQUESTER, add_listing, bodies, post_match

# number -> what the policy says (None: allowed). The numbers of the attacks in issue 12.
NUMBERS = {
    "+319001234567": "number_not_allowed",  # 0900: premium rate
    "+31906123456": "number_not_allowed",  # 0906: premium rate (adult)
    "+319091234567": "number_not_allowed",  # 0909: premium rate (entertainment)
    "+31841234567": "number_not_allowed",  # 084: UAN / personal assistant numbers
    "+31871234567": "number_not_allowed",  # 087: UAN
    "+31881234567": "number_not_allowed",  # 088: company numbers (UAN)
    "+31850123456": "number_not_allowed",  # 085: VoIP
    "+3197012345678": "number_not_allowed",  # 097: machine to machine (phonenumbers says mobile)
    "+31800123456": "number_not_allowed",  # 0800: toll-free, costs us to dial, takes no SMS
    "+449098790000": "country_not_allowed",  # +44 909: British premium rate
    "+447911123456": "country_not_allowed",  # a British mobile: not a country we serve
    "+33612345678": "country_not_allowed",  # a French mobile
    "+31235123456": None,  # a Haarlem landline
    "+31612345678": None,  # a Dutch mobile
    "+32470123456": None,  # a Belgian mobile
    "+4915112345678": None,  # a German mobile
}


def _to(fake_twilio, number: str) -> list:  # type: ignore[no-untyped-def]
    """Every request Twilio received about ``number`` (a message or a call)."""
    return [r for r in fake_twilio.requests if r.method == "POST" and r.form.get("To") == number]


def test_the_policy_over_the_table(app):
    assert {number: number_refusal(number, app.config) for number in NUMBERS} == NUMBERS


def test_replies_go_only_to_allowed_numbers(app, twilio, fake_twilio, db):
    """A text from each number is stored and answered; the answer reaches Twilio only for allowed numbers."""
    for number in NUMBERS:
        assert twilio.sms(number, "HULP").status_code == 200
    db.expire_all()
    outcome = {}
    for number in NUMBERS:
        [reply] = db.scalars(select(Message).where(Message.direction == "outbound", Message.phone == number)).all()
        sent = _to(fake_twilio, number)
        assert (reply.status == "blocked") == (sent == []), number
        outcome[number] = reply.error_message if reply.status == "blocked" else None
    assert outcome == NUMBERS
    # A resident's own number refused: shown to a broker (as Twilio's 21211 is), never silently dropped.
    for number, reason in NUMBERS.items():
        resident = db.scalars(select(Resident).where(Resident.phone == number)).one()
        items = db.scalars(select(Callback.reason).where(Callback.resident_id == resident.id)).all()
        assert ("bad_number" in items) == (reason is not None), number
        assert (resident.number_status == "refused") == (reason is not None), number


def test_daily_sms_caps_per_number_and_in_total(app, twilio, fake_twilio, db):
    app.config.update(BUURTLIJN_SMS_DAILY_CAP=2, BUURTLIJN_SMS_DAILY_TOTAL_CAP=5)
    for _ in range(3):
        twilio.sms("+31612345678", "HULP")
    assert len(_to(fake_twilio, "+31612345678")) == 2
    for n in range(4):
        twilio.sms(f"+3161234500{n}", "HULP")
    assert len(fake_twilio.messages()) == 5
    db.expire_all()
    blocked = db.scalars(select(Message.error_message).where(Message.status == "blocked").order_by(Message.id))
    assert blocked.all() == ["daily_cap", "daily_total_cap"]


# --- calls we place ---------------------------------------------------------------------------------


def _propose(app, request_id: int, offer_id: int) -> int:  # type: ignore[no-untyped-def]
    response = post_match(app.test_client(), request_id, offer_id)
    assert response.status_code == 201, response.get_json()
    return response.get_json()["id"]


@pytest.mark.parametrize("why_a_call", ["21614", "prefers_voice"])
def test_a_proposal_is_never_a_call_to_a_premium_number(notify_app, fake_twilio, session, why_a_call):
    """A 21614 made a 0900 helper a 'landline' and the proposal a call to it: now nothing is dialled."""
    helper = "+319001234567"
    request_id = add_listing(notify_app, REQUESTER, "request")
    offer_id = add_listing(notify_app, helper, "offer", prefers_voice=why_a_call == "prefers_voice")
    if why_a_call == "21614":  # what Twilio's 21614 leaves on the resident (workers/sending.py)
        session.execute(update(Resident).where(Resident.phone == helper)
                        .values(number_status="not_mobile", line_type="fixed_line"))
        session.commit()
    match_id = _propose(notify_app, request_id, offer_id)

    assert _to(fake_twilio, helper) == [] and fake_twilio.calls() == []
    session.expire_all()
    call = session.scalars(select(Call).where(Call.purpose == "notification")).one()
    assert (call.status, call.data["blocked"]) == ("blocked", "number_not_allowed")
    assert session.get(Match, match_id).status == "expired"  # back to a broker with fresh suggestions
    resident = session.scalars(select(Resident).where(Resident.phone == helper)).one()
    reasons = set(session.scalars(select(Callback.reason).where(Callback.resident_id.in_([resident.id]))))
    assert "bad_number" in reasons


def test_daily_call_caps_per_number_and_in_total(notify_app, fake_twilio, session):
    notify_app.config.update(BUURTLIJN_CALL_DAILY_CAP=1, BUURTLIJN_CALL_DAILY_TOTAL_CAP=2)
    other_landline = "+31235551299"
    # Two offers of one helper (an offer helps one neighbour at a time): two proposals to one number.
    _propose(notify_app, add_listing(notify_app, REQUESTER, "request"), add_listing(notify_app, LANDLINE_HELPER, "offer"))
    _propose(notify_app, add_listing(notify_app, "+31612345009", "request"),
             add_listing(notify_app, LANDLINE_HELPER, "offer", category="chores"))
    assert len(_to(fake_twilio, LANDLINE_HELPER)) == 1  # the second proposal is over the number's cap
    _propose(notify_app, add_listing(notify_app, "+31612345010", "request"),
             add_listing(notify_app, other_landline, "offer"))
    _propose(notify_app, add_listing(notify_app, "+31612345011", "request"),
             add_listing(notify_app, "+31235551298", "offer"))
    assert len(fake_twilio.calls()) == 2  # the fourth is over the day's total
    session.expire_all()
    blocked = session.scalars(select(Call).where(Call.status == "blocked").order_by(Call.id)).all()
    assert [c.data["blocked"] for c in blocked] == ["daily_cap", "daily_total_cap"]


# --- the broker's bridge -------------------------------------------------------------------------------


def test_the_bridge_does_not_dial_a_premium_number(notify_app, mila, session, fake_twilio):
    _, callback_id = seed_listing(notify_app, "+319091234567")
    post(mila, f"/dashboard/items/{callback_id}/claim")
    response = post(mila, f"/dashboard/items/{callback_id}/call", {"nonce": "b" * 16})
    assert response.status_code == 302
    assert fake_twilio.calls() == []  # not even the broker's own phone rings
    page = mila.get(f"/dashboard/items/{callback_id}").get_data(as_text=True)
    assert "Naar dit nummer belt Buurtlijn niet" in page
    event = session.scalars(select(AuditEvent).where(AuditEvent.action == "call.bridge_request")).one()
    assert event.detail["why"] == "number_not_allowed"


def test_the_bridge_says_no_when_the_number_changed_after_the_click(notify_app, mila, session, fake_twilio):
    _, callback_id = seed_listing(notify_app, "+31612345678")
    post(mila, f"/dashboard/items/{callback_id}/claim")
    post(mila, f"/dashboard/items/{callback_id}/call", {"nonce": "c" * 16})
    [placed] = fake_twilio.calls()
    assert placed["To"] == MILA_PHONE
    call = session.scalars(select(Call)).one()
    session.execute(update(Resident).where(Resident.id == call.resident_id).values(phone="+449098790000"))
    session.commit()

    twilio = TwilioWebhooks(notify_app.test_client(), base=PUBLIC_BASE)
    params = {"CallSid": call.call_sid, "AccountSid": ACCOUNT_SID, "From": GATEWAY_NUMBER, "To": MILA_PHONE,
              "Direction": "outbound-api", "ApiVersion": "2010-04-01", "CallStatus": "in-progress"}
    response = twilio.post(f"/twilio/bridge/{call.id}/connect", params)
    root = parse_twiml(response.data)
    assert root.find("./Dial") is None
    assert texts.t("nl", "bridge.refused") in "".join(root.find("./Say").itertext())


def test_the_bridge_counts_towards_the_days_calls(notify_app, mila, session, fake_twilio):
    notify_app.config.update(BUURTLIJN_CALL_DAILY_TOTAL_CAP=1)
    _propose(notify_app, add_listing(notify_app, REQUESTER, "request"),
             add_listing(notify_app, LANDLINE_HELPER, "offer"))
    assert len(fake_twilio.calls()) == 1
    _, callback_id = seed_listing(notify_app, "+31612345677")
    post(mila, f"/dashboard/items/{callback_id}/claim")
    post(mila, f"/dashboard/items/{callback_id}/call", {"nonce": "d" * 16})
    assert len(fake_twilio.calls()) == 1
    event = session.scalars(select(AuditEvent).where(AuditEvent.action == "call.bridge_request")).one()
    assert event.detail["why"] == "daily_total_cap"


# --- the phone menu: the relay <Dial> and a number keyed in --------------------------------------


@pytest.fixture
def phone(twilio):  # type: ignore[no-untyped-def]
    def call(from_: str = "+31612345678") -> SimulatedCall:
        return SimulatedCall(flask_poster(twilio), from_=from_).start()
    return call


@pytest.mark.parametrize("keys", ["09001234567#", "00449098790000#", "097012345678#", "0612345678#"])
def test_a_withheld_caller_cannot_make_a_premium_number_theirs(phone, db, keys):
    call = phone("anonymous").press(keys)
    if keys == "0612345678#":  # the control: an ordinary mobile is read back
        assert "U toetste" in call.said
        return
    assert call.said.startswith(texts.t("nl", "voice.phone_refused"))
    assert texts.t("nl", "voice.phone_entry") in call.said
    call.press("1")  # a confirming key now is a wrong answer to the number question, not a yes
    call.hang_up()
    db.expire_all()
    assert db.scalars(select(Resident)).all() == []
    assert all(not (c.data or {}).get("phone") for c in db.scalars(select(Call)))


def _matched_with(db, partner: str) -> None:  # type: ignore[no-untyped-def]
    from models.base import utcnow
    from models.marketplace import record_listing
    from models.phones import parse_phone
    from models.residents import resident_for

    asker = resident_for(db, parse_phone("+31612345678"))
    helper = resident_for(db, parse_phone(partner))
    request = record_listing(db, asker, kind="request", channel="sms", category="groceries", postcode="2034")
    offer = record_listing(db, helper, kind="offer", channel="sms", category="groceries", postcode="2034")
    now = utcnow()
    db.add(Match(request_id=request.id, offer_id=offer.id, status="accepted", created_at=now, updated_at=now))
    db.commit()


@pytest.mark.parametrize(("partner", "put_through"), [("+319061234567", False), ("+447911123456", False),
                                                      ("+31687654321", True)])
def test_the_relay_dials_only_an_allowed_partner(phone, db, partner, put_through):
    _matched_with(db, partner)
    call = phone()
    if put_through:
        call.silence()  # after the announcement ("Druk 0 voor BUUV"), silence puts the call through
    assert call.dialled == ([partner] if put_through else [])
    if not put_through:
        assert call.said.startswith(texts.t("nl", "voice.relay_refused"))
        assert "Wilt u hulp vragen? Druk 1." in call.said  # the menu, where 0 reaches a broker


# --- a JA counts only for a proposal that reached the helper ------------------------------------------


HELPER = "+31612345001"


def test_a_ja_before_the_proposal_arrived_accepts_nothing(notify_app, webhooks, fake_twilio, session):
    match_id = _propose(notify_app, add_listing(notify_app, REQUESTER, "request"),
                        add_listing(notify_app, HELPER, "offer"))
    [proposal] = [m for m in fake_twilio.messages() if m["To"] == HELPER]  # handed to Twilio: queued
    webhooks.sms(HELPER, "JA")
    session.expire_all()
    assert session.get(Match, match_id).status == "proposed"
    assert bodies(fake_twilio, HELPER)[-1] == texts.t("nl", "match.not_yet_sent")
    inbound = session.scalars(select(Message).where(Message.direction == "inbound")).one()
    item = session.scalars(select(Callback).where(Callback.message_id == inbound.id)).one()
    assert item.reason == "unrecognised_message" and inbound.body == "JA"  # a broker reads it as written

    webhooks.sms_status(proposal["sid"], "sent")
    webhooks.sms(HELPER, "JA")
    session.expire_all()
    assert session.get(Match, match_id).status == "accepted"


def test_a_ja_to_an_undelivered_proposal_accepts_nothing(notify_app, webhooks, fake_twilio, session):
    match_id = _propose(notify_app, add_listing(notify_app, REQUESTER, "request"),
                        add_listing(notify_app, HELPER, "offer"))
    [proposal] = [m for m in fake_twilio.messages() if m["To"] == HELPER]
    webhooks.sms_status(proposal["sid"], "undelivered", error_code="30003")
    webhooks.sms(HELPER, "ja")
    session.expire_all()
    assert session.get(Match, match_id).status == "proposed"


def test_the_policy_reads_its_caps():
    config = {"BUURTLIJN_CALL_DAILY_CAP": 2, "BUURTLIJN_CALL_DAILY_TOTAL_CAP": 10}
    assert refusal("+31612345678", config, "call", to_number_today=1, in_total_today=9) is None
    assert refusal("+31612345678", config, "call", to_number_today=2, in_total_today=0) == "daily_cap"
    assert refusal("+31612345678", config, "call", to_number_today=0, in_total_today=10) == "daily_total_cap"
    assert refusal("+319001234567", config, "call", to_number_today=0, in_total_today=0) == "number_not_allowed"
