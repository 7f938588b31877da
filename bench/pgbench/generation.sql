-- One billed generation as creditgate writes it (src/adapters/postgres/generation_billing.py), one pgbench
-- transaction per generation: the pre-charge, two checkpoints (a 64-token answer: one every 32 tokens), the
-- settlement. Each statement commits on its own, as on the application's autocommit asyncpg pool. The values are
-- those of the measured generations (bench/db_statements.py): model dr14 (100 tokens = 20 credits), 12 prompt
-- tokens (pre-charge 2.4 credits), a reserve of 64 output tokens (12.8 credits), a user token (no API key).
--   pgbench -n -M prepared -D users=1000 -f bench/pgbench/generation.sql
\set u random(1, :users)
\set g random(1, 9000000000000000000)

WITH funded AS (
    SELECT user_id, balance - reserved_micros AS available FROM wallets
    WHERE user_id = md5('user' || :u)::uuid
    FOR UPDATE
), k AS (
    UPDATE api_keys SET spent_micros = spent_micros + 15200000::bigint
    WHERE api_key = NULL::text
      AND (credit_limit IS NULL OR spent_micros < credit_limit)
      AND EXISTS (SELECT 1 FROM funded WHERE available > 0 AND available >= 2400000::bigint)
    RETURNING api_key
), w AS (
    UPDATE wallets SET balance = balance - 2400000::bigint, reserved_micros = reserved_micros + 12800000::bigint,
                       updated_at = now()
    WHERE user_id = md5('user' || :u)::uuid AND balance - reserved_micros > 0
      AND balance - reserved_micros >= 2400000::bigint
      AND (NULL::text IS NULL OR EXISTS (SELECT 1 FROM k))
    RETURNING user_id, balance
), g AS (
    INSERT INTO generations (id, user_id, kind, model, api_key, status, unit_tokens, input_credits,
                             output_credits, input_tokens, precharged, cost, key_reserved, wallet_reserved,
                             lease_expires_at, created_at)
    SELECT md5('g' || :g)::uuid, user_id, 'generation', 'dr14', NULL::text, 'running', 100::bigint, 20000000::bigint,
           20000000::bigint, 12::integer, 2400000::bigint, 2400000::bigint,
           CASE WHEN NULL::text IS NULL THEN 0 ELSE 15200000::bigint END, 12800000::bigint,
           now() + interval '90 seconds', now()
    FROM w
    RETURNING id
), l AS (
    INSERT INTO ledger_entries (id, user_id, kind, phase, amount, balance_after, generation_id, api_key)
    SELECT md5('p' || :g)::uuid, w.user_id, 'generation', 'precharge', -2400000::bigint, w.balance, g.id, NULL::text
    FROM w, g
    WHERE 2400000::bigint > 0
)
SELECT (SELECT balance FROM w) AS balance,
       EXISTS (SELECT 1 FROM funded WHERE available > 0 AND available >= 2400000::bigint) AS funded;

UPDATE generations
SET output_tokens = 32, lease_expires_at = now() + interval '90 seconds'
WHERE id = md5('g' || :g)::uuid AND status = 'running';

UPDATE generations
SET output_tokens = 64, lease_expires_at = now() + interval '90 seconds'
WHERE id = md5('g' || :g)::uuid AND status = 'running';

WITH g AS (
    UPDATE generations
    SET status = 'completed', input_tokens = 12, output_tokens = 64,
        cached_input_tokens = 0, cache_write_tokens = 0, reasoning_tokens = 0,
        usage_source = 'provider', cost = 15200000::bigint,
        output = 'lorem ipsum dolor sit amet consectetur adipiscing elit sed do eiusmod tempor incididunt ut labore',
        error_code = NULL::text, finished_at = now()
    WHERE id = md5('g' || :g)::uuid AND status = 'running'
    RETURNING id, user_id, kind, api_key, precharged, key_reserved, wallet_reserved
), w AS (
    UPDATE wallets SET balance = wallets.balance - (15200000::bigint - g.precharged),
                       reserved_micros = wallets.reserved_micros - g.wallet_reserved, updated_at = now()
    FROM g
    WHERE wallets.user_id = g.user_id
    RETURNING wallets.user_id, wallets.balance, g.precharged, g.key_reserved, g.kind, g.api_key,
              g.id AS generation_id
), k AS (
    UPDATE api_keys SET spent_micros = api_keys.spent_micros + (15200000::bigint - w.key_reserved)
    FROM w
    WHERE api_keys.api_key = w.api_key AND w.key_reserved <> 15200000::bigint
), l AS (
    INSERT INTO ledger_entries (id, user_id, kind, phase, amount, balance_after, generation_id, api_key)
    SELECT md5('s' || :g)::uuid, user_id, CASE WHEN false THEN 'refund' ELSE kind END,
           CASE WHEN false THEN 'refund' ELSE 'settle' END, precharged - 15200000::bigint, balance, generation_id,
           api_key
    FROM w
    WHERE precharged <> 15200000::bigint
)
SELECT balance FROM w;
