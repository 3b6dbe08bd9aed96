"""The test suite itself: it runs in any clone, and its fixtures live in conftest.py."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SPEC_TESTS = (
    "tests/test_fake_twilio.py",
    "tests/test_outbound_worker.py::test_what_the_worker_sends_conforms_to_twilios_spec",
)


def test_without_twilios_spec_its_tests_skip_and_the_others_run(tmp_path: Path) -> None:
    """A clone with no ../shared/twilio-oai beside it: the spec's tests skip, saying why."""
    missing = tmp_path / "no-shared" / "twilio-oai" / "twilio_api_v2010.json"
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-q", "-rs", *SPEC_TESTS],
        cwd=ROOT, env={**os.environ, "TWILIO_OAI_SPEC": str(missing)},
        capture_output=True, text=True, timeout=600,
    )
    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    summary = output.strip().splitlines()[-1]
    assert re.search(r"\b3 skipped\b", summary), summary
    assert re.search(r"\b\d+ passed\b", summary), summary
    assert "error" not in summary and "failed" not in summary, summary
    assert output.count(f"Twilio OpenAPI spec not found at {missing}") == 3, output

