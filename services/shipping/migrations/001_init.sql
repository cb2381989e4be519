-- shipping 001: the address copy and the shipments.
--
-- Times are epoch milliseconds computed in C. One row per order in
-- shipments, whatever happened: SCHEDULED, DISPATCHED, CANCELLED, or the
-- VOIDED tombstone of a cancellation that came before any shipment (so a
-- late PaymentAuthorized and the cancellation collide on the primary key
-- instead of racing past each other).

CREATE TABLE addresses (
	order_id TEXT PRIMARY KEY,
	name TEXT NOT NULL,
	line1 TEXT NOT NULL,
	city TEXT NOT NULL,
	postal_code TEXT NOT NULL,
	country TEXT NOT NULL,
	received_at_ms BIGINT NOT NULL
);

CREATE TABLE shipments (
	order_id TEXT PRIMARY KEY,
	shipment_id TEXT UNIQUE,
	status TEXT NOT NULL
		CHECK (status IN ('SCHEDULED', 'DISPATCHED', 'CANCELLED', 'VOIDED')),
	dispatch_at_ms BIGINT,
	-- The ids of the message that scheduled the shipment, so the events the
	-- dispatcher emits later stay in the order's correlation and trace.
	correlation_id TEXT NOT NULL DEFAULT '',
	traceparent TEXT NOT NULL DEFAULT '',
	created_at_ms BIGINT NOT NULL,
	updated_at_ms BIGINT NOT NULL,
	CHECK ((status = 'VOIDED' AND shipment_id IS NULL AND dispatch_at_ms IS NULL)
	       OR (status <> 'VOIDED' AND shipment_id IS NOT NULL AND dispatch_at_ms IS NOT NULL))
);

-- The dispatcher's query: due SCHEDULED rows, earliest first.
CREATE INDEX shipments_due ON shipments (dispatch_at_ms) WHERE status = 'SCHEDULED';
