#!/usr/bin/env python3
"""Re-captures the statements of one qualifying recordOrder and of one trackReferralClick, and
regenerates the pgbench baselines bench/load/record_order.sql and track_click.sql from them.
Run it after changing what those mutations send to the database.

    cargo build --release
    python3 bench/load/capture.py [--database postgres://postgres@127.0.0.1:5432/postgres]
                                  [--log /var/log/postgresql/postgresql-15-main.log]

It needs to read the PostgreSQL server's log (the Debian default path above). It makes the
database `tandem_capture` anew with `log_statement = 'all'`, registers a referrer and two referred
friends, records a warm-up order, then captures the second friend's first order and one click.
"""
import argparse
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

import load  # noqa: E402  (bench/load.py: its server, token and GraphQL helpers)

DB = "tandem_capture"


def excerpt(log_path, action):
    start = log_path.stat().st_size
    action()
    time.sleep(0.5)
    with open(log_path, "rb") as log:
        log.seek(start)
        return log.read().decode("utf-8", "replace")


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--database", default="postgres://postgres@127.0.0.1:5432/postgres")
    parser.add_argument("--log", default="/var/log/postgresql/postgresql-15-main.log")
    args = parser.parse_args()
    log_path = Path(args.log)
    url = args.database.rsplit("/", 1)[0] + "/" + DB
    load.psql(args.database, f"DROP DATABASE IF EXISTS {DB} WITH (FORCE)")
    load.psql(args.database, f"CREATE DATABASE {DB}")
    tandem = load.ROOT / "target" / "release" / "tandem"
    env = dict(__import__("os").environ, DATABASE_URL=url, TANDEM_JWT_SECRET=load.SECRET,
               RUST_LOG="warn", TANDEM_MAIL_DIR="/tmp/tandem-capture-mail")
    load.run(str(tandem), "migrate", env=env)
    load.psql(args.database, f"ALTER DATABASE {DB} SET log_statement = 'all'")
    server = load.Server([str(tandem), "serve", "--no-workers"], env, "/ready")
    try:
        admin, service = load.jwt("admin", "capture"), load.jwt("service", "capture")
        load.graphql(server.url, admin, """mutation { createCampaign(input: { name: "Load",
            referrerReward: { kind: POINTS, amount: 500 }, refereeReward: { kind: FIXED_COUPON, amount: 1000 },
            qualifyWithinDays: 30 }) { id } }""")
        register = ("mutation($i: RegisterCustomerInput!) { registerCustomer(input: $i) "
                    "{ customer { referralCode } referral { status } } }")
        code = load.graphql(server.url, service, register, {"i": {
            "externalId": "c1", "email": "c1@x.example"}})["registerCustomer"]["customer"]["referralCode"]
        for friend in ("lf1", "lf2"):
            load.graphql(server.url, service, register, {"i": {
                "externalId": friend, "email": f"{friend}@friends.example", "referralCode": code}})
        order = "mutation($i: OrderInput!) { recordOrder(input: $i) { id } }"

        def record(external_id, friend):
            return lambda: load.graphql(server.url, service, order, {"i": {
                "externalId": external_id, "customerExternalId": friend, "amount": 4200,
                "currency": "USD"}})
        record("warm", "lf2")()
        order_log = excerpt(log_path, record("o1", "lf1"))
        click_log = excerpt(log_path, lambda: load.graphql(
            server.url, service, "mutation($c: String!) { trackReferralClick(code: $c) { recorded } }",
            {"c": code}))
    finally:
        server.stop()
        load.psql(args.database, f"ALTER DATABASE {DB} RESET log_statement")
    for case, text, target in (("record_order", order_log, "record_order.sql"),
                               ("click", click_log, "track_click.sql")):
        source = HERE / f"{case}.log"
        source.write_text(text)
        generated = subprocess.run([sys.executable, str(HERE / "capture_sql.py"), case, str(source)],
                                   check=True, capture_output=True, text=True).stdout
        source.unlink()
        (HERE / target).write_text(generated)
        statements = sum(1 for line in generated.splitlines()
                         if line and not line.startswith(("--", "\\")))
        print(f"{target}: {statements} statements")


if __name__ == "__main__":
    main()
