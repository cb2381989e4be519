/*
 * lt_run.c - the generator's loop: pace, send, collect, watch, tick.
 *
 * One thread does everything but receive bus events (lt_watch stamps those
 * on libnats' thread). Each turn of the loop sends every request the pacer
 * says is due, lets libcurl's multi interface move every transfer on, takes
 * the events queued since the last turn, and once a second closes a second
 * of the series (and prints the progress line). A request that is due while
 * LT max-inflight requests are outstanding is not sent: it is counted as an
 * "inflight_bound" error, because a real client would have sent it, and
 * waiting would hide the stall (coordinated omission).
 *
 * Latencies run from each request's intended send time: accept to its HTTP
 * 202, PAID and terminal to the moment the OrderPaid / OrderShipped /
 * OrderCancelled event with its order id was seen on the bus.
 */
#include "lt_run.h"

#include "core/xalloc.h"
#include "lt_ceil.h"
#include "lt_mix.h"
#include "lt_orders.h"
#include "lt_pace.h"
#include "lt_watch.h"

#include <cjson/cJSON.h>
#include <curl/curl.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define LT_POLL_MAX_MS 10             /* longest sleep of the loop between events */
#define LT_MONITOR_FIRST_WAIT_MS 3000 /* for the monitoring baseline before the load */
#define LT_MONITORS_MAX 8             /* NATS nodes whose monitoring is read (--monitor) */
#define LT_SERVER_NAME_MAX 128        /* a node's server_name from its /varz */
#define LT_NS_PER_US 1000LL
#define LT_NS_PER_MS 1000000LL

enum lt_req_type { LT_REQ_PLACE, LT_REQ_CANCEL, LT_REQ_MONITOR };

struct lt_req {
	enum lt_req_type type;
	size_t node; /* LT_REQ_MONITOR: which of the monitors it asks */
	enum lt_kind kind;
	int phase;
	int64_t intended_ns;
	size_t limit; /* response bytes kept; more is an error */
	bool overflow;
	char *buf;
	size_t len;
	CURL *easy;
};

struct lt_gen {
	const struct lt_config *cfg;
	struct lt_report *report;
	CURLM *multi;
	struct curl_slist *json_headers;
	struct lt_orders orders;
	struct lt_mix mix;
	struct lt_watch *watch;
	int phase_no;           /* index into report->phase */
	struct lt_phase *phase; /* the current one */
	double phase_rate;      /* offered rate now; 0 while draining */
	int64_t seq;            /* orders placed so far in the run */
	int64_t inflight;       /* place and cancel requests outstanding */
	int64_t awaiting;       /* accepted orders of this phase not yet terminal */
	int64_t run_start_ns, next_tick_ns;
	struct lt_second cur; /* the second being counted */
	struct lt_hist *sec_accept, *sec_paid, *sec_end;
	/* The NATS nodes' monitoring (--monitor, comma-separated) and each
	 * node's server name; one /jsz per node per second, a round. */
	char *monitor_url[LT_MONITORS_MAX];
	char monitor_name[LT_MONITORS_MAX][LT_SERVER_NAME_MAX];
	size_t n_monitors;
	size_t monitors_busy;        /* requests of the round still out */
	int64_t round_gw_seq;        /* highest GATEWAY last_seq of the round */
	int64_t lag_now, outbox_now; /* last monitoring sample, -1 unknown */
	int64_t gw_seq_base;         /* GATEWAY last_seq before the load, -1 unknown */
	int64_t commands_accepted; /* 202s to POST /orders and /cancel: commands the gateway owes */
	size_t sec_cap;
};

static volatile sig_atomic_t lt_stop_requested;

void lt_run_stop(void)
{
	lt_stop_requested = 1;
}

static size_t lt_req_write(char *data, size_t size, size_t n, void *closure)
{
	struct lt_req *r = closure;
	size_t len = size * n;
	if (r->len + len > r->limit) {
		r->overflow = true;
		return 0; /* aborts the transfer */
	}
	r->buf = xrealloc(r->buf, r->len + len + 1);
	memcpy(r->buf + r->len, data, len);
	r->len += len;
	r->buf[r->len] = '\0';
	return len;
}

static void lt_req_free(struct lt_req *r)
{
	if (!r)
		return;
	if (r->easy)
		curl_easy_cleanup(r->easy);
	free(r->buf);
	free(r);
}

static void lt_gen_error(struct lt_gen *g, const char *kind)
{
	lt_errors_add(&g->phase->errors, kind, 1);
	g->cur.errors++;
}

/* Starts a transfer; body NULL is a GET. Returns the request (NULL when it
 * could not be started), which stays the caller's to look at only until the
 * loop next collects. */
static struct lt_req *lt_gen_submit(struct lt_gen *g, enum lt_req_type type, const char *url,
				    const char *body, enum lt_kind kind, int64_t intended_ns)
{
	struct lt_req *r = xcalloc(1, sizeof(*r));
	r->type = type;
	r->kind = kind;
	r->phase = g->phase_no;
	r->intended_ns = intended_ns;
	r->limit = type == LT_REQ_MONITOR ? LT_MONITOR_RESPONSE_MAX : LT_RESPONSE_MAX;
	r->easy = curl_easy_init();
	if (!r->easy) {
		lt_gen_error(g, "client");
		lt_req_free(r);
		return NULL;
	}
	curl_easy_setopt(r->easy, CURLOPT_URL, url);
	curl_easy_setopt(r->easy, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(r->easy, CURLOPT_TIMEOUT_MS, (long)g->cfg->timeout_ms);
	curl_easy_setopt(r->easy, CURLOPT_CONNECTTIMEOUT_MS, (long)g->cfg->timeout_ms);
	curl_easy_setopt(r->easy, CURLOPT_WRITEFUNCTION, lt_req_write);
	curl_easy_setopt(r->easy, CURLOPT_WRITEDATA, r);
	curl_easy_setopt(r->easy, CURLOPT_PRIVATE, r);
	if (body) {
		curl_easy_setopt(r->easy, CURLOPT_HTTPHEADER, g->json_headers);
		curl_easy_setopt(r->easy, CURLOPT_POSTFIELDSIZE, (long)strlen(body));
		curl_easy_setopt(r->easy, CURLOPT_COPYPOSTFIELDS, body);
	}
	if (curl_multi_add_handle(g->multi, r->easy) != CURLM_OK) {
		lt_gen_error(g, "client");
		lt_req_free(r);
		return NULL;
	}
	if (type == LT_REQ_MONITOR)
		g->monitors_busy++;
	else
		g->inflight++;
	return r;
}

static void lt_gen_place(struct lt_gen *g, int64_t intended_ns)
{
	char body[LT_BODY_MAX];
	enum lt_kind kind = lt_mix_next(&g->mix);
	lt_mix_body(kind, g->seq++, body);
	char *url = xasprintf("%s/orders", g->cfg->gateway);
	lt_gen_submit(g, LT_REQ_PLACE, url, body, kind, intended_ns);
	free(url);
}

/* Records the stages an event has already reached for an order of this phase. */
static void lt_gen_account(struct lt_gen *g, struct lt_order *o, bool paid_new, bool end_new)
{
	if (!o->claimed || o->phase != g->phase_no)
		return;
	if (paid_new && o->paid_ns) {
		int64_t us = (o->paid_ns - o->intended_ns) / LT_NS_PER_US;
		lt_hist_record(&g->phase->paid_lat, us);
		lt_hist_record(g->sec_paid, us);
		g->phase->paid++;
	}
	if (end_new && o->end != LT_END_NONE) {
		int64_t us = (o->end_ns - o->intended_ns) / LT_NS_PER_US;
		lt_hist_record(&g->phase->end_lat, us);
		lt_hist_record(g->sec_end, us);
		if (o->end == LT_END_SHIPPED)
			g->phase->shipped++;
		else
			g->phase->cancelled++;
		g->phase->outcome[o->kind][o->end]++;
		g->cur.completed++;
		g->awaiting--;
	}
}

static void lt_gen_on_accepted(struct lt_gen *g, struct lt_req *r, int64_t now)
{
	cJSON *body = cJSON_ParseWithLength(r->buf ? r->buf : "", r->len);
	const char *id = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(body, "order_id"));
	if (!id || strlen(id) != LT_ORDER_ID_SIZE - 1) {
		lt_gen_error(g, "bad_response");
		goto out;
	}
	int64_t us = (now - r->intended_ns) / LT_NS_PER_US;
	lt_hist_record(&g->phase->accept, us);
	lt_hist_record(g->sec_accept, us);
	g->phase->accepted++;
	g->cur.accepted++;
	g->commands_accepted++;
	struct lt_order *o = lt_orders_get(&g->orders, id);
	if (o->claimed)
		goto out; /* the same id twice: impossible without idempotency keys */
	o->claimed = true;
	o->kind = (uint8_t)r->kind;
	o->phase = g->phase_no;
	o->intended_ns = r->intended_ns;
	g->awaiting++;
	/* Its events may have been seen before this answer was read. */
	lt_gen_account(g, o, true, true);
	if (r->kind == LT_KIND_CANCELLED) {
		char *url = xasprintf("%s/orders/%s/cancel", g->cfg->gateway, id);
		lt_gen_submit(g, LT_REQ_CANCEL, url, "", r->kind, now);
		free(url);
	}
out:
	cJSON_Delete(body);
}

/* One node's answer; the round's figures once every node has answered. */
static void lt_gen_on_monitor(struct lt_gen *g, struct lt_req *r, bool ok)
{
	int64_t gw_seq = -1;
	const char *self = g->monitor_name[r->node][0] ? g->monitor_name[r->node] : NULL;
	if (ok && r->buf &&
	    lt_watch_parse_jsz(r->buf, r->len, self, g->report->lag, &g->report->n_lag, &gw_seq) ==
		    SHOP_OK &&
	    gw_seq > g->round_gw_seq)
		g->round_gw_seq = gw_seq;
	if (g->monitors_busy > 0)
		return;
	g->lag_now = g->report->n_lag ? lt_watch_lag_total(g->report->lag, g->report->n_lag) : -1;
	if (g->round_gw_seq < 0)
		return;
	if (g->gw_seq_base < 0)
		g->gw_seq_base = g->round_gw_seq;
	int64_t owed = g->commands_accepted - (g->round_gw_seq - g->gw_seq_base);
	g->outbox_now = owed < 0 ? 0 : owed;
}

/* Asks every node's /jsz, unless the last round is still out. */
static void lt_gen_monitor_round(struct lt_gen *g, int64_t now)
{
	if (g->monitors_busy > 0)
		return;
	g->round_gw_seq = -1;
	for (size_t i = 0; i < g->n_monitors; i++) {
		char *url = xasprintf("%s/jsz?consumers=true", g->monitor_url[i]);
		struct lt_req *r = lt_gen_submit(g, LT_REQ_MONITOR, url, NULL, LT_KIND_APPROVED,
						 now);
		free(url);
		if (r)
			r->node = i;
	}
}

/* The server name a node's /varz gives, or "" when it does not answer:
 * that node's consumers are then taken only without cluster information. */
static void lt_monitor_name(const char *url, int64_t timeout_ms, char name[LT_SERVER_NAME_MAX])
{
	char *varz = xasprintf("%s/varz", url);
	cJSON *root = lt_http_get_json(varz, timeout_ms);
	const char *n = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(root, "server_name"));
	snprintf(name, LT_SERVER_NAME_MAX, "%s", n ? n : "");
	cJSON_Delete(root);
	free(varz);
}

/* Splits --monitor into the nodes' URLs and learns each node's name. */
static void lt_gen_monitors(struct lt_gen *g)
{
	char *list = xstrdup(g->cfg->monitor), *save = NULL;
	for (char *u = strtok_r(list, ",", &save); u && g->n_monitors < LT_MONITORS_MAX;
	     u = strtok_r(NULL, ",", &save)) {
		g->monitor_url[g->n_monitors] = xstrdup(u);
		lt_monitor_name(u, g->cfg->timeout_ms, g->monitor_name[g->n_monitors]);
		g->n_monitors++;
	}
	free(list);
}

/* Names a failed transfer's error kind. */
static void lt_gen_transfer_error(struct lt_gen *g, const char *prefix, CURLcode rc, long code,
				  bool overflow)
{
	char kind[LT_ERR_NAME_MAX];
	if (overflow)
		snprintf(kind, sizeof(kind), "%sresponse_too_large", prefix);
	else if (rc == CURLE_OPERATION_TIMEDOUT)
		snprintf(kind, sizeof(kind), "%stimeout", prefix);
	else if (rc == CURLE_COULDNT_CONNECT || rc == CURLE_COULDNT_RESOLVE_HOST)
		snprintf(kind, sizeof(kind), "%sconnect", prefix);
	else if (rc != CURLE_OK)
		snprintf(kind, sizeof(kind), "%stransport", prefix);
	else
		snprintf(kind, sizeof(kind), "%shttp_%ld", prefix, code);
	lt_gen_error(g, kind);
}

static void lt_gen_collect(struct lt_gen *g, int64_t now)
{
	CURLMsg *m;
	int left;
	while ((m = curl_multi_info_read(g->multi, &left))) {
		if (m->msg != CURLMSG_DONE)
			continue;
		struct lt_req *r = NULL;
		long code = 0;
		curl_easy_getinfo(m->easy_handle, CURLINFO_PRIVATE, (char **)&r);
		curl_easy_getinfo(m->easy_handle, CURLINFO_RESPONSE_CODE, &code);
		CURLcode rc = m->data.result;
		curl_multi_remove_handle(g->multi, m->easy_handle);
		if (r->type == LT_REQ_MONITOR) {
			g->monitors_busy--;
			lt_gen_on_monitor(g, r, rc == CURLE_OK && code == 200);
		} else {
			g->inflight--;
			/* An answer to a request of an earlier step still counts against it. */
			struct lt_phase *saved = g->phase;
			g->phase = &g->report->phase[r->phase];
			bool ok = rc == CURLE_OK && code == 202 && !r->overflow;
			if (r->type == LT_REQ_PLACE && ok && r->phase == g->phase_no)
				lt_gen_on_accepted(g, r, now);
			else if (r->type == LT_REQ_CANCEL && ok)
				g->commands_accepted++;
			else if (!ok)
				lt_gen_transfer_error(g, r->type == LT_REQ_CANCEL ? "cancel_" : "",
						      rc, code, r->overflow);
			g->phase = saved;
		}
		lt_req_free(r);
	}
}

static void lt_gen_events(struct lt_gen *g)
{
	struct lt_event *ev = NULL;
	size_t n = lt_watch_take(g->watch, &ev);
	for (size_t i = 0; i < n; i++) {
		struct lt_order *o = lt_orders_get(&g->orders, ev[i].order_id);
		if (ev[i].kind == LT_EV_PAID) {
			if (o->paid_ns == 0 && o->end == LT_END_NONE) {
				o->paid_ns = ev[i].seen_ns;
				lt_gen_account(g, o, true, false);
			}
		} else if (o->end == LT_END_NONE) {
			o->end = ev[i].kind == LT_EV_SHIPPED ? LT_END_SHIPPED : LT_END_CANCELLED;
			o->end_ns = ev[i].seen_ns;
			lt_gen_account(g, o, false, true);
		}
	}
	free(ev);
}

static void lt_gen_tick(struct lt_gen *g, int64_t now)
{
	struct lt_second *s = &g->cur;
	s->t = (double)(now - g->run_start_ns) / LT_NS_PER_S;
	s->phase = g->phase_no;
	s->rate = g->phase_rate;
	s->inflight = g->inflight;
	s->awaiting = g->awaiting;
	s->accept_p50_us = lt_hist_percentile(g->sec_accept, 50);
	s->accept_p99_us = lt_hist_percentile(g->sec_accept, 99);
	s->paid_p99_us = lt_hist_percentile(g->sec_paid, 99);
	s->end_p50_us = lt_hist_percentile(g->sec_end, 50);
	s->end_p99_us = lt_hist_percentile(g->sec_end, 99);
	s->lag = g->lag_now;
	s->outbox_est = g->outbox_now;
	if (g->report->n_sec == g->sec_cap) {
		g->sec_cap = g->sec_cap ? g->sec_cap * 2 : 128;
		g->report->sec = xrealloc(g->report->sec, g->sec_cap * sizeof(*g->report->sec));
	}
	g->report->sec[g->report->n_sec++] = *s;
	fprintf(stderr,
		"[%6.1fs] rate %5.0f  sent %5lld  accepted %5lld  completed %5lld  errors %4lld  "
		"inflight %4lld  awaiting %6lld  accept p99 %7.1f ms  terminal p99 %8.1f ms  lag %lld  "
		"outbox~%lld\n",
		s->t, s->rate, (long long)s->sent, (long long)s->accepted, (long long)s->completed,
		(long long)s->errors, (long long)s->inflight, (long long)s->awaiting,
		(double)s->accept_p99_us / 1000.0, (double)s->end_p99_us / 1000.0,
		(long long)s->lag, (long long)s->outbox_est);
	memset(s, 0, sizeof(*s));
	lt_hist_reset(g->sec_accept);
	lt_hist_reset(g->sec_paid);
	lt_hist_reset(g->sec_end);
	lt_gen_monitor_round(g, now);
	g->next_tick_ns += LT_NS_PER_S;
}

/* One turn of the loop: move transfers, take events, tick, then sleep at
 * most wait_ms or until a socket is ready. */
static void lt_gen_pump(struct lt_gen *g, int wait_ms)
{
	int running = 0;
	curl_multi_perform(g->multi, &running);
	int64_t now = lt_pace_now_ns();
	lt_gen_collect(g, now);
	lt_gen_events(g);
	if (now >= g->next_tick_ns)
		lt_gen_tick(g, now);
	if (wait_ms > 0)
		curl_multi_poll(g->multi, NULL, 0, wait_ms, NULL);
}

static void lt_gen_phase(struct lt_gen *g, double rate, int64_t duration_s)
{
	struct lt_report *rep = g->report;
	g->phase_no = (int)rep->n_phase;
	g->phase = &rep->phase[rep->n_phase++];
	memset(g->phase, 0, sizeof(*g->phase));
	g->phase->rate = rate;
	g->phase->duration_s = duration_s;
	g->phase_rate = rate;
	g->awaiting = 0;

	struct lt_pace pace;
	int64_t start = lt_pace_now_ns();
	lt_pace_init(&pace, start, rate, duration_s);
	int64_t next = 0;
	while (next < pace.total && !lt_stop_requested) {
		int64_t now = lt_pace_now_ns();
		int64_t due = lt_pace_due_count(&pace, now);
		for (; next < due; next++) {
			g->phase->offered++;
			if (g->inflight >= g->cfg->max_inflight) {
				lt_gen_error(g, "inflight_bound");
				continue;
			}
			g->phase->sent++;
			g->cur.sent++;
			lt_gen_place(g, lt_pace_due(&pace, next));
		}
		int64_t wait_ns = next < pace.total ? lt_pace_due(&pace, next) - lt_pace_now_ns()
						    : 0;
		/* Rounded up: a request may leave up to a millisecond late (its
		 * latency still counts from its due time), but the loop never spins. */
		int wait_ms = wait_ns > 0 ? (int)((wait_ns + LT_NS_PER_MS - 1) / LT_NS_PER_MS) : 0;
		lt_gen_pump(g, wait_ms > LT_POLL_MAX_MS ? LT_POLL_MAX_MS : wait_ms);
	}
	int64_t offer_end = lt_pace_now_ns();
	g->phase->offer_s = (double)(offer_end - start) / LT_NS_PER_S;

	/* Drain: wait for answers and terminal events, bounded. */
	g->phase_rate = 0;
	int64_t drain_end = offer_end + g->cfg->drain_max_s * LT_NS_PER_S;
	while ((g->inflight > 0 || g->awaiting > 0) && lt_pace_now_ns() < drain_end &&
	       !lt_stop_requested)
		lt_gen_pump(g, LT_POLL_MAX_MS);
	g->phase->drain_s = (double)(lt_pace_now_ns() - offer_end) / LT_NS_PER_S;
	g->phase->never_terminal = g->awaiting;
	for (uint64_t i = 0; i < g->orders.cap; i++) {
		const struct lt_order *o = &g->orders.slot[i];
		if (o->id[0] && o->claimed && o->phase == g->phase_no && o->end == LT_END_NONE)
			g->phase->outcome[o->kind][LT_END_NONE]++;
	}
	g->phase->holds = lt_phase_holds(rep, g->phase);
}

shop_status lt_run(const struct lt_config *cfg, struct lt_report *report)
{
	shop_status st = SHOP_E_INTERNAL;
	struct lt_gen g = { 0 };
	g.cfg = cfg;
	g.report = report;
	g.lag_now = g.outbox_now = g.gw_seq_base = -1;
	lt_orders_init(&g.orders);
	g.sec_accept = xcalloc(1, sizeof(struct lt_hist));
	g.sec_paid = xcalloc(1, sizeof(struct lt_hist));
	g.sec_end = xcalloc(1, sizeof(struct lt_hist));
	if (lt_mix_parse(&g.mix, cfg->mix) != SHOP_OK) {
		st = SHOP_E_INVALID;
		goto out;
	}
	report->phase = xcalloc(cfg->saturate ? LT_SAT_STEPS_MAX : 1, sizeof(*report->phase));

	st = lt_watch_start(cfg->nats, &g.watch);
	if (st != SHOP_OK) {
		fprintf(stderr, "loadtest: cannot subscribe on %s: %s\n", cfg->nats,
			shop_status_name(st));
		goto out;
	}
	g.multi = curl_multi_init();
	if (!g.multi)
		goto out;
	/* Keep every connection the bound allows open between requests. */
	curl_multi_setopt(g.multi, CURLMOPT_MAXCONNECTS, (long)cfg->max_inflight + 8);
	g.json_headers = curl_slist_append(NULL, "Content-Type: application/json");
	g.json_headers = curl_slist_append(g.json_headers, "Expect:");

	/* A phase struct for requests made before the load (the baseline sample). */
	report->n_phase = 0;
	g.phase = &report->phase[0];
	g.run_start_ns = lt_pace_now_ns();
	g.next_tick_ns = g.run_start_ns + LT_NS_PER_S;
	lt_gen_monitors(&g);
	lt_gen_monitor_round(&g, g.run_start_ns);
	int64_t wait_until = g.run_start_ns + LT_MONITOR_FIRST_WAIT_MS * LT_NS_PER_MS;
	while (g.monitors_busy > 0 && lt_pace_now_ns() < wait_until)
		lt_gen_pump(&g, LT_POLL_MAX_MS);
	memset(&report->phase[0], 0, sizeof(report->phase[0]));
	memset(&g.cur, 0, sizeof(g.cur));

	if (!cfg->saturate) {
		lt_gen_phase(&g, cfg->rate, cfg->duration_s);
	} else {
		double rate = cfg->sat_start;
		for (int step = 0;
		     step < LT_SAT_STEPS_MAX && rate <= cfg->sat_max + 1e-9 && !lt_stop_requested;
		     step++) {
			lt_gen_phase(&g, floor(rate + 0.5), cfg->sat_step_s);
			if (!g.phase->holds)
				break;
			report->best_rate = g.phase->rate;
			rate *= cfg->sat_factor;
		}
	}
	/* The last partial second, so the series ends where the run did. */
	lt_gen_tick(&g, lt_pace_now_ns());
	/* Transfers still open after the drain: their answers never came. */
	for (;;) {
		int n = 0;
		CURL **handles = curl_multi_get_handles(g.multi);
		for (CURL **h = handles; h && *h; h++) {
			struct lt_req *r = NULL;
			curl_easy_getinfo(*h, CURLINFO_PRIVATE, (char **)&r);
			curl_multi_remove_handle(g.multi, *h);
			if (r->type != LT_REQ_MONITOR) {
				g.phase = &report->phase[r->phase];
				lt_gen_error(&g, "unanswered");
			}
			lt_req_free(r);
			n++;
		}
		curl_free(handles);
		if (n == 0)
			break;
	}
	report->events_dropped = lt_watch_dropped(g.watch);
	st = SHOP_OK;
out:
	if (g.multi)
		curl_multi_cleanup(g.multi);
	curl_slist_free_all(g.json_headers);
	lt_watch_stop(g.watch);
	lt_orders_release(&g.orders);
	free(g.sec_accept);
	free(g.sec_paid);
	free(g.sec_end);
	for (size_t i = 0; i < g.n_monitors; i++)
		free(g.monitor_url[i]);
	return st;
}

void lt_run_report_release(struct lt_report *report)
{
	free(report->phase);
	free(report->sec);
	report->phase = NULL;
	report->sec = NULL;
}
