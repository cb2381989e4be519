/*
 * metrics.c - the registry, lock-free series lookup, and rendering (see
 * metrics.h).
 *
 * Each metric keeps its series in an open-addressing hash table whose slots
 * are atomic pointers. A series is fully built before it is published into
 * an empty slot with a release store, and never moves or goes away until
 * the registry is freed, so readers probe with acquire loads and no lock:
 * a probe that meets an empty slot knows the series does not exist yet.
 * Only creation takes the metric's mutex (and probes again under it). The
 * table has room for METRICS_SERIES_MAX series plus the overflow series at
 * no more than half load, so probes stay short and always end.
 *
 * Values are atomics: counters and bucket counts are uint64_t, gauges and
 * histogram sums are doubles kept as their bit patterns and changed with a
 * compare-and-swap loop. Relaxed ordering is enough: every cell is
 * independent, and a scrape is a snapshot at no particular instant.
 *
 * Numbers are printed with snprintf and read back with strtod, which assume
 * the "C" locale's decimal point: the services never call setlocale.
 */
#include "metrics/metrics.h"

#include "core/xalloc.h"

#include <inttypes.h>
#include <math.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Hash slots per metric: a power of two at least twice the series it can
 * hold (METRICS_SERIES_MAX and the overflow series). */
#define METRICS_SLOTS 2048
_Static_assert(METRICS_SLOTS >= 2 * (METRICS_SERIES_MAX + 1), "hash table too small");
_Static_assert((METRICS_SLOTS & (METRICS_SLOTS - 1)) == 0, "slots must be a power of two");
_Static_assert(METRICS_METRICS_MAX < METRICS_SERIES_MAX,
	       "the overflow counter has a series per metric and must never overflow");

/* Where overflowing updates are counted, one series per metric. */
#define METRICS_OVERFLOW_NAME "shop_metrics_series_overflow_total"
#define METRICS_OVERFLOW_VALUE "other"

const double metrics_latency_buckets[METRICS_LATENCY_BUCKETS_N] = {
	0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10,
};
const double metrics_batch_buckets[METRICS_BATCH_BUCKETS_N] = {
	1, 2, 4, 8, 16, 32, 64, 128, 256,
};

enum metrics_kind { METRICS_COUNTER, METRICS_GAUGE, METRICS_HISTOGRAM };

struct metrics_series {
	uint64_t hash;
	size_t n_labels;
	char **values; /* n_labels strings, one allocation with the pointers */
	/* A computed gauge: fn and arg are written before computed is set with
	 * release, and never change after. */
	atomic_int computed;
	metrics_gauge_fn fn;
	void *arg;
	/* Counter: cells[0] is the count. Gauge: cells[0] is the double's bits.
	 * Histogram: cells[0] is the sum's bits, cells[1 + i] counts the
	 * observations in bucket i alone (not cumulative; rendering adds them
	 * up), the last one being +Inf. */
	_Atomic uint64_t cells[];
};

struct metrics_metric {
	enum metrics_kind kind;
	struct metrics_registry *reg;
	char *name;
	char *help;
	size_t n_labels;
	char *labels[METRICS_LABELS_MAX];
	size_t n_bounds;
	double *bounds;
	pthread_mutex_t mu; /* creating a series */
	size_t series_n;    /* under mu, not counting the overflow series */
	atomic_bool full;   /* series_n reached METRICS_SERIES_MAX */
	_Atomic(struct metrics_series *) overflow;
	_Atomic(struct metrics_series *) slots[METRICS_SLOTS];
};

/* The public handle types are the metric itself, told apart by the
 * compiler only. */
struct metrics_counter {
	struct metrics_metric m;
};
struct metrics_gauge {
	struct metrics_metric m;
};
struct metrics_histogram {
	struct metrics_metric m;
};

struct metrics_registry {
	pthread_mutex_t mu; /* registration */
	/* metrics[0 .. n) are published: a metric is complete before n grows,
	 * with release, so rendering reads the list without the lock. */
	atomic_size_t n;
	struct metrics_metric *metrics[METRICS_METRICS_MAX];
	struct metrics_counter *overflow;
};

/* ---- values as bits ---------------------------------------------------- */

static uint64_t double_bits(double v)
{
	uint64_t b;
	memcpy(&b, &v, sizeof(b));
	return b;
}

static double bits_double(uint64_t b)
{
	double v;
	memcpy(&v, &b, sizeof(v));
	return v;
}

static void cell_add_double(_Atomic uint64_t *cell, double delta)
{
	uint64_t old = atomic_load_explicit(cell, memory_order_relaxed);
	while (!atomic_compare_exchange_weak_explicit(cell, &old,
						      double_bits(bits_double(old) + delta),
						      memory_order_relaxed, memory_order_relaxed))
		;
}

/* ---- names and values -------------------------------------------------- */

static bool name_chars_valid(const char *s, bool lowercase_only)
{
	size_t len = strlen(s);
	if (len == 0 || len > METRICS_NAME_MAX)
		return false;
	for (size_t i = 0; i < len; i++) {
		char c = s[i];
		bool ok = (c >= 'a' && c <= 'z') || c == '_' || (i > 0 && c >= '0' && c <= '9') ||
			  (!lowercase_only && c >= 'A' && c <= 'Z');
		if (!ok)
			return false;
	}
	return true;
}

static bool has_suffix(const char *s, const char *suffix)
{
	size_t ls = strlen(s), lx = strlen(suffix);
	return ls >= lx && strcmp(s + ls - lx, suffix) == 0;
}

/* Prometheus's grammar would allow upper case and ':'; promtool's lint
 * advises against camelCase, ':' is for recording rules, "_total" marks
 * counters and _bucket/_count/_sum are a histogram's own series. Refusing
 * them here keeps every rendering clean. */
static bool metric_name_valid(const char *name, enum metrics_kind kind)
{
	if (!name || !name_chars_valid(name, true))
		return false;
	if (has_suffix(name, "_bucket") || has_suffix(name, "_count") || has_suffix(name, "_sum"))
		return false;
	bool total = has_suffix(name, "_total");
	if (kind == METRICS_COUNTER)
		return total && strlen(name) > strlen("_total");
	return !total;
}

static bool label_name_valid(const char *name)
{
	return name && name_chars_valid(name, false) && strncmp(name, "__", 2) != 0 &&
	       strcmp(name, "le") != 0 && strcmp(name, "quantile") != 0;
}

/* Well-formed UTF-8: no stray continuation bytes, no overlong forms, no
 * surrogates, nothing above U+10FFFF. The text format requires it. */
static bool utf8_valid(const unsigned char *s, size_t len)
{
	size_t i = 0;
	while (i < len) {
		unsigned char c = s[i];
		size_t n;
		uint32_t cp;
		if (c < 0x80) {
			i++;
			continue;
		} else if ((c & 0xE0) == 0xC0) {
			n = 1;
			cp = c & 0x1F;
		} else if ((c & 0xF0) == 0xE0) {
			n = 2;
			cp = c & 0x0F;
		} else if ((c & 0xF8) == 0xF0) {
			n = 3;
			cp = c & 0x07;
		} else {
			return false;
		}
		if (len - i <= n)
			return false;
		for (size_t k = 1; k <= n; k++) {
			if ((s[i + k] & 0xC0) != 0x80)
				return false;
			cp = (cp << 6) | (s[i + k] & 0x3F);
		}
		static const uint32_t min_cp[4] = { 0, 0x80, 0x800, 0x10000 };
		if (cp < min_cp[n] || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF))
			return false;
		i += n + 1;
	}
	return true;
}

static const char *value_at(const char *const *values, size_t i)
{
	return values && values[i] ? values[i] : "";
}

static bool values_valid(const struct metrics_metric *m, const char *const *values)
{
	for (size_t i = 0; i < m->n_labels; i++) {
		const char *v = value_at(values, i);
		size_t len = strnlen(v, METRICS_VALUE_MAX + 1);
		if (len > METRICS_VALUE_MAX || !utf8_valid((const unsigned char *)v, len))
			return false;
	}
	return true;
}

/* FNV-1a over the values, each ended by its NUL so ("ab","c") and
 * ("a","bc") differ. */
static uint64_t values_hash(const struct metrics_metric *m, const char *const *values)
{
	uint64_t h = 14695981039346656037ULL;
	for (size_t i = 0; i < m->n_labels; i++) {
		const unsigned char *p = (const unsigned char *)value_at(values, i);
		do {
			h ^= *p;
			h *= 1099511628211ULL;
		} while (*p++);
	}
	return h;
}

/* ---- series ------------------------------------------------------------ */

static size_t metric_cells(const struct metrics_metric *m)
{
	return m->kind == METRICS_HISTOGRAM ? 1 + m->n_bounds + 1 : 1;
}

static struct metrics_series *series_new(const struct metrics_metric *m, const char *const *values,
					 uint64_t hash)
{
	size_t cells = metric_cells(m);
	struct metrics_series *s = xcalloc(1, sizeof(*s) + cells * sizeof(s->cells[0]));
	s->hash = hash;
	s->n_labels = m->n_labels;
	size_t bytes = m->n_labels * sizeof(char *);
	for (size_t i = 0; i < m->n_labels; i++)
		bytes += strlen(value_at(values, i)) + 1;
	s->values = xmalloc(bytes ? bytes : 1);
	char *p = (char *)(s->values + m->n_labels);
	for (size_t i = 0; i < m->n_labels; i++) {
		size_t len = strlen(value_at(values, i)) + 1;
		memcpy(p, value_at(values, i), len);
		s->values[i] = p;
		p += len;
	}
	for (size_t i = 0; i < cells; i++)
		atomic_init(&s->cells[i], 0);
	atomic_init(&s->computed, 0);
	return s;
}

static void series_free(struct metrics_series *s)
{
	if (!s)
		return;
	free(s->values);
	free(s);
}

static bool series_matches(const struct metrics_series *s, uint64_t hash, const char *const *values)
{
	if (s->hash != hash)
		return false;
	for (size_t i = 0; i < s->n_labels; i++)
		if (strcmp(s->values[i], value_at(values, i)) != 0)
			return false;
	return true;
}

/* The series, or NULL with *ret_slot (when asked) the empty slot where it
 * would go. Lock-free; under m->mu the answer stays true. */
static struct metrics_series *series_find(struct metrics_metric *m, uint64_t hash,
					  const char *const *values, size_t *ret_slot)
{
	size_t mask = METRICS_SLOTS - 1;
	for (size_t i = (size_t)hash & mask, probes = 0; probes < METRICS_SLOTS;
	     i = (i + 1) & mask, probes++) {
		struct metrics_series *s = atomic_load_explicit(&m->slots[i], memory_order_acquire);
		if (!s) {
			if (ret_slot)
				*ret_slot = i;
			return NULL;
		}
		if (series_matches(s, hash, values))
			return s;
	}
	return NULL; /* unreachable: the table is never more than half full */
}

/* Under m->mu: the series for values, created if need be. counted says
 * whether it counts against METRICS_SERIES_MAX; NULL when it would exceed. */
static struct metrics_series *series_create_locked(struct metrics_metric *m,
						   const char *const *values, bool counted)
{
	uint64_t hash = values_hash(m, values);
	size_t slot = 0;
	struct metrics_series *s = series_find(m, hash, values, &slot);
	if (s)
		return s;
	if (counted && m->series_n >= METRICS_SERIES_MAX) {
		atomic_store_explicit(&m->full, true, memory_order_relaxed);
		return NULL;
	}
	s = series_new(m, values, hash);
	atomic_store_explicit(&m->slots[slot], s, memory_order_release);
	if (counted)
		m->series_n++;
	return s;
}

static void overflow_count(struct metrics_metric *m);

/* The overflow series: all values "other", made on first need so a metric
 * that never overflows does not show it. It may also be a real series,
 * when a caller used "other" itself; both then add up in one. */
static struct metrics_series *series_overflow(struct metrics_metric *m)
{
	struct metrics_series *s = atomic_load_explicit(&m->overflow, memory_order_acquire);
	if (!s) {
		const char *other[METRICS_LABELS_MAX];
		for (size_t i = 0; i < METRICS_LABELS_MAX; i++)
			other[i] = METRICS_OVERFLOW_VALUE;
		pthread_mutex_lock(&m->mu);
		s = series_create_locked(m, other, false);
		atomic_store_explicit(&m->overflow, s, memory_order_release);
		pthread_mutex_unlock(&m->mu);
	}
	overflow_count(m);
	return s;
}

/* The hot path: a lock-free probe; the lock only to create. Never NULL. */
static struct metrics_series *series_get(struct metrics_metric *m, const char *const *values)
{
	uint64_t hash = values_hash(m, values);
	struct metrics_series *s = series_find(m, hash, values, NULL);
	if (s)
		return s;
	/* A full metric, or values that could not be rendered, go to overflow
	 * without the lock: a flood of new values must not serialize. */
	if (atomic_load_explicit(&m->full, memory_order_relaxed) || !values_valid(m, values))
		return series_overflow(m);
	pthread_mutex_lock(&m->mu);
	s = series_create_locked(m, values, true);
	pthread_mutex_unlock(&m->mu);
	return s ? s : series_overflow(m);
}

static void overflow_count(struct metrics_metric *m)
{
	struct metrics_counter *oc = m->reg->overflow;
	/* The overflow counter has fewer series than METRICS_SERIES_MAX (one
	 * per metric), so this never recurses further. */
	if (oc && &oc->m != m)
		metrics_counter_add(oc, (const char *const[]){ m->name }, 1);
}

/* ---- registry ---------------------------------------------------------- */

static void metric_free(struct metrics_metric *m)
{
	if (!m)
		return;
	for (size_t i = 0; i < METRICS_SLOTS; i++)
		series_free(atomic_load_explicit(&m->slots[i], memory_order_relaxed));
	for (size_t i = 0; i < m->n_labels; i++)
		free(m->labels[i]);
	pthread_mutex_destroy(&m->mu);
	free(m->bounds);
	free(m->help);
	free(m->name);
	free(m);
}

static shop_status metric_register(struct metrics_registry *reg, enum metrics_kind kind,
				   const char *name, const char *help, const char *const *labels,
				   const double *bounds, size_t n_bounds,
				   struct metrics_metric **ret_metric)
{
	if (!reg || !metric_name_valid(name, kind) || !help || !*help)
		return SHOP_E_INVALID;
	size_t n_labels = 0;
	for (; labels && labels[n_labels]; n_labels++) {
		if (n_labels == METRICS_LABELS_MAX || !label_name_valid(labels[n_labels]))
			return SHOP_E_INVALID;
		for (size_t j = 0; j < n_labels; j++)
			if (strcmp(labels[j], labels[n_labels]) == 0)
				return SHOP_E_INVALID;
	}
	if (kind == METRICS_HISTOGRAM) {
		if (!bounds || n_bounds == 0 || n_bounds > METRICS_BUCKETS_MAX)
			return SHOP_E_INVALID;
		for (size_t i = 0; i < n_bounds; i++)
			if (!isfinite(bounds[i]) || (i > 0 && !(bounds[i] > bounds[i - 1])))
				return SHOP_E_INVALID;
	}

	shop_status st = SHOP_E_INTERNAL;
	pthread_mutex_lock(&reg->mu);
	size_t n = atomic_load_explicit(&reg->n, memory_order_relaxed);
	for (size_t i = 0; i < n; i++) {
		/* A histogram's _bucket, _sum and _count cannot collide with
		 * another metric: no metric name may end that way. */
		if (strcmp(reg->metrics[i]->name, name) == 0) {
			st = SHOP_E_DUPLICATE;
			goto out;
		}
	}
	if (n == METRICS_METRICS_MAX) {
		st = SHOP_E_LIMIT;
		goto out;
	}
	struct metrics_metric *m = xcalloc(1, sizeof(*m));
	m->kind = kind;
	m->reg = reg;
	m->name = xstrdup(name);
	m->help = xstrdup(help);
	m->n_labels = n_labels;
	for (size_t i = 0; i < n_labels; i++)
		m->labels[i] = xstrdup(labels[i]);
	if (kind == METRICS_HISTOGRAM) {
		m->n_bounds = n_bounds;
		m->bounds = xmalloc(n_bounds * sizeof(double));
		memcpy(m->bounds, bounds, n_bounds * sizeof(double));
	}
	pthread_mutex_init(&m->mu, NULL);
	atomic_init(&m->full, false);
	atomic_init(&m->overflow, NULL);
	for (size_t i = 0; i < METRICS_SLOTS; i++)
		atomic_init(&m->slots[i], NULL);
	/* Without labels there is one series, shown from the start: a counter
	 * at 0 says "nothing yet", a missing one says nothing. */
	if (n_labels == 0)
		series_create_locked(m, NULL, true);
	reg->metrics[n] = m;
	atomic_store_explicit(&reg->n, n + 1, memory_order_release);
	*ret_metric = m;
	st = SHOP_OK;
out:
	pthread_mutex_unlock(&reg->mu);
	return st;
}

struct metrics_registry *metrics_registry_new(void)
{
	struct metrics_registry *reg = xcalloc(1, sizeof(*reg));
	pthread_mutex_init(&reg->mu, NULL);
	atomic_init(&reg->n, 0);
	struct metrics_metric *m = NULL;
	shop_status st = metric_register(reg, METRICS_COUNTER, METRICS_OVERFLOW_NAME,
					 "Updates sent to a metric's overflow series (label values "
					 "\"other\") because it had too many series or the values "
					 "were too long or not UTF-8.",
					 (const char *const[]){ "metric", NULL }, NULL, 0, &m);
	if (st != SHOP_OK)
		abort(); /* a fixed, valid name in an empty registry */
	reg->overflow = (struct metrics_counter *)m;
	return reg;
}

void metrics_registry_free(struct metrics_registry *reg)
{
	if (!reg)
		return;
	size_t n = atomic_load_explicit(&reg->n, memory_order_relaxed);
	for (size_t i = 0; i < n; i++)
		metric_free(reg->metrics[i]);
	pthread_mutex_destroy(&reg->mu);
	free(reg);
}

shop_status metrics_counter_register(struct metrics_registry *reg, const char *name,
				     const char *help, const char *const *labels,
				     struct metrics_counter **ret_counter)
{
	struct metrics_metric *m;
	shop_status st = metric_register(reg, METRICS_COUNTER, name, help, labels, NULL, 0, &m);
	if (st == SHOP_OK)
		*ret_counter = (struct metrics_counter *)m;
	return st;
}

shop_status metrics_gauge_register(struct metrics_registry *reg, const char *name, const char *help,
				   const char *const *labels, struct metrics_gauge **ret_gauge)
{
	struct metrics_metric *m;
	shop_status st = metric_register(reg, METRICS_GAUGE, name, help, labels, NULL, 0, &m);
	if (st == SHOP_OK)
		*ret_gauge = (struct metrics_gauge *)m;
	return st;
}

shop_status metrics_histogram_register(struct metrics_registry *reg, const char *name,
				       const char *help, const char *const *labels,
				       const double *bounds, size_t n_bounds,
				       struct metrics_histogram **ret_histogram)
{
	struct metrics_metric *m;
	shop_status st = metric_register(reg, METRICS_HISTOGRAM, name, help, labels, bounds,
					 n_bounds, &m);
	if (st == SHOP_OK)
		*ret_histogram = (struct metrics_histogram *)m;
	return st;
}

/* ---- updates ----------------------------------------------------------- */

void metrics_counter_add(struct metrics_counter *c, const char *const *values, uint64_t n)
{
	struct metrics_series *s = series_get(&c->m, values);
	atomic_fetch_add_explicit(&s->cells[0], n, memory_order_relaxed);
}

void metrics_gauge_set(struct metrics_gauge *g, const char *const *values, double v)
{
	struct metrics_series *s = series_get(&g->m, values);
	if (!atomic_load_explicit(&s->computed, memory_order_relaxed))
		atomic_store_explicit(&s->cells[0], double_bits(v), memory_order_relaxed);
}

void metrics_gauge_add(struct metrics_gauge *g, const char *const *values, double delta)
{
	struct metrics_series *s = series_get(&g->m, values);
	if (!atomic_load_explicit(&s->computed, memory_order_relaxed))
		cell_add_double(&s->cells[0], delta);
}

void metrics_histogram_observe(struct metrics_histogram *h, const char *const *values, double v)
{
	if (isnan(v))
		return;
	const struct metrics_metric *m = &h->m;
	/* The first bucket whose bound is >= v ("le" is inclusive); past the
	 * last bound, the +Inf bucket. Binary search over at most 32 bounds. */
	size_t lo = 0, hi = m->n_bounds;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		if (v <= m->bounds[mid])
			hi = mid;
		else
			lo = mid + 1;
	}
	struct metrics_series *s = series_get(&h->m, values);
	atomic_fetch_add_explicit(&s->cells[1 + lo], 1, memory_order_relaxed);
	cell_add_double(&s->cells[0], v);
}

shop_status metrics_gauge_bind(struct metrics_gauge *g, const char *const *values,
			       metrics_gauge_fn fn, void *arg)
{
	struct metrics_metric *m = &g->m;
	if (!fn || !values_valid(m, values))
		return SHOP_E_INVALID;
	shop_status st = SHOP_E_INTERNAL;
	pthread_mutex_lock(&m->mu);
	struct metrics_series *s = series_create_locked(m, values, true);
	if (!s) {
		st = SHOP_E_LIMIT;
		goto out;
	}
	if (s == atomic_load_explicit(&m->overflow, memory_order_relaxed)) {
		st = SHOP_E_LIMIT; /* shared by everything that overflowed */
		goto out;
	}
	if (atomic_load_explicit(&s->computed, memory_order_relaxed)) {
		st = SHOP_E_DUPLICATE;
		goto out;
	}
	s->fn = fn;
	s->arg = arg;
	atomic_store_explicit(&s->computed, 1, memory_order_release);
	st = SHOP_OK;
out:
	pthread_mutex_unlock(&m->mu);
	return st;
}

/* ---- rendering --------------------------------------------------------- */

struct metrics_buf {
	char *data;
	size_t len, cap;
};

static void buf_put(struct metrics_buf *b, const char *s, size_t n)
{
	if (b->len + n + 1 > b->cap) {
		size_t cap = b->cap ? b->cap : 4096;
		while (b->len + n + 1 > cap)
			cap *= 2;
		b->data = xrealloc(b->data, cap);
		b->cap = cap;
	}
	memcpy(b->data + b->len, s, n);
	b->len += n;
	b->data[b->len] = '\0';
}

static void buf_str(struct metrics_buf *b, const char *s)
{
	buf_put(b, s, strlen(s));
}

/* HELP text escapes backslash and newline; label values also the double
 * quote. Everything else passes as is (the format is UTF-8). */
static void buf_escaped(struct metrics_buf *b, const char *s, bool quote)
{
	const char *run = s;
	for (; *s; s++) {
		const char *esc = *s == '\\'           ? "\\\\"
				  : *s == '\n'         ? "\\n"
				  : quote && *s == '"' ? "\\\""
						       : NULL;
		if (!esc)
			continue;
		buf_put(b, run, (size_t)(s - run));
		buf_str(b, esc);
		run = s + 1;
	}
	buf_put(b, run, (size_t)(s - run));
}

/* The shortest of %.15g and %.17g that reads back as the same double, so
 * 0.1 prints as 0.1 and nothing is lost. */
static void format_double(char out[32], double v)
{
	if (isnan(v)) {
		snprintf(out, 32, "NaN");
	} else if (isinf(v)) {
		snprintf(out, 32, v > 0 ? "+Inf" : "-Inf");
	} else {
		snprintf(out, 32, "%.15g", v);
		if (strtod(out, NULL) != v)
			snprintf(out, 32, "%.17g", v);
	}
}

/* name{l1="v1",...,extra_name="extra_value"} value\n */
static void buf_sample(struct metrics_buf *b, const struct metrics_metric *m, const char *suffix,
		       const struct metrics_series *s, const char *extra_name,
		       const char *extra_value, const char *value)
{
	buf_str(b, m->name);
	buf_str(b, suffix);
	if (m->n_labels > 0 || extra_name) {
		buf_str(b, "{");
		for (size_t i = 0; i < m->n_labels; i++) {
			if (i > 0)
				buf_str(b, ",");
			buf_str(b, m->labels[i]);
			buf_str(b, "=\"");
			buf_escaped(b, s->values[i], true);
			buf_str(b, "\"");
		}
		if (extra_name) {
			if (m->n_labels > 0)
				buf_str(b, ",");
			buf_str(b, extra_name);
			buf_str(b, "=\"");
			buf_str(b, extra_value);
			buf_str(b, "\"");
		}
		buf_str(b, "}");
	}
	buf_str(b, " ");
	buf_str(b, value);
	buf_str(b, "\n");
}

static int compare_metrics(const void *a, const void *b)
{
	const struct metrics_metric *ma = *(const struct metrics_metric *const *)a;
	const struct metrics_metric *mb = *(const struct metrics_metric *const *)b;
	return strcmp(ma->name, mb->name);
}

static int compare_series(const void *a, const void *b)
{
	const struct metrics_series *sa = *(const struct metrics_series *const *)a;
	const struct metrics_series *sb = *(const struct metrics_series *const *)b;
	for (size_t i = 0; i < sa->n_labels; i++) {
		int c = strcmp(sa->values[i], sb->values[i]);
		if (c != 0)
			return c;
	}
	return 0;
}

static void render_series(struct metrics_buf *b, const struct metrics_metric *m,
			  const struct metrics_series *s)
{
	char num[32];
	switch (m->kind) {
	case METRICS_COUNTER:
		snprintf(num, sizeof(num), "%" PRIu64,
			 atomic_load_explicit(&s->cells[0], memory_order_relaxed));
		buf_sample(b, m, "", s, NULL, NULL, num);
		break;
	case METRICS_GAUGE: {
		double v;
		if (atomic_load_explicit(&s->computed, memory_order_acquire)) {
			if (s->fn(s->arg, &v) != SHOP_OK)
				return; /* a value we do not know is left out, not faked */
		} else {
			v = bits_double(atomic_load_explicit(&s->cells[0], memory_order_relaxed));
		}
		format_double(num, v);
		buf_sample(b, m, "", s, NULL, NULL, num);
		break;
	}
	case METRICS_HISTOGRAM: {
		uint64_t cumulative = 0;
		char le[32];
		for (size_t i = 0; i <= m->n_bounds; i++) {
			cumulative += atomic_load_explicit(&s->cells[1 + i], memory_order_relaxed);
			if (i < m->n_bounds)
				format_double(le, m->bounds[i]);
			else
				snprintf(le, sizeof(le), "+Inf");
			snprintf(num, sizeof(num), "%" PRIu64, cumulative);
			buf_sample(b, m, "_bucket", s, "le", le, num);
		}
		format_double(num, bits_double(atomic_load_explicit(&s->cells[0],
								    memory_order_relaxed)));
		buf_sample(b, m, "_sum", s, NULL, NULL, num);
		snprintf(num, sizeof(num), "%" PRIu64, cumulative);
		buf_sample(b, m, "_count", s, NULL, NULL, num);
		break;
	}
	}
}

static const char *const kind_names[] = { "counter", "gauge", "histogram" };

char *metrics_render(struct metrics_registry *reg, size_t *ret_len)
{
	struct metrics_buf b = { 0 };
	buf_put(&b, "", 0);
	size_t n = atomic_load_explicit(&reg->n, memory_order_acquire);
	struct metrics_metric *metrics[METRICS_METRICS_MAX];
	memcpy(metrics, reg->metrics, n * sizeof(metrics[0]));
	qsort(metrics, n, sizeof(metrics[0]), compare_metrics);

	struct metrics_series **series = xmalloc(METRICS_SLOTS * sizeof(*series));
	for (size_t i = 0; i < n; i++) {
		struct metrics_metric *m = metrics[i];
		buf_str(&b, "# HELP ");
		buf_str(&b, m->name);
		buf_str(&b, " ");
		buf_escaped(&b, m->help, false);
		buf_str(&b, "\n# TYPE ");
		buf_str(&b, m->name);
		buf_str(&b, " ");
		buf_str(&b, kind_names[m->kind]);
		buf_str(&b, "\n");
		size_t ns = 0;
		for (size_t k = 0; k < METRICS_SLOTS; k++) {
			struct metrics_series *s = atomic_load_explicit(&m->slots[k],
									memory_order_acquire);
			if (s)
				series[ns++] = s;
		}
		qsort(series, ns, sizeof(series[0]), compare_series);
		for (size_t k = 0; k < ns; k++)
			render_series(&b, m, series[k]);
	}
	free(series);
	if (ret_len)
		*ret_len = b.len;
	return b.data;
}
