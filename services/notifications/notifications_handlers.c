/*
 * notifications_handlers.c - turns OrderPlaced, OrderShipped and
 * OrderCancelled into one recorded e-mail each, and NotificationSent.
 *
 * "Never the same e-mail twice" is the unique (order_id, kind) key, not a
 * check in C: the handler renders, inserts ON CONFLICT DO NOTHING and emits
 * NotificationSent only when the row is new, all in the transaction that
 * also holds the inbox record. A redelivery, a replayed stream or a second
 * OrderCancelled therefore changes nothing and emits nothing. OrderShipped
 * and OrderCancelled need the address OrderPlaced brought; they come from
 * the same stream, but a replica or a redelivery can still reorder them, so
 * a missing recipient is SHOP_E_NOT_READY (redelivered later), not an error.
 */
#include "notifications_handlers.h"

#include "core/ids.h"
#include "core/log.h"
#include "core/text.h"
#include "notifications_domain.h"
#include "notifications_render.h"
#include "notifications_store.h"

#include <stdbool.h>
#include <string.h>

static struct log_ids notifications_log_ids(const struct svc_tx *tx, const char *order_id)
{
	struct log_ids ids = {
		.order_id = order_id,
		.event_id = tx->cause ? tx->cause->id : NULL,
		.correlation_id = tx->cause ? tx->cause->correlationid : tx->correlation_id,
	};
	return ids;
}

/* The one place that fills NotificationSent from what was recorded. */
static shop_status notifications_emit_sent(struct svc_tx *tx,
					   const struct notifications_record *rec)
{
	struct ct_notification_sent ev;
	memset(&ev, 0, sizeof(ev));
	if (!TEXT_COPY(ev.notification_id, rec->notification_id) ||
	    !TEXT_COPY(ev.order_id, rec->order_id) ||
	    !TEXT_COPY(ev.kind, notifications_kind_name(rec->kind)) ||
	    !TEXT_COPY(ev.email, rec->email))
		return SHOP_E_INTERNAL;
	return svc_emit(tx, CT_MSG_NOTIFICATION_SENT, rec->order_id, &ev);
}

/* Renders the e-mail for facts, records it once and announces it. */
static shop_status notifications_send(struct svc_tx *tx, const struct notifications_facts *facts,
				      const char *email)
{
	const char *kind = notifications_kind_name(facts->kind);
	struct log_ids ids = notifications_log_ids(tx, facts->order_id);
	struct notifications_mail mail;
	shop_status st = notifications_render(facts, &mail);
	if (st != SHOP_OK) {
		/* The contract admits nothing that fails here; if it does, the
		 * message is bad and belongs in the dead-letter stream. */
		log_error(&ids, "cannot render the %s e-mail: %s", kind, shop_status_name(st));
		return SHOP_E_INVALID;
	}

	char notification_id[IDS_UUID_SIZE];
	ids_uuid7(notification_id);
	struct notifications_record rec = {
		.notification_id = notification_id,
		.order_id = facts->order_id,
		.kind = facts->kind,
		.email = email,
		.subject_line = mail.subject,
		.body = mail.body,
	};
	bool inserted = false;
	st = notifications_store_record(tx->db, &rec, tx->now_ms, &inserted);
	if (st != SHOP_OK)
		return st;
	if (!inserted) {
		log_debug(&ids, "%s e-mail already sent; nothing to do", kind);
		return SHOP_OK;
	}
	st = notifications_emit_sent(tx, &rec);
	if (st == SHOP_OK)
		log_debug(&ids, "%s e-mail %s recorded", kind, notification_id);
	return st;
}

/* The address OrderPlaced left for the order, or SHOP_E_NOT_READY. */
static shop_status notifications_recipient(struct svc_tx *tx, const char *order_id,
					   char ret_email[NOTIFICATIONS_EMAIL_MAX + 1])
{
	shop_status st = notifications_store_recipient_email(tx->db, order_id, ret_email);
	if (st == SHOP_E_NOT_FOUND) {
		struct log_ids ids = notifications_log_ids(tx, order_id);
		log_debug(&ids, "recipient not known yet; retrying later");
		return SHOP_E_NOT_READY;
	}
	return st;
}

shop_status notifications_handle_order_placed(struct svc_tx *tx, const void *data)
{
	const struct ct_order_placed_v2 *msg = data;
	shop_status st = notifications_store_recipient_put(tx->db, msg->order_id, msg->email,
							   msg->customer_id, tx->now_ms);
	if (st != SHOP_OK)
		return st;

	int64_t quantities[sizeof(msg->items) / sizeof(msg->items[0])];
	size_t n = msg->items_len;
	if (n > sizeof(quantities) / sizeof(quantities[0]))
		return SHOP_E_INVALID; /* the decoder never yields this */
	for (size_t i = 0; i < n; i++)
		quantities[i] = msg->items[i].quantity;

	struct notifications_facts facts = {
		.kind = NOTIFICATIONS_KIND_ORDER_RECEIVED,
		.order_id = msg->order_id,
		.item_count = notifications_item_count(quantities, n),
	};
	/* The event's own address, not the stored one: they are the same
	 * unless an earlier OrderPlaced for this order id said otherwise, and
	 * then the first one stays the recipient of record for later e-mails. */
	return notifications_send(tx, &facts, msg->email);
}

shop_status notifications_handle_order_shipped(struct svc_tx *tx, const void *data)
{
	const struct ct_order_shipped *msg = data;
	char email[NOTIFICATIONS_EMAIL_MAX + 1];
	shop_status st = notifications_recipient(tx, msg->order_id, email);
	if (st != SHOP_OK)
		return st;
	struct notifications_facts facts = {
		.kind = NOTIFICATIONS_KIND_ORDER_SHIPPED,
		.order_id = msg->order_id,
	};
	return notifications_send(tx, &facts, email);
}

shop_status notifications_handle_order_cancelled(struct svc_tx *tx, const void *data)
{
	const struct ct_order_cancelled *msg = data;
	char email[NOTIFICATIONS_EMAIL_MAX + 1];
	shop_status st = notifications_recipient(tx, msg->order_id, email);
	if (st != SHOP_OK)
		return st;
	struct notifications_facts facts = {
		.kind = NOTIFICATIONS_KIND_ORDER_CANCELLED,
		.order_id = msg->order_id,
		.reason = msg->reason,
	};
	return notifications_send(tx, &facts, email);
}

const struct svc_route notifications_routes[] = {
	{ CT_MSG_ORDER_PLACED_V2, notifications_handle_order_placed },
	{ CT_MSG_ORDER_SHIPPED, notifications_handle_order_shipped },
	{ CT_MSG_ORDER_CANCELLED, notifications_handle_order_cancelled },
};
const size_t notifications_n_routes = sizeof(notifications_routes) /
				      sizeof(notifications_routes[0]);
