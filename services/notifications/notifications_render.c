/*
 * notifications_render.c - the e-mail texts (see notifications_render.h).
 *
 * Each text is formatted with snprintf into a fixed buffer and refused, not
 * cut, when it would not fit: a truncated e-mail stored once can never be
 * corrected, because the unique (order, kind) key forbids a second one.
 */
#include "notifications_render.h"

#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#define NOTIFICATIONS_SIGNATURE "-- \nThe shop\n"

/* Printable ASCII without spaces, 1..max bytes. */
static bool notifications_token_ok(const char *s, size_t max)
{
	if (!s || !*s)
		return false;
	size_t len = strnlen(s, max + 1);
	if (len > max)
		return false;
	for (size_t i = 0; i < len; i++)
		if (s[i] <= ' ' || s[i] > '~')
			return false;
	return true;
}

/* snprintf's verdict as a status: the whole text fitted or SHOP_E_LIMIT. */
static shop_status notifications_fits(int written, size_t size)
{
	return written >= 0 && (size_t)written < size ? SHOP_OK : SHOP_E_LIMIT;
}

static shop_status notifications_render_received(const struct notifications_facts *f,
						 struct notifications_mail *m)
{
	int64_t n = f->item_count < 0 ? 0 : f->item_count;
	shop_status st = notifications_fits(snprintf(m->subject, sizeof(m->subject),
						     "We received your order %s", f->order_id),
					    sizeof(m->subject));
	if (st != SHOP_OK)
		return st;
	return notifications_fits(
		snprintf(m->body, sizeof(m->body),
			 "Hello,\n\n"
			 "thank you for your order %s. We received it with %" PRId64 " %s\n"
			 "and will write again when it ships.\n\n" NOTIFICATIONS_SIGNATURE,
			 f->order_id, n, n == 1 ? "item" : "items"),
		sizeof(m->body));
}

static shop_status notifications_render_shipped(const struct notifications_facts *f,
						struct notifications_mail *m)
{
	shop_status st = notifications_fits(snprintf(m->subject, sizeof(m->subject),
						     "Your order %s has shipped", f->order_id),
					    sizeof(m->subject));
	if (st != SHOP_OK)
		return st;
	return notifications_fits(
		snprintf(m->body, sizeof(m->body),
			 "Hello,\n\n"
			 "your order %s is on its way.\n\n" NOTIFICATIONS_SIGNATURE,
			 f->order_id),
		sizeof(m->body));
}

static shop_status notifications_render_cancelled(const struct notifications_facts *f,
						  struct notifications_mail *m)
{
	shop_status st = notifications_fits(snprintf(m->subject, sizeof(m->subject),
						     "Your order %s was cancelled", f->order_id),
					    sizeof(m->subject));
	if (st != SHOP_OK)
		return st;

	/* A reason newer than this code is still worth telling, as long as it
	 * is a short plain token; anything else is not echoed at all. */
	char because[NOTIFICATIONS_REASON_MAX + 64];
	const char *text = notifications_reason_text(f->reason);
	int w;
	if (text)
		w = snprintf(because, sizeof(because), "because %s", text);
	else if (notifications_token_ok(f->reason, NOTIFICATIONS_REASON_MAX))
		w = snprintf(because, sizeof(because), "(reason: %s)", f->reason);
	else
		w = snprintf(because, sizeof(because), "for a reason we could not name");
	st = notifications_fits(w, sizeof(because));
	if (st != SHOP_OK)
		return st;

	return notifications_fits(
		snprintf(m->body, sizeof(m->body),
			 "Hello,\n\n"
			 "we cancelled your order %s %s.\n"
			 "Anything that was charged for it is refunded.\n\n" NOTIFICATIONS_SIGNATURE,
			 f->order_id, because),
		sizeof(m->body));
}

shop_status notifications_render(const struct notifications_facts *facts,
				 struct notifications_mail *ret_mail)
{
	if (!notifications_token_ok(facts->order_id, NOTIFICATIONS_ORDER_ID_MAX))
		return SHOP_E_INVALID;

	struct notifications_mail m;
	memset(&m, 0, sizeof(m));
	shop_status st;
	switch (facts->kind) {
	case NOTIFICATIONS_KIND_ORDER_RECEIVED:
		st = notifications_render_received(facts, &m);
		break;
	case NOTIFICATIONS_KIND_ORDER_SHIPPED:
		st = notifications_render_shipped(facts, &m);
		break;
	case NOTIFICATIONS_KIND_ORDER_CANCELLED:
		st = notifications_render_cancelled(facts, &m);
		break;
	default:
		st = SHOP_E_INVALID;
		break;
	}
	if (st == SHOP_OK)
		*ret_mail = m;
	return st;
}
