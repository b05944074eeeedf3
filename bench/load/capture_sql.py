#!/usr/bin/env python3
"""Turns the PostgreSQL statement log of one real request into a pgbench script that sends the
same statements, in the same order, with the same shapes: the baselines of bench/load.py.

    ALTER DATABASE <db> SET log_statement = 'all';   -- then make the request once through the API
    python3 bench/load/capture_sql.py record_order <log excerpt> > bench/load/record_order.sql
    python3 bench/load/capture_sql.py click <log excerpt> > bench/load/track_click.sql

Each `$n` gets the value it was logged with, then values are generalised so every transaction
acts on its own rows: the captured customer, referral and referrer become variables set by
`\\gset` from the same SELECTs Tandem runs (the first of each), new ids become
`gen_random_uuid()`, timestamps `now()`, and unique keys are built from the client and its
transaction count. Run with `pgbench -M prepared` (sqlx prepares every statement too) and
`-D k=0 -D clients=N -D friends=N -D customers=N`.
"""
import re
import sys

UUID = r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}"
TIMESTAMP = re.compile(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d(\.\d+)?\+00$")
DATE = re.compile(r"^\d{4}-\d\d-\d\d$")
COUPON = re.compile(r"^[0-9A-Z]{4}(-[0-9A-Z]{4}){3}$")
# The order this transaction records, the same expression wherever its id or external id is used.
ORDER_EXTERNAL = "concat('pgb-', :client_id::text, '-', :k::text)"
ORDER_ID = f"md5({ORDER_EXTERNAL})::uuid"


def statements(log_text):
    """(sql, {n: literal}) for each statement of the log excerpt, in order."""
    entries = re.split(r"\n(?=\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d+ UTC )", log_text)
    found = []
    for i, entry in enumerate(entries):
        match = re.search(r"LOG:  (?:execute [^:]*|statement): (.*)", entry, re.S)
        if not match:
            continue
        params = {}
        following = entries[i + 1] if i + 1 < len(entries) else ""
        if "DETAIL:  parameters:" in following:
            detail = following.split("DETAIL:  parameters:", 1)[1]
            for n, value in re.findall(r"\$(\d+) = (NULL|'(?:[^']|'')*')", detail):
                params[int(n)] = value
        found.append((" ".join(match.group(1).split()), params))
    return found


def literal_text(value):
    return value[1:-1].replace("''", "'")


def quote(text):
    """A string literal pgbench leaves alone: it reads `:name` even inside quotes, so a colon
    before a letter is written as an escape."""
    if re.search(r":[A-Za-z_]", text):
        escaped = text.replace("\\", "\\\\").replace("'", "''")
        return "E'" + re.sub(r":(?=[A-Za-z_])", r"\\x3a", escaped) + "'"
    return "'" + text.replace("'", "''") + "'"


class Generaliser:
    def __init__(self, known):
        # Captured literal (unquoted) -> SQL expression, for ids and keys that carry over.
        self.known = known

    def uuid_expression(self, value):
        return self.known.get(value, "gen_random_uuid()")

    def value(self, value):
        if value == "NULL":
            return "NULL"
        text = literal_text(value)
        if text in self.known:
            return self.known[text]
        if TIMESTAMP.match(text):
            return "now()"
        if DATE.match(text):
            return "current_date"
        if COUPON.match(text):
            return "upper(substr(md5(random()::text), 1, 19))"
        if re.fullmatch(UUID, text):
            return self.uuid_expression(text)
        if re.search(UUID, text) and not text.startswith("{"):
            # A key made of ids ("referral:<id>:REFEREE"): the same shape, this transaction's ids.
            parts, last = [], 0
            for m in re.finditer(UUID, text):
                parts.append(quote(text[last:m.start()]))
                parts.append(self.uuid_expression(m.group(0)) + "::text")
                last = m.end()
            parts.append(quote(text[last:]))
            return "concat(" + ", ".join(parts) + ")"
        return quote(text)

    def sql(self, sql, params):
        return re.sub(r"\$(\d+)\b", lambda m: self.value(params[int(m.group(1))]), sql)


# The referrer's id, set by the wrapped lock (gset c_).
REFERRER_ID = ":c_pending_referrer_id::uuid"


def main():
    case, path = sys.argv[1], sys.argv[2]
    found = statements(open(path).read())
    if case == "record_order":
        # The captured request: friend lf1's first order o1, whose referral (referrer c1) qualified.
        customers = [p[1] for s, p in found if 'FROM "customers" WHERE "customers"."external_id"' in s]
        referrals = [p for s, p in found if 'WHERE "referrals"."referee_id" = $1' in s]
        orders = [p for s, p in found if s.startswith('INSERT INTO "orders"')]
        external = literal_text(customers[0])
        order_external, order_id = literal_text(orders[0][2]), literal_text(orders[0][1])
        friend_id = literal_text(orders[0][3])
        known = {
            external: "concat('pf', :f::text)",
            order_external: ORDER_EXTERNAL,
            order_id: ORDER_ID,
            friend_id: ":c_id::uuid",
        }
        # The referral, its referrer and campaign come from the SELECT on referrals (gset r_).
        header = ["\\set k :k + 1",
                  "\\set f 1 + (:client_id + (:k - 1) * :clients) % :friends"]
        referral_select = None
        gsets = {}
        for index, (sql, params) in enumerate(found):
            if 'FROM "customers" WHERE "customers"."external_id"' in sql and "c_" not in gsets.values():
                gsets[index] = "c_"
            if referral_select is None and ('WHERE "referrals"."referee_id" = $1' in sql
                                            or '"A_referee_id"' in sql):
                referral_select = index
                gsets[index] = "r_"
        # The referrer's and the referral's ids appear after the referral SELECT; learn them from
        # the UPDATE that qualifies it and the reward rows.
        for sql, params in found:
            if sql.startswith('UPDATE "referrals" SET "status" = $1, "qualifying_order_id"'):
                # The referral's id is whatever `"referrals"."id"` is compared with.
                n = int(re.search(r'"referrals"\."id" = \$(\d+)', sql).group(1))
                known[literal_text(params[n])] = ":r_id::uuid"
            if sql.startswith('INSERT INTO "rewards"'):
                # One row per reward, in one insert: the side is each row's 4th column and
                # the customer its 2nd.
                width = sql.split("(", 1)[1].split(")", 1)[0].count(",") + 1
                for row in range(len(params) // width):
                    side = literal_text(params[row * width + 4])
                    if side == "REFERRER":
                        known[literal_text(params[row * width + 2])] = REFERRER_ID
        for sql, params in found:
            if sql.startswith('SELECT "campaigns"') and 'WHERE "campaigns"."id" = $1' in sql:
                known[literal_text(params[1])] = ":r_campaign_id::uuid"
        generaliser = Generaliser(known)
        emails = {}
        for sql, params in found:
            if sql.startswith('INSERT INTO "email_outbox"'):
                emails[literal_text(params[2])] = literal_text(params[3])
        for address, customer in emails.items():
            expression = known.get(customer)
            if expression == ":c_id::uuid":
                known[address] = "concat('pf', :f::text, '@friends.example')"
            elif expression == REFERRER_ID:
                known[address] = f"(SELECT email FROM customers WHERE id = {REFERRER_ID})"
        body = []
        for index, (sql, params) in enumerate(found):
            line = generaliser.sql(sql, params)
            if gsets.get(index) == "c_" and ("UNION ALL" in sql or " OR " in sql):
                # The lock returns the buyer and their referrer; `\\gset` takes one row, so the
                # same locking statement is wrapped to hand on the buyer's.
                # Its referrer (the lock's other row) is read from the buyer's pending referral,
                # as the snapshot after it needs both ids.
                line = (f"SELECT held.*, (SELECT referrals.referrer_id FROM referrals "
                        f"WHERE referrals.referee_id = held.id AND referrals.status = 'PENDING' "
                        f"LIMIT 1) AS pending_referrer_id FROM ({line}) AS held "
                        f"WHERE held.external_id = concat('pf', :f::text)")
            if gsets.get(index) == "r_" and '"A_referee_id"' in sql:
                # The order's snapshot carries the pending referral joined to the buyer's row (its
                # columns prefixed A_); the wrapper hands on that row's referral as r_.
                line = (f'SELECT held."A_id" AS id, held."A_referrer_id" AS referrer_id, '
                        f'held."A_campaign_id" AS campaign_id FROM ({line}) AS held '
                        f'WHERE held."A_id" IS NOT NULL LIMIT 1')
            if index in gsets:
                line += f" \\gset {gsets[index]}"
            else:
                line += ";"
            body.append(line)
    elif case == "click":
        codes = [p for s, p in found if 'WHERE "customers"."referral_code" = $1' in s]
        code = literal_text(codes[0][1])
        inserts = [p for s, p in found if s.startswith('INSERT INTO "referral_clicks"')]
        known = {code: "concat('B', lpad(:n::text, 10, '0'))",
                 literal_text(inserts[0][2]): ":p_id::uuid",
                 literal_text(inserts[0][7]): "concat('http://127.0.0.1:8080/?ref=B', lpad(:n::text, 10, '0'))"}
        generaliser = Generaliser(known)
        header = ["\\set n random(1, :customers)"]
        body = []
        for sql, params in found:
            line = generaliser.sql(sql, params)
            body.append(line + (" \\gset p_" if 'WHERE "customers"."referral_code"' in sql else ";"))
    else:
        sys.exit(f"unknown case {case}")
    print(f"-- Generated by bench/load/capture_sql.py {case} from the statement log of one request.")
    print("\n".join(header + body))


if __name__ == "__main__":
    main()
