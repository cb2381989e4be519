/*
 * shopctl_dlq.c - the dead letters: list, show, replay and purge.
 *
 * A dead letter is the copy libs/bus stores on deadletter.<stream>.<durable>
 * (bus_msg_dead_letter) with headers saying where it came from and why it
 * died. Replaying one publishes its envelope, unchanged, on the subject it
 * was first published on, so it goes through every consumer's inbox again:
 * a consumer that handled it before finds its event id and does nothing, and
 * the one that gave up on it handles it now (or dead-letters it again, under
 * a new entry). The entry is deleted once the replay is stored.
 *
 * The replay's Nats-Msg-Id is "replay:" and the dead letter's own id (its
 * origin's stream, durable and sequence), so replaying one entry twice
 * within the stream's dedup window stores it once; after the window a
 * second copy is stored and the inboxes drop it.
 */
#include "shopctl.h"

#include "bus/bus.h"
#include "core/xalloc.h"

#include <cjson/cJSON.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define SHOPCTL_DLQ_REPLAY_PREFIX "replay:"

static const char *shopctl_dlq_header(const struct bus_msg *m, const char *name)
{
	const char *v = bus_msg_header(m, name);
	return v && *v ? v : "?";
}

/* Whether the dead letter M came from ONLY: "STREAM" or "STREAM.DURABLE";
 * NULL matches every one. */
static bool shopctl_dlq_matches(const struct bus_msg *m, const char *only)
{
	if (!only)
		return true;
	const char *stream = shopctl_dlq_header(m, BUS_HDR_DLQ_STREAM);
	const char *durable = shopctl_dlq_header(m, BUS_HDR_DLQ_CONSUMER);
	size_t n = strlen(stream);
	if (strncmp(only, stream, n) != 0)
		return false;
	return only[n] == '\0' || (only[n] == '.' && strcmp(only + n + 1, durable) == 0);
}

/* The order a dead letter names: its envelope's CloudEvents subject. */
static void shopctl_dlq_order(const struct bus_msg *m, char *out, size_t size)
{
	size_t len = 0;
	const char *data = bus_msg_data(m, &len);
	cJSON *env = data ? cJSON_ParseWithLength(data, len) : NULL;
	const cJSON *subject = cJSON_GetObjectItemCaseSensitive(env, "subject");
	snprintf(out, size, "%s",
		 cJSON_IsString(subject) && subject->valuestring[0] ? subject->valuestring : "-");
	cJSON_Delete(env);
}

bool shopctl_dlq_withheld(const struct bus_msg *m)
{
	const char *body = bus_msg_header(m, BUS_HDR_DLQ_BODY);
	return body && strcmp(body, BUS_DLQ_BODY_WITHHELD) == 0;
}

static void shopctl_dlq_line(const struct bus_msg *m, uint64_t seq, FILE *out)
{
	char order[SHOPCTL_DLQ_ORDER_MAX];
	shopctl_dlq_order(m, order, sizeof(order));
	fprintf(out, "%" PRIu64 " %s %s.%s deliveries=%s order=%s reason: %s\n", seq,
		shopctl_dlq_header(m, BUS_HDR_DLQ_SUBJECT),
		shopctl_dlq_header(m, BUS_HDR_DLQ_STREAM),
		shopctl_dlq_header(m, BUS_HDR_DLQ_CONSUMER),
		shopctl_dlq_header(m, BUS_HDR_DLQ_DELIVERIES), order,
		shopctl_dlq_header(m, BUS_HDR_DLQ_REASON));
}

/* Calls FN on every dead letter of STREAM that ONLY matches, oldest first,
 * until FN fails. *ret_n counts the ones FN took. A stream never declared
 * holds none. */
static shop_status shopctl_dlq_each(struct bus *bus, const char *stream, const char *only,
				    shop_status (*fn)(struct bus *, const char *, uint64_t,
						      const struct bus_msg *, FILE *),
				    FILE *out, size_t *ret_n)
{
	uint64_t n = 0, first = 0, last = 0;
	*ret_n = 0;
	shop_status st = bus_stream_state(bus, stream, &n, &first, &last);
	if (st == SHOP_E_NOT_FOUND)
		return SHOP_OK;
	for (uint64_t seq = first; st == SHOP_OK && n > 0 && seq <= last; seq++) {
		struct bus_msg *m = NULL;
		st = bus_stream_get(bus, stream, seq, &m);
		if (st == SHOP_E_NOT_FOUND) { /* deleted from the middle: replayed */
			st = SHOP_OK;
			continue;
		}
		if (st == SHOP_OK && shopctl_dlq_matches(m, only)) {
			st = fn(bus, stream, seq, m, out);
			*ret_n += st == SHOP_OK;
		}
		bus_msg_free(m);
	}
	return st;
}

static shop_status shopctl_dlq_print(struct bus *bus, const char *stream, uint64_t seq,
				     const struct bus_msg *m, FILE *out)
{
	shopctl_dlq_line(m, seq, out);
	return SHOP_OK;
}

shop_status shopctl_dlq_list(struct bus *bus, const char *stream, const char *only, FILE *out,
			     size_t *ret_n)
{
	return shopctl_dlq_each(bus, stream, only, shopctl_dlq_print, out, ret_n);
}

shop_status shopctl_dlq_show(struct bus *bus, const char *stream, uint64_t seq, FILE *out)
{
	struct bus_msg *m = NULL;
	shop_status st = bus_stream_get(bus, stream, seq, &m);
	if (st != SHOP_OK)
		return st;
	size_t len = 0;
	const char *data = bus_msg_data(m, &len);
	shopctl_dlq_line(m, seq, out);
	if (shopctl_dlq_withheld(m))
		fprintf(out, "(no body: a dead letter of a confidential stream)\n");
	else
		fprintf(out, "%.*s\n", (int)len, data ? data : "");
	bus_msg_free(m);
	return SHOP_OK;
}

static shop_status shopctl_dlq_replay_one(struct bus *bus, const char *stream, uint64_t seq,
					  const struct bus_msg *m, FILE *out)
{
	const char *subject = bus_msg_header(m, BUS_HDR_DLQ_SUBJECT);
	const char *origin = bus_msg_header(m, BUS_HDR_DLQ_STREAM);
	const char *durable = bus_msg_header(m, BUS_HDR_DLQ_CONSUMER);
	const char *origin_seq = bus_msg_header(m, BUS_HDR_DLQ_SEQ);
	size_t len = 0;
	const char *data = bus_msg_data(m, &len);
	/* A dead letter of a confidential stream (CARDS) was stored without
	 * its body, so that the card token stays out of this stream: there is
	 * nothing to send again. Its producer has to send a new message. */
	if (shopctl_dlq_withheld(m)) {
		fprintf(stderr,
			"shopctl dlq replay: dead letter %" PRIu64
			" (%s, from confidential stream %s) "
			"has no body to replay: a confidential stream's dead letters keep only "
			"their headers; the message must be sent again by its producer\n",
			seq, subject && *subject ? subject : "?", origin && *origin ? origin : "?");
		return SHOP_E_INVALID;
	}
	/* Not one of libs/bus's copies: nothing says where it belongs. */
	if (!subject || !*subject || !origin || !durable || !origin_seq || !data)
		return SHOP_E_INVALID;
	char *msg_id = xasprintf(SHOPCTL_DLQ_REPLAY_PREFIX "%s:%s:%s", origin, durable, origin_seq);
	struct bus_out msg = { .subject = subject, .msg_id = msg_id, .data = data, .len = len };
	struct bus_ack ack = { 0 };
	shop_status st = bus_publish(bus, &msg, &ack);
	free(msg_id);
	if (st != SHOP_OK)
		return st;
	fprintf(out, "%" PRIu64 " replayed on %s as %s %" PRIu64 "%s\n", seq, subject, ack.stream,
		ack.seq, ack.duplicate ? " (stored before: a duplicate)" : "");
	return bus_stream_delete(bus, stream, seq);
}

shop_status shopctl_dlq_replay(struct bus *bus, const char *stream, uint64_t seq, FILE *out)
{
	struct bus_msg *m = NULL;
	shop_status st = bus_stream_get(bus, stream, seq, &m);
	if (st == SHOP_OK)
		st = shopctl_dlq_replay_one(bus, stream, seq, m, out);
	bus_msg_free(m);
	return st;
}

shop_status shopctl_dlq_replay_all(struct bus *bus, const char *stream, const char *only, FILE *out,
				   size_t *ret_n)
{
	return shopctl_dlq_each(bus, stream, only, shopctl_dlq_replay_one, out, ret_n);
}

shop_status shopctl_dlq_purge(struct bus *bus, const char *stream, const char *only)
{
	if (!only)
		return bus_stream_purge(bus, stream, NULL);
	/* A stream's dead letters, or one durable's. */
	bool one_durable = strchr(only, '.') != NULL;
	char *subject = xasprintf("%s.%s%s", BUS_DEADLETTER_PREFIX, only, one_durable ? "" : ".>");
	shop_status st = bus_stream_purge(bus, stream, subject);
	free(subject);
	return st;
}
