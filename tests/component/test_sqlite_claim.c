/*
 * test_sqlite_claim.c - one process per SQLite file: a second instance of a
 * service on the same file stops with a clear error, and a SIGKILLed
 * holder locks nobody out.
 *
 * The first case runs db_claim in child processes; the second runs the real
 * service binary (shop-notifications, SQLite-backed) three times on one
 * file: the binaries are found beside this test's build directory
 * (build/tests/this -> build/bin/). NATS is pointed at a port nothing
 * listens on: an instance keeps retrying it, which is all these cases need,
 * and it never touches the component tests' broker.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "core/clock.h"
#include "db/db.h"

#include <fcntl.h>
#include <libgen.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#define WAIT_MS 15000   /* longest wait for a process to claim or exit */
#define POLL_MS 20      /* between two looks */
#define PORT_BASE 57100 /* HTTP ports of the instances, away from the harness's */
#define UNREACHABLE_NATS "nats://127.0.0.1:1"

#define DIR_MAX 64 /* "/tmp/shop-claim-XXXXXX" */

struct fixture {
	char dir[DIR_MAX];
	char url[DIR_MAX + 64];
	char lock[DIR_MAX + 64];
};

static int setup(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));
	snprintf(f->dir, sizeof(f->dir), "/tmp/shop-claim-XXXXXX");
	if (!mkdtemp(f->dir))
		return -1;
	snprintf(f->url, sizeof(f->url), "sqlite:%s/notifications.db", f->dir);
	snprintf(f->lock, sizeof(f->lock), "%s/notifications.db%s", f->dir, DB_CLAIM_SUFFIX);
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;
	char cmd[DIR_MAX + 16];
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", f->dir);
	if (system(cmd) != 0)
		fprintf(stderr, "could not remove %s\n", f->dir);
	free(f);
	return 0;
}

/* Whether the claim file names PID as its holder. */
static bool lock_names(const char *lock, pid_t pid)
{
	char buf[DB_CLAIM_HOLDER_MAX], want[32];
	FILE *fp = fopen(lock, "r");
	if (!fp)
		return false;
	size_t n = fread(buf, 1, sizeof(buf) - 1, fp);
	fclose(fp);
	buf[n] = '\0';
	snprintf(want, sizeof(want), " pid %ld\n", (long)pid);
	return strstr(buf, want) != NULL;
}

static bool wait_lock_names(const char *lock, pid_t pid)
{
	for (int64_t end = clock_mono_ms() + WAIT_MS; clock_mono_ms() < end;) {
		if (lock_names(lock, pid))
			return true;
		usleep(POLL_MS * 1000);
	}
	return false;
}

/* Waits for PID to end; -1 when it did not within WAIT_MS. */
static int wait_exit(pid_t pid)
{
	int status = 0;
	for (int64_t end = clock_mono_ms() + WAIT_MS; clock_mono_ms() < end;) {
		if (waitpid(pid, &status, WNOHANG) == pid)
			return status;
		usleep(POLL_MS * 1000);
	}
	return -1;
}

static void kill_and_reap(pid_t pid, int sig)
{
	kill(pid, sig);
	if (wait_exit(pid) == -1) {
		kill(pid, SIGKILL);
		waitpid(pid, NULL, 0);
	}
}

/* ---- the library: claims across processes -------------------------------- */

static void a_claim_is_refused_to_another_process_and_freed_by_sigkill(void **state)
{
	struct fixture *f = *state;
	pid_t holder = fork();
	assert_true(holder >= 0);
	if (holder == 0) {
		struct db_claim *c = NULL;
		if (db_claim(f->url, &c, NULL, 0) != SHOP_OK)
			_exit(3);
		for (;;)
			pause();
	}
	assert_true(wait_lock_names(f->lock, holder));

	struct db_claim *mine = NULL;
	char who[DB_CLAIM_HOLDER_MAX] = "";
	assert_int_equal(db_claim(f->url, &mine, who, sizeof(who)), SHOP_E_CONFLICT);
	assert_null(mine);
	char want[32];
	snprintf(want, sizeof(want), " pid %ld", (long)holder);
	assert_non_null(strstr(who, want));

	/* No clean-up runs in the holder: the kernel drops its lock. */
	kill_and_reap(holder, SIGKILL);
	assert_int_equal(db_claim(f->url, &mine, who, sizeof(who)), SHOP_OK);
	assert_non_null(mine);
	assert_true(lock_names(f->lock, getpid()));
	db_claim_release(mine);
	/* Released: claimable again at once. */
	assert_int_equal(db_claim(f->url, &mine, NULL, 0), SHOP_OK);
	db_claim_release(mine);
}

static void postgresql_and_memory_need_no_claim(void **state)
{
	struct db_claim *c = (struct db_claim *)1;
	assert_int_equal(db_claim("postgresql://u:p@h/db", &c, NULL, 0), SHOP_OK);
	assert_null(c);
	c = (struct db_claim *)1;
	assert_int_equal(db_claim("sqlite::memory:", &c, NULL, 0), SHOP_OK);
	assert_null(c);
}

/* ---- the service binary ---------------------------------------------------- */

static void binary_path(char *out, size_t size)
{
	char self[PATH_MAX];
	ssize_t n = readlink("/proc/self/exe", self, sizeof(self) - 1);
	assert_true(n > 0);
	self[n] = '\0';
	char *tests_dir = dirname(self);      /* build/tests */
	char *build_dir = dirname(tests_dir); /* build */
	snprintf(out, size, "%s/bin/shop-notifications", build_dir);
}

/* Starts the service on F's file with HTTP on PORT, its output to LOG. */
static pid_t start_instance(const struct fixture *f, int port, const char *log)
{
	char bin[PATH_MAX], port_s[16];
	binary_path(bin, sizeof(bin));
	snprintf(port_s, sizeof(port_s), "%d", port);
	pid_t pid = fork();
	if (pid != 0)
		return pid;
	int fd = open(log, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (fd < 0 || dup2(fd, STDOUT_FILENO) < 0 || dup2(fd, STDERR_FILENO) < 0)
		_exit(126);
	setenv("SHOP_DB_URL", f->url, 1);
	setenv("SHOP_NATS_URL", UNREACHABLE_NATS, 1);
	setenv("SHOP_HTTP_PORT", port_s, 1);
	setenv("SHOP_HTTP_BIND", "127.0.0.1", 1);
	unsetenv("SHOP_DB_OWNER_URL");
	execl(bin, bin, (char *)NULL);
	_exit(127);
}

static bool file_has(const char *path, const char *needle)
{
	char buf[16384];
	FILE *fp = fopen(path, "r");
	if (!fp)
		return false;
	size_t n = fread(buf, 1, sizeof(buf) - 1, fp);
	fclose(fp);
	buf[n] = '\0';
	return strstr(buf, needle) != NULL;
}

static void a_second_instance_on_one_file_stops_and_a_new_one_follows_a_sigkill(void **state)
{
	struct fixture *f = *state;
	char log1[DIR_MAX + 8], log2[DIR_MAX + 8], log3[DIR_MAX + 8];
	int port = PORT_BASE + (int)(getpid() % 300) * 3;
	snprintf(log1, sizeof(log1), "%s/1.log", f->dir);
	snprintf(log2, sizeof(log2), "%s/2.log", f->dir);
	snprintf(log3, sizeof(log3), "%s/3.log", f->dir);

	pid_t first = start_instance(f, port, log1);
	assert_true(first > 0);
	assert_true(wait_lock_names(f->lock, first));

	pid_t second = start_instance(f, port + 1, log2);
	assert_true(second > 0);
	int status = wait_exit(second);
	if (status == -1)
		kill_and_reap(second, SIGKILL);
	assert_int_not_equal(status, -1); /* it stopped on its own */
	assert_true(WIFEXITED(status));
	assert_int_not_equal(WEXITSTATUS(status), 0);
	assert_true(file_has(log2, "refusing to start"));
	assert_true(file_has(log2, "is in use by another instance"));
	char holder[32];
	snprintf(holder, sizeof(holder), "pid %ld", (long)first);
	assert_true(file_has(log2, holder));
	/* The first never noticed. */
	assert_int_equal(waitpid(first, NULL, WNOHANG), 0);

	kill_and_reap(first, SIGKILL);
	pid_t third = start_instance(f, port + 2, log3);
	assert_true(third > 0);
	bool claimed = wait_lock_names(f->lock, third);
	bool alive = waitpid(third, NULL, WNOHANG) == 0;
	kill_and_reap(third, SIGTERM);
	assert_true(claimed);
	assert_true(alive);
	assert_false(file_has(log3, "refusing to start"));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(
			a_claim_is_refused_to_another_process_and_freed_by_sigkill, setup,
			teardown),
		cmocka_unit_test(postgresql_and_memory_need_no_claim),
		cmocka_unit_test_setup_teardown(
			a_second_instance_on_one_file_stops_and_a_new_one_follows_a_sigkill, setup,
			teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
