/*
 * status.h - the one status type every fallible call in the project returns.
 *
 * The values are chosen by what the caller must do next, not by what went
 * wrong inside: the HTTP layer maps them to response codes and the bus layer
 * maps them to ack / nak-with-delay / dead-letter, each in one table.
 * Adapters translate foreign codes (SQLSTATE, SQLite, natsStatus) into these
 * in exactly one function each.
 */
#ifndef SHOP_CORE_STATUS_H
#define SHOP_CORE_STATUS_H

typedef enum shop_status {
	SHOP_OK = 0,
	SHOP_E_INVALID,     /* input breaks a contract: never retry, reject or dead-letter */
	SHOP_E_LIMIT,       /* input is larger than a named limit allows */
	SHOP_E_NOT_FOUND,   /* the thing named does not exist */
	SHOP_E_CONFLICT,    /* legal input, illegal in the current state */
	SHOP_E_DUPLICATE,   /* already done: idempotent callers treat it as success */
	SHOP_E_NOT_READY,   /* a fact this depends on has not arrived yet: retry later */
	SHOP_E_UNAVAILABLE, /* a dependency (database, broker) is down: retry with backoff */
	SHOP_E_TIMEOUT,     /* outcome unknown: retry with the same idempotency key */
	SHOP_E_INTERNAL,    /* a bug or an impossible state */
} shop_status;

const char *shop_status_name(shop_status st);

#endif
