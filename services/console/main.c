/*
 * console - a live page and an SSE stream of the bus (see console.h).
 *
 * Unlike the six services it runs without libs/svc: it has no database,
 * no outbox, no inbox and no durable, only a NATS connection and an HTTP
 * server. Wiring only: configuration, connect, serve, stop on a signal.
 *
 * Configuration (environment):
 *   SHOP_NATS_URL         default nats://127.0.0.1:4222
 *   SHOP_HTTP_PORT        default 8080
 *   SHOP_HTTP_BIND        default 0.0.0.0
 *   SHOP_LOG_LEVEL        default info
 *   SHOP_CONSOLE_GATEWAY  host:port the page's orders are forwarded to;
 *                         default gateway:8080
 *   SHOP_CONSOLE_NATS_MONITOR  the NATS nodes' monitoring endpoints shown
 *                         on the page, comma-separated http:// URLs;
 *                         default http://nats:8222
 */
#include "console.h"

#include "core/clock.h"
#include "core/config.h"
#include "core/log.h"
#include "core/version.h"
#include "core/xalloc.h"

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Splits "host:port" into its parts; false when malformed. */
static bool console_parse_host_port(const char *s, char *host, size_t host_size, uint16_t *ret_port)
{
	const char *colon = strrchr(s, ':');
	if (!colon || colon == s || (size_t)(colon - s) >= host_size)
		return false;
	char *end = NULL;
	unsigned long port = strtoul(colon + 1, &end, 10);
	if (end == colon + 1 || *end != '\0' || port == 0 || port > 65535)
		return false;
	memcpy(host, s, (size_t)(colon - s));
	host[colon - s] = '\0';
	*ret_port = (uint16_t)port;
	return true;
}

int main(void)
{
	static struct console c;
	static char gateway_host[CONSOLE_HOST_MAX + 1];
	struct web_server *web = NULL;
	int64_t port = 8080;
	int sig = 0, rc = 1;

	int level = log_level_parse(config_str("SHOP_LOG_LEVEL", "info"));
	log_init(CONSOLE_SERVICE_NAME, level < 0 ? LOG_LVL_INFO : (enum log_level)level);
	xalloc_init_cjson();

	/* Signals are taken by sigwait below: every thread inherits the mask. */
	sigset_t set;
	sigemptyset(&set);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGINT);
	pthread_sigmask(SIG_BLOCK, &set, NULL);
	signal(SIGPIPE, SIG_IGN);

	const char *gateway = config_str("SHOP_CONSOLE_GATEWAY", CONSOLE_GATEWAY_DEFAULT);
	if (!console_parse_host_port(gateway, gateway_host, sizeof(gateway_host),
				     &c.gateway_port)) {
		log_error(NULL, "SHOP_CONSOLE_GATEWAY must be host:port, not %s", gateway);
		return 2;
	}
	c.gateway_host = gateway_host;
	if (config_int("SHOP_HTTP_PORT", 8080, 1, 65535, &port) != SHOP_OK)
		return 2; /* config_int named the variable on stderr */
	const char *monitor = config_str("SHOP_CONSOLE_NATS_MONITOR", CONSOLE_NATS_MONITOR_DEFAULT);
	if (!console_monitor_urls_parse(&c, monitor)) {
		log_error(NULL,
			  "SHOP_CONSOLE_NATS_MONITOR must list 1 to %d http://host:port URLs, "
			  "comma-separated, not %s",
			  CONSOLE_NATS_NODES_MAX, monitor);
		return 2;
	}
	pthread_mutex_init(&c.mu, NULL);
	clock_cond_init(&c.stop_cond);
	console_view_init(&c.view);
	console_metrics_init(&c);

	const char *nats_url = config_str("SHOP_NATS_URL", "nats://127.0.0.1:4222");
	/* Connecting succeeds while the server is down and retries forever:
	 * /readyz says 503 until it is up. */
	if (bus_connect(nats_url, CONSOLE_SERVICE_NAME, &c.bus) != SHOP_OK) {
		log_error(NULL, "cannot create a NATS connection to %s", nats_url);
		goto out;
	}
	/* Listed by $SRV.PING like the six services; without it the console
	 * still serves, merely unlisted. */
	if (bus_service_register(c.bus, CONSOLE_SERVICE_NAME, SHOP_VERSION, console_registry_status,
				 &c, &c.registry) != SHOP_OK)
		log_warn(NULL, "not registered with the NATS service API");
	else
		log_set_instance(bus_service_id(c.registry));
	/* Its own lines on logs.console.<level>, like every service's. */
	if (bus_log_start(c.bus, CONSOLE_SERVICE_NAME, &c.bus_log) == SHOP_OK)
		log_set_sink(bus_log_sink, c.bus_log);
	else
		log_warn(NULL, "log lines not published on NATS");
	console_collect_start(&c);
	if (web_server_start(config_str("SHOP_HTTP_BIND", "0.0.0.0"), (uint16_t)port, console_http,
			     &c, &web) != SHOP_OK) {
		log_error(NULL, "cannot listen on port %lld", (long long)port);
		goto out;
	}
	log_info(NULL, "ready: http port %lld, nats %s, orders to %s, nats monitoring %s",
		 (long long)port, nats_url, gateway, monitor);
	sigwait(&set, &sig);
	log_info(NULL, "signal %d: stopping", sig);
	rc = 0;
out:
	/* Streams end first and stop their watches; then the connection goes. */
	web_server_stop(web);
	console_collect_stop(&c);
	bus_service_unregister(c.registry);
	log_set_sink(NULL, NULL);
	bus_log_stop(c.bus_log);
	bus_close(c.bus);
	metrics_registry_free(c.metrics);
	log_info(NULL, "stopped");
	return rc;
}
