"""Guessing passwords many at once, over real HTTP from threads of their own.

Each guess is counted before its password is checked, so a burst gets no
more checks than the limits allow, however many guesses arrive together, and
the right password is refused while the burst holds the lock. The checks are
held until every guess of the burst has reached the login: the window a real
burst has while Argon2 runs, made certain.
"""

from __future__ import annotations

import http.cookiejar
import threading
import urllib.error
import urllib.parse
import urllib.request
from collections import Counter
from collections.abc import Iterator
from typing import Any

import pytest
from argon2 import PasswordHasher
from flask import Flask

from gateway.dashboard.auth import ACCOUNT_MAX_FAILURES, ADDRESS_MAX_FAILURES
from tests.conftest import wait_until
from tests.dashboard_support import PASSWORD, make_brokers, token_in
from tests.live import free_port, serving

BURST = 40
WAIT = 30.0


class _KeepRedirects(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None  # the login's answer is the redirect itself


class Browser:
    """One browser: its own cookies, the login form's CSRF token, real HTTP."""

    def __init__(self, base: str):
        self.base = base
        self.opener = urllib.request.build_opener(
            urllib.request.HTTPCookieProcessor(http.cookiejar.CookieJar()), _KeepRedirects)

    def open(self, path: str, form: dict[str, str] | None = None) -> tuple[int, str]:
        data = urllib.parse.urlencode(form).encode() if form is not None else None
        try:
            with self.opener.open(self.base + path, data=data, timeout=WAIT) as response:
                return response.status, response.read().decode()
        except urllib.error.HTTPError as answer:
            return answer.code, answer.read().decode()

    def log_in(self, email: str, password: str) -> int:
        token = token_in(self.open("/login")[1])
        return self.open("/login", {"email": email, "password": password, "csrf_token": token})[0]


class HeldChecks:
    """Every password check, counted; a wrong one waits until ``release()``."""

    def __init__(self, check: Any):
        self.check = check
        self.passwords: list[str] = []
        self.lock = threading.Lock()
        self.released = threading.Event()

    def __call__(self, hasher: PasswordHasher, hash: str, password: str) -> Any:
        with self.lock:
            self.passwords.append(password)
        if password != PASSWORD:
            self.released.wait(WAIT)
        return self.check(hasher, hash, password)

    @property
    def count(self) -> int:
        with self.lock:
            return len(self.passwords)

    def release(self) -> None:
        self.released.set()


@pytest.fixture
def served(app: Flask) -> Iterator[str]:
    make_brokers(app)
    with serving(app, free_port()) as base:
        yield base


@pytest.fixture
def held_checks(monkeypatch: pytest.MonkeyPatch) -> Iterator[HeldChecks]:
    held = HeldChecks(PasswordHasher.verify)

    def verify(hasher: PasswordHasher, hash: str, password: str) -> Any:
        return held(hasher, hash, password)

    monkeypatch.setattr(PasswordHasher, "verify", verify)
    yield held
    held.release()


def burst(base: str, held: HeldChecks, guesses: list[tuple[str, str]]) -> tuple[list[int], int]:
    """The guesses all at once, each from a browser of its own; while the checks that got through are
    still held, the right password for Mila. Returns the guesses' answers and the right password's."""
    browsers = [Browser(base) for _ in guesses]
    answers: list[int] = []
    lock = threading.Lock()
    start = threading.Barrier(len(guesses))

    def guess(browser: Browser, email: str, password: str) -> None:
        token = token_in(browser.open("/login")[1])  # its session and CSRF token before the burst starts
        start.wait(WAIT)
        status = browser.open("/login", {"email": email, "password": password, "csrf_token": token})[0]
        with lock:
            answers.append(status)

    threads = [threading.Thread(target=guess, args=(b, *g), daemon=True) for b, g in zip(browsers, guesses)]
    for thread in threads:
        thread.start()

    def all_arrived() -> bool:  # each guess answered, or held in its check
        with lock:
            return len(answers) + held.count >= len(guesses)

    wait_until(all_arrived, timeout=WAIT)
    right = Browser(base).log_in("mila@buuv.example", PASSWORD)
    held.release()
    for thread in threads:
        thread.join(WAIT)
    return answers, right


def test_a_burst_of_guesses_at_one_account_gets_no_more_checks_than_its_limit(served, held_checks):
    answers, right = burst(served, held_checks, [("mila@buuv.example", f"guess-{n}") for n in range(BURST)])

    assert held_checks.count == ACCOUNT_MAX_FAILURES
    assert Counter(answers) == {401: ACCOUNT_MAX_FAILURES, 429: BURST - ACCOUNT_MAX_FAILURES}
    assert right == 429  # locked by the burst: the right password waits too
    assert Browser(served).log_in("mila@buuv.example", PASSWORD) == 429


def test_a_burst_from_one_address_at_many_accounts_gets_no_more_checks_than_its_limit(served, held_checks):
    answers, right = burst(served, held_checks, [(f"guess{n}@buuv.example", "guess") for n in range(BURST)])

    assert held_checks.count == ADDRESS_MAX_FAILURES
    assert Counter(answers) == {401: ADDRESS_MAX_FAILURES, 429: BURST - ADDRESS_MAX_FAILURES}
    assert right == 429
    assert Browser(served).log_in("mila@buuv.example", PASSWORD) == 429
