/*
 * shopctl - the operator's command line, talking to NATS directly.
 *
 *   shopctl publish SUBJECT MSG_ID < payload.json
 *       publishes one message with Nats-Msg-Id MSG_ID and waits for the
 *       JetStream ack (the system tests use it to inject duplicated and
 *       out-of-order events; operators to replay a dead letter by hand)
 *   shopctl services [--json]
 *       lists every service instance that answers the NATS service API's
 *       $SRV.PING: service, instance id, version, endpoints, and whether
 *       its status endpoint says ready; one line per instance, sorted
 *       (shopctl_services.c). Exit status 0 when any answered.
 *
 * SHOP_NATS_URL names the servers (default nats://127.0.0.1:4222).
 * Exit status: 0 stored, 3 stored earlier (duplicate), 1 error, 2 usage.
 */
#include "shopctl.h"

#include "bus/bus.h"
#include "core/config.h"
#include "core/xalloc.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Largest payload shopctl reads from standard input. */
#define SHOPCTL_PAYLOAD_MAX (1024 * 1024)

static int shopctl_usage(void)
{
	fprintf(stderr, "usage: shopctl publish SUBJECT MSG_ID < payload\n"
			"       shopctl services [--json]\n");
	return 2;
}

static int shopctl_publish(const char *subject, const char *msg_id)
{
	int rc = 1;
	struct bus *bus = NULL;
	char *payload = xmalloc(SHOPCTL_PAYLOAD_MAX + 1);
	size_t len = fread(payload, 1, SHOPCTL_PAYLOAD_MAX + 1, stdin);
	if (len > SHOPCTL_PAYLOAD_MAX) {
		fprintf(stderr, "shopctl: payload larger than %d bytes\n", SHOPCTL_PAYLOAD_MAX);
		goto out;
	}
	payload[len] = '\0';
	const char *url = config_str("SHOP_NATS_URL", "nats://127.0.0.1:4222");
	if (bus_connect(url, "shopctl", &bus) != SHOP_OK) {
		fprintf(stderr, "shopctl: cannot connect to %s\n", url);
		goto out;
	}
	struct bus_out msg = { .subject = subject, .msg_id = msg_id, .data = payload, .len = len };
	bool duplicate = false;
	shop_status st = bus_publish(bus, &msg, &duplicate);
	if (st != SHOP_OK) {
		fprintf(stderr, "shopctl: publish failed: %s\n", shop_status_name(st));
		goto out;
	}
	printf("%s\n", duplicate ? "duplicate" : "stored");
	rc = duplicate ? 3 : 0;
out:
	bus_close(bus);
	free(payload);
	return rc;
}

int main(int argc, char **argv)
{
	if (argc == 4 && strcmp(argv[1], "publish") == 0)
		return shopctl_publish(argv[2], argv[3]);
	if (argc >= 2 && argc <= 3 && strcmp(argv[1], "services") == 0) {
		if (argc == 3 && strcmp(argv[2], "--json") != 0)
			return shopctl_usage();
		return shopctl_services(argc == 3);
	}
	return shopctl_usage();
}
