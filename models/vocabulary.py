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
# A listing that has ended: never suggested, never read out as open.
FINAL_LISTING_STATUSES = ("done", "cancelled", "expired")
# What a broker's final outcome on a listing's item makes of that listing (contract: "Listing life").
LISTING_END_BY_OUTCOME = {"resolved": "done", "referred": "cancelled", "wrong_number": "cancelled"}

# --- matches (contract: Match) ------------------------------------------------------------

MATCH_STATUSES = ("proposed", "accepted", "declined", "expired", "confirmed", "done", "cancelled")
# A match under way: its request is not offered to another helper, a broker may still stop it.
LIVE_MATCH_STATUSES = ("proposed", "accepted", "confirmed")
# Both neighbours said yes: texts and calls between them are relayed (and a few days after it is done:
# models.matching.still_relays), and the help can be done.
AGREED_MATCH_STATUSES = ("accepted", "confirmed")

# A resident's mark for a match that is done (contract: Reports), asked once of each side.
SATISFACTION_MARKS = (1, 2, 3, 4, 5)

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
# A helper waiting for the broker to confirm and a resident in trouble come first; then a resident
# who asked for a person or got stuck; a listing that is merely new comes last.
REASON_PRIORITY = {
    "match_accepted": 40,
    "problem_reported": 40,
    "relay_trouble": 40,  # a word that signals trouble in a text passed on within a match
    "callback_requested": 30,
    "menu_trouble": 30,
    "abandoned_call": 25,
    "notification_failed": 25,
    "bad_number": 20,
    "match_declined": 20,
    "match_expired": 20,
    "unrecognised_message": 15,
    "not_reached": 10,
    "new_listing": 10,
    "letter_or_visit": 25,
    "relay_over_cap": 15,
    # A resident asked to withdraw a listing whose match is under way: a person settles it with both.
    "withdraw_during_match": 30,
}
WITHDRAW_DURING_MATCH = "withdraw_during_match"
QUEUE_REASONS = tuple(REASON_PRIORITY)

# What a broker records when closing an item by hand.
OUTCOMES = ("match_proposed", "resolved", "not_reached", "wrong_number", "referred")
# Where a resident can be referred; the item's outcome is then ``referred_<referral>``.
REFERRALS = ("sociaal_wijkteam", "huisarts", "other")
# A broker's action on the item's match, and the outcome it gives the item.
MATCH_OUTCOMES = {"confirm": "match_confirmed", "cancel": "match_cancelled", "done": "match_done"}
# The outcome of an item that a step of its match made unnecessary ("the helper said yes" once confirmed).
MATCH_STEP_OUTCOMES = ("confirmed", "done", "cancelled")
# The outcome of an item whose listing its resident withdrew (INTREKKEN).
WITHDRAWN_OUTCOME = "withdrawn"
# The outcome of an item whose listing expired (no, or no answer, to its check-in: models/listing_life.py).
EXPIRED_OUTCOME = "expired"
# The outcome of an item closed because its resident had everything about them erased.
ERASED_OUTCOME = "erased"
# Every value Callback.outcome can hold.
CALLBACK_OUTCOMES = (
    *(outcome for outcome in OUTCOMES if outcome != "referred"),
    ERASED_OUTCOME,
    *(f"referred_{referral}" for referral in REFERRALS),
    *MATCH_OUTCOMES.values(),
    *MATCH_STEP_OUTCOMES,
    WITHDRAWN_OUTCOME,
    EXPIRED_OUTCOME,
)

# --- the JSON API --------------------------------------------------------------------------

# What an API client may do: read, or read and write.
API_SCOPES = ("read", "write")
# How long an Idempotency-Key's first answer is kept and given again.
IDEMPOTENCY_HOURS = 24

# --- texts passed on within a match ----------------------------------------------------------------

# Relay.outcome: passed on to the other neighbour, or kept for a broker because the pair's daily cap was reached.
RELAY_OUTCOMES = ("relayed", "over_cap")

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
# An outbound message that reached the phone (or, in the demo, was shown): a proposal in it can be answered.
REACHED_OUTBOUND = ("sent", "delivered", "read", "shown")

# --- the outbound policy (models/destinations.py) ---------------------------------------------

# Why a text or call may not go to a number; a blocked message's error_message, a blocked call's data["blocked"].
DESTINATION_REFUSALS = (
    "number_invalid",  # not a valid number
    "country_not_allowed",  # not in BUURTLIJN_DESTINATION_COUNTRIES
    "number_not_allowed",  # not a person's line: premium rate, shared cost, UAN, VoIP, M2M, toll-free, ...
    "daily_cap",  # this number's share of the day is used up
    "daily_total_cap",  # the day's total is used up
)
# The calls we place that count towards the daily call caps.
CAPPED_CALL_PURPOSES = ("notification", "broker_bridge")
# A resident's call put through to their match partner (its <Dial>): counts towards the call caps too,
# for the partner it rings and in the day's total.
RELAY_CALL_PURPOSE = "relay"

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
# Call.status of a call we placed that someone picked up: what it said reached them.
ANSWERED_CALL_STATUSES = ("answered", "finished")
# Twilio's CallStatus values in the order a call goes through them ("pending": ours, before it is placed),
# every way of ending last. A call's twilio_status only moves forward along it: a late or repeated status
# callback ("ringing" after "completed") changes nothing.
TWILIO_CALL_STATUS_RANK = {
    "pending": 0, "queued": 1, "initiated": 2, "ringing": 3, "in-progress": 4, "answered": 4,
    **dict.fromkeys(sorted(TWILIO_CALL_ENDED_STATUSES), 9),
}


# --- accounts and reports -------------------------------------------------------------------

# A viewer (the municipality) sees the reports and nothing else.
BROKER_ROLES = ("broker", "coordinator", "viewer")
# What a report's rows are grouped by (contract: Reports).
REPORT_GROUPINGS = ("district", "category", "channel")


def check_in(column: str, values: tuple[str, ...]) -> str:
    """The SQL of a check constraint allowing ``values`` in ``column``: ``kind IN ('request', 'offer')``."""
    return f"{column} IN ({', '.join(repr(value) for value in values)})"
