-- 002_cancel_requested.sql - a paid order's cancellation waits for shipping.
--
-- A customer's cancel of a PAID order no longer cancels it at once: shipping
-- owns the dispatch, so orders records the request here (the status stays
-- PAID) and emits OrderCancellationRequested; ShipmentCancelled then cancels
-- the order, ShipmentDispatched ships it. The column is when the request was
-- recorded, NULL when there was none; it is set at most once and never
-- cleared, so (status, requested or not) only moves forward and stays a
-- valid guard for the transition UPDATE. Only a PAID order can have its
-- cancellation requested; it keeps the mark once SHIPPED or CANCELLED (the
-- record of a cancellation that lost the race, or of why it was cancelled).
-- ADD COLUMN with a CHECK runs unchanged on SQLite and PostgreSQL.
ALTER TABLE orders ADD COLUMN cancel_requested_at_ms BIGINT
    CHECK (cancel_requested_at_ms IS NULL OR status IN ('PAID', 'SHIPPED', 'CANCELLED'));
