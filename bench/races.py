#!/usr/bin/env python3
"""Counts for the race fixes, against a release build on PostgreSQL and, when given, a baseline.

    cargo build --release
    python3 bench/races.py postgres://postgres@127.0.0.1:5432/postgres target/release/tandem [BASELINE]

For each binary it creates a fresh database on the given server, starts `tandem serve`, mints
tokens with `tandem token`, and prints what parallel black-box requests produced:
- invitations: 20 parallel `inviteFriends` calls of 20 addresses each (the limit is 50 a day);
- velocity: 100 parallel signups with one referral code (TANDEM_REFERRAL_DAILY_LIMIT=20);
- carts: 50 carts, each written in parallel with the order that names it; carts left ACTIVE.
Only loopback is used; every request has a timeout; servers and databases are removed at the end.
"""
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
import uuid
from concurrent.futures import ThreadPoolExecutor


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def with_database(url, name):
    base = url.rsplit("/", 1)[0]
    return f"{base}/{name}"


def graphql(url, token, query, variables):
    body = json.dumps({"query": query, "variables": variables}).encode()
    request = urllib.request.Request(
        url, data=body, headers={"content-type": "application/json", "authorization": f"Bearer {token}"})
    try:
        with urllib.request.urlopen(request, timeout=60) as response:
            return json.loads(response.read())
    except urllib.error.HTTPError as error:
        return json.loads(error.read() or b"{}")


def psql(admin_url, sql):
    return subprocess.run(["psql", admin_url, "-Atc", sql], check=True, capture_output=True,
                          text=True).stdout.strip()


def run(binary, admin_url):
    name = f"tandem_races_{uuid.uuid4().hex}"
    psql(admin_url, f"CREATE DATABASE {name}")
    database_url = with_database(admin_url, name)
    work = tempfile.mkdtemp(prefix="tandem-races-")
    port = free_port()
    env = dict(os.environ, DATABASE_URL=database_url, TANDEM_BIND=f"127.0.0.1:{port}",
               TANDEM_MAIL_DIR=f"{work}/mail", RUST_LOG="error", TANDEM_REFERRAL_DAILY_LIMIT="20")
    server = subprocess.Popen([binary, "serve"], env=env, stdout=subprocess.DEVNULL,
                              stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        for _ in range(300):
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=1)
                break
            except OSError:
                time.sleep(0.2)
        url = f"http://127.0.0.1:{port}/graphql"

        def mint(role, sub):
            return subprocess.run([binary, "token", "--role", role, "--sub", sub, "--ttl", "1h"],
                                  env=env, check=True, capture_output=True, text=True).stdout.strip()

        admin, service, ann = mint("admin", "ops"), mint("service", "shop"), mint("customer", "ann")
        graphql(url, admin, "mutation($i: CampaignInput!) { createCampaign(input: $i) { id } }", {"i": {
            "name": "Races", "referrerReward": {"kind": "POINTS", "amount": 500},
            "refereeReward": {"kind": "FIXED_COUPON", "amount": 1000}}})
        register = "mutation($i: RegisterCustomerInput!) { registerCustomer(input: $i) { customer { referralCode } referral { status } } }"
        code = graphql(url, service, register, {"i": {"externalId": "ann", "email": "ann@example.com"}})[
            "data"]["registerCustomer"]["customer"]["referralCode"]

        invite = "mutation($e: [String!]!) { inviteFriends(emails: $e) { sent } }"
        with ThreadPoolExecutor(max_workers=20) as pool:
            answers = list(pool.map(lambda call: graphql(url, ann, invite, {
                "e": [f"friend{call}-{i}@example.com" for i in range(20)]}), range(20)))
        invited = sum(len((a.get("data") or {}).get("inviteFriends", {}).get("sent", []))
                      for a in answers if a.get("data"))

        def signup(i):
            return graphql(url, service, register, {"i": {
                "externalId": f"friend{i}", "email": f"f{i}@example.com", "referralCode": code}})
        with ThreadPoolExecutor(max_workers=50) as pool:
            signups = list(pool.map(signup, range(100)))
        pending = sum(1 for s in signups
                      if ((s.get("data") or {}).get("registerCustomer") or {}).get("referral", {}).get("status") == "PENDING")

        upsert = "mutation($i: CartInput!) { upsertCart(input: $i) { status } }"
        order = "mutation($i: OrderInput!) { recordOrder(input: $i) { id } }"
        item = {"productId": "mug", "unitPrice": 1250, "quantity": 1}

        def race(job):
            kind, i = job
            if kind == "cart":
                return graphql(url, service, upsert, {"i": {
                    "externalId": f"cart-{i}", "customerExternalId": "ann", "items": [item]}})
            return graphql(url, service, order, {"i": {
                "externalId": f"o-{i}", "customerExternalId": "ann", "amount": 1250,
                "currency": "USD", "cartExternalId": f"cart-{i}"}})
        # Every other pair sends the order first, as out-of-order webhooks do.
        jobs = [(kind, i) for i in range(50)
                for kind in (("order", "cart") if i % 2 else ("cart", "order"))]
        with ThreadPoolExecutor(max_workers=40) as pool:
            list(pool.map(race, jobs))
        active = int(psql(database_url, "SELECT count(*) FROM carts WHERE status = 'ACTIVE'"))
        return invited, pending, active
    finally:
        server.terminate()
        server.wait(timeout=30)
        psql(admin_url, f"DROP DATABASE {name} WITH (FORCE)")


def main():
    if len(sys.argv) < 3:
        sys.exit(__doc__)
    admin_url, binaries = sys.argv[1], sys.argv[2:]
    print(f"{'binary':<40} {'invited (limit 50)':>19} {'pending (limit 20)':>19} {'carts left ACTIVE of 50':>24}")
    for binary in binaries:
        invited, pending, active = run(binary, admin_url)
        print(f"{binary:<40} {invited:>19} {pending:>19} {active:>24}")


if __name__ == "__main__":
    main()
