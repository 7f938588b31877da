-- Users and wallets for generation.sql, on a database migrated by `creditgate migrate` (bench/pgbench/run.sh).
-- User i has the id md5('user' || i)::uuid (random, like the uuid4 ids of the application) and a funded wallet
-- whose ledger holds the one row that funded it, so the ledger stays exact under the load.
--   psql -v users=1000 -f bench/pgbench/seed.sql
INSERT INTO users (id, username, password_hash)
SELECT md5('user' || i)::uuid, 'bench-' || i, 'not-a-hash' FROM generate_series(1, :users) AS i;

INSERT INTO wallets (user_id, balance)
SELECT md5('user' || i)::uuid, 1000000000000000 FROM generate_series(1, :users) AS i;

INSERT INTO ledger_entries (id, user_id, kind, amount, balance_after, reason)
SELECT md5('funding' || i)::uuid, md5('user' || i)::uuid, 'admin_adjustment', 1000000000000000, 1000000000000000, 'bench'
FROM generate_series(1, :users) AS i;

VACUUM ANALYZE users, wallets, ledger_entries, generations;
