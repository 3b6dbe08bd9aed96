"""No phone numbers or recording URLs in application logs."""

from __future__ import annotations

import logging

from gateway.logs import ScrubPersonalData, scrub
from models.phones import mask


def test_scrub_removes_numbers_and_recording_urls():
    line = scrub("sent to +31612345678 and 06-12345678, recording https://api.twilio.com/2010-04-01/Accounts/AC1/Recordings/RE1")
    assert "612345678" not in line and "12345678" not in line
    assert "Recordings" not in line
    assert "[phone …78]" in line


def test_filter_applies_to_arguments(caplog):
    logger = logging.getLogger("buurtlijn.test-privacy")
    logger.addFilter(ScrubPersonalData())
    with caplog.at_level(logging.INFO, logger="buurtlijn.test-privacy"):
        logger.info("resident %s texted", "+31612345678")
    assert "+31612345678" not in caplog.text and "[phone …78]" in caplog.text


def test_webhook_logs_no_phone_number(twilio, caplog):
    with caplog.at_level(logging.DEBUG):
        twilio.sms("+31612345678", "VRAAG boodschappen 2034")
        twilio.post("/twilio/sms", {"From": "+31612345678", "Body": "x"}, signature="wrong")
    assert "612345678" not in caplog.text


def test_mask_shows_only_enough_to_recognise():
    assert mask("+31612345678") == "+31 6 •••• 5678"
    assert mask("+31235123456") == "+31 23 •••• 3456"
    assert mask(None) == "—"
