/*
 * svc_tx.c - units of work: svc_tx_run (one transaction for one caller) and
 * svc_tx_run_grouped (group commit for request handlers).
 */
#include "svc_private.h"

#include "core/clock.h"
#include "core/log.h"
#include "core/xalloc.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>

shop_status svc_tx_run(struct svc *svc, struct db *db, const char *correlation_id,
		       const char *traceparent, svc_tx_fn fn, void *arg)
{
	struct svc_tx tx = {
		.svc = svc,
		.db = db,
		.correlation_id = correlation_id,
		.traceparent = traceparent,
		.now_ms = clock_now_ms(),
	};
	shop_status st = db_begin(db);
	if (st != SHOP_OK)
		return st;
	st = fn(&tx, arg);
	if (st != SHOP_OK) {
		db_rollback(db);
		return st;
	}
	st = db_commit(db);
	if (st == SHOP_OK && tx.emitted > 0)
		svc_relay_wake(svc);
	return st;
}

shop_status svc_tx_reject(struct svc_tx *tx, const char *fmt, ...)
{
	char reason[SVC_REASON_MAX];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(reason, sizeof(reason), fmt, ap);
	va_end(ap);
	if (tx->reject_reason && tx->reject_reason_size > 0)
		snprintf(tx->reject_reason, tx->reject_reason_size, "%s", reason);
	else
		log_warn(NULL, "refused: %s", reason);
	return SHOP_E_INVALID;
}

/* ---- group commit ------------------------------------------------------- */

/* One caller's work waiting for, or inside, a shared transaction. */
struct svc_group_item {
	svc_tx_fn fn;
	void *arg;
	const char *correlation_id;
	const char *traceparent;
	shop_status st;
	bool ran;  /* the leader ran fn: st is fn's own outcome */
	bool done; /* set by the leader under group_lock, last: then the owner may return */
	struct svc_group_item *next;
};

/* Runs a group in one transaction, each item under its own savepoint, and
 * settles every item: its own failure, or the shared commit's outcome. */
static void svc_group_commit(struct svc *svc, struct svc_group_item *group)
{
	struct db *db = NULL;
	struct svc_group_item *it;
	int emitted = 0;
	bool alive = true;
	shop_status st = svc_db_acquire(svc, &db);
	if (st == SHOP_OK)
		st = db_begin(db);
	for (it = group; st == SHOP_OK && alive && it; it = it->next) {
		struct svc_tx tx = { .svc = svc,
				     .db = db,
				     .correlation_id = it->correlation_id,
				     .traceparent = it->traceparent,
				     .now_ms = clock_now_ms() };
		it->st = db_savepoint(db);
		if (it->st == SHOP_OK)
			it->st = it->fn(&tx, it->arg);
		if (it->st == SHOP_OK) {
			it->st = db_savepoint_release(db);
			alive = it->st == SHOP_OK;
			emitted += tx.emitted;
		} else {
			alive = db_savepoint_rollback(db) == SHOP_OK;
		}
		it->ran = true; /* its status stands, unless the commit fails */
	}
	if (st == SHOP_OK && alive) {
		st = db_commit(db);
	} else if (st == SHOP_OK) {
		st = SHOP_E_UNAVAILABLE; /* an item lost the transaction */
		db_rollback(db);
	}
	for (it = group; it; it = it->next)
		if (!it->ran || (st != SHOP_OK && it->st == SHOP_OK))
			it->st = st;
	if (st == SHOP_OK && emitted > 0 && svc->bus)
		svc_relay_wake(svc);
	atomic_fetch_add(&svc->group_commits, 1);
	svc_db_release(svc, db);
}

/*
 * Group commit, leader and followers: a caller queues its work; if no
 * transaction is being run it becomes the leader, takes everything queued
 * (up to SVC_GROUP_MAX) and runs it as one transaction; callers that arrive
 * meanwhile queue behind it, and the first of them leads the next group.
 * So one commit (one fsync) serves every request that came in while the
 * previous one was writing, and a lone request still commits at once.
 */
shop_status svc_tx_run_grouped(struct svc *svc, const char *correlation_id, const char *traceparent,
			       svc_tx_fn fn, void *arg)
{
	struct svc_group_item self = {
		.fn = fn, .arg = arg, .correlation_id = correlation_id, .traceparent = traceparent
	};
	/* self lives on this stack while queued: this call does not return
	 * before the leader has set self.done, after which nobody touches it
	 * (and the leader unlinked it from the queue when it took the group). */
	pthread_mutex_lock(&svc->group_lock);
	if (svc->group_tail)
		svc->group_tail->next = &self;
	else
		svc->group_head = &self; /* cppcheck-suppress autoVariables ; see above */
	svc->group_tail = &self;         /* cppcheck-suppress autoVariables ; see above */
	while (!self.done) {
		if (svc->group_leader) {
			pthread_cond_wait(&svc->group_done, &svc->group_lock);
			continue;
		}
		svc->group_leader = true;
		struct svc_group_item *group = svc->group_head, *last = group;
		for (size_t n = 1; n < SVC_GROUP_MAX && last->next; n++)
			last = last->next;
		svc->group_head = last->next;
		if (!svc->group_head)
			svc->group_tail = NULL;
		last->next = NULL;
		pthread_mutex_unlock(&svc->group_lock);
		svc_group_commit(svc, group);
		pthread_mutex_lock(&svc->group_lock);
		/* Items live on their owners' stacks: an owner that sees done may
		 * return at once, so done is set under the lock and nothing of an
		 * item is touched after it. */
		for (struct svc_group_item *it = group, *next; it; it = next) {
			next = it->next;
			it->done = true;
		}
		svc->group_leader = false;
		pthread_cond_broadcast(&svc->group_done);
	}
	pthread_mutex_unlock(&svc->group_lock);
	return self.st;
}

uint64_t svc_group_commits(struct svc *svc)
{
	return atomic_load(&svc->group_commits);
}

size_t svc_group_waiting(struct svc *svc)
{
	size_t n = 0;
	pthread_mutex_lock(&svc->group_lock);
	for (const struct svc_group_item *it = svc->group_head; it; it = it->next)
		n++;
	pthread_mutex_unlock(&svc->group_lock);
	return n;
}
