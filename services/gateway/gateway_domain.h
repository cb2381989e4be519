/*
 * gateway_domain.h - the gateway's decisions: the order statuses it shows
 * and how they may move, which events decide one, and what a repeated
 * Idempotency-Key gets.
 *
 * Pure: no I/O, no clock, no allocation. The projection, the API and the
 * unit tests ask these functions, so each rule is written once.
 *
 * The gateway does not decide an order's state: orders does, and the
 * gateway mirrors it from orders' events (OrderReserved, OrderPaid,
 * OrderShipped, OrderCancelled). It only keeps the mirror from going
 * backwards: a late or replayed event never undoes a newer one, and
 * SHIPPED and CANCELLED are final.
 */
#ifndef SHOP_GATEWAY_DOMAIN_H
#define SHOP_GATEWAY_DOMAIN_H

#include "contracts_gen.h"
#include "core/sha256.h"

#include <stdbool.h>

/* Order statuses as the API shows them, in lifecycle order (the order of
 * the values is what "forward" means). */
enum gateway_status {
	GATEWAY_PENDING,
	GATEWAY_RESERVED,
	GATEWAY_PAID,
	GATEWAY_SHIPPED,
	GATEWAY_CANCELLED,
};
#define GATEWAY_STATUS_COUNT 5

/* "PENDING" ... "CANCELLED", as stored and shown. */
const char *gateway_status_name(enum gateway_status s);
/* false for an unknown name; *ret is written only on success. */
bool gateway_status_parse(const char *s, enum gateway_status *ret);
/* The read model only moves forward: true when `to` may follow `from`. */
bool gateway_status_advances(enum gateway_status from, enum gateway_status to);
/* SHIPPED and CANCELLED: nothing moves the order any more, a long-poll
 * returns, a cancellation is refused. */
bool gateway_status_final(enum gateway_status s);

/* The status an event of message ID decides: true for orders' four status
 * events, with *ret_status set; false for every other message (it only goes
 * into the timeline, OrderCancellationRequested among them: the order stays
 * PAID until shipping answers). */
bool gateway_status_of_event(enum ct_message_id id, enum gateway_status *ret_status);

/* What a POST gets whose Idempotency-Key is already taken. */
enum gateway_idempotency_verdict {
	GATEWAY_IDEMPOTENCY_REPLAY, /* the same request: answer what the first got */
	GATEWAY_IDEMPOTENCY_REFUSE, /* another request under the same key */
};

/* What an idempotency record keeps of its request: "sha256:" and the hex
 * SHA-256 of the request's canonical JSON (re-encoded from the parsed
 * request, so spacing and key order do not count). Never the request itself:
 * it holds the card token, which has no business in the gateway's database
 * for the 24 hours a key lives. */
#define GATEWAY_FINGERPRINT_PREFIX "sha256:"
#define GATEWAY_FINGERPRINT_SIZE (sizeof(GATEWAY_FINGERPRINT_PREFIX) - 1 + SHA256_HEX_SIZE)
void gateway_idempotency_fingerprint(const char *request, char out[GATEWAY_FINGERPRINT_SIZE]);

/* STORED is what the record under the key keeps (a fingerprint; or, in a
 * record written before fingerprints, the canonical JSON itself, compared
 * as it is until the purge removes it), REQUEST this request's canonical
 * JSON. */
enum gateway_idempotency_verdict gateway_idempotency_decide(const char *stored,
							    const char *request);

#endif
