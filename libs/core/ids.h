/*
 * ids.h - identifiers: UUIDv7 for entities and events, W3C trace context.
 *
 * UUIDv7 puts a millisecond timestamp in the high bits, so ids created later
 * sort later and B-tree inserts stay at the right edge of the index. Event ids
 * double as JetStream Nats-Msg-Id values, so they must be globally unique:
 * 74 random bits per millisecond make a collision negligible.
 */
#ifndef SHOP_CORE_IDS_H
#define SHOP_CORE_IDS_H

#include <stdbool.h>

#define IDS_UUID_SIZE 37        /* 36 characters and the NUL */
#define IDS_TRACEPARENT_SIZE 56 /* "00-" 32 hex "-" 16 hex "-01" and the NUL */

void ids_uuid7(char out[IDS_UUID_SIZE]);
bool ids_uuid_valid(const char *s);
/* True when s is a traceparent W3C Trace Context lets a receiver continue:
 * version 2 lowercase hex but not "ff" (exactly 55 characters for version
 * 00; a later version may append "-" and more), then a 32 hex trace id and
 * a 16 hex parent id, neither all zeros, and 2 hex flags, all lowercase. */
bool ids_traceparent_valid(const char *s);
/* A new traceparent with a fresh trace id and span id. */
void ids_traceparent_new(char out[IDS_TRACEPARENT_SIZE]);
/* Same trace as parent when ids_traceparent_valid(parent), new span id;
 * otherwise (NULL included) a new trace, as W3C Trace Context says to do
 * with an invalid header. The result is always version 00, sampled. */
void ids_traceparent_child(const char *parent, char out[IDS_TRACEPARENT_SIZE]);

#endif
