"""Buurtlijn's words: every code a listing, match, queue item, message or call can carry.

Each code is defined here once; the tables' check constraints, the phone menu,
SMS parsing, the API's validation and the dashboard's forms and filters all
read these tuples. What a code is called in each language lives in the
catalogues under ``texts/`` (``category.groceries`` for residents and brokers
alike; ``reason.new_listing`` and the like for brokers only).
"""

from __future__ import annotations

# --- residents (contract: Resident) -------------------------------------------------------

# The languages a resident is served in, in the phone menu's order (9, then 1 = Nederlands ...).
RESIDENT_LANGUAGES = ("nl", "en", "tr", "ar")
# The dashboard's languages, for brokers.
BROKER_LANGUAGES = ("nl", "en")

# --- listings (contract: Listing) ---------------------------------------------------------

# The contract's category table, in digit order: the phone menu's key is the position (1 = groceries).
CATEGORIES = ("groceries", "chores", "transport", "company", "digital", "language", "paperwork", "sitting", "other")
FALLBACK_CATEGORY = "other"
KINDS = ("request", "offer")
CHANNELS = ("sms", "voice", "broker", "api")
LISTING_STATUSES = ("open", "matched", "done", "cancelled", "expired")
# Keyed in the phone menu, in the menu's digit order; SMS listings leave timing empty.
REQUEST_TIMINGS = ("asap", "this_week", "no_hurry")
OFFER_TIMINGS = ("weekday_daytime", "evenings", "weekends", "any_time")
TIMINGS = {"request": REQUEST_TIMINGS, "offer": OFFER_TIMINGS}
# A listing still current: searched, suggested, read out in STATUS, counted as an open item.
CURRENT_LISTING_STATUSES = ("open", "matched")

# --- matches (contract: Match) ------------------------------------------------------------

MATCH_STATUSES = ("proposed", "accepted", "declined", "expired", "confirmed", "done", "cancelled")
# A match under way: its request is not offered to another helper, a broker may still stop it.
LIVE_MATCH_STATUSES = ("proposed", "accepted", "confirmed")
# Both neighbours said yes: texts and calls between them are relayed, and the help can be done.
AGREED_MATCH_STATUSES = ("accepted", "confirmed")

# --- events for the online marketplace (contract: Marketplace integration) -------------------------

EVENT_TYPES = ("listing.created", "listing.updated", "match.created", "match.updated", "resident.erased")
# pending: waiting to be delivered (or retried); delivered: the receiver answered 2xx; failed: still
# refused after the retry window, until a coordinator sends it again.
EVENT_STATUSES = ("pending", "delivered", "failed")

# --- the brokers' queue (contract: Callback) ----------------------------------------------------

CALLBACK_STATUSES = ("open", "claimed", "done", "cancelled")
# An item still in the queue, waiting or held by a broker.
QUEUED_CALLBACK_STATUSES = ("open", "claimed")
# Every reason an item is queued for, with its priority (higher is more urgent).
# A resident who asked for a person, or got stuck, comes before a listing that is merely new.
REASON_PRIORITY = {
    "callback_requested": 30,
    "menu_trouble": 30,
    "abandoned_call": 25,
    "notification_failed": 25,
    "bad_number": 20,
    "problem_reported": 30,
    "match_declined": 20,
    "match_expired": 20,
    "unrecognised_message": 15,
    "not_reached": 10,
    "new_listing": 10,
    "match_accepted": 10,
    "letter_or_visit": 25,
}
QUEUE_REASONS = tuple(REASON_PRIORITY)

# What a broker records when closing an item by hand.
OUTCOMES = ("match_proposed", "resolved", "not_reached", "wrong_number", "referred")
# Where a resident can be referred; the item's outcome is then ``referred_<referral>``.
REFERRALS = ("sociaal_wijkteam", "huisarts", "other")
# A broker's action on the item's match, and the outcome it gives the item.
MATCH_OUTCOMES = {"confirm": "match_confirmed", "cancel": "match_cancelled", "done": "match_done"}
# The outcome of an item that a step of its match made unnecessary ("the helper said yes" once confirmed).
MATCH_STEP_OUTCOMES = ("confirmed", "done", "cancelled")
# Every value Callback.outcome can hold.
CALLBACK_OUTCOMES = (
    *(outcome for outcome in OUTCOMES if outcome != "referred"),
    *(f"referred_{referral}" for referral in REFERRALS),
    *MATCH_OUTCOMES.values(),
    *MATCH_STEP_OUTCOMES,
)

# --- messages ----------------------------------------------------------------------------------

MESSAGE_DIRECTIONS = ("inbound", "outbound")
INBOUND_MESSAGE_STATUSES = ("received", "handled", "failed")
# Outbound statuses move only forward along this rank; rank 9 is final.
OUTBOUND_STATUS_RANK = {
    "pending": 0,  # row committed, not yet handed to Twilio
    "submitting": 1,  # a worker is talking to Twilio right now
    "accepted": 2,
    "scheduled": 2,
    "queued": 2,
    "sending": 3,
    "sent": 4,
    "delivered": 5,
    "read": 6,
    # final: no later callback moves them
    "undelivered": 9,
    "failed": 9,
    "canceled": 9,
    "blocked": 9,  # never sent: opted out, bad number, over the daily cap, country
    "shown": 9,  # demo mode: displayed instead of sent
}
# No callback moves a message out of these; "delivered" may still become "read".
FINAL_OUTBOUND = frozenset(s for s, r in OUTBOUND_STATUS_RANK.items() if r == 9) | {"read"}

# --- calls -------------------------------------------------------------------------------------

# Call.status: our own record of where a call stands. An outbound call goes
# pending -> submitting -> dialling (-> answered) -> finished; blocked and shown never ring.
CALL_IN_PROGRESS = "in_progress"  # a call walking the phone menu, or bridged
CALL_STATUSES = (
    "pending", "submitting", "dialling", "answered", CALL_IN_PROGRESS,
    "finished", "abandoned", "failed", "blocked", "shown",
)
# Call.status of a menu call that is over: finished, the caller hung up halfway, or it failed.
CALL_OVER_STATUSES = ("finished", "abandoned", "failed")
# Twilio's CallStatus values after which a call is over; no later status callback follows them.
TWILIO_CALL_ENDED_STATUSES = frozenset({"completed", "busy", "failed", "no-answer", "canceled"})
# Of those, the ones where nobody answered.
TWILIO_CALL_UNANSWERED_STATUSES = TWILIO_CALL_ENDED_STATUSES - {"completed"}
# Twilio's CallStatus values in the order a call goes through them ("pending": ours, before it is placed),
# every way of ending last. A call's twilio_status only moves forward along it: a late or repeated status
# callback ("ringing" after "completed") changes nothing.
TWILIO_CALL_STATUS_RANK = {
    "pending": 0, "queued": 1, "initiated": 2, "ringing": 3, "in-progress": 4, "answered": 4,
    **dict.fromkeys(sorted(TWILIO_CALL_ENDED_STATUSES), 9),
}


def check_in(column: str, values: tuple[str, ...]) -> str:
    """The SQL of a check constraint allowing ``values`` in ``column``: ``kind IN ('request', 'offer')``."""
    return f"{column} IN ({', '.join(repr(value) for value in values)})"
