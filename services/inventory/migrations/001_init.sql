-- 001_init.sql - products, reservations and the lines each reservation holds.
--
-- Invariant (checked by inventory_store_audit and the unit tests): for every
-- product, initial_stock = available + the quantities of that SKU in the
-- lines of RESERVED reservations. REJECTED and CANCELLED_BEFORE_PLACED
-- reservations have no lines; RELEASED ones keep theirs for the record but
-- no longer hold stock.
--
-- `available >= 0` is the last line of defence against overselling: the
-- reserving UPDATE is already conditional on it, and the CHECK makes any
-- other path that would go negative fail instead of committing.
-- `revision` grows by one with every change to `available`; StockLevelChanged
-- carries it so the gateway's catalogue keeps only the newest level.

CREATE TABLE products (
	sku TEXT PRIMARY KEY,
	name TEXT NOT NULL,
	price_cents BIGINT NOT NULL CHECK (price_cents >= 0),
	currency TEXT NOT NULL,
	available BIGINT NOT NULL CHECK (available >= 0),
	initial_stock BIGINT NOT NULL CHECK (initial_stock >= 0),
	revision BIGINT NOT NULL DEFAULT 0
);

CREATE TABLE reservations (
	order_id TEXT PRIMARY KEY,
	status TEXT NOT NULL CHECK (status IN
		('RESERVED', 'RELEASED', 'REJECTED', 'CANCELLED_BEFORE_PLACED')),
	reason TEXT,
	total_cents BIGINT NOT NULL DEFAULT 0 CHECK (total_cents >= 0),
	currency TEXT,
	created_at_ms BIGINT NOT NULL,
	updated_at_ms BIGINT NOT NULL
);

CREATE TABLE reservation_lines (
	order_id TEXT NOT NULL REFERENCES reservations (order_id),
	sku TEXT NOT NULL REFERENCES products (sku),
	quantity BIGINT NOT NULL CHECK (quantity > 0),
	unit_price_cents BIGINT NOT NULL CHECK (unit_price_cents >= 0),
	PRIMARY KEY (order_id, sku)
);

-- The audit sums held stock per SKU; without this it scans every line.
CREATE INDEX reservation_lines_sku ON reservation_lines (sku);
