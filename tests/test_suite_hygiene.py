"""The test suite itself: it runs in any clone, and its fixtures live in conftest.py."""

from __future__ import annotations

import ast
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


def test_a_run_leaves_nothing_of_its_own_in_the_shared_redis() -> None:
    """Tests share Redis with other runs (database 0 unless BUURTLIJN_TEST_REDIS says otherwise): a run
    deletes its own keys when it ends, and only those."""
    import uuid

    import redis

    from tests.conftest import REDIS_TEST_URL

    run_id = f"hygiene{uuid.uuid4().hex[:8]}"
    client = redis.Redis.from_url(REDIS_TEST_URL)
    others = client.set(f"buurtlijn-test-not{run_id}:pace:+31612345678", "1", ex=60)  # another run's key
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-q", "-p", "no:randomly",
         "tests/test_outbound_worker.py::test_reply_goes_through_redis_and_the_worker_once"],
        cwd=ROOT, env={**os.environ, "BUURTLIJN_TEST_RUN_ID": run_id}, capture_output=True, text=True, timeout=600,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    left = [key for key in client.scan_iter(match=f"*{run_id}*", count=1000) if b"not" + run_id.encode() not in key]
    left += [queue for queue in client.smembers("rq:queues") if run_id.encode() in queue]
    assert left == []
    assert others and client.exists(f"buurtlijn-test-not{run_id}:pace:+31612345678")
    client.delete(f"buurtlijn-test-not{run_id}:pace:+31612345678")


def _test_modules() -> list[Path]:
    return sorted((ROOT / "tests").rglob("*.py"))


def _fixtures(tree: ast.Module) -> list[ast.FunctionDef]:
    def is_fixture(decorator: ast.expr) -> bool:
        target = decorator.func if isinstance(decorator, ast.Call) else decorator
        return ast.unparse(target) in ("pytest.fixture", "fixture")

    return [node for node in tree.body
            if isinstance(node, ast.FunctionDef) and any(map(is_fixture, node.decorator_list))]


def test_no_module_imports_fixtures_by_hand() -> None:
    """Fixtures are found in conftest.py; one imported by hand hides where it comes from."""
    fixtures_of = {path: {f.name for f in _fixtures(ast.parse(path.read_text()))} for path in _test_modules()}
    imported = []
    for path in _test_modules():
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("tests."):
                source = ROOT / (node.module.replace(".", "/") + ".py")
                imported += [f"{path.name}: {alias.name} from {node.module}" for alias in node.names
                             if alias.name in fixtures_of.get(source, set())]
    assert imported == []


def test_each_fixture_is_written_once() -> None:
    """The same fixture body under the same name in two modules belongs in conftest.py."""
    seen: dict[str, str] = {}
    twice = []
    for path in _test_modules():
        for fixture in _fixtures(ast.parse(path.read_text())):
            body = ast.dump(ast.Module(body=fixture.body, type_ignores=[]))
            key = f"{fixture.name}: {ast.dump(fixture.args)} {body}"
            if key in seen:
                twice.append(f"{fixture.name} in {seen[key]} and {path.name}")
            seen.setdefault(key, path.name)
    assert twice == []


def test_tests_and_benches_reach_the_database_through_get_database() -> None:
    spelled_out = [f"{path.relative_to(ROOT)}:{number}"
                   for path in sorted((ROOT / "tests").rglob("*.py")) + sorted((ROOT / "bench").rglob("*.py"))
                   for number, line in enumerate(path.read_text().splitlines(), 1)
                   if re.search(r"extensions\[\s*['\"]buurtlijn\.db['\"]\s*\]", line)]
    assert spelled_out == [], "use gateway.database.get_database(app)"
