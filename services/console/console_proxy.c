/*
 * console_proxy.c - POST /orders from the page, forwarded to the gateway.
 *
 * Why a proxy and not the browser calling the gateway: the gateway answers
 * on another origin (localhost:8080) and sends no CORS headers, and adding
 * them would widen the gateway's surface for a demo form. The console is
 * the page's own origin, so the form posts here and the console forwards
 * the body, its Content-Type and the Idempotency-Key, once, and hands back the gateway's
 * status and JSON body as they are. It never retries: a timeout is a 504
 * whose outcome is unknown, and the client may repeat with the same key.
 *
 * The client is HTTP/1.1 with "Connection: close" over one socket with
 * timeouts; services link no HTTP client library, and this one request
 * shape needs none. It reads a body sized by Content-Length, one sent
 * chunked, or one that runs to the close: the gateway sends the first, but
 * NATS's monitoring sends any page past 2 KB chunked, as a cluster node's
 * /varz is (console_http_get reads those).
 */
#include "console.h"

#include "core/clock.h"
#include "core/log.h"
#include "core/xalloc.h"

#include <errno.h>
#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

/* Headers of the gateway's answer, at most (a longer head is a 502). */
#define CONSOLE_PROXY_HEAD_MAX 8192
/* Hex digits of one chunk's size, at most: answers are far below 4 GB. */
#define CONSOLE_CHUNK_DIGITS_MAX 8

/* The value of header NAME in the head raw[0..head_len), or NULL; *ret_len
 * is its length. */
static const char *console_http_header(const char *raw, size_t head_len, const char *name,
				       size_t *ret_len)
{
	size_t name_len = strlen(name);
	const char *end = raw + head_len;
	const char *line = memchr(raw, '\n', head_len);
	while (line && line + 1 < end) {
		line++;
		const char *eol = memchr(line, '\n', (size_t)(end - line));
		if (!eol)
			eol = end;
		if ((size_t)(eol - line) > name_len && strncasecmp(line, name, name_len) == 0 &&
		    line[name_len] == ':') {
			const char *v = line + name_len + 1;
			while (v < eol && (*v == ' ' || *v == '\t'))
				v++;
			const char *ve = eol;
			while (ve > v && (ve[-1] == '\r' || ve[-1] == ' '))
				ve--;
			*ret_len = (size_t)(ve - v);
			return v;
		}
		line = eol < end ? eol : NULL;
	}
	return NULL;
}

/* The value of hex digit c, or -1. */
static int console_hex_digit(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

/* Decodes the chunked body buf[0..len) in place (the chunks' data moved to
 * its start); *ret_len is the decoded length. Each chunk is a hex size, an
 * extension (";...", ignored) or nothing, CRLF, the data and CRLF; the
 * last has size 0 and is followed by trailer lines (ignored) and an empty
 * line. Anything else, or an answer cut short, is SHOP_E_INVALID. */
static shop_status console_http_dechunk(char *buf, size_t len, size_t *ret_len)
{
	size_t in = 0, out = 0;
	for (;;) {
		size_t size = 0, digits = 0;
		int d;
		while (in < len && (d = console_hex_digit(buf[in])) >= 0) {
			if (++digits > CONSOLE_CHUNK_DIGITS_MAX)
				return SHOP_E_INVALID;
			size = size * 16 + (size_t)d;
			in++;
		}
		if (digits == 0 || in == len || (buf[in] != '\r' && buf[in] != ';'))
			return SHOP_E_INVALID;
		const char *eol = memmem(buf + in, len - in, "\r\n", 2);
		if (!eol)
			return SHOP_E_INVALID;
		in = (size_t)(eol - buf) + 2;
		if (size == 0)
			break;
		if (size > len - in || len - in - size < 2)
			return SHOP_E_INVALID; /* cut short */
		memmove(buf + out, buf + in, size);
		out += size;
		in += size;
		if (buf[in] != '\r' || buf[in + 1] != '\n')
			return SHOP_E_INVALID;
		in += 2;
	}
	for (;;) { /* trailer lines, up to an empty one */
		const char *eol = memmem(buf + in, len - in, "\r\n", 2);
		if (!eol)
			return SHOP_E_INVALID;
		bool empty = eol == buf + in;
		in = (size_t)(eol - buf) + 2;
		if (empty)
			break;
	}
	*ret_len = out;
	return SHOP_OK;
}

shop_status console_http_reply_parse(char *raw, size_t len, int *ret_status, size_t *ret_body_off,
				     size_t *ret_body_len)
{
	const char *sep = memmem(raw, len, "\r\n\r\n", 4);
	if (!sep || (size_t)(sep - raw) > CONSOLE_PROXY_HEAD_MAX)
		return SHOP_E_INVALID;
	size_t head_len = (size_t)(sep - raw) + 2; /* keep the last header's CRLF */
	size_t body_off = (size_t)(sep - raw) + 4;
	if (len < 12 || memcmp(raw, "HTTP/1.", 7) != 0 || raw[8] != ' ')
		return SHOP_E_INVALID;
	int status = 0;
	for (size_t i = 9; i < 12; i++) {
		if (raw[i] < '0' || raw[i] > '9')
			return SHOP_E_INVALID;
		status = status * 10 + (raw[i] - '0');
	}
	if (status < 100 || status > 599)
		return SHOP_E_INVALID;

	size_t vlen = 0;
	size_t body_len = len - body_off;
	bool chunked = false;
	const char *te = console_http_header(raw, head_len, "Transfer-Encoding", &vlen);
	if (te) {
		chunked = vlen == 7 && strncasecmp(te, "chunked", 7) == 0;
		/* Any other coding (gzip, "gzip, chunked") is not read. */
		if (!chunked && !(vlen == 8 && strncasecmp(te, "identity", 8) == 0))
			return SHOP_E_INVALID;
	}
	const char *cl = console_http_header(raw, head_len, "Content-Length", &vlen);
	if (cl && chunked)
		return SHOP_E_INVALID; /* both: which one frames the body is ambiguous */
	if (chunked) {
		if (console_http_dechunk(raw + body_off, len - body_off, &body_len) != SHOP_OK)
			return SHOP_E_INVALID;
	} else if (cl) {
		size_t n = 0;
		if (vlen == 0 || vlen > 9)
			return SHOP_E_INVALID;
		for (size_t i = 0; i < vlen; i++) {
			if (cl[i] < '0' || cl[i] > '9')
				return SHOP_E_INVALID;
			n = n * 10 + (size_t)(cl[i] - '0');
		}
		if (n > body_len)
			return SHOP_E_INVALID; /* cut short */
		body_len = n;
	}
	*ret_status = status;
	*ret_body_off = body_off;
	*ret_body_len = body_len;
	return SHOP_OK;
}

static int console_tcp_connect(const char *host, uint16_t port, int64_t timeout_ms)
{
	struct addrinfo hints = { .ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM };
	struct addrinfo *ai = NULL;
	char service[8];
	snprintf(service, sizeof(service), "%u", (unsigned)port);
	if (getaddrinfo(host, service, &hints, &ai) != 0)
		return -1;
	int fd = -1;
	for (const struct addrinfo *a = ai; a && fd < 0; a = a->ai_next) {
		fd = socket(a->ai_family, a->ai_socktype | SOCK_CLOEXEC, a->ai_protocol);
		if (fd < 0)
			continue;
		struct timeval tv = { .tv_sec = (time_t)(timeout_ms / 1000),
				      .tv_usec = (suseconds_t)(timeout_ms % 1000) * 1000 };
		/* On Linux the send timeout also bounds connect. */
		(void)setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
		(void)setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
		if (connect(fd, a->ai_addr, a->ai_addrlen) != 0) {
			close(fd);
			fd = -1;
		}
	}
	freeaddrinfo(ai);
	return fd;
}

static bool console_send_all(int fd, const char *p, size_t len)
{
	while (len > 0) {
		ssize_t n = send(fd, p, len, MSG_NOSIGNAL);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return false;
		p += n;
		len -= (size_t)n;
	}
	return true;
}

/* One exchange with the gateway: the whole answer in *ret_raw (malloc'd).
 * SHOP_E_UNAVAILABLE when it cannot be reached, SHOP_E_TIMEOUT when the
 * answer did not come in time (the order may exist), SHOP_E_LIMIT when the
 * answer is too long. */
static shop_status console_proxy_exchange(const struct console *c, const char *body,
					  size_t body_len, const char *type, const char *key,
					  char **ret_raw, size_t *ret_len)
{
	shop_status st = SHOP_E_UNAVAILABLE;
	char *head = NULL, *raw = NULL;
	size_t len = 0;
	int fd = console_tcp_connect(c->gateway_host, c->gateway_port, CONSOLE_PROXY_TIMEOUT_MS);
	if (fd < 0)
		goto out;
	head = xasprintf("POST /orders HTTP/1.1\r\nHost: %s\r\nConnection: close\r\n"
			 "Content-Length: %zu\r\n%s%s%s%s%s%s\r\n",
			 c->gateway_host, body_len, type ? "Content-Type: " : "", type ? type : "",
			 type ? "\r\n" : "", key ? "Idempotency-Key: " : "", key ? key : "",
			 key ? "\r\n" : "");
	if (!console_send_all(fd, head, strlen(head)) || !console_send_all(fd, body, body_len))
		goto out;
	raw = xmalloc(CONSOLE_PROXY_REPLY_MAX + 1);
	for (;;) {
		ssize_t n = recv(fd, raw + len, CONSOLE_PROXY_REPLY_MAX + 1 - len, 0);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			st = errno == EAGAIN || errno == EWOULDBLOCK ? SHOP_E_TIMEOUT
								     : SHOP_E_UNAVAILABLE;
			goto out;
		}
		if (n == 0)
			break;
		len += (size_t)n;
		if (len > CONSOLE_PROXY_REPLY_MAX) {
			st = SHOP_E_LIMIT;
			goto out;
		}
	}
	*ret_raw = raw;
	*ret_len = len;
	raw = NULL;
	st = SHOP_OK;
out:
	if (fd >= 0)
		close(fd);
	free(head);
	free(raw);
	return st;
}

/* ---- GET, for the NATS monitoring endpoints ----------------------------- */

bool console_url_parse(const char *url, char *host, size_t host_size, uint16_t *ret_port,
		       const char **ret_path)
{
	static const char scheme[] = "http://";
	if (strncmp(url, scheme, sizeof(scheme) - 1) != 0)
		return false;
	const char *h = url + sizeof(scheme) - 1;
	const char *slash = strchr(h, '/');
	const char *end = slash ? slash : h + strlen(h);
	const char *colon = memchr(h, ':', (size_t)(end - h));
	const char *host_end = colon ? colon : end;
	unsigned long port = 80;
	if (host_end == h || (size_t)(host_end - h) >= host_size)
		return false;
	if (colon) {
		char *pe = NULL;
		port = strtoul(colon + 1, &pe, 10);
		if (pe != end || pe == colon + 1 || port == 0 || port > 65535)
			return false;
	}
	memcpy(host, h, (size_t)(host_end - h));
	host[host_end - h] = '\0';
	*ret_port = (uint16_t)port;
	*ret_path = slash ? slash : "";
	return true;
}

char *console_http_get(const char *host, uint16_t port, const char *path, int64_t timeout_ms,
		       size_t max)
{
	char *head = NULL, *raw = NULL, *body = NULL;
	size_t len = 0, off = 0, body_len = 0;
	int status = 0;
	int fd = console_tcp_connect(host, port, timeout_ms);
	if (fd < 0)
		goto out;
	head = xasprintf("GET %s HTTP/1.1\r\nHost: %s\r\nConnection: close\r\n\r\n", path, host);
	if (!console_send_all(fd, head, strlen(head)))
		goto out;
	/* One wait bounds the whole answer: the socket's timeout is per call. */
	int64_t deadline = clock_mono_ms() + timeout_ms;
	raw = xmalloc(max + 1);
	for (;;) {
		if (clock_mono_ms() > deadline)
			goto out;
		ssize_t n = recv(fd, raw + len, max + 1 - len, 0);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			goto out;
		if (n == 0)
			break;
		len += (size_t)n;
		if (len > max)
			goto out;
	}
	if (console_http_reply_parse(raw, len, &status, &off, &body_len) != SHOP_OK ||
	    status != 200)
		goto out;
	body = xstrndup(raw + off, body_len);
out:
	if (fd >= 0)
		close(fd);
	free(head);
	free(raw);
	return body;
}

/* A header value that is safe to put in a header line (no line break); the
 * gateway judges the rest. */
static bool console_header_value_safe(const char *s)
{
	for (; *s; s++)
		if (*s < ' ' || *s > '~')
			return false;
	return true;
}

void console_proxy_serve(struct console *c, const struct web_request *req, struct web_response *res)
{
	size_t body_len = 0;
	const char *body = web_request_body(req, &body_len);
	const char *key = web_request_header(req, "Idempotency-Key");
	const char *type = web_request_header(req, "Content-Type");
	char *raw = NULL;
	size_t raw_len = 0;
	int status = 0;
	size_t off = 0, n = 0;

	if ((key && !console_header_value_safe(key)) ||
	    (type && !console_header_value_safe(type))) {
		web_respond_error(res, 400, "invalid_header",
				  "Idempotency-Key and Content-Type must be printable ASCII", NULL);
		return;
	}
	shop_status st = console_proxy_exchange(c, body, body_len, type, key, &raw, &raw_len);
	if (st == SHOP_OK)
		st = console_http_reply_parse(raw, raw_len, &status, &off, &n);
	if (st != SHOP_OK) {
		log_warn(NULL, "POST /orders to the gateway at %s:%u failed: %s", c->gateway_host,
			 (unsigned)c->gateway_port, shop_status_name(st));
		if (st == SHOP_E_TIMEOUT)
			web_respond_error(res, 504, "gateway_timeout",
					  "the gateway did not answer in time; the order may "
					  "exist: repeat with the same Idempotency-Key",
					  NULL);
		else
			web_respond_error(res, 502, "bad_gateway", "the gateway could not be asked",
					  NULL);
		free(raw);
		return;
	}
	char *copy = xmalloc(n + 1);
	memcpy(copy, raw + off, n);
	copy[n] = '\0';
	free(raw);
	web_respond_text(res, status, "application/json", copy, n);
}
