-- The gateway's own data: idempotency records and two read models projected
-- from events (orders with their timelines, and the product catalogue).
CREATE TABLE idempotency_keys (
  idem_key TEXT PRIMARY KEY,
  request TEXT NOT NULL,          -- the canonical JSON of the first request
  status INTEGER NOT NULL,
  response TEXT NOT NULL,
  order_id TEXT NOT NULL,
  created_at_ms BIGINT NOT NULL
);

CREATE TABLE orders_view (
  order_id TEXT PRIMARY KEY,
  status TEXT NOT NULL,
  reason TEXT,
  customer_id TEXT NOT NULL,
  items TEXT NOT NULL,            -- JSON array, priced once inventory reserved
  total_cents BIGINT,
  currency TEXT,
  created_at_ms BIGINT NOT NULL,
  updated_at_ms BIGINT NOT NULL
);

CREATE TABLE timeline (
  seq @AUTO_ID@,
  order_id TEXT NOT NULL,
  event_id TEXT NOT NULL UNIQUE,
  type TEXT NOT NULL,
  source TEXT NOT NULL,
  time TEXT NOT NULL,
  detail TEXT
);
CREATE INDEX timeline_order ON timeline (order_id, time, seq);

CREATE TABLE catalogue (
  sku TEXT PRIMARY KEY,
  name TEXT NOT NULL,
  price_cents BIGINT NOT NULL,
  currency TEXT NOT NULL,
  available BIGINT NOT NULL,
  revision BIGINT NOT NULL
);
