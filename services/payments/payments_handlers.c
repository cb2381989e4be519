/*
 * payments_handlers.c - turns SubmitCard, StockReserved and OrderCancelled
 * into payment decisions.
 *
 * Each handler locks and reads the order's payment row (payments_store.c),
 * asks payments_domain.c what to do, and carries it out: the lock means the
 * decision still holds when it is written, so a cancellation can never slip
 * between "the intent is NEW" and "it is CHARGED" (it waits for the charge
 * to commit, then refunds it), and SubmitCard and StockReserved, which come
 * on two streams in either order, charge once: whichever finds the other's
 * fact under the lock charges, the other only records its own. When there
 * is no row to lock, the insert's conflict clause is the tie-break: the
 * loser decides again and finds the winner's row. Events go through
 * svc_emit (outbox), in the transaction of the transition they report, so
 * each is emitted once.
 *
 * The provider call is the one effect outside the transaction. It is keyed
 * by the order id, so a handler that is retried after the provider answered
 * (transient failure, rollback, crash before commit) asks again and gets the
 * same answer and the same charge, never a second one. The same gap means a
 * NEW row may stand for money already taken: a cancellation therefore asks
 * the provider before it records "nothing was charged", and the
 * reconciliation task (payments_reconcile) refunds open ledger charges of
 * cancelled payments, which closes what is left of the gap (a charge that
 * lands after the cancellation asked).
 */
#include "payments_handlers.h"

#include "core/ids.h"
#include "core/log.h"
#include "core/text.h"
#include "payments_domain.h"
#include "payments_store.h"

#include <stdbool.h>
#include <string.h>

#define CT_FIELD_SIZE(type, field) sizeof(((struct type *)0)->field)

/* What arrives must fit what the table and the provider keep. Order ids and
 * currencies are ASCII by their patterns, so their character limits are
 * byte limits; a card token may be any UTF-8, so its whole buffer must fit. */
_Static_assert(CT_SUBMIT_CARD_ORDER_ID_MAX <= PAYMENTS_ORDER_ID_MAX &&
		       CT_STOCK_RESERVED_ORDER_ID_MAX <= PAYMENTS_ORDER_ID_MAX &&
		       CT_ORDER_CANCELLED_ORDER_ID_MAX <= PAYMENTS_ORDER_ID_MAX,
	       "order ids fit the payments row");
_Static_assert(CT_FIELD_SIZE(ct_payment, card_token) <= PAYMENTS_TOKEN_MAX + 1,
	       "card tokens fit the payments row and the provider");
_Static_assert(CT_STOCK_RESERVED_CURRENCY_MAX <= PAYMENTS_CURRENCY_MAX,
	       "currencies fit the payments row and the provider");
_Static_assert(PAYMENTS_ORDER_ID_MAX <= PAYMENTS_PROVIDER_KEY_MAX,
	       "an order id is a valid provider idempotency key");

static struct log_ids payments_log_ids(const struct svc_tx *tx, const char *order_id)
{
	struct log_ids ids = {
		.order_id = order_id,
		.event_id = tx->cause ? tx->cause->id : NULL,
		.correlation_id = tx->cause ? tx->cause->correlationid : tx->correlation_id,
	};
	return ids;
}

static struct payments_provider *payments_ctx_provider(const struct svc_tx *tx)
{
	const struct payments_ctx *ctx = tx->svc ? svc_ctx(tx->svc) : NULL;
	return ctx ? ctx->provider : NULL;
}

/* A provider failure as the handler reports it: the provider's arguments
 * were checked before the call, so anything but "unavailable" is this
 * service's fault (a bad ledger URL, a ledger out of step), retried and in
 * the end dead-lettered, never blamed on the message. */
static shop_status payments_after_provider_error(shop_status st)
{
	return st == SHOP_E_UNAVAILABLE || st == SHOP_E_TIMEOUT ? st : SHOP_E_INTERNAL;
}

/* ------------------------------------------------------------------ */
/* Event field mapping: what each emitted event carries. */

static shop_status payments_emit_authorized(struct svc_tx *tx, const char *order_id,
					    const char *payment_id, int64_t amount_cents,
					    const char *currency, int64_t attempts)
{
	struct ct_payment_authorized ev;
	memset(&ev, 0, sizeof(ev));
	if (!TEXT_COPY(ev.order_id, order_id) || !TEXT_COPY(ev.payment_id, payment_id) ||
	    !TEXT_COPY(ev.currency, currency))
		return SHOP_E_INTERNAL;
	ev.amount_cents = amount_cents;
	ev.attempts = attempts;
	return svc_emit(tx, CT_MSG_PAYMENT_AUTHORIZED, order_id, &ev);
}

static shop_status payments_emit_declined(struct svc_tx *tx, const char *order_id,
					  const char *reason, int64_t amount_cents,
					  const char *currency)
{
	struct ct_payment_declined ev;
	memset(&ev, 0, sizeof(ev));
	if (!TEXT_COPY(ev.order_id, order_id) || !TEXT_COPY(ev.reason, reason) ||
	    !TEXT_COPY(ev.currency, currency))
		return SHOP_E_INTERNAL;
	ev.amount_cents = amount_cents;
	return svc_emit(tx, CT_MSG_PAYMENT_DECLINED, order_id, &ev);
}

static shop_status payments_emit_refunded(struct svc_tx *tx, const struct payments_row *row)
{
	struct ct_payment_refunded ev;
	memset(&ev, 0, sizeof(ev));
	if (!TEXT_COPY(ev.order_id, row->order_id) || !TEXT_COPY(ev.payment_id, row->payment_id) ||
	    !TEXT_COPY(ev.currency, row->currency))
		return SHOP_E_INTERNAL;
	ev.amount_cents = row->amount_cents;
	return svc_emit(tx, CT_MSG_PAYMENT_REFUNDED, row->order_id, &ev);
}

/* ------------------------------------------------------------------ */

/* The row under lock, or exists = false when the order has none. */
static shop_status payments_load(struct svc_tx *tx, const char *order_id,
				 struct payments_row *ret_row, bool *ret_exists)
{
	shop_status st = payments_store_lock_get(tx->db, order_id, ret_row);
	if (st == SHOP_E_NOT_FOUND) {
		memset(ret_row, 0, sizeof(*ret_row));
		*ret_exists = false;
		return SHOP_OK;
	}
	if (st == SHOP_OK)
		*ret_exists = true;
	return st;
}

/* Charges a NEW payment (locked by the caller) the reserved total to the
 * card: one of the two comes from the row, the other from the message that
 * just arrived. */
static shop_status payments_charge(struct svc_tx *tx, const struct payments_row *row,
				   const char *card_token, int64_t total_cents,
				   const char *currency, const struct log_ids *ids)
{
	struct payments_provider *provider = payments_ctx_provider(tx);
	struct payments_provider_charge_result res;
	enum payments_status next;
	shop_status st;

	if (!provider) {
		log_error(ids, "no card provider configured");
		return SHOP_E_INTERNAL;
	}
	if (!payments_amount_valid(total_cents)) {
		log_error(ids, "reserved total %lld cannot be charged", (long long)total_cents);
		return SHOP_E_INVALID;
	}
	st = payments_provider_charge(provider, row->order_id, card_token, total_cents, currency,
				      &res);
	if (st == SHOP_E_UNAVAILABLE) {
		/* The attempt is on the provider's ledger; the redelivery asks
		 * again with the same key. */
		log_warn(ids, "card provider unavailable; the charge will be retried");
		return st;
	}
	if (st == SHOP_E_CONFLICT) {
		/* Same order, different card or amount: an earlier reservation
		 * was charged differently. Never charge twice; an operator
		 * looks at the dead letter. */
		log_error(ids, "provider refused: order already charged with a different request");
		return SHOP_E_INVALID;
	}
	if (st != SHOP_OK) {
		log_warn(ids, "charging the card failed: %s", shop_status_name(st));
		return payments_after_provider_error(st);
	}

	st = payments_status_after_charge(res.outcome == PAYMENTS_PROVIDER_APPROVED
						  ? PAYMENTS_CHARGE_APPROVED
						  : PAYMENTS_CHARGE_DECLINED,
					  &next);
	if (st != SHOP_OK)
		return st;
	if (next == PAYMENTS_CHARGED) {
		char payment_id[IDS_UUID_SIZE];
		ids_uuid7(payment_id);
		st = payments_store_mark_charged(tx->db, row->order_id, payment_id, res.charge_id,
						 total_cents, currency, res.attempts, tx->now_ms);
		if (st == SHOP_OK)
			st = payments_emit_authorized(tx, row->order_id, payment_id, total_cents,
						      currency, res.attempts);
		if (st == SHOP_OK)
			log_debug(ids,
				  "payment %s authorized: %lld %s, charge %s after %lld attempt(s)",
				  payment_id, (long long)total_cents, currency, res.charge_id,
				  (long long)res.attempts);
	} else {
		st = payments_store_mark_declined(tx->db, row->order_id, res.decline_reason,
						  total_cents, currency, res.attempts, tx->now_ms);
		if (st == SHOP_OK)
			st = payments_emit_declined(tx, row->order_id, res.decline_reason,
						    total_cents, currency);
		if (st == SHOP_OK)
			log_debug(ids, "payment declined: %s", res.decline_reason);
	}
	/* Under the row lock the guarded write cannot miss. */
	return st == SHOP_E_CONFLICT ? SHOP_E_INTERNAL : st;
}

static struct payments_facts payments_facts_of(const struct payments_row *row, bool exists)
{
	return (struct payments_facts){
		.exists = exists,
		.status = row->status,
		.has_card = row->card_token[0] != '\0',
		.has_reservation = row->has_reservation,
	};
}

/* One of the two facts a charge needs has arrived: the card (SubmitCard,
 * card_token set) or the reserved total (StockReserved, card_token NULL).
 * The first one is recorded and waits; the second charges. Each is
 * idempotent: a redelivery finds its fact recorded (or the row past NEW)
 * and does nothing. */
static shop_status payments_arrival(struct svc_tx *tx, const char *order_id, const char *card_token,
				    int64_t total_cents, const char *currency)
{
	bool brings_card = card_token != NULL;
	enum payments_event ev = brings_card ? PAYMENTS_EV_CARD_SUBMITTED
					     : PAYMENTS_EV_STOCK_RESERVED;
	const char *what = brings_card ? "card" : "reserved total";
	struct log_ids ids = payments_log_ids(tx, order_id);
	shop_status st = SHOP_E_INTERNAL;

	for (int attempt = 0; attempt < PAYMENTS_DECIDE_ATTEMPTS; attempt++) {
		struct payments_row row;
		bool exists = false, inserted = false;
		st = payments_load(tx, order_id, &row, &exists);
		if (st != SHOP_OK)
			goto out;
		struct payments_facts facts = payments_facts_of(&row, exists);
		switch (payments_decide(ev, &facts)) {
		case PAYMENTS_ACT_CREATE:
			st = brings_card
				     ? payments_store_insert_intent(tx->db, order_id, card_token,
								    tx->now_ms, &inserted)
				     : payments_store_insert_reserved(tx->db, order_id, total_cents,
								      currency, tx->now_ms,
								      &inserted);
			if (st != SHOP_OK)
				goto out;
			if (!inserted)
				continue; /* a concurrent arrival or cancellation won: decide again */
			log_debug(&ids, "%s recorded; waiting for the %s", what,
				  brings_card ? "reserved total" : "card");
			goto out;
		case PAYMENTS_ACT_RECORD:
			st = brings_card
				     ? payments_store_set_card(tx->db, order_id, card_token,
							       tx->now_ms)
				     : payments_store_set_reserved(tx->db, order_id, total_cents,
								   currency, tx->now_ms);
			if (st == SHOP_E_CONFLICT)
				st = SHOP_E_INTERNAL; /* impossible under the row lock */
			if (st == SHOP_OK)
				log_debug(&ids, "%s recorded; waiting for the other fact", what);
			goto out;
		case PAYMENTS_ACT_CHARGE:
			if (brings_card)
				st = payments_charge(tx, &row, card_token, row.reserved_cents,
						     row.reserved_currency, &ids);
			else
				st = payments_charge(tx, &row, row.card_token, total_cents,
						     currency, &ids);
			goto out;
		default:
			log_debug(&ids, "payment %s%s; the %s changes nothing",
				  payments_status_name(row.status),
				  row.status == PAYMENTS_NEW ? " with it already" : "", what);
			st = SHOP_OK;
			goto out;
		}
	}
	log_error(&ids, "payment row kept changing while recording the %s", what);
	st = SHOP_E_INTERNAL;
out:
	return st;
}

shop_status payments_handle_submit_card(struct svc_tx *tx, const void *data)
{
	const struct ct_submit_card *msg = data;
	return payments_arrival(tx, msg->order_id, msg->payment.card_token, 0, NULL);
}

shop_status payments_handle_stock_reserved(struct svc_tx *tx, const void *data)
{
	const struct ct_stock_reserved *msg = data;
	return payments_arrival(tx, msg->order_id, NULL, msg->total_cents, msg->currency);
}

/* Has the provider refund the order's charge, which the caller knows of (a
 * recorded one, or one the provider just reported): a provider with nothing
 * to refund is then an internal error, not a client's. WHAT names the
 * charge in log lines. */
static shop_status payments_refund_at_provider(struct svc_tx *tx, const char *order_id,
					       const char *what,
					       char refund_id[PAYMENTS_PROVIDER_ID_SIZE],
					       const struct log_ids *ids)
{
	struct payments_provider *provider = payments_ctx_provider(tx);
	if (!provider) {
		log_error(ids, "no card provider configured");
		return SHOP_E_INTERNAL;
	}
	shop_status st = payments_provider_refund(provider, order_id, refund_id);
	if (st == SHOP_E_NOT_FOUND || st == SHOP_E_CONFLICT) {
		log_error(ids, "provider has no approved charge to refund (%s): %s", what,
			  shop_status_name(st));
		return SHOP_E_INTERNAL;
	}
	if (st != SHOP_OK) {
		log_warn(ids, "refunding %s failed: %s", what, shop_status_name(st));
		return payments_after_provider_error(st);
	}
	return SHOP_OK;
}

/* Refunds a CHARGED payment (locked by the caller) in full. */
static shop_status payments_refund(struct svc_tx *tx, struct payments_row *row,
				   const struct log_ids *ids)
{
	char refund_id[PAYMENTS_PROVIDER_ID_SIZE];
	shop_status st = payments_refund_at_provider(tx, row->order_id, "the recorded charge",
						     refund_id, ids);
	if (st != SHOP_OK)
		return st;
	st = payments_store_mark_refunded(tx->db, row->order_id, refund_id, tx->now_ms);
	if (st == SHOP_OK)
		st = payments_emit_refunded(tx, row);
	if (st == SHOP_OK)
		log_debug(ids, "payment %s refunded: %lld %s, refund %s", row->payment_id,
			  (long long)row->amount_cents, row->currency, refund_id);
	return st == SHOP_E_CONFLICT ? SHOP_E_INTERNAL : st;
}

/* Gives back a charge the provider holds but the row (NEW or CANCELLED,
 * locked by the caller) never recorded, and reports it with PaymentRefunded
 * under a new payment id: no PaymentAuthorized ever named one. */
static shop_status payments_refund_found(struct svc_tx *tx, const struct payments_row *row,
					 const struct payments_provider_charge_info *charge,
					 const struct log_ids *ids)
{
	char refund_id[PAYMENTS_PROVIDER_ID_SIZE];
	struct payments_row refunded = *row;
	shop_status st = payments_refund_at_provider(tx, row->order_id, "the unrecorded charge",
						     refund_id, ids);
	if (st != SHOP_OK)
		return st;
	ids_uuid7(refunded.payment_id);
	refunded.amount_cents = charge->amount_cents;
	if (!TEXT_COPY(refunded.currency, charge->currency))
		return SHOP_E_INTERNAL;
	st = payments_store_mark_refunded_found(tx->db, row->order_id, row->status,
						refunded.payment_id, charge->charge_id,
						charge->amount_cents, charge->currency, refund_id,
						tx->now_ms);
	if (st == SHOP_OK)
		st = payments_emit_refunded(tx, &refunded);
	if (st == SHOP_OK)
		log_warn(ids,
			 "charge %s was never recorded (payment %s); refunded: %lld %s, refund %s",
			 charge->charge_id, payments_status_name(row->status),
			 (long long)charge->amount_cents, charge->currency, refund_id);
	return st == SHOP_E_CONFLICT ? SHOP_E_INTERNAL : st;
}

/* Cancels a NEW payment (locked by the caller). NEW is not proof that nothing
 * was charged, so the provider is asked by key first. */
static shop_status payments_cancel(struct svc_tx *tx, const struct payments_row *row,
				   const struct log_ids *ids)
{
	struct payments_provider *provider = payments_ctx_provider(tx);
	struct payments_provider_charge_info charge;
	shop_status st;

	if (!provider) {
		log_error(ids, "no card provider configured");
		return SHOP_E_INTERNAL;
	}
	st = payments_provider_charge_find(provider, row->order_id, &charge);
	if (st == SHOP_OK)
		return payments_refund_found(tx, row, &charge, ids);
	if (st != SHOP_E_NOT_FOUND) {
		log_warn(ids, "asking the provider about the order failed: %s",
			 shop_status_name(st));
		return payments_after_provider_error(st);
	}
	st = payments_store_mark_cancelled(tx->db, row->order_id, tx->now_ms);
	if (st == SHOP_E_CONFLICT)
		st = SHOP_E_INTERNAL; /* impossible under the row lock */
	if (st == SHOP_OK)
		log_debug(ids, "payment intent cancelled; the provider holds no charge");
	return st;
}

shop_status payments_handle_order_cancelled(struct svc_tx *tx, const void *data)
{
	const struct ct_order_cancelled *msg = data;
	const char *order_id = msg->order_id;
	struct log_ids ids = payments_log_ids(tx, order_id);
	shop_status st = SHOP_E_INTERNAL;

	for (int attempt = 0; attempt < PAYMENTS_DECIDE_ATTEMPTS; attempt++) {
		struct payments_row row;
		bool exists = false;
		st = payments_load(tx, order_id, &row, &exists);
		if (st != SHOP_OK)
			goto out;
		struct payments_facts facts = payments_facts_of(&row, exists);
		switch (payments_decide(PAYMENTS_EV_ORDER_CANCELLED, &facts)) {
		case PAYMENTS_ACT_TOMBSTONE: {
			/* No row yet: the tombstone makes a later SubmitCard
			 * or StockReserved find it and charge nothing. */
			bool inserted = false;
			st = payments_store_insert_tombstone(tx->db, order_id, tx->now_ms,
							     &inserted);
			if (st != SHOP_OK)
				goto out;
			if (!inserted)
				continue; /* a concurrent arrival won: decide again */
			log_debug(&ids, "order cancelled before its payment intent; remembered");
			goto out;
		}
		case PAYMENTS_ACT_CANCEL:
			st = payments_cancel(tx, &row, &ids);
			goto out;
		case PAYMENTS_ACT_REFUND:
			st = payments_refund(tx, &row, &ids);
			goto out;
		default:
			log_debug(&ids, "payment already %s; nothing to cancel",
				  payments_status_name(row.status));
			st = SHOP_OK;
			goto out;
		}
	}
	log_error(&ids, "payment row kept changing while cancelling");
	st = SHOP_E_INTERNAL;
out:
	return st;
}

/* ---- the reconciliation ------------------------------------------------ */

static shop_status payments_reconcile_one(struct svc_tx *tx, void *arg)
{
	const struct payments_provider_charge_info *charge = arg;
	struct log_ids ids = payments_log_ids(tx, charge->key);
	struct payments_row row;
	bool exists = false;

	/* Under the row lock: a replica reconciling the same key at once waits
	 * here, then finds the row REFUNDED and does nothing. */
	shop_status st = payments_load(tx, charge->key, &row, &exists);
	if (st != SHOP_OK)
		return st;
	struct payments_facts facts = payments_facts_of(&row, exists);
	if (payments_decide(PAYMENTS_EV_CHARGE_FOUND, &facts) != PAYMENTS_ACT_REFUND_FOUND)
		return SHOP_OK; /* changed since the read: nothing owed any more */
	return payments_refund_found(tx, &row, charge, &ids);
}

shop_status payments_reconcile(struct svc *svc, struct db *db)
{
	struct payments_ctx *ctx = svc_ctx(svc);
	struct payments_provider_charge_info open[PAYMENTS_RECONCILE_BATCH];
	size_t n = 0;
	shop_status first = SHOP_OK;

	if (!ctx || !ctx->provider)
		return SHOP_E_INTERNAL;
	shop_status st = payments_provider_open_charges(ctx->provider, ctx->reconcile_after,
							PAYMENTS_RECONCILE_BATCH, open, &n);
	if (st != SHOP_OK)
		return st;
	for (size_t i = 0; i < n; i++) {
		struct log_ids ids = { .order_id = open[i].key };
		struct payments_row row;
		/* Most open charges are paid orders: a plain read sorts them out
		 * without a transaction; the locked decision comes after. */
		st = payments_store_get(db, open[i].key, &row);
		if (st == SHOP_E_NOT_FOUND) {
			log_warn(&ids, "ledger charge %s has no payment; left alone",
				 open[i].charge_id);
			continue;
		}
		struct payments_facts facts = payments_facts_of(&row, true);
		if (st == SHOP_OK &&
		    payments_decide(PAYMENTS_EV_CHARGE_FOUND, &facts) != PAYMENTS_ACT_REFUND_FOUND)
			continue;
		if (st == SHOP_OK)
			st = svc_tx_run(svc, db, NULL, NULL, payments_reconcile_one, &open[i]);
		if (st == SHOP_OK)
			continue;
		log_warn(&ids, "reconciling the ledger charge failed: %s", shop_status_name(st));
		if (first == SHOP_OK)
			first = st;
		if (st == SHOP_E_UNAVAILABLE)
			return first; /* the cursor stays: the next tick retries */
	}
	/* The next tick goes on from here; a short page means the walk reached
	 * the end of the ledger and starts over. */
	if (n == PAYMENTS_RECONCILE_BATCH)
		memcpy(ctx->reconcile_after, open[n - 1].key, sizeof(ctx->reconcile_after));
	else
		ctx->reconcile_after[0] = '\0';
	return first;
}

/* ---- wiring ------------------------------------------------------------ */

const struct svc_route payments_routes[] = {
	{ CT_MSG_SUBMIT_CARD, payments_handle_submit_card },
	{ CT_MSG_STOCK_RESERVED, payments_handle_stock_reserved },
	{ CT_MSG_ORDER_CANCELLED, payments_handle_order_cancelled },
};
const size_t payments_n_routes = sizeof(payments_routes) / sizeof(payments_routes[0]);

const struct svc_task payments_tasks[] = {
	{ "reconciliation", PAYMENTS_RECONCILE_INTERVAL_MS, payments_reconcile },
};
const size_t payments_n_tasks = sizeof(payments_tasks) / sizeof(payments_tasks[0]);
