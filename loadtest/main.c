/*
 * main.c - shop-loadtest: drives the compose deployment at a constant
 * arrival rate and reports what it measured (loadtest/README.md).
 *
 * Wiring only: parse the command line, run (lt_run), write the summary to
 * stdout and the summary, JSON report and SVG into RESULTS/<UTC stamp>/.
 * Exit status: 0 when every request was accepted and every accepted order
 * reached a terminal state; 1 when the run happened but something failed
 * (errors, orders that never ended, or saturate found no rate that held);
 * 2 when it could not run (bad arguments, bus or output unreachable).
 */
#include "core/clock.h"
#include "core/xalloc.h"
#include "lt_ceil.h"
#include "lt_run.h"

#include <curl/curl.h>
#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#define LT_PATH_MAX 4096
#define LT_COMPARE_FILE_MAX (64 * 1024 * 1024) /* a report.json */

static void lt_usage(FILE *out)
{
	fprintf(out,
		"usage: shop-loadtest [options]\n"
		"  --gateway URL        gateway base URL (http://gateway:8080)\n"
		"  --nats URLS          NATS servers for the order events, comma-separated\n"
		"                       (nats://nats-1:4222,nats://nats-2:4222,nats://nats-3:4222)\n"
		"  --monitor URLS       NATS monitoring URLs for consumer lag, comma-separated, every\n"
		"                       node of a cluster: only a consumer's leader knows its lag\n"
		"                       (http://nats-1:8222,http://nats-2:8222,http://nats-3:8222)\n"
		"  --rate N             orders per second offered (%d)\n"
		"  --duration S         seconds of offered load (%d)\n"
		"  --mix SPEC           kind=weight,... (%s)\n"
		"  --max-inflight N     requests in flight at most (%d)\n"
		"  --timeout-ms N       one HTTP request's timeout (%d)\n"
		"  --drain S            longest wait for orders to end after the load (%d)\n"
		"  --saturate           step the rate up until a step fails the targets\n"
		"  --sat-start N --sat-factor F --sat-max N --sat-step S\n"
		"                       first rate (25), growth per step (1.5), last rate (1000),\n"
		"                       seconds per step (10)\n"
		"  --p99-accept-ms N    saturate target for accept p99 (%d; 0 = none)\n"
		"  --p99-paid-ms N      saturate target for POST->PAID p99 (%d; 0 = none)\n"
		"  --results DIR        write DIR/<UTC stamp>/{summary.txt,report.json,report.svg}\n"
		"  --durability NAME    how the deployment was started (durable, relaxed, strict), for the report\n"
		"  --ceilings           measure the building blocks' ceilings before the load\n"
		"  --ceil-seconds S     seconds per ceiling (%d)\n"
		"  --ceil-pg URL        PostgreSQL scratch database for the commit ceiling\n"
		"  --ceil-sqlite PATH   SQLite scratch file (on the services' disk) for its ceiling\n"
		"  --compare D R        print durable report D's throughput / relaxed report R's\n",
		LT_DEFAULT_RATE, LT_DEFAULT_DURATION_S, LT_MIX_DEFAULT, LT_DEFAULT_MAX_INFLIGHT,
		LT_DEFAULT_TIMEOUT_MS, LT_DEFAULT_DRAIN_S, LT_DEFAULT_P99_ACCEPT_MS,
		LT_DEFAULT_P99_PAID_MS, LT_CEIL_DEFAULT_SECONDS);
}

/* Reads a whole (small) file; NULL when it cannot. */
static char *lt_read_file(const char *path)
{
	FILE *f = fopen(path, "r");
	if (!f) {
		fprintf(stderr, "shop-loadtest: cannot read %s: %s\n", path, strerror(errno));
		return NULL;
	}
	size_t cap = 1 << 16, len = 0;
	char *buf = xmalloc(cap);
	size_t n;
	while ((n = fread(buf + len, 1, cap - len - 1, f)) > 0) {
		len += n;
		if (len + 1 == cap) {
			if (cap >= LT_COMPARE_FILE_MAX) {
				fprintf(stderr, "shop-loadtest: %s is too large\n", path);
				free(buf);
				fclose(f);
				return NULL;
			}
			cap *= 2;
			buf = xrealloc(buf, cap);
		}
	}
	buf[len] = '\0';
	fclose(f);
	return buf;
}

/* --compare: 0 when the durable throughput is at least the target share of
 * the relaxed one, 1 when not, 2 when the reports cannot be read. */
static int lt_compare(const char *durable, const char *relaxed)
{
	int rc = 2;
	double ratio = -1;
	char *d = lt_read_file(durable);
	char *r = d ? lt_read_file(relaxed) : NULL;
	if (r && lt_compare_reports(d, r, stdout, &ratio) == SHOP_OK)
		rc = ratio >= LT_DURABLE_TARGET ? 0 : 1;
	else if (r)
		fprintf(stderr, "shop-loadtest: %s or %s is not a load test report\n", durable,
			relaxed);
	free(d);
	free(r);
	return rc;
}

static int lt_number(const char *opt, const char *s, double min, double max, double *ret)
{
	char *end = NULL;
	errno = 0;
	double v = strtod(s, &end);
	if (errno || end == s || *end || v < min || v > max) {
		fprintf(stderr, "shop-loadtest: %s must be a number in [%g, %g]\n", opt, min, max);
		return -1;
	}
	*ret = v;
	return 0;
}

static void lt_on_signal(int sig)
{
	(void)sig;
	lt_run_stop();
}

/* Writes one output file through writer; 0 on success. */
static int lt_write_file(const char *dir, const char *name, const struct lt_report *r,
			 shop_status (*writer)(const struct lt_report *, FILE *))
{
	char path[LT_PATH_MAX];
	snprintf(path, sizeof(path), "%s/%s", dir, name);
	FILE *f = fopen(path, "w");
	if (!f) {
		fprintf(stderr, "shop-loadtest: cannot write %s: %s\n", path, strerror(errno));
		return -1;
	}
	shop_status st = writer(r, f);
	if (fclose(f) != 0 || st != SHOP_OK) {
		fprintf(stderr, "shop-loadtest: writing %s failed\n", path);
		return -1;
	}
	return 0;
}

static shop_status lt_write_text(const struct lt_report *r, FILE *out)
{
	lt_report_text(r, out);
	return ferror(out) ? SHOP_E_UNAVAILABLE : SHOP_OK;
}

int main(int argc, char **argv)
{
	struct lt_config cfg = {
		.gateway = "http://gateway:8080",
		.nats = "nats://nats-1:4222,nats://nats-2:4222,nats://nats-3:4222",
		.monitor = "http://nats-1:8222,http://nats-2:8222,http://nats-3:8222",
		.mix = LT_MIX_DEFAULT,
		.rate = LT_DEFAULT_RATE,
		.duration_s = LT_DEFAULT_DURATION_S,
		.max_inflight = LT_DEFAULT_MAX_INFLIGHT,
		.timeout_ms = LT_DEFAULT_TIMEOUT_MS,
		.drain_max_s = LT_DEFAULT_DRAIN_S,
		.sat_start = 25,
		.sat_factor = 1.5,
		.sat_max = 1000,
		.sat_step_s = 10,
		.p99_accept_ms = LT_DEFAULT_P99_ACCEPT_MS,
		.p99_paid_ms = LT_DEFAULT_P99_PAID_MS,
	};
	const char *results = NULL;
	const char *durability = "unknown";
	bool ceilings = false;
	struct lt_ceil_config ceil_cfg = { .seconds = LT_CEIL_DEFAULT_SECONDS };
	static const struct option opts[] = {
		{ "gateway", required_argument, NULL, 'g' },
		{ "nats", required_argument, NULL, 'n' },
		{ "monitor", required_argument, NULL, 'm' },
		{ "rate", required_argument, NULL, 'r' },
		{ "duration", required_argument, NULL, 'd' },
		{ "mix", required_argument, NULL, 'x' },
		{ "max-inflight", required_argument, NULL, 'i' },
		{ "timeout-ms", required_argument, NULL, 't' },
		{ "drain", required_argument, NULL, 'D' },
		{ "saturate", no_argument, NULL, 'S' },
		{ "sat-start", required_argument, NULL, '1' },
		{ "sat-factor", required_argument, NULL, '2' },
		{ "sat-max", required_argument, NULL, '3' },
		{ "sat-step", required_argument, NULL, '4' },
		{ "p99-accept-ms", required_argument, NULL, 'a' },
		{ "p99-paid-ms", required_argument, NULL, 'p' },
		{ "results", required_argument, NULL, 'o' },
		{ "durability", required_argument, NULL, 'u' },
		{ "ceilings", no_argument, NULL, 'C' },
		{ "ceil-seconds", required_argument, NULL, '5' },
		{ "ceil-pg", required_argument, NULL, '6' },
		{ "ceil-sqlite", required_argument, NULL, '7' },
		{ "compare", no_argument, NULL, 'c' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	int c;
	double v;
	bool compare = false;
	while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
		int bad = 0;
		switch (c) {
		case 'g':
			cfg.gateway = optarg;
			break;
		case 'n':
			cfg.nats = optarg;
			break;
		case 'm':
			cfg.monitor = optarg;
			break;
		case 'x':
			cfg.mix = optarg;
			break;
		case 'o':
			results = optarg;
			break;
		case 'S':
			cfg.saturate = true;
			break;
		case 'r':
			bad = lt_number("--rate", optarg, 0.1, LT_RATE_MAX, &cfg.rate);
			break;
		case 'd':
			bad = lt_number("--duration", optarg, 1, LT_DURATION_MAX_S, &v);
			cfg.duration_s = (int64_t)v;
			break;
		case 'i':
			bad = lt_number("--max-inflight", optarg, 1, LT_INFLIGHT_MAX, &v);
			cfg.max_inflight = (int64_t)v;
			break;
		case 't':
			bad = lt_number("--timeout-ms", optarg, 10, 600000, &v);
			cfg.timeout_ms = (int64_t)v;
			break;
		case 'D':
			bad = lt_number("--drain", optarg, 0, LT_DURATION_MAX_S, &v);
			cfg.drain_max_s = (int64_t)v;
			break;
		case '1':
			bad = lt_number("--sat-start", optarg, 0.1, LT_RATE_MAX, &cfg.sat_start);
			break;
		case '2':
			bad = lt_number("--sat-factor", optarg, 1.05, 10, &cfg.sat_factor);
			break;
		case '3':
			bad = lt_number("--sat-max", optarg, 0.1, LT_RATE_MAX, &cfg.sat_max);
			break;
		case '4':
			bad = lt_number("--sat-step", optarg, 1, 600, &v);
			cfg.sat_step_s = (int64_t)v;
			break;
		case 'a':
			bad = lt_number("--p99-accept-ms", optarg, 0, 1e7, &cfg.p99_accept_ms);
			break;
		case 'p':
			bad = lt_number("--p99-paid-ms", optarg, 0, 1e7, &cfg.p99_paid_ms);
			break;
		case 'u':
			durability = optarg;
			break;
		case 'C':
			ceilings = true;
			break;
		case '5':
			bad = lt_number("--ceil-seconds", optarg, 1, LT_CEIL_SECONDS_MAX, &v);
			ceil_cfg.seconds = (int64_t)v;
			break;
		case '6':
			ceil_cfg.pg_url = optarg;
			break;
		case '7':
			ceil_cfg.sqlite_path = optarg;
			break;
		case 'c':
			compare = true;
			break;
		case 'h':
			lt_usage(stdout);
			return 0;
		default:
			lt_usage(stderr);
			return 2;
		}
		if (bad)
			return 2;
	}
	if (compare) {
		if (argc - optind != 2) {
			lt_usage(stderr);
			return 2;
		}
		xalloc_init_cjson();
		return lt_compare(argv[optind], argv[optind + 1]);
	}
	if (optind != argc) {
		lt_usage(stderr);
		return 2;
	}
	struct lt_mix probe;
	if (lt_mix_parse(&probe, cfg.mix) != SHOP_OK) {
		fprintf(stderr,
			"shop-loadtest: --mix must be kind=weight,... with kinds among "
			"approved, declined, flaky, out_of_stock, unknown_sku, cancelled\n");
		return 2;
	}

	/* The output directory first: a run whose report cannot be written is wasted. */
	char dir[LT_PATH_MAX] = "";
	char started[CLOCK_RFC3339_SIZE];
	int64_t now_ms = clock_now_ms();
	clock_rfc3339(now_ms, started);
	if (results) {
		time_t secs = (time_t)(now_ms / 1000);
		struct tm tm;
		char stamp[32];
		gmtime_r(&secs, &tm);
		strftime(stamp, sizeof(stamp), "%Y%m%dT%H%M%SZ", &tm);
		snprintf(dir, sizeof(dir), "%s/%s", results, stamp);
		if ((mkdir(results, 0755) != 0 && errno != EEXIST) || mkdir(dir, 0755) != 0) {
			fprintf(stderr, "shop-loadtest: cannot create %s: %s\n", dir,
				strerror(errno));
			return 2;
		}
	}

	signal(SIGINT, lt_on_signal);
	signal(SIGTERM, lt_on_signal);
	xalloc_init_cjson();
	curl_global_init(CURL_GLOBAL_DEFAULT);
	struct lt_report report = {
		.mode = cfg.saturate ? "saturate" : "run",
		.started_at = started,
		.gateway = cfg.gateway,
		.nats = cfg.nats,
		.monitor = cfg.monitor,
		.mix = cfg.mix,
		.max_inflight = cfg.max_inflight,
		.timeout_ms = cfg.timeout_ms,
		.drain_max_s = cfg.drain_max_s,
		.target_accept_p99_ms = cfg.p99_accept_ms,
		.target_paid_p99_ms = cfg.p99_paid_ms,
		.durability = durability,
	};
	/* The ceilings first, on the idle deployment, then the counters the
	 * ratios need, sampled around the load. */
	struct lt_usage before = { -1, -1 }, after = { -1, -1 };
	/* Messages stored are the same on every node of a cluster: the first
	 * monitor is asked. */
	char *first_monitor = xstrndup(cfg.monitor, strcspn(cfg.monitor, ","));
	if (ceilings) {
		ceil_cfg.nats = cfg.nats;
		ceil_cfg.gateway = cfg.gateway;
		lt_ceil_measure(&ceil_cfg, &report.ceil);
		lt_ceil_usage_sample(first_monitor, ceil_cfg.pg_url, &before);
	}
	fprintf(stderr, "shop-loadtest: %s, %s\n", report.mode,
		cfg.saturate ? "stepping the rate up" : "constant rate");
	shop_status st = lt_run(&cfg, &report);
	int rc = 2;
	if (st != SHOP_OK)
		goto out;
	if (ceilings)
		lt_ceil_usage_sample(first_monitor, ceil_cfg.pg_url, &after);
	lt_report_summarise(&report, &before, &after);
	lt_report_text(&report, stdout);
	if (dir[0]) {
		if (lt_write_file(dir, "summary.txt", &report, lt_write_text) ||
		    lt_write_file(dir, "report.json", &report, lt_report_json) ||
		    lt_write_file(dir, "report.svg", &report, lt_report_svg))
			goto out;
		printf("report: %s/{summary.txt,report.json,report.svg}\n", dir);
	}
	int64_t errors = 0, accepted = 0, never = 0;
	for (size_t i = 0; i < report.n_phase; i++) {
		errors += lt_errors_total(&report.phase[i].errors);
		accepted += report.phase[i].accepted;
		never += report.phase[i].never_terminal;
	}
	printf("result: errors=%lld accepted=%lld never_terminal=%lld events_dropped=%lld\n",
	       (long long)errors, (long long)accepted, (long long)never,
	       (long long)report.events_dropped);
	if (cfg.saturate)
		rc = report.best_rate > 0 ? 0 : 1;
	else
		rc = errors == 0 && never == 0 && accepted > 0 && report.events_dropped == 0 ? 0
											     : 1;
out:
	free(first_monitor);
	lt_run_report_release(&report);
	curl_global_cleanup();
	return rc;
}
