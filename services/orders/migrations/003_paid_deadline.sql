-- 003_paid_deadline.sql - a paid order's bounded wait for shipping.
--
-- A PAID order that shipping never answers (its OrderPaid or a cancellation
-- request dead-lettered) would hold stock and money for ever. The sweeper
-- now asks shipping to cancel a PAID order whose last move is older than
-- the paid deadline (SHOP_ORDER_PAID_DEADLINE_MS), and asks again after
-- each further deadline, a bounded number of times. So a request records
-- why it was made (the customer's cancel or the deadline's timeout, which
-- becomes the order's reason when shipping cancels the shipment) and how
-- many OrderCancellationRequested were sent; that count only grows, so it
-- joins the transition UPDATE's guard and two sweepers cannot both ask.
-- Orders marked before this migration were asked once, by their customer.
-- The paid deadline runs from updated_at_ms (the last move), found through
-- the index below; deadline_at_ms stays the wait for stock and payment.
ALTER TABLE orders ADD COLUMN cancel_reason TEXT
    CHECK (cancel_reason IN ('customer_cancelled', 'timeout'));
ALTER TABLE orders ADD COLUMN cancel_requests BIGINT NOT NULL DEFAULT 0
    CHECK (cancel_requests >= 0);
UPDATE orders SET cancel_reason = 'customer_cancelled', cancel_requests = 1
    WHERE cancel_requested_at_ms IS NOT NULL;
CREATE INDEX orders_status_updated ON orders (status, updated_at_ms);
