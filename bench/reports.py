"""Benchmark of the report (issue 15): ``GET /api/v1/reports`` for a year, by each grouping, on five years of
a city generated in PostgreSQL.

    python -m bench.reports                               # about 10 minutes, most of it making the data
    python -m bench.reports --database buurtlijn_city     # keeps the city for the next run

The data (``generate_series``, in PostgreSQL itself, a few minutes): 20,000 residents, 200,000 listings,
40,000 matches, 150,000 queue items, 2,000,000 messages, 400,000 calls and 20,000 marks, spread evenly
over the five years before today; then the report's daily roll-up is brought up to date as the sweep
does (models/reports.py ``roll_up``), timed. With ``--database NAME`` the city is kept in that database
and made only when it holds none yet (the roll-up then only adds the days since). The gateway runs
under gunicorn with the Procfile's settings (bench/harness.py). Each grouping is asked for the last full year ``--requests`` times, one request at a
time, after two unmeasured ones; p50 and p99 of the answers' wall time are the figures (targets: p50 under
300 ms, p99 under 1 s). The answer's totals are checked against counts taken straight from the tables.
Then, in the same run and on the same big tables (the roll-up's and the report's indexes in place),
``POST /twilio/sms`` against the bare floor in paired rounds as bench/sms_webhook.py does (target
>= 0.3x), every message answered 200 stored.

Results: a table on stdout and bench/results/reports-<time>.json.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import sys
import time
import urllib.request
from typing import Any

from sqlalchemy import create_engine, text

from . import harness

GROUPINGS = ("district", "category", "channel")
P50_TARGET_MS = 300.0
P99_TARGET_MS = 1000.0
API_TOKEN = "bench-api-token"  # bench_environment's BUURTLIJN_API_TOKEN

SIZES = {"residents": 20_000, "listings": 200_000, "matches": 40_000, "callbacks": 150_000,
         "messages": 2_000_000, "calls": 400_000, "satisfaction": 20_000}

# Each table in one INSERT ... SELECT over generate_series; :start and :span place a row's moment in the
# five years (row i of n at start + span * i / n, plus a few hours so rows of one day spread over it).
GENERATE = [
    ("residents", """
INSERT INTO residents (id, phone, language, postcode, district, opted_out, number_status, line_type, prefers_voice,
                       created_at, updated_at)
SELECT i, '+316' || lpad(i::text, 8, '0'), (ARRAY['nl','nl','nl','en','tr','ar'])[1 + i % 6],
       (2011 + i % 27)::text,
       CASE WHEN i % 20 = 0 THEN NULL ELSE (ARRAY['centrum','noord','oost','schalkwijk','zuid-west'])[1 + i % 5] END,
       false, 'ok', CASE WHEN i % 3 = 0 THEN 'fixed_line' ELSE 'mobile' END, false,
       :start, :start
FROM generate_series(1::bigint, :residents) AS i
"""),
    ("listings", """
INSERT INTO listings (id, resident_id, kind, category, description, postcode, district, channel, status,
                      created_at, updated_at)
SELECT i, 1 + (i * 7919) % :residents, CASE WHEN i % 100 < 56 THEN 'request' ELSE 'offer' END,
       (ARRAY['groceries','chores','transport','company','digital','language','paperwork','sitting','other'])[1 + i % 9],
       'iets', (2011 + i % 27)::text,
       CASE WHEN i % 23 = 0 THEN NULL ELSE (ARRAY['centrum','noord','oost','schalkwijk','zuid-west'])[1 + (i / 7) % 5] END,
       (ARRAY['sms','sms','sms','voice','voice','broker','api'])[1 + i % 7],
       (ARRAY['open','matched','done','done','cancelled','expired'])[1 + i % 6],
       :start + :span * (i::float / :listings) + interval '1 hour' * (i % 11),
       :start + :span * (i::float / :listings) + interval '1 hour' * (i % 11)
FROM generate_series(1::bigint, :listings) AS i
"""),
    ("matches", """
INSERT INTO matches (id, request_id, offer_id, status, created_at, updated_at, done_at)
SELECT k, ((k * 5) % 1999) * 100 + 100 + k % 56, ((k * 3) % 1999) * 100 + 156 + k % 44,
       CASE WHEN k % 5 < 3 THEN 'done' ELSE (ARRAY['proposed','declined','confirmed','cancelled','expired'])[1 + k % 5] END,
       :start + :span * (k::float / :matches), :start + :span * (k::float / :matches),
       CASE WHEN k % 5 < 3 THEN :start + :span * (k::float / :matches) + interval '3 days' END
FROM generate_series(1::bigint, :matches) AS k
"""),
    ("callbacks", """
INSERT INTO callbacks (id, reason, status, resident_id, listing_id, priority, due_at, attempts, created_at, updated_at,
                       closed_at)
SELECT i, CASE WHEN i % 4 = 0 THEN 'callback_requested' ELSE 'new_listing' END, 'done', 1 + (i * 7919) % :residents,
       CASE WHEN i % 4 = 0 THEN NULL ELSE 1 + (i * 4) % :listings END, 10,
       :start + :span * (i::float / :callbacks), 1,
       :start + :span * (i::float / :callbacks), :start + :span * (i::float / :callbacks),
       :start + :span * (i::float / :callbacks) + interval '5 hours'
FROM generate_series(1::bigint, :callbacks) AS i
"""),
    ("messages", """
INSERT INTO messages (id, direction, twilio_sid, resident_id, phone, body, status, purpose, listing_id, segments,
                      attempts, created_at, updated_at)
SELECT i, CASE WHEN i % 2 = 0 THEN 'outbound' ELSE 'inbound' END, 'SM' || lpad(i::text, 32, '0'),
       1 + (i * 104729) % :residents, '+316' || lpad((1 + (i * 104729) % :residents)::text, 8, '0'), 'bericht',
       CASE WHEN i % 2 = 0 THEN 'delivered' ELSE 'handled' END, CASE WHEN i % 2 = 0 THEN 'reply' END,
       CASE WHEN i % 3 = 0 THEN 1 + (i * 13) % :listings END, CASE WHEN i % 2 = 0 THEN 1 + i % 3 END, 1,
       :start + :span * (i::float / :messages), :start + :span * (i::float / :messages)
FROM generate_series(1::bigint, :messages) AS i
"""),
    ("calls", """
INSERT INTO calls (id, call_sid, direction, purpose, resident_id, language, step_seq, tries, status, twilio_status,
                   listing_id, attempts, duration_seconds, created_at, updated_at, ended_at)
SELECT i, 'CA' || lpad(i::text, 32, '0'), CASE WHEN i % 4 = 0 THEN 'outbound' ELSE 'inbound' END,
       CASE WHEN i % 8 = 0 THEN 'broker_bridge' WHEN i % 4 = 0 THEN 'notification' ELSE 'menu' END,
       1 + (i * 7919) % :residents, 'nl', 3, 0, 'finished', 'completed',
       CASE WHEN i % 8 = 0 OR i % 3 = 0 THEN 1 + (i * 17) % :listings END, 1, 20 + i % 400,
       :start + :span * (i::float / :calls), :start + :span * (i::float / :calls),
       :start + :span * (i::float / :calls) + interval '3 minutes'
FROM generate_series(1::bigint, :calls) AS i
"""),
    ("satisfaction", """
INSERT INTO satisfaction (id, match_id, resident_id, channel, mark, asked_at, answered_at)
SELECT j, 1 + ((j - 1) / 2) * 2, 1 + (j * 7919) % :residents, CASE WHEN j % 3 = 0 THEN 'voice' ELSE 'sms' END,
       1 + (j * 7) % 5, m.done_at, m.done_at + interval '2 hours'
FROM generate_series(1::bigint, :satisfaction) AS j JOIN matches m ON m.id = 1 + ((j - 1) / 2) * 2
WHERE m.done_at IS NOT NULL
ON CONFLICT DO NOTHING
"""),
]


def roll_up(url: str, now: dt.datetime) -> float:
    """Roll up every settled day not rolled up yet, as the sweep would over time; returns the seconds."""
    from sqlalchemy.orm import Session

    from models.reports import roll_up as roll_up_days
    from models.workdays import local_zone

    engine = create_engine(url)
    began = time.perf_counter()
    with Session(engine) as session:
        while roll_up_days(session, now, local_zone({}), limit=100):
            session.commit()
        session.commit()
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
        connection.execute(text("VACUUM ANALYZE"))
    engine.dispose()
    return round(time.perf_counter() - began, 1)


def has_city(url: str) -> bool:
    engine = create_engine(url)
    with engine.connect() as connection:
        found = connection.execute(text("SELECT count(*) FROM listings")).scalar_one() >= SIZES["listings"]
    engine.dispose()
    return found


def sms_rounds(env: Any, rounds: int, seconds: float) -> dict[str, Any]:
    """``POST /twilio/sms`` against the bare floor, rounds alternating (bench/sms_webhook.py's way)."""
    import itertools
    import statistics

    from .sms_webhook import PATH, sms_requests

    made = 0

    def fresh(count: int) -> list[Any]:
        nonlocal made
        made += count
        return sms_requests(count, made - count)

    stored_before = env.database.inbound_messages()
    # Each request on a connection of its own, as webhooks reach gunicorn (bench/sms_webhook.py's default).
    warm_gateway = harness.wrk_fixed_count(env.gateway.base_url, fresh(1000), connections=16, fresh_connections=True)
    warm_bare = harness.wrk_fixed_count(env.bare.base_url, sms_requests(2000, 0), connections=16,
                                        fresh_connections=True)
    gateway_rate, bare_rate = warm_gateway.requests_per_s, warm_bare.requests_per_s
    bare_pool = sms_requests(5000, 0)
    sent, ok, pairs = warm_gateway.sent, warm_gateway.ok, []
    for _ in range(rounds):
        gateway = harness.wrk_fixed_count(env.gateway.base_url, fresh(max(500, int(gateway_rate * seconds / rounds))),
                                          connections=16, fresh_connections=True)
        bare = harness.wrk_fixed_count(env.bare.base_url, list(itertools.islice(
            itertools.cycle(bare_pool), max(1000, int(bare_rate * seconds / rounds)))), connections=16,
            fresh_connections=True)
        sent, ok = sent + gateway.sent, ok + gateway.ok
        pairs.append((gateway.requests_per_s, bare.requests_per_s))
        gateway_rate, bare_rate = gateway.requests_per_s, bare.requests_per_s
    stored = env.database.inbound_messages() - stored_before
    ratios = [g / b for g, b in pairs]
    return {"ratio": round(statistics.median(ratios), 3),
            "ratio_to_fastest_floor_round": round(statistics.median(g for g, _ in pairs) / max(b for _, b in pairs), 3),
            "gateway_req_s": round(statistics.median(g for g, _ in pairs), 1),
            "bare_req_s": round(statistics.median(b for _, b in pairs), 1),
            "rounds": [{"gateway": round(g, 1), "bare": round(b, 1), "ratio": round(g / b, 3)} for g, b in pairs],
            "sent": sent, "answered_200": ok, "stored": stored, "path": PATH}


def generate(url: str, now: dt.datetime) -> dict[str, float]:
    """Fill the database; returns the seconds each table took."""
    span = dt.timedelta(days=5 * 365)
    params: dict[str, Any] = {"start": now - span, "span": span, **SIZES}
    took: dict[str, float] = {}
    engine = create_engine(url)
    with engine.begin() as connection:
        for table, sql in GENERATE:
            began = time.perf_counter()
            names = [name for name in params if f":{name}" in sql]
            connection.execute(text(sql), {name: params[name] for name in names})
            took[table] = round(time.perf_counter() - began, 1)
            print(f"  {table}: {took[table]} s", flush=True)
        for table, _sql in GENERATE:
            connection.execute(text(f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), "
                                    f"(SELECT max(id) FROM {table}))"))
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
        began = time.perf_counter()
        connection.execute(text("VACUUM ANALYZE"))
        took["vacuum_analyze"] = round(time.perf_counter() - began, 1)
    engine.dispose()
    return took


def expected_totals(url: str, first: dt.date, last: dt.date) -> dict[str, int]:
    """What the year's totals must be, counted straight from the tables (Europe/Amsterdam days)."""
    engine = create_engine(url)
    bounds = {"first": first.isoformat(), "after": (last + dt.timedelta(days=1)).isoformat()}
    within = ("{column} >= CAST(CAST(:first AS date) AS timestamp) AT TIME ZONE 'Europe/Amsterdam' AND "
              "{column} < CAST(CAST(:after AS date) AS timestamp) AT TIME ZONE 'Europe/Amsterdam'")
    with engine.connect() as connection:
        def count(sql: str) -> int:
            return int(connection.execute(text(sql), bounds).scalar_one() or 0)
        totals = {
            "requests": count("SELECT count(*) FROM listings WHERE kind = 'request' AND "
                              + within.format(column="created_at")),
            "matches_done": count("SELECT count(*) FROM matches WHERE " + within.format(column="done_at")),
            "callbacks": count("SELECT count(*) FROM callbacks WHERE " + within.format(column="created_at")),
            "sms_segments": count("SELECT sum(coalesce(segments, 1)) FROM messages WHERE direction = 'outbound' AND "
                                  + within.format(column="created_at")),
        }
    engine.dispose()
    return totals


def ask(base_url: str, path: str) -> tuple[float, int, dict[str, Any]]:
    request = urllib.request.Request(base_url + path, headers={"Authorization": f"Bearer {API_TOKEN}"})
    began = time.perf_counter()
    with urllib.request.urlopen(request, timeout=60) as response:
        body = response.read()
        status = response.status
    return (time.perf_counter() - began) * 1000, status, json.loads(body)


def run(*, requests: int = 40, database: str | None = None, rounds: int = 5, sms_seconds: float = 20.0) -> dict[str, Any]:
    now = dt.datetime.now(dt.timezone.utc)
    last_year = now.date().year - 1
    first, last = dt.date(last_year, 1, 1), dt.date(last_year, 12, 31)
    results: dict[str, Any] = {"benchmark": "reports", "machine": harness.machine_facts(), "sizes": SIZES,
                               "period": [first.isoformat(), last.isoformat()], "requests": requests,
                               "load_average_before": list(harness.load_average())}
    with harness.bench_environment("reports", database) as env:
        if env.database.kept and has_city(env.database.url):
            print(f"the city kept in {env.database.name}", flush=True)
            results["generate_seconds"] = {"kept": 0.0}
        else:
            print(f"generating five years of a city in {env.database.name} ...", flush=True)
            results["generate_seconds"] = generate(env.database.url, now)
        print("rolling up the report's days ...", flush=True)
        results["roll_up_seconds"] = roll_up(env.database.url, now)
        print(f"  {results['roll_up_seconds']} s", flush=True)
        results["load_average_measuring"] = list(harness.load_average())
        expected = expected_totals(env.database.url, first, last)
        results["by"] = {}
        problems = []
        for by in GROUPINGS:
            path = f"/api/v1/reports?from={first.isoformat()}&to={last.isoformat()}&by={by}"
            for _ in range(2):
                ask(env.gateway.base_url, path)
            times = []
            for _ in range(requests):
                took, status, body = ask(env.gateway.base_url, path)
                if status != 200:
                    problems.append(f"{by}: status {status}")
                times.append(took)
            totals = body["totals"]
            for key, value in expected.items():
                if totals[key] != value:
                    problems.append(f"{by}: totals[{key}] = {totals[key]}, the tables say {value}")
            results["by"][by] = {"p50_ms": round(harness.percentile(times, 50), 1),
                                 "p99_ms": round(harness.percentile(times, 99), 1),
                                 "max_ms": round(max(times), 1), "rows": len(body["rows"]), "totals": totals}
            print(f"  by {by}: p50 {results['by'][by]['p50_ms']} ms, p99 {results['by'][by]['p99_ms']} ms",
                  flush=True)
        results["load_average_measured"] = list(harness.load_average())
        print("POST /twilio/sms against the floor ...", flush=True)
        sms = results["sms"] = sms_rounds(env, rounds, sms_seconds)
        print(f"  {sms['ratio']}x ({sms['gateway_req_s']} req/s, floor {sms['bare_req_s']})", flush=True)
        if not sms["sent"] == sms["answered_200"] == sms["stored"]:
            problems.append(f"sms: sent {sms['sent']}, answered 200 {sms['answered_200']}, stored {sms['stored']}")
    results["load_average_after"] = list(harness.load_average())
    results["counts"] = {"problems": problems}
    results["targets"] = {
        "p50 < 300 ms": all(r["p50_ms"] < P50_TARGET_MS for r in results["by"].values()),
        "p99 < 1 s": all(r["p99_ms"] < P99_TARGET_MS for r in results["by"].values()),
        "totals as the tables say": not problems,
        "POST /twilio/sms >= 0.3x the floor": results["sms"]["ratio"] >= 0.3,
    }
    return results


def report(results: dict[str, Any]) -> str:
    lines = ["", f"Reports: GET /api/v1/reports for {results['period'][0]}..{results['period'][1]}, "
                 f"{results['requests']} requests each, one at a time",
             "data: " + ", ".join(f"{count:,} {name}" for name, count in results["sizes"].items()),
             "generated in: " + ", ".join(f"{name} {seconds} s" for name, seconds in results["generate_seconds"].items()),
             f"roll-up brought up to date in {results['roll_up_seconds']} s; load average while measuring "
             f"{results['load_average_measuring']} .. {results['load_average_measured']}",
             harness.table(["by", "p50 ms", "p99 ms", "max ms", "rows"],
                           [[by, r["p50_ms"], r["p99_ms"], r["max_ms"], r["rows"]] for by, r in results["by"].items()]),
             f"POST /twilio/sms vs the floor: {results['sms']['ratio']}x (gateway {results['sms']['gateway_req_s']} "
             f"req/s, floor {results['sms']['bare_req_s']}; rounds "
             + ", ".join(str(r["ratio"]) for r in results["sms"]["rounds"])
             + f"; against the floor's fastest round {results['sms']['ratio_to_fastest_floor_round']}x); "
               f"{results['sms']['sent']} sent, {results['sms']['stored']} stored"]
    lines += harness.verdict_lines(results)
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=40, help="measured requests per grouping")
    parser.add_argument("--database", help="keep the generated city in this database between runs")
    parser.add_argument("--rounds", type=int, default=5, help="paired SMS rounds, gateway and floor")
    args = parser.parse_args(argv)
    results = run(requests=args.requests, database=args.database, rounds=args.rounds)
    return harness.finish("reports", results, report(results), "the report's totals differ from the tables'")


if __name__ == "__main__":
    sys.exit(main())
