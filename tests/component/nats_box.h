/*
 * nats_box.h - a nats-server of a test's own, with JetStream on a store
 * directory that outlives the process, for the cases where the broker is
 * killed (SIGKILL) and comes back on the same store; the shared server of
 * tests/component/run.sh must never die under the other cases.
 *
 * The box lives in a new directory under $SHOP_TEST_WORKDIR (else /tmp): the
 * store in js/, the server's output in nats.log. Included after <cmocka.h>.
 */
#ifndef SHOP_TESTS_NATS_BOX_H
#define SHOP_TESTS_NATS_BOX_H

#include <arpa/inet.h>
#include <fcntl.h>
#include <ftw.h>
#include <limits.h>
#include <netinet/in.h>
#include <signal.h>
#include <spawn.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "core/clock.h"

#define NATS_BOX_START_MAX_MS 15000 /* until a (re)started server accepts */

extern char **environ;

struct nats_box {
	pid_t pid; /* 0 while it is not running */
	int port;
	char dir[PATH_MAX];
	char url[64];
};

/* A TCP port on the loopback interface that nothing listens on now. */
static inline int nats_box_free_port(void)
{
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	assert_true(fd >= 0);
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = 0 };
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	assert_int_equal(bind(fd, (struct sockaddr *)&a, sizeof(a)), 0);
	socklen_t len = sizeof(a);
	assert_int_equal(getsockname(fd, (struct sockaddr *)&a, &len), 0);
	close(fd);
	return ntohs(a.sin_port);
}

static inline bool nats_box_accepts(const struct nats_box *b)
{
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return false;
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons((uint16_t)b->port) };
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	bool ok = connect(fd, (struct sockaddr *)&a, sizeof(a)) == 0;
	close(fd);
	return ok;
}

/* Where the server writes its output. */
static inline void nats_box_log_path(const struct nats_box *b, char *out, size_t size)
{
	snprintf(out, size, "%s/nats.log", b->dir);
}

/* A box in a new directory "<prefix>-XXXXXX" on a free port, not started. */
static inline void nats_box_init(struct nats_box *b, const char *prefix)
{
	const char *work = getenv("SHOP_TEST_WORKDIR");
	snprintf(b->dir, sizeof(b->dir), "%s/%s-XXXXXX", work && *work ? work : "/tmp", prefix);
	assert_non_null(mkdtemp(b->dir));
	b->port = nats_box_free_port();
	snprintf(b->url, sizeof(b->url), "nats://127.0.0.1:%d", b->port);
	b->pid = 0;
}

/* Starts the server, or starts it again on the same store, and waits until
 * it accepts connections. */
static inline void nats_box_start(struct nats_box *b)
{
	char port[16], store[PATH_MAX + 8], log_path[PATH_MAX + 16];
	snprintf(port, sizeof(port), "%d", b->port);
	snprintf(store, sizeof(store), "%s/js", b->dir);
	nats_box_log_path(b, log_path, sizeof(log_path));
	char *argv[] = { "nats-server", "-js", "-sd", store, "-a", "127.0.0.1", "-p", port, NULL };
	posix_spawn_file_actions_t fa;
	posix_spawn_file_actions_init(&fa);
	posix_spawn_file_actions_addopen(&fa, 1, log_path, O_WRONLY | O_CREAT | O_APPEND, 0644);
	posix_spawn_file_actions_adddup2(&fa, 1, 2);
	int rc = posix_spawnp(&b->pid, "nats-server", &fa, NULL, argv, environ);
	posix_spawn_file_actions_destroy(&fa);
	assert_int_equal(rc, 0);
	int64_t deadline = clock_mono_ms() + NATS_BOX_START_MAX_MS;
	while (!nats_box_accepts(b) && clock_mono_ms() < deadline)
		clock_sleep_ms(50);
	assert_true(nats_box_accepts(b));
}

/* SIGKILL, as a crash would; nothing is flushed. */
static inline void nats_box_kill(struct nats_box *b)
{
	if (b->pid <= 0)
		return;
	kill(b->pid, SIGKILL);
	waitpid(b->pid, NULL, 0);
	b->pid = 0;
}

static inline int nats_box_rm_entry(const char *path, const struct stat *sb, int flag,
				    struct FTW *ftw)
{
	(void)sb;
	(void)flag;
	(void)ftw;
	remove(path);
	return 0;
}

/* Kills the server and removes its directory. */
static inline void nats_box_remove(struct nats_box *b)
{
	nats_box_kill(b);
	nftw(b->dir, nats_box_rm_entry, 16, FTW_DEPTH | FTW_PHYS);
}

#endif
