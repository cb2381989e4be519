-- 002_card_submitted.sql - the card and the reserved total arrive apart.
--
-- The card token no longer comes with OrderPlaced (which every service
-- reads) but in SubmitCard, on the confidential stream CARDS, and the
-- total still in StockReserved. Either may come first, so a NEW row holds
-- whichever did, and the second one charges: card_token is '' until
-- SubmitCard (as in a tombstone), reserved_cents and reserved_currency are
-- NULL until StockReserved. Leaving NEW clears card_token: the token is
-- kept only while the payment waits for its total. amount_cents and
-- currency stay what was charged (or declined, or refunded).
-- ADD COLUMN with a CHECK runs unchanged on SQLite and PostgreSQL.
ALTER TABLE payments ADD COLUMN reserved_cents BIGINT CHECK (reserved_cents >= 0);
ALTER TABLE payments ADD COLUMN reserved_currency TEXT;
