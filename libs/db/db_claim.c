/*
 * db_claim.c - one process per SQLite file (see db_claim in db.h).
 *
 * The claim is a flock() on a file beside the database, never on the
 * database file itself: SQLite takes POSIX locks on that one, and closing
 * any descriptor of a file drops a process's POSIX locks on it, so a lock
 * of ours there could be lost behind our back. flock() locks belong to the
 * open file description, survive everything but its close, and the kernel
 * releases them when the process dies, which is what lets the next start
 * follow a SIGKILL without anyone cleaning up. The claim file is never
 * deleted: unlinking it while another process waits to lock it would let
 * two processes each hold a lock on a different file of the same name.
 */
#include "db_internal.h"

#include "core/xalloc.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <unistd.h>

/* How much of a host name the claim file records. */
#define DB_CLAIM_HOST_MAX 64

struct db_claim {
	int fd;
};

static void db_claim_say(char *out, size_t size, const char *text)
{
	if (out && size > 0)
		snprintf(out, size, "%s", text);
}

/* The holder's line, as much as fits; "unknown" when it wrote none yet. */
static void db_claim_read_holder(int fd, char *out, size_t size)
{
	char buf[DB_CLAIM_HOLDER_MAX];
	ssize_t n = pread(fd, buf, sizeof(buf) - 1, 0);
	if (n <= 0) {
		db_claim_say(out, size, "unknown");
		return;
	}
	buf[n] = '\0';
	buf[strcspn(buf, "\n")] = '\0';
	db_claim_say(out, size, buf);
}

shop_status db_claim(const char *url, struct db_claim **ret_claim, char *ret_holder,
		     size_t holder_size)
{
	const char *path = url ? db_url_sqlite_path(url) : NULL;
	char line[DB_CLAIM_HOLDER_MAX];
	char *lock_path = NULL;
	shop_status st = SHOP_OK;
	int fd = -1;

	if (!ret_claim)
		return SHOP_E_INVALID;
	if (!path || !*path || strcmp(path, ":memory:") == 0) {
		*ret_claim = NULL;
		return SHOP_OK;
	}
	lock_path = xasprintf("%s%s", path, DB_CLAIM_SUFFIX);
	fd = open(lock_path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
	if (fd < 0) {
		snprintf(line, sizeof(line), "cannot open %.100s: %s", lock_path, strerror(errno));
		db_claim_say(ret_holder, holder_size, line);
		st = SHOP_E_UNAVAILABLE;
		goto out;
	}
	if (flock(fd, LOCK_EX | LOCK_NB) != 0) {
		if (errno == EWOULDBLOCK) {
			db_claim_read_holder(fd, ret_holder, holder_size);
			st = SHOP_E_CONFLICT;
		} else {
			snprintf(line, sizeof(line), "cannot lock %.100s: %s", lock_path,
				 strerror(errno));
			db_claim_say(ret_holder, holder_size, line);
			st = SHOP_E_UNAVAILABLE;
		}
		goto out;
	}
	/* Ours: say who holds it. Best effort, the lock is what counts. */
	char host[DB_CLAIM_HOST_MAX + 1] = "unknown";
	if (gethostname(host, sizeof(host) - 1) != 0)
		snprintf(host, sizeof(host), "unknown");
	host[sizeof(host) - 1] = '\0';
	int len = snprintf(line, sizeof(line), "%s pid %ld\n", host, (long)getpid());
	if (ftruncate(fd, 0) == 0 && len > 0)
		(void)!pwrite(fd, line, (size_t)len, 0);
	struct db_claim *claim = xmalloc(sizeof(*claim));
	claim->fd = fd;
	fd = -1;
	*ret_claim = claim;
out:
	if (fd >= 0)
		close(fd);
	free(lock_path);
	return st;
}

void db_claim_release(struct db_claim *claim)
{
	if (!claim)
		return;
	close(claim->fd); /* drops the flock */
	free(claim);
}
