"""Numbers as a broker reads them: Dutch groups at home, international form abroad, masked with the same groups."""

from __future__ import annotations

import re

import phonenumbers
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from models.phones import mask, parse_phone, readable

PROPERTY = settings(max_examples=300, deadline=None, derandomize=True, database=None)


@pytest.mark.parametrize(
    ("e164", "shown", "masked"),
    [
        ("+31612345678", "06 1234 5678", "06 •••• 5678"),  # mobile
        ("+31235550100", "023 555 0100", "023 ••• 0100"),  # three-digit area code (Haarlem)
        ("+31201234567", "020 123 4567", "020 ••• 4567"),  # Amsterdam
        ("+31251234567", "0251 23 45 67", "0251 •• 45 67"),  # four-digit area code (Beverwijk): pairs
        ("+31881234567", "088 123 4567", "088 ••• 4567"),  # a company number
        ("+318001234567", "0800 123 4567", "0800 ••• 4567"),
        ("+31900123456", "0900 12 34 56", "0900 •• 34 56"),
        ("+3197012345678", "0970 1234 5678", "0970 •••• 5678"),
        ("+442079460958", "+44 20 7946 0958", "+44 20 •••• 0958"),  # abroad: international form
        ("+12025550123", "+1 202 555 0123", "+1 202 ••• 0123"),  # no dashes or brackets
        ("+32470123456", "+32 470 12 34 56", "+32 470 •• 34 56"),
        (None, "—", "—"),
        ("", "—", "—"),
        ("erased-12", "—", "—"),  # an erased resident's number: none, in every shape
        ("+31800123", "+31800123", "•••• 0123"),  # not a valid number: as stored, or its last digits
    ],
)
def test_numbers_are_grouped_as_dutch_people_write_them(e164, shown, masked):
    assert readable(e164) == shown
    assert mask(e164) == masked


@PROPERTY
@given(st.text(max_size=40))
def test_any_text_is_shown_without_an_error(text):
    assert isinstance(readable(text), str) and isinstance(mask(text), str)


def _valid_numbers() -> st.SearchStrategy[str]:
    regions = st.sampled_from(["NL", "NL", "NL", "BE", "DE", "GB", "TR", "MA", "US", "FR", "PL"])
    types = st.sampled_from([phonenumbers.PhoneNumberType.MOBILE, phonenumbers.PhoneNumberType.FIXED_LINE])

    def example(region: str, kind: int, tail: int) -> str | None:
        base = phonenumbers.example_number_for_type(region, kind)
        if base is None:
            return None
        national = str(base.national_number)
        # Vary the last digits of a real example: a valid number of the same length, mostly.
        varied = national[:-3] + f"{tail:03d}" if len(national) > 4 else national
        number = phonenumbers.parse(f"+{base.country_code}{varied}")
        return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164) \
            if phonenumbers.is_valid_number(number) else None

    return st.builds(example, regions, types, st.integers(0, 999)).filter(lambda e: e is not None)


@PROPERTY
@given(_valid_numbers())
def test_a_shown_number_keeps_every_digit_and_dials_the_same(e164):
    shown = readable(e164)
    national = e164[3:] if e164.startswith("+31") else e164[1:]
    assert re.sub(r"\D", "", shown).endswith(national)  # every digit, in order
    assert parse_phone(shown).e164 == e164  # typed back in, it is the same number
    masked = mask(e164)
    # The mask has the same groups, shows the last four digits and hides the rest of the subscriber part.
    assert len(masked) == len(shown) and [c == " " for c in masked] == [c == " " for c in shown]
    assert re.sub(r"\D", "", masked).endswith(e164[-4:]) and "•" in masked
    assert masked.split()[0] == shown.split()[0]  # 06, the area code, or the country
