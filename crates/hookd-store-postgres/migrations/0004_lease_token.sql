-- Fencing for leases. Each claim stamps the delivery with a fresh random token; a node's
-- attempt record and lease renewals apply only while the token is still the one it claimed
-- with, so a node whose lease ran out and was taken over (it was partitioned, paused, or slow)
-- cannot undo the newer owner's outcome. 0 means "no claim since creation" (or created unleased).
ALTER TABLE delivery ADD COLUMN lease_token BIGINT NOT NULL DEFAULT 0;

-- No schema change, a new value: `next_trigger` 2 marks a resend requested while the delivery
-- was leased (an attempt in flight). The attempt's record then keeps the resend's due time and
-- turns the mark into 1 (manual), instead of overwriting it; a claim reads 2 as manual.
