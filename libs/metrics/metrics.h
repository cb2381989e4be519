/*
 * metrics.h - counters, gauges and histograms, rendered in the Prometheus
 * text exposition format 0.0.4 for a service's /metrics endpoint.
 *
 * A registry holds metrics; a metric has a fixed list of label names given
 * at registration, and one series per combination of label values, created
 * on first use. Invariants:
 *   - Memory is bounded: at most METRICS_SERIES_MAX series per metric. An
 *     update for a new combination beyond that goes to one overflow series
 *     whose label values are all "other", and is counted in
 *     shop_metrics_series_overflow_total{metric="<name>"}. A label value
 *     longer than METRICS_VALUE_MAX or not valid UTF-8 goes there too, so
 *     whatever a peer puts in a subject or a URL, the output stays bounded
 *     and parseable.
 *   - Updates never wait on one another: a series is found in a lock-free
 *     table and updated with atomics. A metric's lock is taken only to
 *     create a series. Registration takes the registry's lock.
 *   - Every name is checked at registration (SHOP_E_INVALID), so rendering
 *     never produces output that promtool rejects or lints: names follow
 *     Prometheus's grammar and, stricter, its lint rules (snake_case, no
 *     ':', counters and only counters end in "_total", "le" and "quantile"
 *     are not label names, label names do not start with "__").
 *   - Rendering is deterministic: metrics sorted by name, series by their
 *     label values in label order.
 * Metrics live until the registry is freed; there is no unregistering.
 * Library code, so it does not log: registration returns a status, updates
 * cannot fail.
 */
#ifndef SHOP_METRICS_METRICS_H
#define SHOP_METRICS_METRICS_H

#include "core/status.h"

#include <stddef.h>
#include <stdint.h>

/* Series per metric. A label with unbounded values (an order id, a raw URL)
 * would grow a series per value forever; this caps what such a mistake, or
 * a peer inventing subjects, can cost. The gateway's route x status and a
 * service's subject x outcome stay well below it. */
#define METRICS_SERIES_MAX 512
/* Metrics per registry: a service registers a dozen or so. */
#define METRICS_METRICS_MAX 128
/* Label names per metric. */
#define METRICS_LABELS_MAX 8
/* Finite bucket bounds per histogram (+Inf is implicit). Each series holds
 * a counter per bucket, so this times METRICS_SERIES_MAX is the cost. */
#define METRICS_BUCKETS_MAX 32
/* Bytes of a metric or label name, without the NUL. */
#define METRICS_NAME_MAX 128
/* Bytes of a label value, without the NUL; a longer value is sent to the
 * overflow series rather than cut, since a cut value could merge two. */
#define METRICS_VALUE_MAX 256

/* What an HTTP handler serving metrics_render's text sends as Content-Type. */
#define METRICS_CONTENT_TYPE "text/plain; version=0.0.4; charset=utf-8"

/* Standard bucket bounds. Latency in seconds, 0.5 ms to 10 s, with the
 * targets of the performance work (50 ms accept, 250 ms to PAID) as bounds
 * so their quantiles are exact at the edge. Batch sizes in messages. */
#define METRICS_LATENCY_BUCKETS_N 14
extern const double metrics_latency_buckets[METRICS_LATENCY_BUCKETS_N];
#define METRICS_BATCH_BUCKETS_N 9
extern const double metrics_batch_buckets[METRICS_BATCH_BUCKETS_N];

struct metrics_registry;
/* Distinct handle types, so updating a counter as a gauge does not compile. */
struct metrics_counter;
struct metrics_gauge;
struct metrics_histogram;

/* A gauge computed when rendered (outbox backlog, consumer pending). Runs
 * on the rendering thread with no lock of this library held; it may update
 * metrics but must not register any. On failure the sample is left out of
 * that rendering. */
typedef shop_status (*metrics_gauge_fn)(void *arg, double *ret_value);

struct metrics_registry *metrics_registry_new(void);
void metrics_registry_free(struct metrics_registry *reg); /* accepts NULL */

/*
 * Registration. labels is a NULL-terminated list of label names, or NULL
 * for none; help is a non-empty one-line description. Returns
 * SHOP_E_INVALID for a bad name, label or bucket list, SHOP_E_DUPLICATE for
 * a name already taken, and SHOP_E_LIMIT beyond METRICS_METRICS_MAX. The handle lives as long as the
 * registry. Bucket bounds must be finite and strictly increasing.
 */
shop_status metrics_counter_register(struct metrics_registry *reg, const char *name,
				     const char *help, const char *const *labels,
				     struct metrics_counter **ret_counter);
shop_status metrics_gauge_register(struct metrics_registry *reg, const char *name, const char *help,
				   const char *const *labels, struct metrics_gauge **ret_gauge);
shop_status metrics_histogram_register(struct metrics_registry *reg, const char *name,
				       const char *help, const char *const *labels,
				       const double *bounds, size_t n_bounds,
				       struct metrics_histogram **ret_histogram);

/*
 * Updates. values holds one value per label name, in registration order
 * (NULL for a metric without labels; a NULL value counts as ""). They
 * cannot fail: see the overflow rule at the top.
 */
void metrics_counter_add(struct metrics_counter *c, const char *const *values, uint64_t n);
void metrics_gauge_set(struct metrics_gauge *g, const char *const *values, double v);
void metrics_gauge_add(struct metrics_gauge *g, const char *const *values, double delta);
/* A NaN observation is dropped: it would turn the sum into NaN for good. */
void metrics_histogram_observe(struct metrics_histogram *h, const char *const *values, double v);

/*
 * Makes the series `values` of g a computed one: fn(arg) gives its value at
 * each rendering, in place of any value set before. A series is bound once
 * (SHOP_E_DUPLICATE after); values that would land in the overflow series
 * are refused (SHOP_E_LIMIT when the metric is full, SHOP_E_INVALID for a
 * value too long or not UTF-8). metrics_gauge_set and _add leave a computed
 * series alone.
 */
shop_status metrics_gauge_bind(struct metrics_gauge *g, const char *const *values,
			       metrics_gauge_fn fn, void *arg);

/*
 * The registry in the text exposition format 0.0.4, as a NUL-terminated
 * string the caller frees; its length in *ret_len when ret_len is not NULL.
 * Safe to call while other threads update. A histogram's _count is the sum
 * of its buckets read in the same pass, so it always equals the +Inf
 * bucket; _sum is read separately and may include an observation or two
 * that the buckets do not yet.
 */
char *metrics_render(struct metrics_registry *reg, size_t *ret_len);

#endif
