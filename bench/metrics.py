#!/usr/bin/env python3
"""The metrics benchmark: every metrics query against PostgreSQL at scale, beside hand-written SQL.

    cargo build --release
    python3 bench/metrics.py postgres://postgres@127.0.0.1:5432/postgres target/release/tandem \
        [--customers 1000000] [--orders 5000000]

It creates (or reuses, when its marker says the same sizes) the database `tandem_bench_metrics`
on that server, migrates it with `tandem migrate`, fills it in bulk with bench/metrics_seed.sql,
starts `tandem serve` on it and, for each query over the year before 2026-11-01, prints the
median of 3 timed runs through the API (HTTP + GraphQL) and of the equivalent hand-written SQL
run by psql (server time, as `\\timing` reports it), and their ratio. Loopback only.
"""
import argparse
import json
import os
import re
import socket
import statistics
import subprocess
import sys
import time
import urllib.request

DB = "tandem_bench_metrics"
FROM, TO = "2025-11-01T00:00:00+00:00", "2026-11-01T00:00:00+00:00"
SECRET = "bench-secret-that-is-at-least-32-characters"

POINT_VALUE = "(SELECT point_value FROM program_settings WHERE id = 1)"
COST = ("SUM(CASE WHEN w.kind = 'POINTS' THEN w.amount * " + POINT_VALUE +
        " WHEN w.kind IN ('FIXED_COUPON', 'STORE_CREDIT') THEN w.amount ELSE 0 END)")
COHORT_COST = f"""SELECT {COST} FROM rewards w JOIN referrals r ON w.referral_id = r.id
        WHERE r.created_at >= '{FROM}' AND r.created_at < '{TO}' AND w.status IN ('ISSUED', 'REDEEMED')
        AND w.side IN ('REFERRER', 'REFEREE', 'MILESTONE')"""
# The hand-written SQL reads the same tables the API does, rollups included (a DBA with this
# schema would), and computes the same figures.
ROLLUP_COHORT = f"customer_rollups f WHERE f.signed_up_at >= '{FROM}' AND f.signed_up_at < '{TO}'"
RETENTION_BITS = ", ".join(f"count(*) FILTER (WHERE active_months & {1 << b} <> 0)" for b in range(13))

QUERIES = [
    ("referralMetrics",
     """query($from: DateTime!, $to: DateTime!) { referralMetrics(from: $from, to: $to) {
        newCustomers referredCustomers referralRate clicks referredSignups qualifiedReferrals
        clickToSignupRate signupToQualifiedRate participationRate rewardCost unpricedRewards } }""",
     f"""SELECT
      (SELECT count(*) FROM {ROLLUP_COHORT}),
      (SELECT count(*) FROM {ROLLUP_COHORT} AND f.referred),
      (SELECT count(*) FROM referral_clicks WHERE clicked_at >= '{FROM}' AND clicked_at < '{TO}'),
      (SELECT count(*) FROM referrals WHERE created_at >= '{FROM}' AND created_at < '{TO}'),
      (SELECT count(*) FROM referrals WHERE created_at >= '{FROM}' AND created_at < '{TO}'
         AND status IN ('QUALIFIED', 'REWARDED')),
      (SELECT count(*) FROM orders WHERE placed_at >= '{FROM}' AND placed_at < '{TO}'
         AND (previous_placed_at IS NULL OR previous_placed_at < '{FROM}')),
      (SELECT count(DISTINCT r.referrer_id) FROM referrals r WHERE r.status IN ('QUALIFIED', 'REWARDED')
         AND r.qualified_at >= '{FROM}' AND r.qualified_at < '{TO}' AND EXISTS (SELECT 1 FROM orders o
         WHERE o.customer_id = r.referrer_id AND o.placed_at >= '{FROM}' AND o.placed_at < '{TO}')),
      (SELECT {COST} FROM rewards w WHERE issued_at >= '{FROM}' AND issued_at < '{TO}'
         AND status IN ('ISSUED', 'REDEEMED') AND side IN ('REFERRER', 'REFEREE', 'MILESTONE')),
      (SELECT count(*) FROM rewards w WHERE issued_at >= '{FROM}' AND issued_at < '{TO}'
         AND status IN ('ISSUED', 'REDEEMED') AND side IN ('REFERRER', 'REFEREE', 'MILESTONE')
         AND kind = 'PERCENT_COUPON')"""),
    ("referralMetrics.series(MONTH)",
     """query($from: DateTime!, $to: DateTime!) { referralMetrics(from: $from, to: $to) {
        series(interval: MONTH) { from newCustomers referredCustomers clicks referredSignups
        qualifiedReferrals participationRate rewardCost unpricedRewards } } }""",
     f"""WITH m AS (SELECT date_trunc('month', signed_up_at AT TIME ZONE 'UTC') b, count(*) n,
        count(*) FILTER (WHERE referred) rc FROM {ROLLUP_COHORT} GROUP BY 1),
      cl AS (SELECT date_trunc('month', clicked_at AT TIME ZONE 'UTC') b, count(*) n FROM referral_clicks
        WHERE clicked_at >= '{FROM}' AND clicked_at < '{TO}' GROUP BY 1),
      rs AS (SELECT date_trunc('month', created_at AT TIME ZONE 'UTC') b, count(*) n,
        count(*) FILTER (WHERE status IN ('QUALIFIED', 'REWARDED')) q FROM referrals
        WHERE created_at >= '{FROM}' AND created_at < '{TO}' GROUP BY 1),
      oc AS (SELECT date_trunc('month', placed_at AT TIME ZONE 'UTC') b, count(*) n
        FROM orders WHERE placed_at >= '{FROM}' AND placed_at < '{TO}' AND (previous_placed_at IS NULL
        OR previous_placed_at < '{FROM}' OR date_trunc('month', previous_placed_at AT TIME ZONE 'UTC')
          <> date_trunc('month', placed_at AT TIME ZONE 'UTC')) GROUP BY 1),
      pa AS (SELECT date_trunc('month', r.qualified_at AT TIME ZONE 'UTC') b, count(DISTINCT r.referrer_id) n
        FROM referrals r WHERE r.status IN ('QUALIFIED', 'REWARDED')
        AND r.qualified_at >= '{FROM}' AND r.qualified_at < '{TO}' AND EXISTS (
        SELECT 1 FROM orders o WHERE o.customer_id = r.referrer_id
        AND o.placed_at >= '{FROM}' AND o.placed_at < '{TO}'
        AND date_trunc('month', r.qualified_at AT TIME ZONE 'UTC') = date_trunc('month', o.placed_at AT TIME ZONE 'UTC'))
        GROUP BY 1),
      rw AS (SELECT date_trunc('month', issued_at AT TIME ZONE 'UTC') b, {COST} n,
        count(*) FILTER (WHERE kind = 'PERCENT_COUPON') u FROM rewards w
        WHERE issued_at >= '{FROM}' AND issued_at < '{TO}' AND status IN ('ISSUED', 'REDEEMED')
        AND side IN ('REFERRER', 'REFEREE', 'MILESTONE') GROUP BY 1)
      SELECT * FROM m FULL JOIN cl USING (b) FULL JOIN rs USING (b)
        FULL JOIN oc USING (b) FULL JOIN pa USING (b) FULL JOIN rw USING (b)"""),
    ("acquisitionCost",
     """query($from: DateTime!, $to: DateTime!) { acquisitionCost(from: $from, to: $to) {
        channel spend newCustomers cac } }""",
     f"""SELECT CASE WHEN f.referred THEN 'referral' ELSE f.channel END, count(*)
        FROM {ROLLUP_COHORT} GROUP BY 1
      UNION ALL SELECT 'referral-cost', ({COHORT_COST})
      UNION ALL SELECT channel, sum(amount * extract(epoch FROM LEAST(period_end, '{TO}') - GREATEST(period_start, '{FROM}'))
        / extract(epoch FROM period_end - period_start))::bigint FROM marketing_spend
        WHERE period_start < '{TO}' AND period_end > '{FROM}' GROUP BY channel"""),
    ("customerLifetimeValue",
     """query($from: DateTime!, $to: DateTime!) { customerLifetimeValue(from: $from, to: $to) {
        referred { customers averageOrderValue ordersPerCustomer averageNetRevenue clv }
        nonReferred { customers clv } lift byChannel { channel clv cac clvToCac } } }""",
     f"""SELECT f.referred, f.channel, count(*), sum(f.orders), sum(f.gross), sum(f.net)
        FROM {ROLLUP_COHORT} GROUP BY 1, 2
      UNION ALL SELECT NULL, 'referral-cost', 0, 0, 0, ({COHORT_COST})"""),
    ("customerLifetimeValue(horizonDays: 90)",
     """query($from: DateTime!, $to: DateTime!) {
        customerLifetimeValue(from: $from, to: $to, horizonDays: 90) {
        referred { customers averageOrderValue ordersPerCustomer averageNetRevenue clv }
        nonReferred { customers clv } lift byChannel { channel clv cac clvToCac } } }""",
     f"""SELECT f.referred, f.channel, count(*), 0, 0 FROM {ROLLUP_COHORT} GROUP BY 1, 2
      UNION ALL SELECT f.referred, f.channel, count(*), sum(o.amount), sum(o.amount - o.refunded_amount)
        FROM customer_rollups f JOIN orders o ON o.customer_id = f.customer_id
          AND o.placed_at < f.signed_up_at + interval '90 days'
        WHERE f.signed_up_at >= '{FROM}' AND f.signed_up_at < '{TO}' GROUP BY 1, 2
      UNION ALL SELECT NULL, 'referral-cost', 0, 0, ({COHORT_COST})"""),
    ("retention",
     """query($from: DateTime!, $to: DateTime!) { retention(from: $from, to: $to) {
        month referred customers months twelveMonthRetention } }""",
     f"""SELECT to_char(signed_up_at AT TIME ZONE 'UTC', 'YYYY-MM'), referred, count(*), {RETENTION_BITS}
        FROM {ROLLUP_COHORT} GROUP BY 1, 2"""),
    ("programEconomics",
     """query($from: DateTime!, $to: DateTime!) { programEconomics(from: $from, to: $to) {
        rewardCost referredCustomers referredRevenue baselineRevenue incrementalRevenue roi } }""",
     f"""SELECT CASE WHEN f.referred THEN 'referred' ELSE 'other' END, count(*), sum(f.net)
        FROM {ROLLUP_COHORT} GROUP BY 1
      UNION ALL SELECT 'cost', 0, ({COHORT_COST})"""),
    ("pointsLiability",
     """query($from: DateTime!, $to: DateTime!) { pointsLiability(from: $from, to: $to) {
        outstandingPoints outstandingValue breakage breakageValue } }""",
     f"""SELECT (SELECT sum(GREATEST(points_balance, 0)) FROM customer_rollups),
        (SELECT -sum(delta) FROM points_ledger WHERE reason = 'EXPIRY'
          AND created_at >= '{FROM}' AND created_at < '{TO}')"""),
]


def psql(url, *args, capture=True):
    return subprocess.run(["psql", url, "-X", "-q", "-v", "ON_ERROR_STOP=1", *args],
                          check=True, capture_output=capture, text=True).stdout


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("server")
    parser.add_argument("binary")
    parser.add_argument("--customers", type=int, default=1_000_000)
    parser.add_argument("--orders", type=int, default=5_000_000)
    args = parser.parse_args()
    base = args.server.rsplit("/", 1)[0]
    url = f"{base}/{DB}"
    env = dict(os.environ, DATABASE_URL=url, TANDEM_JWT_SECRET=SECRET,
               TANDEM_REQUEST_TIMEOUT="300s", RUST_LOG="warn")

    exists = psql(args.server, "-Atc", f"SELECT 1 FROM pg_database WHERE datname = '{DB}'").strip()
    marker = ""
    if exists:
        marker = subprocess.run(["psql", url, "-X", "-Atc", "SELECT customers, orders FROM bench_marker"],
                                capture_output=True, text=True).stdout.strip()
    if marker != f"{args.customers}|{args.orders}":
        print(f"seeding {args.customers} customers and {args.orders} orders ...", flush=True)
        psql(args.server, "-c", f"DROP DATABASE IF EXISTS {DB}", "-c", f"CREATE DATABASE {DB}")
        subprocess.run([args.binary, "migrate"], env=env, check=True, capture_output=True)
        started = time.perf_counter()
        psql(url, "-v", f"customers={args.customers}", "-v", f"orders={args.orders}",
             "-f", os.path.join(os.path.dirname(__file__), "metrics_seed.sql"))
        # The seed wrote around the API, so the rollups the API keeps are computed once here.
        rebuilt = time.perf_counter()
        subprocess.run([args.binary, "rebuild-rollups"], env=env, check=True, capture_output=True)
        psql(url, "-c", "VACUUM ANALYZE")
        print(f"seeded in {rebuilt - started:.0f} s, rollups rebuilt and vacuumed in "
              f"{time.perf_counter() - rebuilt:.0f} s", flush=True)
    else:
        print(f"reusing {DB} ({args.customers} customers, {args.orders} orders)", flush=True)

    port = free_port()
    server = subprocess.Popen([args.binary, "serve", "--no-workers"],
                              env=dict(env, TANDEM_BIND=f"127.0.0.1:{port}"),
                              stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    try:
        for line in server.stdout:
            if line.startswith("Tandem is listening on "):
                break
        token = subprocess.run([args.binary, "token", "--role", "admin", "--sub", "bench"], env=env,
                               check=True, capture_output=True, text=True).stdout.strip().splitlines()[-1]

        def api(query):
            body = json.dumps({"query": query, "variables": {"from": FROM, "to": TO}}).encode()
            request = urllib.request.Request(f"http://127.0.0.1:{port}/graphql", body, {
                "Content-Type": "application/json", "Authorization": f"Bearer {token}"})
            started = time.perf_counter()
            with urllib.request.urlopen(request, timeout=600) as response:
                answer = json.load(response)
            elapsed = (time.perf_counter() - started) * 1000
            if answer.get("errors"):
                sys.exit(f"API error: {answer['errors']}")
            return elapsed

        def sql(statement):
            out = psql(url, "-c", "\\timing on", "-c", statement, "-o", "/dev/null")
            return float(re.findall(r"Time: ([0-9.]+) ms", out)[-1])

        print(f"{'query':40} {'API ms':>9} {'SQL ms':>9} {'ratio':>6}")
        for name, query, statement in QUERIES:
            api(query)
            sql(statement)
            api_ms = statistics.median(api(query) for _ in range(3))
            sql_ms = statistics.median(sql(statement) for _ in range(3))
            print(f"{name:40} {api_ms:9.1f} {sql_ms:9.1f} {api_ms / sql_ms:6.2f}", flush=True)
    finally:
        server.terminate()


if __name__ == "__main__":
    main()
