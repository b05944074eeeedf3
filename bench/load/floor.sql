-- The floor of a committed write (bench/load.py): one single-row INSERT a transaction, durable,
-- default settings.
INSERT INTO bench_floor (id, at) VALUES (gen_random_uuid(), now());
