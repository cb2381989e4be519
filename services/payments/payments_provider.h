/*
 * payments_provider.h - the simulated card provider.
 *
 * It behaves like an external payment gateway with its own ledger
 * (provider_charges): every call runs in its own transaction on its own
 * connection, so what the provider did stays done even when the caller's
 * transaction rolls back, exactly as a real provider would keep a charge made
 * for a caller that then crashed. That is what makes the attempt counter
 * meaningful: a transient failure is committed as an attempt, and the caller
 * retries with the same idempotency key.
 *
 * Test cards (deterministic):
 *   tok_visa      approved
 *   tok_declined  declined (card_declined)
 *   tok_flaky     transient failure on attempts 1 and 2, approved on attempt 3
 *   anything else declined (card_declined)
 *
 * Idempotency: a key that already has an outcome returns the same outcome and
 * charge id without counting an attempt, so one key is charged at most once.
 * The same key with a different card, amount or currency is refused
 * (SHOP_E_CONFLICT), as real providers refuse a reused key with a different
 * request. A refund marks an approved charge refunded once and returns its
 * refund id; later refunds of the same key return the same id.
 *
 * Lookups: the ledger is the truth about money, so payments asks it by key
 * (payments_provider_charge_find) before it calls an intent "never charged",
 * and walks its open charges (payments_provider_open_charges, the simulated
 * settlement report) to refund any that belong to a cancelled order.
 *
 * Thread safety: one struct payments_provider is shared by the service's
 * consumer threads and tasks. It holds a pool of up to
 * PAYMENTS_PROVIDER_CONNS_MAX connections, each used by one call at a time;
 * a call waits only when all are in use. One connection behind a mutex made
 * every charge wait for the one before it, and a charge waiting for a key's
 * row lock (another replica charging the same order) held up every other
 * order. Connections are opened lazily, as calls need them, so a database
 * that is down at startup is just a retryable failure.
 */
#ifndef SHOP_PAYMENTS_PROVIDER_H
#define SHOP_PAYMENTS_PROVIDER_H

#include "core/ids.h"
#include "core/status.h"
#include "db/db.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Longest idempotency key, card token and currency code the provider takes,
 * in bytes (a token of 64 characters may take 256 bytes of UTF-8). */
#define PAYMENTS_PROVIDER_KEY_MAX 128
#define PAYMENTS_PROVIDER_TOKEN_MAX 256
#define PAYMENTS_PROVIDER_CURRENCY_MAX 8
/* Charge and refund ids: "ch_" or "re_" and a UUIDv7. */
#define PAYMENTS_PROVIDER_ID_PREFIX_LEN 3
#define PAYMENTS_PROVIDER_ID_SIZE (PAYMENTS_PROVIDER_ID_PREFIX_LEN + IDS_UUID_SIZE)
/* Attempts of tok_flaky that fail before one succeeds. */
#define PAYMENTS_PROVIDER_FLAKY_FAILURES 2
/* The reason every decline carries. */
#define PAYMENTS_PROVIDER_DECLINE_REASON "card_declined"
/* Most ledger connections one provider opens (PostgreSQL; a SQLite ledger
 * has one, its writers being serialised by the file anyway). As many as
 * the consumer threads compose gives each durable (SHOP_CONSUMER_THREADS=4),
 * so the threads charging StockReserved never wait for each other; refunds
 * and the reconciliation are rare and wait at most for one short call. The
 * bound keeps a replica's share of PostgreSQL's connections fixed. */
#define PAYMENTS_PROVIDER_CONNS_MAX 4
/* Longest database URL accepted, and the suffix of a derived SQLite file. */
#define PAYMENTS_PROVIDER_URL_MAX 1024
#define PAYMENTS_PROVIDER_SQLITE_SUFFIX "-provider"

/* The test cards. */
#define PAYMENTS_CARD_VISA "tok_visa"
#define PAYMENTS_CARD_DECLINED "tok_declined"
#define PAYMENTS_CARD_FLAKY "tok_flaky"

enum payments_provider_outcome {
	PAYMENTS_PROVIDER_APPROVED,
	PAYMENTS_PROVIDER_DECLINED,
	PAYMENTS_PROVIDER_TRANSIENT, /* only from payments_provider_decide */
};

struct payments_provider_charge_result {
	enum payments_provider_outcome outcome;    /* APPROVED or DECLINED */
	char charge_id[PAYMENTS_PROVIDER_ID_SIZE]; /* "" when declined */
	int64_t attempts;                          /* attempts it took, >= 1 */
	const char *decline_reason;                /* static; NULL when approved */
};

/* An approved charge as the ledger holds it. */
struct payments_provider_charge_info {
	char key[PAYMENTS_PROVIDER_KEY_MAX + 1];
	char charge_id[PAYMENTS_PROVIDER_ID_SIZE];
	int64_t amount_cents;
	char currency[PAYMENTS_PROVIDER_CURRENCY_MAX + 1];
	bool refunded;
};

struct payments_provider;

/* No I/O: the connection to url is opened on first use. */
struct payments_provider *payments_provider_create(const char *url);
/* The ledger's migrations (provider_charges). */
extern const struct db_migration payments_provider_migrations[];
extern const size_t payments_provider_n_migrations;
/* The ledger shares the service's database and the service's migrations
 * include payments_provider_migrations: the provider does not run them
 * itself (its connection is the service's runtime role, which has no DDL
 * rights). Call before first use. */
void payments_provider_migrated_by_service(struct payments_provider *p);
void payments_provider_destroy(struct payments_provider *p); /* accepts NULL */

/* Charges amount_cents to token once per key. SHOP_OK with the outcome
 * (approved or declined); SHOP_E_UNAVAILABLE for a transient failure (the
 * attempt is recorded; retry with the same key) or an unreachable ledger;
 * SHOP_E_CONFLICT when key was used for a different request; SHOP_E_INVALID
 * or SHOP_E_LIMIT for bad arguments. */
shop_status payments_provider_charge(struct payments_provider *p, const char *key,
				     const char *token, int64_t amount_cents, const char *currency,
				     struct payments_provider_charge_result *ret_result);

/* Refunds the approved charge of key in full, once. SHOP_OK with the refund
 * id (the same on every call); SHOP_E_NOT_FOUND when key was never charged;
 * SHOP_E_CONFLICT when its charge was not approved. */
shop_status payments_provider_refund(struct payments_provider *p, const char *key,
				     char ret_refund_id[PAYMENTS_PROVIDER_ID_SIZE]);

/* The approved charge of key, refunded or not. SHOP_E_NOT_FOUND when key has
 * none: never used, declined, or only transient attempts so far. */
shop_status payments_provider_charge_find(struct payments_provider *p, const char *key,
					  struct payments_provider_charge_info *ret_info);

/* Approved charges not refunded, with keys after after_key ("" for the
 * first), in key order: at most max of them into ret_infos, their number in
 * *ret_n. Fewer than max means the walk reached the end of the ledger. */
shop_status payments_provider_open_charges(struct payments_provider *p, const char *after_key,
					   size_t max,
					   struct payments_provider_charge_info *ret_infos,
					   size_t *ret_n);

/* Tests only: the first column of the first row of SQL (no parameters), run
 * on the ledger's own connection, into out. */
shop_status payments_provider_session_text(struct payments_provider *p, const char *sql, char *out,
					   size_t out_size);

/* The card rule, pure: what attempt number `attempt` (1-based) of token does. */
enum payments_provider_outcome payments_provider_decide(const char *token, int64_t attempt);

/* Where the ledger lives, given the service's database URL. PostgreSQL: the
 * same database (a separate connection is enough, row locks keep the two
 * transactions apart). SQLite: a sibling file ("payments.db" ->
 * "payments-provider.db"), because SQLite has one writer per file and the
 * handler's transaction holds it while it calls the provider; ":memory:"
 * stays ":memory:" (a private database of the provider's connection). */
shop_status payments_provider_url_derive(const char *service_url, char *out, size_t out_size);
/* SHOP_E_CONFLICT when provider_url names the service's own SQLite file:
 * every charge would wait for the write lock its own handler holds, time
 * out, and be retried forever. SHOP_OK otherwise. */
shop_status payments_provider_url_check(const char *service_url, const char *provider_url);

#endif
