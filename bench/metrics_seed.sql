-- Bulk data for the metrics benchmark (PostgreSQL): :customers customers over the two years
-- before 2026-11-01, one in five referred by an earlier customer, three clicks a referral,
-- :orders orders, rewards for qualified referrals, a points credit per order and some expiry,
-- and monthly spend per channel. Deterministic: every "random" choice is a hash of the row number.
\set ON_ERROR_STOP on
BEGIN;
CREATE TEMP TABLE params AS SELECT :customers::bigint AS n, :orders::bigint AS m,
    timestamptz '2026-11-01 00:00:00+00' AS t_end;

CREATE OR REPLACE FUNCTION pg_temp.r(i bigint, salt bigint) RETURNS bigint
    LANGUAGE sql IMMUTABLE AS $$ SELECT ((i * 2654435761 + salt * 40503) % 1000003) $$;

INSERT INTO customers (id, external_id, email, email_normalized, name, referral_code,
    acquisition_channel, marketing_consent, created_at, updated_at)
SELECT gen_random_uuid(), 'c' || i, 'c' || i || '@bench.example', 'c' || i || '@bench.example',
       'Customer ' || i, 'B' || lpad(i::text, 10, '0'),
       (ARRAY['organic', 'ads', 'social', 'email'])[1 + pg_temp.r(i, 1) % 4], i % 3 = 0, at, at
FROM (SELECT i, p.t_end - ((p.n - i) * interval '730 days') / p.n
             - (pg_temp.r(i, 2) % 3600) * interval '1 second' AS at
      FROM params p, generate_series(1, (SELECT n FROM params)) i) s;

CREATE TEMP TABLE ids AS SELECT substr(external_id, 2)::bigint AS i, id, created_at, referral_code
    FROM customers WHERE external_id LIKE 'c%' AND email LIKE '%@bench.example';
CREATE UNIQUE INDEX ON ids (i);
ANALYZE ids;

INSERT INTO referrals (id, referrer_id, referee_id, code, status, rejection_reason, flagged,
    qualified_at, rewarded_at, created_at, updated_at)
SELECT gen_random_uuid(), ref.id, friend.id, ref.referral_code, st,
       CASE WHEN st = 'REJECTED' THEN 'VELOCITY_LIMIT' END, pg_temp.r(friend.i, 4) % 50 = 0,
       CASE WHEN st IN ('QUALIFIED', 'REWARDED', 'REVERSED')
            THEN friend.created_at + (pg_temp.r(friend.i, 5) % 20) * interval '1 day' END,
       CASE WHEN st = 'REWARDED'
            THEN friend.created_at + (pg_temp.r(friend.i, 5) % 20) * interval '1 day' END,
       friend.created_at, friend.created_at
FROM (SELECT f.*, CASE WHEN k < 2 THEN 'REJECTED' WHEN k < 3 THEN 'REVERSED'
                       WHEN k < 8 THEN 'PENDING' WHEN k < 10 THEN 'QUALIFIED' ELSE 'REWARDED' END AS st,
             1 + pg_temp.r(f.i, 3) % (f.i - 1) AS referrer_i
      FROM (SELECT ids.*, pg_temp.r(i, 6) % 20 AS k FROM ids WHERE i % 5 = 0) f) friend
JOIN ids ref ON ref.i = friend.referrer_i;

INSERT INTO referral_clicks (id, referrer_id, code, channel, landing_url, clicked_at)
SELECT gen_random_uuid(), r.referrer_id, r.code, 'LINK', 'https://shop.example/?ref=' || r.code,
       r.created_at - k * interval '1 hour'
FROM referrals r, generate_series(1, 3) k;

INSERT INTO orders (id, external_id, customer_id, amount, refunded_amount, currency, items,
    fingerprint, placed_at, created_at)
SELECT gen_random_uuid(), 'o' || o, c.id, amount,
       CASE WHEN pg_temp.r(o, 9) % 10 = 0 THEN amount / 2 ELSE 0 END, 'USD', '[]', 'bench', at, at
FROM (SELECT o, 1 + pg_temp.r(o, 7) % (SELECT n FROM params) AS ci,
             1000 + pg_temp.r(o, 8) % 19000 AS amount
      FROM generate_series(1, (SELECT m FROM params)) o) s
JOIN ids c ON c.i = s.ci,
LATERAL (SELECT LEAST(c.created_at + (pg_temp.r(s.o, 10) % 400) * interval '1 day',
                      (SELECT t_end FROM params) - interval '1 second') AS at) t;

INSERT INTO rewards (id, customer_id, referral_id, side, kind, amount, coupon_code, status,
    dedupe_key, issued_at, reversed_at, created_at)
SELECT gen_random_uuid(), CASE WHEN side = 'REFERRER' THEN r.referrer_id ELSE r.referee_id END,
       r.id, side, CASE WHEN side = 'REFERRER' THEN 'POINTS' ELSE 'FIXED_COUPON' END,
       CASE WHEN side = 'REFERRER' THEN 500 ELSE 1000 END,
       CASE WHEN side = 'REFEREE' THEN 'BENCH-' || r.id END,
       CASE WHEN r.status = 'REVERSED' THEN 'REVERSED' ELSE 'ISSUED' END,
       'referral:' || r.id || ':' || side, r.qualified_at,
       CASE WHEN r.status = 'REVERSED' THEN r.qualified_at + interval '10 days' END, r.qualified_at
FROM referrals r, (VALUES ('REFERRER'), ('REFEREE')) sides(side)
WHERE r.status IN ('QUALIFIED', 'REWARDED', 'REVERSED');

INSERT INTO points_ledger (id, customer_id, delta, reason, source_kind, source_id, description,
    earned_at, available_at, created_at)
SELECT gen_random_uuid(), customer_id, amount / 100, 'ORDER', 'order', id::text, '', placed_at,
       placed_at, placed_at
FROM orders WHERE fingerprint = 'bench';

INSERT INTO points_ledger (id, customer_id, delta, reason, source_kind, source_id, description,
    earned_at, created_at)
SELECT gen_random_uuid(), customer_id, -delta, 'EXPIRY', 'expiry', id::text, '', earned_at,
       LEAST(earned_at + interval '365 days', (SELECT t_end FROM params))
FROM points_ledger WHERE reason = 'ORDER' AND ('x' || substr(md5(source_id), 1, 4))::bit(16)::int % 20 = 0;

INSERT INTO marketing_spend (id, channel, amount, period_start, period_end, recorded_by, created_at)
SELECT gen_random_uuid(), ch, 2000000 + m * 10000, s, s + interval '1 month', 'bench', s
FROM unnest(ARRAY['ads', 'social', 'email']) ch,
     generate_series(0, 23) m,
     LATERAL (SELECT timestamptz '2024-11-01 00:00:00+00' + m * interval '1 month' AS s) t;

CREATE TABLE IF NOT EXISTS bench_marker (customers bigint, orders bigint);
DELETE FROM bench_marker;
INSERT INTO bench_marker SELECT n, m FROM params;
COMMIT;
ANALYZE;
