"""200 realistic texts from 50 residents: each one acts as a keyword or a broker can read it on an open item.

Typos, dialect, English, Turkish, mixed languages, emoji, empty texts, numbers, keywords in odd places.
Nothing a resident sends is lost or silently dropped, and everyone who did not opt out gets an answer.
"""

from __future__ import annotations

import random

from sqlalchemy import select

from models import Callback, Message
from models.queue_view import item_texts
from models.vocabulary import QUEUED_CALLBACK_STATUSES

FREE_TEXTS = [
    "Ik zoek hulp met boodschappen 2034", "vragg boodschapen 2034", "hallo wie is dit?", "Kan iemand mijn lamp ophangen",
    "Goedemiddag, ik ben 84 en kan niet meer zelf naar de apotheek", "hoi", "?", "2034", "Dank je wel!!",
    "I need help with my computer please", "Can someone walk my dog tomorrow", "Merhaba, yardıma ihtiyacım var",
    "Bilgisayarım bozuldu, yardım eder misiniz", "مرحبا أحتاج مساعدة في التسوق", "ik wil graag helpe met de tuin",
    "Mijn buurvrouw heeft hulp nodig, 06-12345678", "Graag bellen na 14.00 uur", "😊👍", "Ja ik wil graag hulp met de tuin 2034",
    "nee dank u", "Klaar?", "wanneer komt er iemand", "Ik heb al 3 keer gebeld!!!", "Help, ik ben gevallen en kan niet opstaan",
    "hulp formulieren belastingdienst", "Weet u of de bus naar het ziekenhuis nog rijdt", "TEST", "ok", "Groetjes, Riet",
    "VRAGG vervoer naar dokter", "aanbodd: klussen", "Ik kan wel oppassen op kinderen", "status?", "intrekken 7",
]
KEYWORD_TEXTS = [
    "VRAAG boodschappen 2034", "vraag: vervoer naar de dokter 2011", "AANBOD klussen in huis 2035", "STATUS", "BEL",
    "Hulp", "info", "REQUEST shopping 2031", "offer dog walking 2034", "STOP", "START", "stop alsjeblieft",
    "INTREKKEN", "WITHDRAW 1", "CALL", "Vraag gezelschap, wandelen 2024", "", "   ",
]


def _corpus() -> list[tuple[str, str]]:
    rng = random.Random(20261202)
    # Mobile numbers (06-1 to 06-5: 066 is pagers, which get no answer but still reach a person).
    residents = [f"+316{rng.randrange(10_000_000, 59_999_999)}" for _ in range(49)] + ["+31661234567"]
    texts = FREE_TEXTS * 4 + KEYWORD_TEXTS * 4
    rng.shuffle(texts)
    return [(residents[i % 50], texts[i % len(texts)]) for i in range(200)]


def test_two_hundred_texts_each_act_or_reach_a_person(twilio, fake_twilio, db):
    corpus = _corpus()
    for n, (phone, body) in enumerate(corpus):
        assert twilio.sms(phone, body, message_sid=f"SM{n:032x}").status_code == 200

    inbound = db.scalars(select(Message).where(Message.direction == "inbound").order_by(Message.id)).all()
    assert len(inbound) == 200 and all(m.status == "handled" for m in inbound)
    gathered = item_texts(db, [m.callback_id for m in inbound if m.callback_id is not None])
    items = {c.id: c for c in db.scalars(select(Callback))}
    for message in inbound:
        if message.callback_id is not None:
            item = items[message.callback_id]
            # Readable by a broker: on an item still in the queue, or one a later text re-opened onto.
            assert message.body in gathered[item.id].split("\n")
            assert item.status in QUEUED_CALLBACK_STATUSES, (message.body, item.status)
        else:
            assert message.keyword is not None, f"{message.body!r} neither acted nor reached a person"
        if message.phone is not None and message.body.strip() and message.body in KEYWORD_TEXTS:
            assert message.keyword is not None, f"{message.body!r} did not act as a keyword"

    # Everyone is answered: each resident got at least one reply, unless their last word was STOP.
    answered = {m["To"] for m in fake_twilio.messages()}
    for phone in {phone for phone, _ in corpus} - {"+31661234567"}:
        stopped = db.scalars(select(Message.keyword).where(Message.phone == phone, Message.direction == "inbound")
                             .order_by(Message.id.desc()).limit(1)).first() in ("STOP",)
        assert phone in answered or stopped, phone
