/*
 * lt_report.h - what a load run measured, and the three ways it is written:
 * a text summary, a JSON report and an SVG picture.
 *
 * The generator fills these structures as it goes; the writers only read
 * them, so the unit tests can hand them a made-up run. Latencies are kept in
 * microseconds and written in milliseconds.
 */
#ifndef SHOP_LOADTEST_REPORT_H
#define SHOP_LOADTEST_REPORT_H

#include "core/status.h"
#include "lt_ceil.h"
#include "lt_hist.h"
#include "lt_mix.h"
#include "lt_orders.h"

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#define LT_ERR_KINDS_MAX 32 /* distinct error kinds kept; more go to "other" */
#define LT_ERR_NAME_MAX 32
#define LT_DURABLES_MAX 32 /* consumers whose lag is tracked */
#define LT_DURABLE_NAME_MAX 64

/* Errors by kind: "http_503", "timeout", "connect", "inflight_bound", ... */
struct lt_errors {
	size_t n;
	struct {
		char name[LT_ERR_NAME_MAX];
		int64_t count;
	} e[LT_ERR_KINDS_MAX];
};

void lt_errors_add(struct lt_errors *errs, const char *name, int64_t count);
int64_t lt_errors_total(const struct lt_errors *errs);

/* One second of the run: counts of what happened in it, latency percentiles
 * of what completed in it, and the back end's state at its end. */
struct lt_second {
	double t; /* seconds since the run began, at the end of this second */
	int phase;
	double rate; /* offered rate in this second (0 while draining) */
	int64_t sent, accepted, completed, errors;
	int64_t inflight; /* HTTP requests in flight */
	int64_t awaiting; /* accepted orders not yet terminal */
	int64_t accept_p50_us, accept_p99_us, paid_p99_us, end_p50_us, end_p99_us;
	int64_t lag;        /* sum of num_pending + num_ack_pending, -1 if unknown */
	int64_t outbox_est; /* gateway outbox backlog estimate, -1 if unknown */
};

/* A consumer's lag as last seen, and the largest seen. */
struct lt_lag {
	char durable[LT_DURABLE_NAME_MAX]; /* "STREAM/durable" */
	int64_t pending, ack_pending, max_total;
};

/* One offered-load phase (a saturation step, or the whole plain run) and
 * the drain after it. */
struct lt_phase {
	double rate;
	int64_t duration_s;
	int64_t offered;  /* requests due by the pacer */
	int64_t sent;     /* requests that left (offered minus in-flight-bound refusals) */
	int64_t accepted; /* HTTP 202 */
	int64_t paid, shipped, cancelled;
	int64_t never_terminal;  /* accepted, not terminal when the drain ended */
	double offer_s, drain_s; /* how long the phases took */
	struct lt_errors errors;
	struct lt_hist accept, paid_lat, end_lat;
	int64_t outcome[LT_KIND_COUNT][3]; /* accepted orders by kind x enum lt_end */
	bool holds;                        /* zero errors, all terminal, p99 targets met */
};

struct lt_report {
	const char *mode; /* "run" or "saturate" */
	const char *started_at;
	const char *gateway, *nats, *monitor, *mix;
	int64_t max_inflight, timeout_ms, drain_max_s;
	double target_accept_p99_ms, target_paid_p99_ms;
	struct lt_phase *phase;
	size_t n_phase;
	struct lt_second *sec;
	size_t n_sec;
	struct lt_lag lag[LT_DURABLES_MAX];
	size_t n_lag;
	int64_t events_dropped; /* bus events the subscription lost (slow consumer) */
	double best_rate;       /* saturate: the highest step that held; 0 if none */
	/* "durable", "relaxed" or "unknown": how the deployment was started
	 * (loadtest/run.sh tells); the ceilings say what the databases run with. */
	const char *durability;
	struct lt_ceilings ceil; /* ceil.measured false: not measured */
	struct lt_ratios ratios; /* computed by lt_report_summarise */
};

/* The headline figure of a report: the best rate that held (saturate) or
 * completed orders per second over the offered phases and their drains
 * (run); *ret_what names which. */
double lt_report_throughput_of(const struct lt_report *r, const char **ret_what);
/* Fills r->ratios from the ceilings and the usage sampled around the load. */
void lt_report_summarise(struct lt_report *r, const struct lt_usage *before,
			 const struct lt_usage *after);

shop_status lt_report_json(const struct lt_report *r, FILE *out);
shop_status lt_report_svg(const struct lt_report *r, FILE *out);
void lt_report_text(const struct lt_report *r, FILE *out);
/* Whether a phase met the targets (sets nothing). */
bool lt_phase_holds(const struct lt_report *r, const struct lt_phase *p);

#endif
