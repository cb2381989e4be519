/*
 * web.c - the HTTP server of web.h on libmicrohttpd (MHD) 1.0.
 *
 * MHD calls the access handler several times per request: once when the
 * headers are in (our request state does not exist yet), once per piece of
 * body, and once more when the request is complete. The state lives in MHD's
 * per-request pointer and is freed only by the completion callback, which MHD
 * calls for every request it called us for, also when the client vanishes or
 * the daemon stops. Invariants:
 *   - a request body is never held beyond WEB_BODY_MAX bytes: an announced
 *     Content-Length over it is answered 413 before any body is read, and a
 *     streamed body that grows over it is dropped, discarded to its end and
 *     answered 413; the handler is not called for either;
 *   - the handler is called exactly once per accepted request, with the whole
 *     body, NUL-terminated for convenience (the length is authoritative);
 *   - every response carries X-Request-Id and Cache-Control: no-store, and
 *     Content-Type: application/json when it has a body;
 *   - a streamed body's release function runs exactly once: MHD's free
 *     callback owns it once the response is created, the web_response
 *     before that.
 *   - a connection is cut when its request's head or body is not in by its
 *     deadline (web.h): a watcher thread walks the open connections and
 *     shuts the socket down through a duplicate of its descriptor that
 *     this file owns, so it can never hit a descriptor MHD has closed and
 *     the kernel given to someone else.
 *   - pool mode only: a pending request (web_respond_pending) is suspended
 *     in MHD until exactly one of three things resumes it: its answer
 *     (web_pending_complete, any thread), the watcher finding its client
 *     gone, or web_server_stop answering it 503. Whoever moves it out of
 *     WEB_PENDING_WAITING (under the registry's lock) is the one that
 *     resumes it, and no lock is held while MHD is called. A suspended
 *     connection is never freed by MHD until resumed (or the daemon
 *     stops, after web_server_stop has waited for every resume in flight),
 *     so the MHD_Connection a resumer holds stays valid until its
 *     MHD_resume_connection returns.
 * The shared state is struct web_server: immutable but for the atomic
 * stopping flag and the connection list, which conns_lock guards, and
 * the pending registry (struct web_pendings), which has a lock of its own
 * and outlives the server while a handle is held.
 */
#include "web.h"

#include "core/clock.h"
#include "core/ids.h"
#include "core/xalloc.h"

#include <arpa/inet.h>
#include <assert.h>
#include <errno.h>
#include <fcntl.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <pthread.h>
#include <sys/socket.h>
#include <unistd.h>

/* First allocation for a body whose length was not announced. */
#define WEB_BODY_INITIAL 4096

/* Sent when the handler's body cannot be serialised (allocation failure
 * with non-aborting cJSON hooks): a fixed body that needs no allocation. */
static const char web_internal_body[] =
	"{\"error\":{\"code\":\"internal\",\"message\":\"response could not be serialised\","
	"\"details\":[]}}";

/* Where a connection's current request is, for its deadlines. */
enum web_phase {
	WEB_PHASE_HEAD,    /* waiting for a request's head: WEB_HEADER_DEADLINE_MS */
	WEB_PHASE_BODY,    /* head in, body coming: WEB_BODY_DEADLINE_MS */
	WEB_PHASE_HANDLER, /* request complete: the handler and the response, no deadline */
};

/* Where a pending request is. Only the move out of WAITING resumes it. */
enum web_pending_state {
	WEB_PENDING_WAITING,  /* suspended (or about to be), no answer yet */
	WEB_PENDING_ANSWERED, /* res holds the answer: queue it on resume */
	WEB_PENDING_GONE,     /* client gone or request done: close on resume */
};

/* The pending requests of one server. Reference-counted (the server's
 * reference, and one per pending request) so that a handle completed after
 * web_server_stop still finds the lock it needs. Every field, and every
 * field of each struct web_pending, is guarded by lock. */
struct web_pendings {
	pthread_mutex_t lock;
	pthread_cond_t changed; /* monotonic clock: n or resuming fell */
	unsigned int refs;
	unsigned int max;      /* WEB_PENDING_MAX or the test's limit */
	unsigned int n;        /* listed: pending and the server's still */
	unsigned int resuming; /* threads inside MHD_resume_connection */
	bool closed;           /* the server is stopping: no new ones */
	struct web_pending *head;
};

struct web_pending {
	struct web_pendings *reg;
	struct web_pending *prev, *next; /* in reg's list while listed */
	bool listed;
	unsigned int refs; /* the server's and the holder's */
	enum web_pending_state state;
	bool suspended; /* MHD_suspend_connection has been called */
	struct MHD_Connection *conn;
	int fd;                  /* the connection's duplicate socket (struct web_conn), or -1 */
	struct web_response res; /* the answer, once ANSWERED */
};

/* One open connection, MHD's socket context for it. */
struct web_conn {
	struct web_conn *prev, *next;
	int fd; /* our duplicate of the socket, -1 if there is none */
	enum web_phase phase;
	int64_t since_ms; /* when the phase began (monotonic) */
	bool cut;
};

struct web_server {
	struct MHD_Daemon *daemon;
	bool pool;                     /* WEB_MODE_POOL */
	struct web_pendings *pendings; /* pool mode; NULL otherwise */
	web_handler_fn handler;
	void *ctx;
	uint16_t port;
	struct web_limits limits;
	/* Raised by web_server_stop before it stops MHD: a stream waiting for
	 * data then ends, so stopping never waits on a stream's producer. */
	atomic_bool stopping;
	pthread_mutex_t conns_lock;
	pthread_cond_t watcher_wake; /* monotonic clock; stop */
	struct web_conn *conns;      /* every open connection */
	pthread_t watcher;
	bool watcher_started;
	atomic_uint_fast64_t cut; /* connections cut for a deadline */
};

/* What MHD's content reader callback gets for a streamed body. */
struct web_stream {
	const struct web_server *server;
	int fd; /* the connection's socket, -1 if MHD would not tell */
	web_stream_read_fn read;
	web_stream_release_fn release;
	void *arg;
};

struct web_request {
	struct web_server *server;
	struct MHD_Connection *conn;
	struct web_pending *pending; /* the server's reference, once suspended */
	const char *method;          /* MHD's, valid for the whole request */
	const char *path;
	char *body; /* body_len bytes and a NUL; NULL until data arrives */
	size_t body_len;
	size_t body_cap;
	bool too_large; /* body is over WEB_BODY_MAX: discard the rest, 413 */
	char id[WEB_REQUEST_ID_MAX + 1];
};

bool web_request_id_valid(const char *s)
{
	size_t n = strnlen(s, WEB_REQUEST_ID_MAX + 1);
	if (n == 0 || n > WEB_REQUEST_ID_MAX)
		return false;
	for (size_t i = 0; i < n; i++) {
		char c = s[i];
		bool ok = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
			  (c >= '0' && c <= '9') || c == '.' || c == '_' || c == '-';
		if (!ok)
			return false;
	}
	return true;
}

static struct web_request *web_request_new(struct web_server *s, struct MHD_Connection *conn,
					   const char *url, const char *method)
{
	struct web_request *req = xcalloc(1, sizeof(*req));
	req->server = s;
	req->conn = conn;
	req->method = method;
	req->path = url;
	const char *incoming = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "X-Request-Id");
	if (incoming && web_request_id_valid(incoming)) {
		memcpy(req->id, incoming, strlen(incoming) + 1);
	} else {
		_Static_assert(IDS_UUID_SIZE <= sizeof(((struct web_request *)0)->id),
			       "a UUID must fit the request id buffer");
		ids_uuid7(req->id);
	}
	return req;
}

static void web_request_free(struct web_request *req)
{
	if (!req)
		return;
	free(req->body);
	free(req);
}

/* Appends a piece of body, or marks the request too large and lets go of
 * what was buffered so an oversized upload costs no memory while it drains. */
static void web_request_append(struct web_request *req, const char *data, size_t len)
{
	if (req->too_large)
		return;
	if (len > WEB_BODY_MAX - req->body_len) {
		req->too_large = true;
		free(req->body);
		req->body = NULL;
		req->body_len = 0;
		req->body_cap = 0;
		return;
	}
	size_t need = req->body_len + len + 1;
	if (need > req->body_cap) {
		size_t cap = req->body_cap ? req->body_cap : WEB_BODY_INITIAL;
		while (cap < need)
			cap *= 2;
		if (cap > WEB_BODY_MAX + 1)
			cap = WEB_BODY_MAX + 1;
		req->body = xrealloc(req->body, cap);
		req->body_cap = cap;
	}
	memcpy(req->body + req->body_len, data, len);
	req->body_len += len;
	req->body[req->body_len] = '\0';
}

/* True when the request announces a Content-Length over WEB_BODY_MAX. MHD
 * has already rejected malformed values with 400 before calling us. */
static bool web_announced_too_large(struct MHD_Connection *conn)
{
	const char *cl = MHD_lookup_connection_value(conn, MHD_HEADER_KIND,
						     MHD_HTTP_HEADER_CONTENT_LENGTH);
	if (!cl)
		return false;
	errno = 0;
	char *end = NULL;
	unsigned long long n = strtoull(cl, &end, 10);
	if (end == cl)
		return false;
	return errno == ERANGE || n > WEB_BODY_MAX;
}

/* Lets go of whatever body res holds, a stream's producer included. */
static void web_response_drop_body(struct web_response *res)
{
	cJSON_Delete(res->body);
	res->body = NULL;
	free(res->text);
	res->text = NULL;
	res->text_len = 0;
	if (res->stream.release)
		res->stream.release(res->stream.arg);
	memset(&res->stream, 0, sizeof(res->stream));
}

static void web_response_clear(struct web_response *res)
{
	web_response_drop_body(res);
	for (size_t i = 0; i < res->n_headers && i < WEB_HEADERS_MAX; i++)
		free(res->headers[i].value);
	memset(res, 0, sizeof(*res));
}

static bool web_response_has_header(const struct web_response *res, const char *name)
{
	for (size_t i = 0; i < res->n_headers && i < WEB_HEADERS_MAX; i++)
		if (strcasecmp(res->headers[i].name, name) == 0)
			return true;
	return false;
}

/* True when the client has closed its side. MHD would see it only on its
 * next write, which an idle stream may not make for a long time, and a
 * stream's producer may hold resources (the console's broker consumers). */
static bool web_stream_peer_gone(const struct web_stream *ws)
{
	if (ws->fd < 0)
		return false;
	struct pollfd p = { .fd = ws->fd, .events = POLLRDHUP };
	return poll(&p, 1, 0) > 0 && (p.revents & (POLLRDHUP | POLLHUP | POLLERR)) != 0;
}

/* MHD's content reader for a streamed body. With one thread per connection
 * and MHD's own polling, returning 0 would make MHD call again at once (a
 * busy loop), so a producer's "nothing yet" is waited out here, checking
 * between waits whether the server is stopping or the client gone. */
static ssize_t web_stream_reader(void *cls, uint64_t pos, char *buf, size_t max)
{
	(void)pos;
	struct web_stream *ws = cls;
	for (;;) {
		if (atomic_load(&ws->server->stopping))
			return MHD_CONTENT_READER_END_OF_STREAM;
		if (web_stream_peer_gone(ws))
			return MHD_CONTENT_READER_END_WITH_ERROR;
		ssize_t n = ws->read(ws->arg, buf, max);
		if (n < 0)
			return MHD_CONTENT_READER_END_OF_STREAM;
		if (n > 0)
			return (size_t)n > max ? (ssize_t)max : n;
	}
}

static void web_stream_free(void *cls)
{
	struct web_stream *ws = cls;
	ws->release(ws->arg);
	free(ws);
}

/* A streamed response; on success MHD owns the producer (res no longer does). */
static struct MHD_Response *web_stream_response(const struct web_server *s,
						struct MHD_Connection *conn,
						struct web_response *res)
{
	struct web_stream *ws = xcalloc(1, sizeof(*ws));
	const union MHD_ConnectionInfo
		*info = MHD_get_connection_info(conn, MHD_CONNECTION_INFO_CONNECTION_FD);
	ws->fd = info ? info->connect_fd : -1;
	ws->server = s;
	ws->read = res->stream.read;
	ws->release = res->stream.release;
	ws->arg = res->stream.arg;
	struct MHD_Response *mr = MHD_create_response_from_callback(MHD_SIZE_UNKNOWN,
								    WEB_STREAM_BLOCK,
								    web_stream_reader, ws,
								    web_stream_free);
	if (!mr) {
		free(ws);
		return NULL;
	}
	memset(&res->stream, 0, sizeof(res->stream));
	return mr;
}

/* Builds the MHD response for res and queues it. res keeps ownership of its
 * parts, except a stream's producer, which passes to MHD. Returns MHD's
 * verdict: MHD_NO makes MHD close the connection. */
static enum MHD_Result web_queue(const struct web_server *s, struct web_request *req,
				 struct web_response *res)
{
	if (res->stream.read && s->pool) {
		/* A stream's read function would hold a pool thread for as long
		 * as it waits for data: streams need the other mode. */
		web_response_drop_body(res);
		web_respond_error(res, MHD_HTTP_INTERNAL_SERVER_ERROR, "internal",
				  "streams need a thread-per-connection server", NULL);
	}
	int status = res->status;
	struct MHD_Response *mr;
	bool has_body = true;
	if (res->stream.read) {
		mr = web_stream_response(s, req->conn, res);
	} else if (res->text) {
		/* The response keeps the text: MHD copies it. */
		mr = MHD_create_response_from_buffer_copy(res->text_len, res->text);
	} else if (res->body) {
		char *text = cJSON_PrintUnformatted(res->body);
		if (text) {
			mr = MHD_create_response_from_buffer_with_free_callback(strlen(text), text,
										cJSON_free);
			if (!mr)
				cJSON_free(text);
		} else {
			status = MHD_HTTP_INTERNAL_SERVER_ERROR;
			mr = MHD_create_response_from_buffer_static(sizeof(web_internal_body) - 1,
								    web_internal_body);
		}
	} else {
		has_body = false;
		mr = MHD_create_response_empty(MHD_RF_NONE);
	}
	if (!mr)
		return MHD_NO;

	/* A header MHD refuses (say, a value with a line break) is dropped:
	 * the response is still better sent than not. */
	(void)MHD_add_response_header(mr, "X-Request-Id", req->id);
	if (!web_response_has_header(res, MHD_HTTP_HEADER_CACHE_CONTROL))
		(void)MHD_add_response_header(mr, MHD_HTTP_HEADER_CACHE_CONTROL, "no-store");
	if (has_body && !web_response_has_header(res, MHD_HTTP_HEADER_CONTENT_TYPE))
		(void)MHD_add_response_header(mr, MHD_HTTP_HEADER_CONTENT_TYPE, "application/json");
	for (size_t i = 0; i < res->n_headers && i < WEB_HEADERS_MAX; i++) {
		if (strcasecmp(res->headers[i].name, "X-Request-Id") == 0)
			continue;
		(void)MHD_add_response_header(mr, res->headers[i].name, res->headers[i].value);
	}
	enum MHD_Result r = MHD_queue_response(req->conn, (unsigned int)status, mr);
	MHD_destroy_response(mr); /* MHD keeps its own reference until sent */
	return r;
}

static enum MHD_Result web_queue_too_large(const struct web_server *s, struct web_request *req)
{
	struct web_response res = { 0 };
	char *message = xasprintf("request body is larger than %d bytes", WEB_BODY_MAX);
	web_respond_error(&res, MHD_HTTP_CONTENT_TOO_LARGE, "payload_too_large", message, NULL);
	free(message);
	enum MHD_Result r = web_queue(s, req, &res);
	web_response_clear(&res);
	return r;
}

/* ---- pending requests (pool mode) --------------------------------------- */

static struct web_pendings *web_pendings_new(unsigned int max)
{
	struct web_pendings *reg = xcalloc(1, sizeof(*reg));
	pthread_mutex_init(&reg->lock, NULL);
	clock_cond_init(&reg->changed);
	reg->refs = 1; /* the server's */
	reg->max = max;
	return reg;
}

static void web_pendings_unref(struct web_pendings *reg)
{
	if (!reg)
		return;
	pthread_mutex_lock(&reg->lock);
	bool last = --reg->refs == 0;
	pthread_mutex_unlock(&reg->lock);
	if (!last)
		return;
	pthread_cond_destroy(&reg->changed);
	pthread_mutex_destroy(&reg->lock);
	free(reg);
}

static void web_pending_unref(struct web_pending *p)
{
	struct web_pendings *reg = p->reg;
	pthread_mutex_lock(&reg->lock);
	bool last = --p->refs == 0;
	pthread_mutex_unlock(&reg->lock);
	if (!last)
		return;
	web_response_clear(&p->res);
	free(p);
	web_pendings_unref(reg);
}

/* Takes P off the list (it no longer counts against the cap). Under lock. */
static void web_pending_unlist(struct web_pending *p)
{
	struct web_pendings *reg = p->reg;
	if (!p->listed)
		return;
	if (p->prev)
		p->prev->next = p->next;
	else
		reg->head = p->next;
	if (p->next)
		p->next->prev = p->prev;
	p->prev = p->next = NULL;
	p->listed = false;
	reg->n--;
	pthread_cond_broadcast(&reg->changed);
}

/* Resumes CONN, whose pending request the caller has just moved out of
 * WAITING and counted in reg->resuming (both under the lock). Called
 * without the lock: MHD takes its own. */
static void web_pending_resume(struct web_pendings *reg, struct MHD_Connection *conn)
{
	MHD_resume_connection(conn);
	pthread_mutex_lock(&reg->lock);
	reg->resuming--;
	pthread_cond_broadcast(&reg->changed);
	pthread_mutex_unlock(&reg->lock);
}

/* A response P is answered with when it cannot be answered as it should:
 * the server is stopping. Under lock (it only allocates). */
static void web_pending_answer_stopping(struct web_pending *p)
{
	web_response_clear(&p->res);
	web_response_header(&p->res, "Retry-After", WEB_PENDING_RETRY_AFTER_S);
	web_respond_error(&p->res, MHD_HTTP_SERVICE_UNAVAILABLE, "stopping",
			  "the server is stopping; retry", NULL);
	p->state = WEB_PENDING_ANSWERED;
}

shop_status web_respond_pending(struct web_response *res, const struct web_request *req,
				struct web_pending **ret_pending)
{
	struct web_server *s = req->server;
	assert(!res->pending);
	if (!s->pool || res->pending) {
		web_respond_error(res, MHD_HTTP_INTERNAL_SERVER_ERROR, "internal",
				  "a pending response needs a pool-mode server", NULL);
		return SHOP_E_INVALID;
	}
	const union MHD_ConnectionInfo
		*info = MHD_get_connection_info(req->conn, MHD_CONNECTION_INFO_SOCKET_CONTEXT);
	const struct web_conn *c = info ? info->socket_context : NULL;
	struct web_pendings *reg = s->pendings;
	pthread_mutex_lock(&reg->lock);
	if (reg->closed || reg->n >= reg->max) {
		pthread_mutex_unlock(&reg->lock);
		web_response_header(res, "Retry-After", WEB_PENDING_RETRY_AFTER_S);
		web_respond_error(res, MHD_HTTP_SERVICE_UNAVAILABLE, "busy",
				  "too many requests are waiting; retry", NULL);
		return SHOP_E_LIMIT;
	}
	struct web_pending *p = xcalloc(1, sizeof(*p));
	p->reg = reg;
	reg->refs++;
	p->refs = 2;
	p->state = WEB_PENDING_WAITING;
	p->conn = req->conn;
	p->fd = c ? c->fd : -1;
	p->next = reg->head;
	if (reg->head)
		reg->head->prev = p;
	reg->head = p;
	p->listed = true;
	reg->n++;
	pthread_mutex_unlock(&reg->lock);
	web_response_drop_body(res);
	res->status = 0;
	res->pending = p;
	*ret_pending = p;
	return SHOP_OK;
}

bool web_pending_complete(struct web_pending *p, struct web_response *res)
{
	struct web_pendings *reg = p->reg;
	assert(!res->pending);
	if (res->status < 100 || res->status > 599) {
		web_response_clear(res);
		web_respond_error(res, MHD_HTTP_INTERNAL_SERVER_ERROR, "internal",
				  "the handler produced no response", NULL);
	}
	pthread_mutex_lock(&reg->lock);
	bool taken = p->state == WEB_PENDING_WAITING;
	bool resume = false;
	if (taken) {
		p->res = *res;
		memset(res, 0, sizeof(*res));
		p->state = WEB_PENDING_ANSWERED;
		/* Not suspended yet: web_dispatch will see the answer and resume. */
		resume = p->suspended;
		if (resume)
			reg->resuming++;
	}
	struct MHD_Connection *conn = p->conn;
	pthread_mutex_unlock(&reg->lock);
	if (!taken)
		web_response_clear(res);
	if (resume)
		web_pending_resume(reg, conn);
	web_pending_unref(p);
	return taken;
}

bool web_pending_waiting(struct web_pending *p)
{
	pthread_mutex_lock(&p->reg->lock);
	bool waiting = p->state == WEB_PENDING_WAITING;
	pthread_mutex_unlock(&p->reg->lock);
	return waiting;
}

bool web_response_is_pending(const struct web_response *res)
{
	return res->pending != NULL;
}

unsigned int web_server_pending_count(const struct web_server *s)
{
	if (!s->pendings)
		return 0;
	pthread_mutex_lock(&s->pendings->lock);
	unsigned int n = s->pendings->n;
	pthread_mutex_unlock(&s->pendings->lock);
	return n;
}

/* The handler answered web_respond_pending: suspend the connection, unless
 * the answer is already there (another thread was quick), in which case it
 * is resumed at once and MHD calls web_access again to send it. */
static enum MHD_Result web_suspend(struct web_request *req, struct web_pending *p)
{
	struct web_pendings *reg = p->reg;
	req->pending = p; /* the server's reference, dropped in web_completed */
	MHD_suspend_connection(req->conn);
	pthread_mutex_lock(&reg->lock);
	p->suspended = true;
	bool resume = p->state != WEB_PENDING_WAITING;
	if (resume)
		reg->resuming++;
	pthread_mutex_unlock(&reg->lock);
	if (resume)
		web_pending_resume(reg, req->conn);
	return MHD_YES;
}

/* MHD calls web_access again for a resumed request: send its answer, or
 * close the connection when its client is gone. */
static enum MHD_Result web_resumed(const struct web_server *s, struct web_request *req)
{
	struct web_pending *p = req->pending;
	pthread_mutex_lock(&p->reg->lock);
	enum web_pending_state state = p->state;
	pthread_mutex_unlock(&p->reg->lock);
	if (state != WEB_PENDING_ANSWERED)
		return MHD_NO;
	/* Nobody else touches p->res once it is ANSWERED. */
	enum MHD_Result r = web_queue(s, req, &p->res);
	web_response_clear(&p->res);
	return r;
}

/* MHD is done with a request that was pending: the server's reference goes. */
static void web_pending_release_server(struct web_pending *p)
{
	pthread_mutex_lock(&p->reg->lock);
	web_pending_unlist(p);
	if (p->state == WEB_PENDING_WAITING)
		p->state = WEB_PENDING_GONE; /* no resume of a closed connection */
	pthread_mutex_unlock(&p->reg->lock);
	web_pending_unref(p);
}

/* The watcher's round over pending requests: a client that closed its side
 * gets its connection closed now (resumed to be closed), not when the
 * holder answers. A poll per pending request, without waiting. */
static void web_pendings_prune(struct web_pendings *reg)
{
	for (;;) {
		struct MHD_Connection *conn = NULL;
		pthread_mutex_lock(&reg->lock);
		for (struct web_pending *p = reg->head; p; p = p->next) {
			if (p->state != WEB_PENDING_WAITING || !p->suspended || p->fd < 0)
				continue;
			struct pollfd pfd = { .fd = p->fd, .events = POLLRDHUP };
			if (poll(&pfd, 1, 0) <= 0 ||
			    !(pfd.revents & (POLLRDHUP | POLLHUP | POLLERR)))
				continue;
			p->state = WEB_PENDING_GONE;
			reg->resuming++;
			conn = p->conn;
			break;
		}
		pthread_mutex_unlock(&reg->lock);
		if (!conn)
			return;
		web_pending_resume(reg, conn);
	}
}

/* web_server_stop's part: no new pending requests, every waiting one
 * answered 503 and resumed, then up to WEB_STOP_GRACE_MS for the answers
 * to go out. Returns with no resume in flight, so MHD may stop. */
static void web_pendings_close(struct web_pendings *reg)
{
	pthread_mutex_lock(&reg->lock);
	reg->closed = true;
	struct MHD_Connection **conns = xcalloc(reg->n + 1, sizeof(*conns));
	size_t n = 0;
	for (struct web_pending *p = reg->head; p; p = p->next) {
		if (p->state != WEB_PENDING_WAITING)
			continue;
		web_pending_answer_stopping(p);
		if (p->suspended) {
			conns[n++] = p->conn;
			reg->resuming++;
		}
	}
	pthread_mutex_unlock(&reg->lock);
	for (size_t i = 0; i < n; i++)
		web_pending_resume(reg, conns[i]);
	free(conns);
	struct timespec until = clock_mono_deadline(WEB_STOP_GRACE_MS);
	pthread_mutex_lock(&reg->lock);
	int rc = 0;
	while (reg->resuming > 0 || (reg->n > 0 && rc == 0)) {
		if (reg->resuming > 0)
			pthread_cond_wait(&reg->changed, &reg->lock);
		else
			rc = pthread_cond_timedwait(&reg->changed, &reg->lock, &until);
	}
	pthread_mutex_unlock(&reg->lock);
}

/* Runs the handler and queues what it produced; a handler that set no
 * status, or one HTTP cannot carry, becomes a clean 500. */
static enum MHD_Result web_dispatch(const struct web_server *s, struct web_request *req)
{
	struct web_response res = { 0 };
	if (!req->body) {
		/* Handlers always get a string, even for a request without body. */
		req->body = xstrdup("");
		req->body_cap = 1;
	}
	s->handler(s->ctx, req, &res);
	if (res.pending) {
		struct web_pending *p = res.pending;
		res.pending = NULL;
		web_response_clear(&res); /* headers a handler set before */
		return web_suspend(req, p);
	}
	if (res.status < 100 || res.status > 599) {
		web_response_clear(&res);
		web_respond_error(&res, MHD_HTTP_INTERNAL_SERVER_ERROR, "internal",
				  "the handler produced no response", NULL);
	}
	enum MHD_Result r = web_queue(s, req, &res);
	web_response_clear(&res);
	return r;
}

/* ---- deadlines ----------------------------------------------------------- */

static void web_conn_notify(void *cls, struct MHD_Connection *conn, void **socket_context,
			    enum MHD_ConnectionNotificationCode code)
{
	struct web_server *s = cls;
	struct web_conn *c = *socket_context;
	if (code == MHD_CONNECTION_NOTIFY_STARTED) {
		const union MHD_ConnectionInfo
			*info = MHD_get_connection_info(conn, MHD_CONNECTION_INFO_CONNECTION_FD);
		c = xcalloc(1, sizeof(*c));
		/* Our own descriptor of the socket: MHD closes its own whenever
		 * it likes, ours stays valid until the CLOSED notice below. */
		c->fd = info ? fcntl(info->connect_fd, F_DUPFD_CLOEXEC, 0) : -1;
		c->phase = WEB_PHASE_HEAD;
		c->since_ms = clock_mono_ms();
		pthread_mutex_lock(&s->conns_lock);
		c->next = s->conns;
		if (s->conns)
			s->conns->prev = c;
		s->conns = c;
		pthread_mutex_unlock(&s->conns_lock);
		*socket_context = c;
		return;
	}
	if (!c)
		return;
	pthread_mutex_lock(&s->conns_lock);
	if (c->prev)
		c->prev->next = c->next;
	else
		s->conns = c->next;
	if (c->next)
		c->next->prev = c->prev;
	pthread_mutex_unlock(&s->conns_lock);
	if (c->fd >= 0)
		close(c->fd);
	free(c);
	*socket_context = NULL;
}

/* The connection's request moved on to PHASE: its deadline starts now. */
static void web_conn_enter(struct web_server *s, struct MHD_Connection *conn, enum web_phase phase)
{
	const union MHD_ConnectionInfo
		*info = MHD_get_connection_info(conn, MHD_CONNECTION_INFO_SOCKET_CONTEXT);
	struct web_conn *c = info ? info->socket_context : NULL;
	if (!c)
		return;
	pthread_mutex_lock(&s->conns_lock);
	c->phase = phase;
	c->since_ms = clock_mono_ms();
	pthread_mutex_unlock(&s->conns_lock);
}

/* The watcher: cuts every connection whose phase outlived its deadline.
 * shutdown() wakes the connection's thread, whose read then ends, and MHD
 * closes the connection as if the client had gone. */
static void *web_watcher_main(void *arg)
{
	struct web_server *s = arg;
	pthread_mutex_lock(&s->conns_lock);
	while (!atomic_load(&s->stopping)) {
		int64_t now = clock_mono_ms();
		for (struct web_conn *c = s->conns; c; c = c->next) {
			int64_t limit = c->phase == WEB_PHASE_HEAD   ? s->limits.header_deadline_ms
					: c->phase == WEB_PHASE_BODY ? s->limits.body_deadline_ms
								     : -1;
			if (limit < 0 || c->cut || c->fd < 0 || now - c->since_ms < limit)
				continue;
			/* Counted before the cut: a client that sees its
			 * connection close must find it counted. */
			c->cut = true;
			atomic_fetch_add(&s->cut, 1);
			(void)shutdown(c->fd, SHUT_RDWR);
		}
		if (s->pendings) {
			pthread_mutex_unlock(&s->conns_lock);
			web_pendings_prune(s->pendings);
			pthread_mutex_lock(&s->conns_lock);
			if (atomic_load(&s->stopping))
				break;
		}
		struct timespec until = clock_mono_deadline(WEB_DEADLINE_CHECK_MS);
		pthread_cond_timedwait(&s->watcher_wake, &s->conns_lock, &until);
	}
	pthread_mutex_unlock(&s->conns_lock);
	return NULL;
}

uint64_t web_server_cut_count(const struct web_server *s)
{
	return atomic_load(&((struct web_server *)s)->cut);
}

static enum MHD_Result web_access(void *cls, struct MHD_Connection *conn, const char *url,
				  const char *method, const char *version, const char *upload_data,
				  size_t *upload_data_size, void **req_cls)
{
	struct web_server *s = cls;
	struct web_request *req = *req_cls;

	if (!req) {
		/* Headers are in, no body has been read. Refusing here keeps an
		 * announced oversized body off the wire (no 100 Continue either);
		 * MHD then closes the connection after the 413. */
		web_conn_enter(s, conn, WEB_PHASE_BODY);
		req = web_request_new(s, conn, url, method);
		*req_cls = req;
		if (web_announced_too_large(conn)) {
			req->too_large = true;
			return web_queue_too_large(s, req);
		}
		return MHD_YES;
	}
	if (req->pending)
		return web_resumed(s, req);
	if (*upload_data_size > 0) {
		/* MHD cannot take a response while body is streaming in, so an
		 * oversized body is consumed without being kept and the 413 goes
		 * out once the request is complete. */
		web_request_append(req, upload_data, *upload_data_size);
		*upload_data_size = 0;
		return MHD_YES;
	}
	web_conn_enter(s, conn, WEB_PHASE_HANDLER);
	if (req->too_large)
		return web_queue_too_large(s, req);
	return web_dispatch(s, req);
}

static void web_completed(void *cls, struct MHD_Connection *conn, void **req_cls,
			  enum MHD_RequestTerminationCode toe)
{
	/* A kept-alive connection now waits for its next request's head. */
	web_conn_enter(cls, conn, WEB_PHASE_HEAD);
	struct web_request *req = *req_cls;
	if (req && req->pending)
		web_pending_release_server(req->pending);
	web_request_free(req);
	*req_cls = NULL;
}

shop_status web_server_start(const char *bind_addr, uint16_t port, web_handler_fn handler,
			     void *ctx, struct web_server **ret_server)
{
	static const struct web_limits defaults = {
		.connections_per_ip = WEB_CONNECTIONS_PER_IP_MAX,
		.header_deadline_ms = WEB_HEADER_DEADLINE_MS,
		.body_deadline_ms = WEB_BODY_DEADLINE_MS,
		.mode = WEB_MODE_THREADS,
	};
	return web_server_start_limited(bind_addr, port, handler, ctx, &defaults, ret_server);
}

shop_status web_server_start_pool(const char *bind_addr, uint16_t port, web_handler_fn handler,
				  void *ctx, struct web_server **ret_server)
{
	static const struct web_limits defaults = {
		.connections_per_ip = WEB_CONNECTIONS_PER_IP_MAX,
		.header_deadline_ms = WEB_HEADER_DEADLINE_MS,
		.body_deadline_ms = WEB_BODY_DEADLINE_MS,
		.mode = WEB_MODE_POOL,
		.pending_max = WEB_PENDING_MAX,
	};
	return web_server_start_limited(bind_addr, port, handler, ctx, &defaults, ret_server);
}

static void web_server_free(struct web_server *s)
{
	web_pendings_unref(s->pendings);
	pthread_cond_destroy(&s->watcher_wake);
	pthread_mutex_destroy(&s->conns_lock);
	free(s);
}

shop_status web_server_start_limited(const char *bind_addr, uint16_t port, web_handler_fn handler,
				     void *ctx, const struct web_limits *limits,
				     struct web_server **ret_server)
{
	union {
		struct sockaddr sa;
		struct sockaddr_in v4;
		struct sockaddr_in6 v6;
	} addr;
	socklen_t addr_len;
	if (!handler || !ret_server || !limits || limits->connections_per_ip == 0 ||
	    limits->header_deadline_ms <= 0 || limits->body_deadline_ms <= 0 ||
	    (limits->mode != WEB_MODE_THREADS && limits->mode != WEB_MODE_POOL))
		return SHOP_E_INVALID;
	bool pool = limits->mode == WEB_MODE_POOL;
	/* Pool: MHD's epoll loop on a pool of threads, and suspend/resume for
	 * pending requests. Threads: MHD's own thread per connection. */
	unsigned int flags = pool ? MHD_USE_EPOLL_INTERNAL_THREAD | MHD_ALLOW_SUSPEND_RESUME |
					     MHD_USE_ERROR_LOG
				  : MHD_USE_THREAD_PER_CONNECTION |
					     MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_ERROR_LOG;
	struct MHD_OptionItem pool_options[] = {
		{ MHD_OPTION_THREAD_POOL_SIZE, WEB_POOL_THREADS, NULL },
		{ MHD_OPTION_END, 0, NULL },
	};
	if (!bind_addr)
		bind_addr = "0.0.0.0";
	memset(&addr, 0, sizeof(addr));
	if (inet_pton(AF_INET, bind_addr, &addr.v4.sin_addr) == 1) {
		addr.v4.sin_family = AF_INET;
		addr.v4.sin_port = htons(port);
		addr_len = sizeof(addr.v4);
	} else if (inet_pton(AF_INET6, bind_addr, &addr.v6.sin6_addr) == 1) {
		addr.v6.sin6_family = AF_INET6;
		addr.v6.sin6_port = htons(port);
		addr_len = sizeof(addr.v6);
		flags |= MHD_USE_IPv6;
	} else {
		return SHOP_E_INVALID;
	}

	struct web_server *s = xcalloc(1, sizeof(*s));
	s->handler = handler;
	s->ctx = ctx;
	s->limits = *limits;
	s->pool = pool;
	if (pool)
		s->pendings = web_pendings_new(limits->pending_max ? limits->pending_max
								   : WEB_PENDING_MAX);
	atomic_init(&s->stopping, false);
	atomic_init(&s->cut, 0);
	pthread_mutex_init(&s->conns_lock, NULL);
	clock_cond_init(&s->watcher_wake);
	s->daemon = MHD_start_daemon(flags, port, NULL, NULL, web_access, s,
				     MHD_OPTION_SOCK_ADDR_LEN, addr_len, &addr.sa,
				     MHD_OPTION_CONNECTION_LIMIT, (unsigned int)WEB_CONNECTIONS_MAX,
				     MHD_OPTION_PER_IP_CONNECTION_LIMIT, limits->connections_per_ip,
				     MHD_OPTION_CONNECTION_TIMEOUT,
				     (unsigned int)WEB_CONNECTION_TIMEOUT_S,
				     MHD_OPTION_NOTIFY_COMPLETED, web_completed, s,
				     MHD_OPTION_NOTIFY_CONNECTION, web_conn_notify, s,
				     MHD_OPTION_ARRAY, pool ? pool_options : pool_options + 1,
				     MHD_OPTION_END);
	if (!s->daemon) {
		/* Address in use or not ours, or out of threads/sockets: all things
		 * a restart with backoff may cure. MHD has logged the reason. */
		web_server_free(s);
		return SHOP_E_UNAVAILABLE;
	}
	if (pthread_create(&s->watcher, NULL, web_watcher_main, s) != 0) {
		MHD_stop_daemon(s->daemon);
		web_server_free(s);
		return SHOP_E_UNAVAILABLE;
	}
	s->watcher_started = true;
	const union MHD_DaemonInfo *info = MHD_get_daemon_info(s->daemon,
							       MHD_DAEMON_INFO_BIND_PORT);
	s->port = info ? info->port : port;
	*ret_server = s;
	return SHOP_OK;
}

void web_server_stop(struct web_server *s)
{
	if (!s)
		return;
	/* Streams end first (within WEB_STREAM_WAIT_MAX_MS), pending requests
	 * are answered 503 (within WEB_STOP_GRACE_MS; the watcher, which
	 * resumes some, has stopped), then MHD closes every connection and
	 * joins its threads; the completion callback frees each request still
	 * in flight. */
	atomic_store(&s->stopping, true);
	pthread_mutex_lock(&s->conns_lock);
	pthread_cond_broadcast(&s->watcher_wake);
	pthread_mutex_unlock(&s->conns_lock);
	if (s->watcher_started)
		pthread_join(s->watcher, NULL);
	if (s->pendings)
		web_pendings_close(s->pendings);
	MHD_stop_daemon(s->daemon);
	web_server_free(s);
}

uint16_t web_server_port(const struct web_server *s)
{
	return s->port;
}

const char *web_request_method(const struct web_request *req)
{
	return req->method;
}

const char *web_request_path(const struct web_request *req)
{
	return req->path;
}

const char *web_request_header(const struct web_request *req, const char *name)
{
	return MHD_lookup_connection_value(req->conn, MHD_HEADER_KIND, name);
}

const char *web_request_query(const struct web_request *req, const char *name)
{
	return MHD_lookup_connection_value(req->conn, MHD_GET_ARGUMENT_KIND, name);
}

const char *web_request_body(const struct web_request *req, size_t *ret_len)
{
	if (ret_len)
		*ret_len = req->body_len;
	return req->body ? req->body : "";
}

const char *web_request_id(const struct web_request *req)
{
	return req->id;
}

void web_respond_text(struct web_response *res, int status, const char *content_type, char *text,
		      size_t len)
{
	if (res->text == text)
		res->text = NULL; /* the same text again: keep it */
	web_response_drop_body(res);
	res->status = status;
	res->text = text;
	res->text_len = len;
	web_response_header(res, "Content-Type", content_type);
}

void web_respond_json(struct web_response *res, int status, cJSON *body)
{
	if (res->body == body)
		res->body = NULL; /* the same body again: keep it */
	web_response_drop_body(res);
	res->status = status;
	res->body = body;
}

void web_respond_stream(struct web_response *res, int status, const char *content_type,
			web_stream_read_fn read, web_stream_release_fn release, void *arg)
{
	web_response_drop_body(res);
	res->status = status;
	res->stream.read = read;
	res->stream.release = release;
	res->stream.arg = arg;
	web_response_header(res, "Content-Type", content_type);
}

void web_respond_error(struct web_response *res, int status, const char *code, const char *message,
		       cJSON *details)
{
	cJSON *list = details;
	if (!list) {
		list = cJSON_CreateArray();
	} else if (!cJSON_IsArray(list)) {
		/* The shape promises an array; a lone detail is wrapped. */
		list = cJSON_CreateArray();
		cJSON_AddItemToArray(list, details);
	}
	cJSON *error = cJSON_CreateObject();
	cJSON_AddStringToObject(error, "code", code ? code : "internal");
	cJSON_AddStringToObject(error, "message", message ? message : "");
	cJSON_AddItemToObject(error, "details", list);
	cJSON *body = cJSON_CreateObject();
	cJSON_AddItemToObject(body, "error", error);
	web_respond_json(res, status, body);
}

void web_response_header(struct web_response *res, const char *name, const char *value)
{
	if (res->n_headers >= WEB_HEADERS_MAX) {
		assert(!"more than WEB_HEADERS_MAX response headers");
		return;
	}
	res->headers[res->n_headers].name = name;
	res->headers[res->n_headers].value = xstrdup(value ? value : "");
	res->n_headers++;
}
