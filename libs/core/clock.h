/*
 * clock.h - wall and monotonic time in milliseconds, and RFC 3339 stamps.
 *
 * Stamps are always UTC with exactly three fractional digits, so they sort
 * lexicographically in the same order as in time (the read models rely on it).
 */
#ifndef SHOP_CORE_CLOCK_H
#define SHOP_CORE_CLOCK_H

#include <pthread.h>
#include <stdint.h>
#include <time.h>

/* "2026-11-22T10:00:00.123Z" plus the terminating NUL. */
#define CLOCK_RFC3339_SIZE 25

int64_t clock_now_ms(void);  /* milliseconds since the Unix epoch */
int64_t clock_mono_ms(void); /* monotonic, for deadlines and intervals */
int64_t clock_mono_us(void); /* the same in microseconds, for latencies */
void clock_rfc3339(int64_t epoch_ms, char out[CLOCK_RFC3339_SIZE]);
void clock_sleep_ms(int64_t ms);

/* Condition variables that time out by the monotonic clock: a wall clock
 * stepped backwards (NTP, an operator) must not stall a timed wait. Every
 * timed pthread_cond_timedwait in the project waits on a condition made by
 * clock_cond_init, until a deadline made by clock_mono_deadline. */
void clock_cond_init(pthread_cond_t *cond);
struct timespec clock_mono_deadline(int64_t ms_from_now);

#endif
