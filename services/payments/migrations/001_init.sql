-- payments: one row per order, the payment intent and what became of it.
-- status: NEW (intent with a card token) -> CHARGED | DECLINED | CANCELLED,
-- CHARGED -> REFUNDED. A CANCELLED row with an empty card token is a
-- tombstone: the cancellation arrived before the order, and a late
-- OrderPlaced or StockReserved must find it and do nothing.
-- amount_cents and currency are what was charged (from StockReserved), NULL
-- until then. The provider's own ledger (provider_charges) is not here: the
-- provider creates it (payments_provider.c), on SQLite in its own file.
CREATE TABLE payments (
    order_id TEXT PRIMARY KEY,
    card_token TEXT NOT NULL,
    status TEXT NOT NULL
        CHECK (status IN ('NEW', 'CHARGED', 'DECLINED', 'CANCELLED', 'REFUNDED')),
    amount_cents BIGINT CHECK (amount_cents >= 0),
    currency TEXT,
    payment_id TEXT UNIQUE,
    charge_id TEXT UNIQUE,
    refund_id TEXT UNIQUE,
    decline_reason TEXT,
    attempts BIGINT NOT NULL DEFAULT 0,
    created_at_ms BIGINT NOT NULL,
    updated_at_ms BIGINT NOT NULL
);
