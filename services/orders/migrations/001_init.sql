-- 001_init.sql - the order aggregate.
--
-- One row per order; orders is its only writer. Runs unchanged on SQLite and
-- PostgreSQL: times are BIGINT epoch milliseconds computed in C, money is
-- integer cents. The CHECKs restate the domain's invariants so that a bug
-- in C cannot store an order the state machine could not have produced.
CREATE TABLE orders (
    order_id       TEXT PRIMARY KEY,
    status         TEXT NOT NULL
                   CHECK (status IN ('PENDING', 'RESERVED', 'PAID', 'SHIPPED', 'CANCELLED')),
    -- why it was cancelled: set exactly when status is CANCELLED
    reason         TEXT
                   CHECK (reason IN ('out_of_stock', 'unknown_sku', 'payment_declined',
                                     'customer_cancelled', 'timeout')),
    customer_id    TEXT NOT NULL,
    email          TEXT NOT NULL,
    -- the order lines as received in PlaceOrder, as a JSON array
    items          TEXT NOT NULL,
    -- the reserved total; NULL until inventory priced the order
    total_cents    BIGINT CHECK (total_cents >= 0),
    currency       TEXT,
    payment_id     TEXT,
    shipment_id    TEXT,
    -- of the request that placed the order, so that events the sweeper
    -- causes later still belong to the same story in logs and timelines
    correlation_id TEXT,
    created_at_ms  BIGINT NOT NULL,
    updated_at_ms  BIGINT NOT NULL,
    deadline_at_ms BIGINT NOT NULL,
    -- incremented on each transition
    version        BIGINT NOT NULL DEFAULT 1 CHECK (version >= 1),
    CHECK ((status = 'CANCELLED' AND reason IS NOT NULL)
           OR (status <> 'CANCELLED' AND reason IS NULL))
);

-- The deadline sweeper asks for PENDING and RESERVED orders by deadline.
CREATE INDEX orders_status_deadline ON orders (status, deadline_at_ms);
