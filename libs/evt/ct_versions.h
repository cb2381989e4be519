/*
 * ct_versions.h - reading an older major version of a message as the newest.
 *
 * A breaking change is a new major version (docs/contracts.md,
 * Compatibility): its producer stops sending the old one, but the old
 * messages already stored on a stream are still delivered, and a consumer
 * must still read them. Rather than every handler knowing every version,
 * the runtime (libs/svc/svc_consume.c) parses a message as the version it
 * came in, and when the service has no route for that version but an
 * upgrade exists, turns it into the next version here and hands that to the
 * handler. Each upgrade is one step (v1 -> v2); the runtime chains them.
 *
 * An upgrade may only drop or derive what the newer version no longer has
 * or has in another shape; it never invents a fact. Both current upgrades
 * drop the card token (issue 7: the token goes only to payments).
 */
#ifndef SHOP_EVT_CT_VERSIONS_H
#define SHOP_EVT_CT_VERSIONS_H

#include "contracts_gen.h"

/* Fills OUT (zeroed, ct_messages[to].data_size bytes) from IN, a parsed
 * message of ct_messages[from]. Cannot fail: both are valid by their
 * schemas, and what OUT keeps of IN passed the same checks. */
typedef void (*ct_upgrade_fn)(const void *in, void *out);

struct ct_upgrade {
	enum ct_message_id from;
	enum ct_message_id to; /* the next major version of the same message */
	ct_upgrade_fn upgrade;
};

/* The upgrade of message FROM to its next major version, NULL when there is
 * none (FROM is the newest, or its versions cannot be mapped). */
const struct ct_upgrade *ct_upgrade_find(enum ct_message_id from);

#endif
