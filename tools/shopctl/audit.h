/*
 * audit.h - shopctl audit: the shop's invariants, checked across every
 * service's database, the payment provider's ledger and the dead-letter
 * stream.
 *
 * Three layers. The rules (audit_rules.c) are pure: given what one order
 * or one SKU looks like in each database, they say whether an invariant
 * holds and, if not, why. The report (audit_report.c) counts what each
 * check looked at and what broke, keeps the first few violations of each
 * with the order id (or SKU, or dead-letter sequence), and prints itself
 * as text or JSON. audit_run (audit_run.c) reads the databases read-only
 * and the stream, and feeds the rules into the report.
 *
 * The audit reads live data, one database after another, so it is not a
 * snapshot: an order may move between two reads. Orders younger than the
 * deadline are "in flight" and excused from finishing; a caller who needs
 * the rest exact runs it on a quiet system, or again (tests/system).
 */
#ifndef SHOP_SHOPCTL_AUDIT_H
#define SHOP_SHOPCTL_AUDIT_H

#include "core/status.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

/* Violations kept per check for the details, unless --details says less. */
#define AUDIT_DETAILS_DEFAULT 10
/* Most violations --details may ask to keep per check. */
#define AUDIT_DETAILS_MAX 1000
/* Longest id (order id, SKU, sequence) and detail kept of a violation. */
#define AUDIT_ID_MAX 64
#define AUDIT_DETAIL_MAX 256

struct db;
struct bus;

enum audit_check {
	AUDIT_ORDERS_FINISH, /* every accepted order ended, or is in flight within its deadline */
	AUDIT_CHARGES,       /* one kept charge per shipped order, none for a cancelled one */
	AUDIT_STOCK,         /* initial = available + reserved + shipped, per SKU */
	AUDIT_NOTIFICATIONS, /* each (order, kind) recorded once, as its fate asks */
	AUDIT_READ_MODEL,    /* the gateway shows what orders decided */
	AUDIT_DEAD_LETTERS,  /* the dead-letter stream is empty */
	AUDIT_CHECK_COUNT
};

const char *audit_check_name(enum audit_check c);

/* ---- the rules (pure) ---- */

/* Where an order stands in the orders service. */
enum audit_fate {
	AUDIT_FATE_UNKNOWN,   /* orders has no such order */
	AUDIT_FATE_IN_FLIGHT, /* PENDING, RESERVED or PAID */
	AUDIT_FATE_SHIPPED,
	AUDIT_FATE_CANCELLED,
};

/* An orders status string to a fate; anything unrecognised is UNKNOWN. */
enum audit_fate audit_fate_of(const char *status);

/* One SKU's units, each from inventory: reserved and shipped are the lines
 * of held (RESERVED) reservations, split by whether orders shipped them. */
struct audit_stock {
	int64_t initial;
	int64_t available;
	int64_t reserved;
	int64_t shipped;
};

/* Whether initial = available + reserved + shipped with none negative.
 * *ret_missing gets initial minus the sum (units unaccounted for; negative
 * when more is counted than there ever was); INT64_MIN when the sum does
 * not fit, which is a violation too. */
bool audit_stock_conserved(const struct audit_stock *s, int64_t *ret_missing);

/* One order's rows in the provider's ledger. */
struct audit_ledger {
	int64_t approved; /* successful charges */
	int64_t refunded; /* of which refunded */
};

/* Why the ledger is wrong for an order with this fate, or NULL: at most one
 * successful charge; a shipped order keeps exactly one (charged, not
 * refunded); a cancelled order keeps none. */
const char *audit_money_verdict(enum audit_fate fate, const struct audit_ledger *l);

/* One order's e-mails in notifications, by kind. */
struct audit_mails {
	int64_t received;
	int64_t shipped;
	int64_t cancelled;
};

/* Why the e-mails are wrong for an order with this fate, or NULL: each kind
 * at most once; a shipped order has received and shipped, a cancelled one
 * received and cancelled; an order in flight has no final one yet. */
const char *audit_mails_verdict(enum audit_fate fate, const struct audit_mails *m);

/* ---- the report ---- */

struct audit_violation {
	char id[AUDIT_ID_MAX];
	char detail[AUDIT_DETAIL_MAX];
};

struct audit_result {
	int64_t checked;    /* orders, SKUs or messages looked at */
	int64_t violations; /* all of them, kept or not */
	size_t n_kept;
	struct audit_violation *kept; /* the first details_max violations */
	bool allowed;                 /* violations reported but not failing */
	bool failed;                  /* the check could not run: error says why */
	char error[AUDIT_DETAIL_MAX];
};

struct audit_report {
	size_t details_max;
	struct audit_result results[AUDIT_CHECK_COUNT];
};

/* details_max is clamped to AUDIT_DETAILS_MAX. */
void audit_report_init(struct audit_report *r, size_t details_max);
void audit_report_release(struct audit_report *r);
void audit_report_violation(struct audit_report *r, enum audit_check c, const char *id,
			    const char *fmt, ...) __attribute__((format(printf, 4, 5)));
/* N more violations with no details (beyond what could be listed). */
void audit_report_more(struct audit_report *r, enum audit_check c, int64_t n);
void audit_report_error(struct audit_report *r, enum audit_check c, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
/* No check failed to run and none has a violation it does not allow. */
bool audit_report_passed(const struct audit_report *r);
/* One line per check (ok, N violations, or the error), each followed by
 * its kept violations, then a last line PASSED or FAILED. */
void audit_report_print(const struct audit_report *r, FILE *out);
/* The same as one JSON object; the caller frees it. */
char *audit_report_json(const struct audit_report *r);

/* ---- the run ---- */

/* Where the audit reads; a NULL database or bus makes the checks that need
 * it fail to run (never pass silently). */
struct audit_sources {
	struct db *gateway;
	struct db *orders;
	struct db *inventory;
	struct db *payments; /* holds the provider's ledger, provider_charges */
	struct db *notifications;
	struct bus *bus;
	const char *dead_letter_stream;
};

struct audit_options {
	int64_t now_ms;
	int64_t deadline_ms; /* an order unfinished this long after acceptance is a violation */
	bool allow_dead_letters;
};

/* Runs every check into r (initialised by the caller). */
void audit_run(const struct audit_sources *src, const struct audit_options *opt,
	       struct audit_report *r);

#endif
