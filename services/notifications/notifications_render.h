/*
 * notifications_render.h - the plain-text e-mails, rendered into bounded
 * buffers.
 *
 * Rendering is pure (no I/O, no clock), so the same facts always give the
 * same e-mail, and a redelivered event renders exactly what the first
 * delivery stored. Everything that goes into a subject line is checked to be
 * printable with no line breaks: a CR or LF in a subject is header
 * injection once a real mailer sends it.
 */
#ifndef SHOP_NOTIFICATIONS_RENDER_H
#define SHOP_NOTIFICATIONS_RENDER_H

#include "core/status.h"
#include "notifications_domain.h"

#include <stdint.h>

#define NOTIFICATIONS_SUBJECT_MAX 160 /* bytes in a subject line, without the NUL */
#define NOTIFICATIONS_BODY_MAX 1024   /* bytes in a body, without the NUL */
#define NOTIFICATIONS_ORDER_ID_MAX 64 /* longest order id an e-mail names */
#define NOTIFICATIONS_REASON_MAX 64   /* longest unknown reason shown verbatim */

/* What an e-mail is about. */
struct notifications_facts {
	enum notifications_kind kind;
	const char *order_id;
	int64_t item_count; /* order_received: items in the order */
	const char *reason; /* order_cancelled: the reason orders gave */
};

struct notifications_mail {
	char subject[NOTIFICATIONS_SUBJECT_MAX + 1];
	char body[NOTIFICATIONS_BODY_MAX + 1];
};

/* Renders the e-mail for facts. SHOP_E_INVALID for an unknown kind or an
 * order id that is empty, too long or not printable; SHOP_E_LIMIT if the
 * text would not fit its buffer (it never is cut). */
shop_status notifications_render(const struct notifications_facts *facts,
				 struct notifications_mail *ret_mail);

#endif
