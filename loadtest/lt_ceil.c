/*
 * lt_ceil.c - measures the building blocks' ceilings on the deployment under
 * test (lt_ceil.h), and samples the counters the ratios need.
 *
 * Every measurement is bounded by cfg->seconds (plus the time to settle what
 * is in flight, itself bounded) and removes what it made: the scratch
 * stream, the scratch tables, the SQLite file. A measurement that fails
 * leaves its rate negative and says why in its note; the others still run.
 */
#include "lt_ceil.h"

#include "bus/bus.h"
#include "bus/bus_nats.h"
#include "core/clock.h"
#include "core/xalloc.h"
#include "db/db.h"

#include <cjson/cJSON.h>
#include <curl/curl.h>
#include <nats/nats.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define LT_CEIL_SETTLE_MS 10000 /* waiting for the last publish acks */
#define LT_CEIL_FETCH_WAIT_MS 1000
#define LT_CEIL_HTTP_TIMEOUT_MS 5000
#define LT_CEIL_BODY_MAX (1024 * 1024) /* /jsz without details is ~1 KiB */

static void lt_ceil_fail(struct lt_ceil_rate *r, const char *what, const char *why)
{
	r->per_s = -1;
	snprintf(r->note, sizeof(r->note), "%s: %s", what, why);
}

static void lt_ceil_done(struct lt_ceil_rate *r, int64_t count, int64_t start_us)
{
	r->count = count;
	r->seconds = (double)(clock_mono_us() - start_us) / 1e6;
	r->per_s = r->seconds > 0 ? (double)count / r->seconds : -1;
}

/* ---- JetStream: async publish, then pull consume ----------------------- */

struct lt_ceil_pub {
	atomic_llong acked, failed;
};

static void lt_ceil_on_ack(jsCtx *js, natsMsg *msg, jsPubAck *pa, jsPubAckErr *pae, void *closure)
{
	struct lt_ceil_pub *p = closure;
	if (pa && !pae)
		atomic_fetch_add(&p->acked, 1);
	else
		atomic_fetch_add(&p->failed, 1);
	natsMsg_Destroy(msg);
}

static void lt_ceil_js_publish(jsCtx *js, int64_t seconds, struct lt_ceil_rate *r)
{
	static char payload[LT_CEIL_MSG_SIZE];
	memset(payload, 'x', sizeof(payload));
	jsPubOptions po;
	jsPubOptions_Init(&po);
	po.MaxWait = BUS_PUBLISH_TIMEOUT_MS;
	char id[64];
	int64_t run = clock_now_ms();
	int64_t start = clock_mono_us(), deadline = start + seconds * 1000000;
	int64_t sent = 0, refused = 0;
	while (sent < LT_CEIL_PUB_MSGS_MAX && clock_mono_us() < deadline) {
		/* Unique per message and per run: the dedup check is part of the cost. */
		snprintf(id, sizeof(id), "ltceil-%lld-%lld", (long long)run, (long long)sent);
		po.MsgId = id;
		if (js_PublishAsync(js, LT_CEIL_SUBJECT, payload, (int)sizeof(payload), &po) ==
		    NATS_OK)
			sent++;
		else
			refused++;
	}
	jsPubOptions_Init(&po);
	po.MaxWait = LT_CEIL_SETTLE_MS;
	natsStatus s = js_PublishAsyncComplete(js, &po);
	r->errors = refused;
	if (s != NATS_OK)
		snprintf(r->note, sizeof(r->note), "acks still pending after %d ms: %s",
			 LT_CEIL_SETTLE_MS, natsStatus_GetText(s));
	lt_ceil_done(r, sent, start);
}

static void lt_ceil_js_consume(jsCtx *js, int64_t seconds, int64_t available,
			       struct lt_ceil_rate *r)
{
	jsErrCode jerr = 0;
	jsConsumerConfig cc;
	jsConsumerConfig_Init(&cc);
	cc.Durable = LT_CEIL_DURABLE;
	cc.AckPolicy = js_AckExplicit;
	cc.DeliverPolicy = js_DeliverAll;
	cc.AckWait = (int64_t)BUS_ACK_WAIT_MS * 1000000;
	cc.MaxAckPending = BUS_MAX_ACK_PENDING; /* as the shop's durables */
	jsConsumerInfo *ci = NULL;
	natsStatus s = js_AddConsumer(&ci, js, LT_CEIL_STREAM, &cc, NULL, &jerr);
	jsConsumerInfo_Destroy(ci);
	if (s != NATS_OK) {
		lt_ceil_fail(r, "add consumer", natsStatus_GetText(s));
		return;
	}
	jsSubOptions so;
	jsSubOptions_Init(&so);
	so.Stream = LT_CEIL_STREAM;
	so.Consumer = LT_CEIL_DURABLE;
	natsSubscription *sub = NULL;
	s = js_PullSubscribe(&sub, js, LT_CEIL_SUBJECT, LT_CEIL_DURABLE, NULL, &so, &jerr);
	if (s != NATS_OK) {
		lt_ceil_fail(r, "pull subscribe", natsStatus_GetText(s));
		return;
	}
	int64_t start = clock_mono_us(), deadline = start + seconds * 1000000;
	int64_t got = 0;
	while (got < available && clock_mono_us() < deadline) {
		natsMsgList list = { 0 };
		s = natsSubscription_Fetch(&list, sub, LT_CEIL_FETCH_BATCH, LT_CEIL_FETCH_WAIT_MS,
					   &jerr);
		if (s != NATS_OK && s != NATS_TIMEOUT) {
			r->errors++;
			continue;
		}
		for (int i = 0; i < list.Count; i++)
			if (natsMsg_Ack(list.Msgs[i], NULL) == NATS_OK)
				got++;
			else
				r->errors++;
		natsMsgList_Destroy(&list);
	}
	lt_ceil_done(r, got, start);
	natsSubscription_Destroy(sub);
}

static void lt_ceil_js(const char *url, int64_t seconds, struct lt_ceilings *c)
{
	natsConnection *nc = NULL;
	natsOptions *no = NULL;
	jsCtx *js = NULL;
	struct lt_ceil_pub pub = { 0 };
	jsErrCode jerr = 0;
	bool created = false;
	char **urls = NULL;
	size_t n_urls = bus_url_list(url, &urls);
	natsStatus s = n_urls == 0 || n_urls > INT32_MAX ? NATS_INVALID_ARG
							 : natsOptions_Create(&no);
	if (s == NATS_OK)
		s = natsOptions_SetServers(no, (const char **)urls, (int)n_urls);
	if (s == NATS_OK)
		s = natsOptions_SetName(no, "shop-loadtest-ceilings");
	/* The admin user's credentials in compose: the scratch stream is made
	 * and deleted here. */
	if (s == NATS_OK && bus_nats_options_auth(no, NULL) != SHOP_OK)
		s = NATS_INVALID_ARG;
	if (s == NATS_OK)
		s = natsConnection_Connect(&nc, no);
	if (s != NATS_OK) {
		lt_ceil_fail(&c->js_publish, "connect", natsStatus_GetText(s));
		lt_ceil_fail(&c->js_consume, "connect", natsStatus_GetText(s));
		goto out;
	}
	jsOptions jo;
	jsOptions_Init(&jo);
	jo.Wait = BUS_API_TIMEOUT_MS;
	jo.PublishAsync.MaxPending = LT_CEIL_PUB_MAX_PENDING;
	jo.PublishAsync.AckHandler = lt_ceil_on_ack;
	jo.PublishAsync.AckHandlerClosure = &pub;
	s = natsConnection_JetStream(&js, nc, &jo);
	jsStreamConfig sc;
	jsStreamConfig_Init(&sc);
	const char *subjects[] = { LT_CEIL_SUBJECT };
	sc.Name = LT_CEIL_STREAM;
	sc.Subjects = subjects;
	sc.SubjectsLen = 1;
	sc.Storage = js_FileStorage; /* like the shop's streams */
	sc.Retention = js_LimitsPolicy;
	sc.Duplicates = (int64_t)BUS_DUPLICATE_WINDOW_MS * 1000000;
	sc.MaxMsgs = LT_CEIL_PUB_MSGS_MAX;
	/* A stream left by a run that was killed goes first. */
	if (s == NATS_OK)
		js_DeleteStream(js, LT_CEIL_STREAM, NULL, NULL);
	jsStreamInfo *si = NULL;
	if (s == NATS_OK)
		s = js_AddStream(&si, js, &sc, NULL, &jerr);
	jsStreamInfo_Destroy(si);
	if (s != NATS_OK) {
		lt_ceil_fail(&c->js_publish, "scratch stream", natsStatus_GetText(s));
		lt_ceil_fail(&c->js_consume, "scratch stream", natsStatus_GetText(s));
		goto out;
	}
	created = true;
	lt_ceil_js_publish(js, seconds, &c->js_publish);
	/* Only acknowledged messages count as published. */
	int64_t acked = atomic_load(&pub.acked);
	c->js_publish.errors += atomic_load(&pub.failed);
	c->js_publish.per_s = c->js_publish.seconds > 0 ? (double)acked / c->js_publish.seconds
							: -1;
	c->js_publish.count = acked;
	lt_ceil_js_consume(js, seconds, acked, &c->js_consume);
out:
	if (created && js_DeleteStream(js, LT_CEIL_STREAM, NULL, &jerr) != NATS_OK)
		fprintf(stderr, "shop-loadtest: could not delete the scratch stream %s\n",
			LT_CEIL_STREAM);
	jsCtx_Destroy(js);
	natsConnection_Destroy(nc);
	natsOptions_Destroy(no);
	bus_url_list_free(urls, n_urls);
}

/* ---- the gateway: GET /healthz, closed loop ----------------------------- */

static size_t lt_ceil_discard(char *data, size_t size, size_t n, void *closure)
{
	(void)data;
	(void)closure;
	return size * n;
}

static CURL *lt_ceil_http_easy(const char *url)
{
	CURL *e = curl_easy_init();
	if (!e)
		abort();
	curl_easy_setopt(e, CURLOPT_URL, url);
	curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, lt_ceil_discard);
	curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, (long)LT_CEIL_HTTP_TIMEOUT_MS);
	curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
	return e;
}

static void lt_ceil_http(const char *gateway, int64_t seconds, struct lt_ceil_rate *r)
{
	char *url = xasprintf("%s/healthz", gateway);
	CURLM *m = curl_multi_init();
	CURL *easy[LT_CEIL_HTTP_CONNECTIONS];
	for (int i = 0; i < LT_CEIL_HTTP_CONNECTIONS; i++) {
		easy[i] = lt_ceil_http_easy(url);
		curl_multi_add_handle(m, easy[i]);
	}
	int64_t start = clock_mono_us(), deadline = start + seconds * 1000000;
	int64_t ok = 0, running = LT_CEIL_HTTP_CONNECTIONS;
	while (running > 0) {
		int still = 0;
		curl_multi_perform(m, &still);
		CURLMsg *msg;
		int left;
		while ((msg = curl_multi_info_read(m, &left))) {
			if (msg->msg != CURLMSG_DONE)
				continue;
			CURL *e = msg->easy_handle;
			long code = 0;
			curl_easy_getinfo(e, CURLINFO_RESPONSE_CODE, &code);
			if (msg->data.result == CURLE_OK && code == 200)
				ok++;
			else
				r->errors++;
			curl_multi_remove_handle(m, e);
			/* Closed loop: the next request on this connection. */
			if (clock_mono_us() < deadline)
				curl_multi_add_handle(m, e);
			else
				running--;
		}
		curl_multi_poll(m, NULL, 0, 100, NULL);
	}
	lt_ceil_done(r, ok, start);
	if (ok == 0)
		lt_ceil_fail(r, url, "no request answered 200");
	for (int i = 0; i < LT_CEIL_HTTP_CONNECTIONS; i++)
		curl_easy_cleanup(easy[i]);
	curl_multi_cleanup(m);
	free(url);
}

/* ---- the databases: business row + outbox row per transaction ---------- */

struct lt_ceil_db_worker {
	pthread_t thread;
	const char *url;
	int64_t deadline_us;
	int64_t commits, errors;
	int id;
	char error[DB_ERROR_MAX];
};

static void *lt_ceil_db_loop(void *arg)
{
	struct lt_ceil_db_worker *w = arg;
	struct db *db = NULL;
	if (db_open(w->url, &db) != SHOP_OK) {
		snprintf(w->error, sizeof(w->error), "%s", db_last_error(NULL));
		return NULL;
	}
	char payload[200];
	memset(payload, 'p', sizeof(payload) - 1);
	payload[sizeof(payload) - 1] = '\0';
	while (clock_mono_us() < w->deadline_us) {
		const char *now = DB_I64(clock_now_ms());
		bool over = false;
		/* As a consumer's batch does it: the outbox row goes out with the
		 * COMMIT (db_exec_commit), the BEGIN with the first statement. */
		if (db_begin(db) == SHOP_OK &&
		    db_exec(db,
			    "INSERT INTO ltceil_business (worker, payload, created_ms) "
			    "VALUES ($1, $2, $3)",
			    DB_ARGS(DB_I64(w->id), payload, now), NULL) == SHOP_OK &&
		    db_exec_commit(db,
				   "INSERT INTO ltceil_outbox (subject, payload, created_ms) "
				   "VALUES ($1, $2, $3)",
				   DB_ARGS("ltceil.event", payload, now), NULL, &over) == SHOP_OK) {
			w->commits++;
			continue;
		}
		snprintf(w->error, sizeof(w->error), "%s", db_last_error(db));
		if (!over)
			db_rollback(db);
		w->errors++;
		if (w->errors > 100)
			break;
	}
	db_close(db);
	return NULL;
}

/* Creates the scratch tables, runs n committing threads, drops the tables;
 * setting receives the durability the backend reports. */
static void lt_ceil_db(const char *url, int n, int64_t seconds, struct lt_ceil_rate *r,
		       char setting[LT_CEIL_SETTING_MAX])
{
	struct db *db = NULL;
	struct db_result *res = NULL;
	snprintf(setting, LT_CEIL_SETTING_MAX, "?");
	if (db_open(url, &db) != SHOP_OK) {
		lt_ceil_fail(r, "open", db_last_error(NULL));
		return;
	}
	bool pg = db_backend_of(db) == DB_POSTGRES;
	const char *auto_id = pg ? "bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY"
				 : "INTEGER PRIMARY KEY AUTOINCREMENT";
	char *business = xasprintf("CREATE TABLE ltceil_business (id %s, worker bigint NOT NULL, "
				   "payload text NOT NULL, created_ms bigint NOT NULL)",
				   auto_id);
	char *outbox = xasprintf("CREATE TABLE ltceil_outbox (id %s, subject text NOT NULL, "
				 "payload text NOT NULL, created_ms bigint NOT NULL, "
				 "published_ms bigint)",
				 auto_id);
	db_exec(db, "DROP TABLE IF EXISTS ltceil_business", DB_NOARGS, NULL);
	db_exec(db, "DROP TABLE IF EXISTS ltceil_outbox", DB_NOARGS, NULL);
	if (db_exec(db, business, DB_NOARGS, NULL) != SHOP_OK ||
	    db_exec(db, outbox, DB_NOARGS, NULL) != SHOP_OK) {
		lt_ceil_fail(r, "create tables", db_last_error(db));
		goto out;
	}
	if (db_query(db, pg ? "SHOW synchronous_commit" : "PRAGMA synchronous", DB_NOARGS, &res) ==
		    SHOP_OK &&
	    db_result_rows(res) == 1) {
		static const char *const sqlite_levels[] = { "OFF", "NORMAL", "FULL", "EXTRA" };
		const char *v = db_result_text(res, 0, 0);
		int64_t level = db_result_int(res, 0, 0);
		if (!pg && level >= 0 && level <= 3)
			v = sqlite_levels[level];
		snprintf(setting, LT_CEIL_SETTING_MAX, "%s", v ? v : "?");
	}
	db_result_free(res);

	struct lt_ceil_db_worker *w = xcalloc((size_t)n, sizeof(*w));
	int64_t start = clock_mono_us();
	int started = 0;
	for (int i = 0; i < n; i++) {
		w[i].url = url;
		w[i].id = i;
		w[i].deadline_us = start + seconds * 1000000;
		if (pthread_create(&w[i].thread, NULL, lt_ceil_db_loop, &w[i]) != 0)
			break;
		started++;
	}
	int64_t commits = 0;
	for (int i = 0; i < started; i++) {
		pthread_join(w[i].thread, NULL);
		commits += w[i].commits;
		r->errors += w[i].errors;
		if (w[i].error[0] && !r->note[0])
			snprintf(r->note, sizeof(r->note), "%s", w[i].error);
	}
	lt_ceil_done(r, commits, start);
	if (commits == 0)
		r->per_s = -1;
	free(w);
out:
	db_exec(db, "DROP TABLE IF EXISTS ltceil_business", DB_NOARGS, NULL);
	db_exec(db, "DROP TABLE IF EXISTS ltceil_outbox", DB_NOARGS, NULL);
	db_close(db);
	free(business);
	free(outbox);
}

static void lt_ceil_sqlite_remove(const char *path)
{
	static const char *const suffixes[] = { "", "-wal", "-shm", "-journal" };
	for (size_t i = 0; i < sizeof(suffixes) / sizeof(suffixes[0]); i++) {
		char *p = xasprintf("%s%s", path, suffixes[i]);
		unlink(p);
		free(p);
	}
}

shop_status lt_ceil_measure(const struct lt_ceil_config *cfg, struct lt_ceilings *ret)
{
	struct lt_ceilings c;
	memset(&c, 0, sizeof(c));
	c.measured = true;
	snprintf(c.pg_synchronous_commit, sizeof(c.pg_synchronous_commit), "n/a");
	snprintf(c.sqlite_synchronous, sizeof(c.sqlite_synchronous), "n/a");
	int64_t s = cfg->seconds;

	fprintf(stderr, "ceilings: JetStream publish and consume (%llds each)\n", (long long)s);
	lt_ceil_js(cfg->nats, s, &c);
	fprintf(stderr, "ceilings: gateway GET /healthz (%llds, %d connections)\n", (long long)s,
		LT_CEIL_HTTP_CONNECTIONS);
	lt_ceil_http(cfg->gateway, s, &c.http);
	if (cfg->pg_url) {
		fprintf(stderr, "ceilings: PostgreSQL commits (%llds, %d connections)\n",
			(long long)s, LT_CEIL_PG_CONNECTIONS);
		lt_ceil_db(cfg->pg_url, LT_CEIL_PG_CONNECTIONS, s, &c.pg_commit,
			   c.pg_synchronous_commit);
	} else {
		lt_ceil_fail(&c.pg_commit, "PostgreSQL", "no --ceil-pg URL");
	}
	if (cfg->sqlite_path) {
		fprintf(stderr, "ceilings: SQLite commits (%llds, one writer)\n", (long long)s);
		char *url = xasprintf("sqlite:%s", cfg->sqlite_path);
		lt_ceil_sqlite_remove(cfg->sqlite_path);
		lt_ceil_db(url, 1, s, &c.sqlite_commit, c.sqlite_synchronous);
		lt_ceil_sqlite_remove(cfg->sqlite_path);
		free(url);
	} else {
		lt_ceil_fail(&c.sqlite_commit, "SQLite", "no --ceil-sqlite path");
	}
	*ret = c;
	return SHOP_OK;
}

/* ---- counters around the load ------------------------------------------- */

struct lt_ceil_body {
	char *buf;
	size_t len;
};

static size_t lt_ceil_collect(char *data, size_t size, size_t n, void *closure)
{
	struct lt_ceil_body *b = closure;
	size_t add = size * n;
	if (b->len + add > LT_CEIL_BODY_MAX)
		return 0;
	b->buf = xrealloc(b->buf, b->len + add + 1);
	memcpy(b->buf + b->len, data, add);
	b->len += add;
	b->buf[b->len] = '\0';
	return add;
}

cJSON *lt_http_get_json(const char *url, int64_t timeout_ms)
{
	struct lt_ceil_body b = { 0 };
	cJSON *root = NULL;
	CURL *e = lt_ceil_http_easy(url);
	curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, (long)timeout_ms);
	curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, lt_ceil_collect);
	curl_easy_setopt(e, CURLOPT_WRITEDATA, &b);
	if (curl_easy_perform(e) == CURLE_OK && b.buf)
		root = cJSON_Parse(b.buf);
	curl_easy_cleanup(e);
	free(b.buf);
	return root;
}

static int64_t lt_ceil_jsz_messages(const char *monitor)
{
	int64_t v = -1;
	char *url = xasprintf("%s/jsz", monitor);
	cJSON *root = lt_http_get_json(url, LT_CEIL_HTTP_TIMEOUT_MS);
	const cJSON *m = cJSON_GetObjectItemCaseSensitive(root, "messages");
	if (cJSON_IsNumber(m))
		v = (int64_t)m->valuedouble;
	cJSON_Delete(root);
	free(url);
	return v;
}

static int64_t lt_ceil_pg_commits(const char *pg_url)
{
	int64_t v = -1;
	struct db *db = NULL;
	struct db_result *res = NULL;
	if (!pg_url || db_open(pg_url, &db) != SHOP_OK)
		return -1;
	/* pg_stat_database is readable by every role; the services' databases
	 * are the ones named after them (infra/postgres/init.sh). */
	if (db_query(db,
		     "SELECT coalesce(sum(xact_commit), 0) FROM pg_stat_database "
		     "WHERE datname IN ('orders', 'inventory', 'payments')",
		     DB_NOARGS, &res) == SHOP_OK &&
	    db_result_rows(res) == 1)
		v = db_result_int(res, 0, 0);
	db_result_free(res);
	db_close(db);
	return v;
}

void lt_ceil_usage_sample(const char *monitor, const char *pg_url, struct lt_usage *ret)
{
	ret->js_messages = lt_ceil_jsz_messages(monitor);
	ret->pg_commits = lt_ceil_pg_commits(pg_url);
}
