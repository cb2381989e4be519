-- notifications 001: who to write to, and every e-mail written.
--
-- UNIQUE (order_id, kind) is the rule "one e-mail per order and kind": a
-- redelivered or duplicated event inserts nothing (ON CONFLICT DO NOTHING)
-- and therefore emits nothing. Times are epoch milliseconds computed in C.

CREATE TABLE recipients (
	order_id TEXT PRIMARY KEY,
	email TEXT NOT NULL,
	customer_id TEXT NOT NULL,
	received_at_ms BIGINT NOT NULL
);

CREATE TABLE notifications (
	notification_id TEXT PRIMARY KEY,
	order_id TEXT NOT NULL,
	kind TEXT NOT NULL
		CHECK (kind IN ('order_received', 'order_shipped', 'order_cancelled')),
	email TEXT NOT NULL,
	subject_line TEXT NOT NULL,
	body TEXT NOT NULL,
	created_at_ms BIGINT NOT NULL,
	UNIQUE (order_id, kind)
);
