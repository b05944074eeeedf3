#!/usr/bin/env python3
"""recordOrder and `me` latency for one customer as their history grows (a tier, a badge earned
at the 10th order, a streak badge never earned (all orders fall in one month, so it is measured
on every order), expiry on, nothing redeemed, so every lot stays open): after each order the customer reads their
app screen. Prints the p50 of both over orders 0-50 and over the last 50, one request at a time.

    cargo build --release
    python3 bench/record_order.py target/release/tandem postgres://postgres@127.0.0.1:5432/rob [orders]
    python3 bench/record_order.py target/release/tandem sqlite:///tmp/rob.db [orders]

`orders` defaults to 5,000. The database must be empty (a new one). Loopback only; this is a
benchmark, not a test.

On PostgreSQL the run is shorter than autovacuum's first look at the new tables (a minute), so
the planner would otherwise plan the last orders with the statistics of empty tables; a
long-lived database has had them analysed many times over. The script runs `ANALYZE` before the
last 50 orders and also prints the 50 before them, measured without it."""
import json, os, socket, statistics, subprocess, sys, tempfile, time, urllib.request

binary, database = sys.argv[1], sys.argv[2]
orders = int(sys.argv[3]) if len(sys.argv) > 3 else 5000
ME = ("{ me { pointsBalance pendingPoints lifetimePoints tier { name } nextTier { remaining } "
      "badges { badge { key } } pointsExpiringSoon { amount } } }")
secret = "bench-secret-that-is-at-least-32-characters"
with socket.socket() as s:
    s.bind(("127.0.0.1", 0)); port = s.getsockname()[1]
tmp = tempfile.mkdtemp()
env = dict(os.environ, DATABASE_URL=database, TANDEM_JWT_SECRET=secret, RUST_LOG="warn",
           TANDEM_BIND=f"127.0.0.1:{port}", TANDEM_MAIL_DIR=f"{tmp}/mail")
server = subprocess.Popen([binary, "serve", "--no-workers"], env=env, stdout=subprocess.PIPE,
                          stderr=subprocess.DEVNULL, text=True)
for line in server.stdout:
    if line.startswith("Tandem is listening"): break
def token(role, sub="bench"):
    return subprocess.run([binary, "token", "--role", role, "--sub", sub], env=env, check=True,
                          capture_output=True, text=True).stdout.strip().splitlines()[-1]
admin, service = token("admin"), token("service")
def call(tok, query, variables=None):
    body = json.dumps({"query": query, "variables": variables or {}}).encode()
    req = urllib.request.Request(f"http://127.0.0.1:{port}/graphql", body,
        {"Content-Type": "application/json", "Authorization": f"Bearer {tok}"})
    with urllib.request.urlopen(req) as r:
        answer = json.load(r)
    if answer.get("errors"): sys.exit(f"error: {answer['errors']}")
    return answer
try:
    call(admin, "mutation { updateProgramSettings(input: { pointsPerUnit: 1, pointsExpireAfterDays: 365 }) { pointsPerUnit } }")
    call(admin, 'mutation { createTier(input: { name: "Gold", threshold: 1000 }) { id } }')
    call(admin, 'mutation { createBadge(input: { key: "ten", name: "Ten", rule: ORDERS, threshold: 10 }) { id } }')
    call(admin, 'mutation { createBadge(input: { key: "regular", name: "Regular", rule: ORDER_STREAK_MONTHS, threshold: 12 }) { id } }')
    call(service, 'mutation { registerCustomer(input: { externalId: "c1", email: "c1@example.com" }) { customer { id } } }')
    customer = token("customer", "c1")
    order_ms, me_ms = [], []
    for i in range(orders):
        if i == orders - 50 and database.startswith("postgres"):
            subprocess.run(["psql", database, "-qc", "ANALYZE"], check=True)
        started = time.perf_counter()
        call(service, "mutation($i: OrderInput!) { recordOrder(input: $i) { id } }",
             {"i": {"externalId": f"o{i}", "customerExternalId": "c1", "amount": 2500, "currency": "USD"}})
        order_ms.append((time.perf_counter() - started) * 1000)
        started = time.perf_counter()
        call(customer, ME)
        me_ms.append((time.perf_counter() - started) * 1000)
    first = lambda xs: statistics.median(xs[:50])
    last = lambda xs: statistics.median(xs[-50:])
    before = lambda xs: statistics.median(xs[-100:-50])
    if database.startswith("postgres"):
        print(f"before ANALYZE, orders {orders - 100}-{orders - 50}: recordOrder p50 "
              f"{before(order_ms):.2f} ms, me p50 {before(me_ms):.2f} ms")
    print(f"{database.split(':')[0]}: recordOrder p50 orders 0-50 {first(order_ms):.2f} ms, "
          f"{orders - 50}-{orders} {last(order_ms):.2f} ms ({last(order_ms) / first(order_ms):.2f}x); "
          f"me p50 {first(me_ms):.2f} ms, {last(me_ms):.2f} ms ({last(me_ms) / first(me_ms):.2f}x)")
finally:
    server.terminate()
