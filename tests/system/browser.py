#!/usr/bin/env python3
"""The console page in headless Chromium, driven over the DevTools protocol.

Run by tests/system/browser.sh in the browser image (infra/docker/Dockerfile,
Debian's chromium and python3-websocket) on the compose network, with the
Docker socket lent to it. One page load, then everything is watched live on
that page, never reloaded:

  1. every service of the deployment is drawn up, with the three NATS nodes
     (each by its server name) and PostgreSQL;
  2. an order placed through the gateway (not the page) shows up among the
     recent orders; clicking it draws its saga, which must reach SHIPPED
     with every event of a happy order, each in its service's lane;
  3. a service stopped through the Docker API (what `docker compose stop`
     does) turns red on the page within STOP_RED_S seconds of the stop
     returning, and green again after a start, with a new instance;
  4. a NATS node killed through the Docker API (SIGKILL, what `docker
     compose kill` does) turns red on the page within NODE_RED_S seconds
     while the other two stay up, and up again after a start.

Screenshots go to $OUT (build/screenshots on the host): the whole page
and each of its sections (the README's pictures are copies of these). Prints TAP lines
numbered on from argv[1]; exit status 0 when all passed.
"""
import base64
import http.client
import json
import os
import socket
import subprocess
import sys
import time
import urllib.request

import websocket

CONSOLE = os.environ.get("CONSOLE", "http://console:8080")
GATEWAY = os.environ.get("GATEWAY", "http://gateway:8080")
OUT = os.environ.get("OUT", "/out")
PROJECT = os.environ.get("COMPOSE_PROJECT_NAME", "shoptest")
SERVICES = os.environ.get("SHOP_SERVICES", "").split()
STOPPED = os.environ.get("BROWSER_STOP_SERVICE", "shipping")
NATS_NODES = ["nats-1", "nats-2", "nats-3"]
KILLED_NODE = os.environ.get("BROWSER_KILL_NODE", "nats-3")
DEVTOOLS_PORT = 9222
# Bounds of the waits. The page polls the console every 500 ms and the
# console finds a gone instance within about 1.2 s (console.h); a stopped
# instance unregisters at once, so 3 s after the stop returned is slack.
STOP_RED_S = 3.0
LOAD_S = 30.0      # the page drawn, every service up
SHIPPED_S = 40.0   # the order placed to SHIPPED on the page (dispatch delay included)
START_GREEN_S = 60.0  # a started service is up again on the page
# The console reads each node's /varz every second (a dead node's name no
# longer resolves, or its port refuses, at once) and the page polls every
# 500 ms.
NODE_RED_S = 5.0
HAPPY = ["PlaceOrder", "OrderPlaced", "StockReserved", "OrderReserved", "PaymentAuthorized",
         "OrderPaid", "ShipmentScheduled", "ShipmentDispatched", "OrderShipped"]
LANES = ["gateway", "orders", "inventory", "payments", "shipping", "notifications"]

n = int(sys.argv[1]) if len(sys.argv) > 1 else 0
failed = 0


def tap(ok, name, *diag):
    global n, failed
    n += 1
    if not ok:
        failed += 1
    print(("ok" if ok else "not ok") + " %d - %s" % (n, name))
    for line in diag:
        print("#   " + str(line))
    sys.stdout.flush()


class Cdp:
    """One DevTools session on one page: commands and their answers."""

    def __init__(self, url):
        self.ws = websocket.create_connection(url, timeout=30, suppress_origin=True)
        self.next_id = 0

    def call(self, method, **params):
        self.next_id += 1
        mid = self.next_id
        self.ws.send(json.dumps({"id": mid, "method": method, "params": params}))
        while True:
            msg = json.loads(self.ws.recv())
            if msg.get("id") == mid:
                if "error" in msg:
                    raise RuntimeError("%s: %s" % (method, msg["error"]))
                return msg.get("result", {})

    def eval(self, expr):
        r = self.call("Runtime.evaluate", expression=expr, returnByValue=True, awaitPromise=True)
        if "exceptionDetails" in r:
            return None
        return r.get("result", {}).get("value")

    def wait(self, expr, seconds):
        """Seconds until expr (JavaScript) was true on the page, or None."""
        t0 = time.monotonic()
        while time.monotonic() - t0 < seconds:
            if self.eval(expr):
                return time.monotonic() - t0
            time.sleep(0.1)
        return None

    def screenshot(self, name, element=None, scale=1.0):
        """The whole page, or one element, as a PNG in OUT (scaled down
        by scale, so the README's copies stay small)."""
        box = self.eval(
            "(() => { const e = %s; const r = e.getBoundingClientRect();"
            " return {x: r.left + scrollX, y: r.top + scrollY, width: r.width, height: r.height}; })()"
            % ("document.getElementById(%s)" % json.dumps(element) if element
               else "document.documentElement"))
        box["scale"] = scale
        r = self.call("Page.captureScreenshot", format="png", captureBeyondViewport=True, clip=box)
        path = os.path.join(OUT, name)
        with open(path, "wb") as f:
            f.write(base64.b64decode(r["data"]))
        os.chmod(path, 0o644)
        return path


class DockerSocket(http.client.HTTPConnection):
    """HTTP to the Docker Engine API over its Unix socket."""

    def __init__(self):
        super().__init__("docker", timeout=60)

    def connect(self):
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.settimeout(60)
        self.sock.connect("/var/run/docker.sock")


def docker(action, service):
    """Stops, kills or starts the service's container as compose names it; true on success."""
    c = DockerSocket()
    c.request("POST", "/containers/%s-%s-1/%s" % (PROJECT, service, action))
    r = c.getresponse()
    r.read()
    c.close()
    return r.status in (204, 304)


def place_order():
    body = json.dumps({
        "customer_id": "browser-test", "email": "ada@example.com",
        "items": [{"sku": "SKU-MOUSE", "quantity": 1}],
        "payment": {"card_token": "tok_visa"},
        "shipping_address": {"name": "Ada Lovelace", "line1": "12 Analytical St",
                             "city": "London", "postal_code": "N1 7AA", "country": "GB"}})
    req = urllib.request.Request(GATEWAY + "/orders", data=body.encode(), method="POST",
                                 headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=10) as r:
        return json.load(r)["order_id"]


def js(value):
    return json.dumps(value)


def service_state(svc):
    return "(document.querySelector('.svc[data-service=%s]') || {dataset: {}}).dataset.state" % js(svc)


def node_states():
    """The NATS rows of the page as "name:state" (the name once /varz gave it)."""
    return ("[...document.querySelectorAll('#nodes tr')].map((tr) =>"
            " tr.cells[0].textContent + ':' + tr.dataset.state).join(' ')")


def nodes_are(states):
    return node_states() + " === " + js(" ".join("%s:%s" % (n, states.get(n, "up")) for n in NATS_NODES))


def main():
    os.makedirs(OUT, exist_ok=True)
    profile = "/tmp/chromium-profile"
    browser = subprocess.Popen(
        ["chromium", "--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
         "--no-first-run", "--hide-scrollbars", "--remote-allow-origins=*",
         "--remote-debugging-address=127.0.0.1", "--remote-debugging-port=%d" % DEVTOOLS_PORT,
         "--user-data-dir=" + profile, "--window-size=1400,1900", "about:blank"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        target = None
        for _ in range(150):
            try:
                with urllib.request.urlopen("http://127.0.0.1:%d/json/list" % DEVTOOLS_PORT,
                                            timeout=2) as r:
                    pages = [t for t in json.load(r) if t.get("type") == "page"]
                if pages:
                    target = pages[0]
                    break
            except OSError:
                pass
            time.sleep(0.2)
        if not target:
            tap(False, "headless chromium starts and offers a page over the DevTools protocol")
            return
        cdp = Cdp(target["webSocketDebuggerUrl"])
        cdp.call("Page.enable")
        cdp.call("Page.navigate", url=CONSOLE + "/")

        # 1. Every service drawn up, NATS and PostgreSQL up.
        want = sorted(set(SERVICES) | {"console"})
        all_up = ("(() => { const want = %s; const s = [...document.querySelectorAll('.svc')];"
                  " return want.every((w) => s.some((e) => e.dataset.service === w && e.dataset.state === 'up')); })()"
                  % js(want))
        took = cdp.wait(all_up + " && " + nodes_are({}) +
                        " && document.getElementById('pg').dataset.state === 'up'", LOAD_S)
        drawn = cdp.eval("[...document.querySelectorAll('.svc')].map((e) => e.dataset.service + ':' + e.dataset.state).join(' ')")
        tap(took is not None and len(want) >= 7,
            "the page draws every service of the registry up, with the three NATS nodes and PostgreSQL up",
            "wanted: %s" % " ".join(want), "drawn: %s" % drawn,
            "nodes: %s" % cdp.eval(node_states()))

        # 2. An order placed through the gateway, followed on the page.
        order = place_order()
        link = ("[...document.querySelectorAll('#recent a')].find((a) => a.dataset.order === %s)"
                % js(order))
        listed = cdp.wait(link + " !== undefined", SHIPPED_S)
        if listed is not None:
            cdp.eval(link + ".click()")
        shipped = cdp.wait("document.getElementById('timeline').dataset.order === %s &&"
                           " document.getElementById('timeline').dataset.status === 'SHIPPED'"
                           " && document.querySelector('#timeline td[data-type=OrderShipped]') !== null"
                           % js(order), SHIPPED_S)
        tap(listed is not None and shipped is not None,
            "an order placed through the gateway appears on the page and its saga reaches SHIPPED, live",
            "order %s, listed after %s s, SHIPPED after %s s more" % (order, listed, shipped))
        lanes = cdp.eval("document.getElementById('timeline').dataset.order === %s ?"
                         " [...document.querySelectorAll('#timeline td[data-type]')]"
                         ".map((td) => [td.dataset.type, td.cellIndex]) : []" % js(order)) or []
        types = [t for t, _ in lanes]
        misplaced = [t for t, col in lanes
                     if col < 1 or col > len(LANES) or
                     t in ("OrderPlaced", "OrderShipped") and LANES[col - 1] != "orders"]
        tap(all(t in types for t in HAPPY) and not misplaced and
            types.index("OrderPlaced") < types.index("OrderShipped"),
            "the order's timeline on the page holds every event of a happy saga, each in its service's lane, in time order",
            "timeline: %s" % lanes)
        cdp.screenshot("console-shipped.png", scale=0.6)
        for part in ("services", "orders", "infra", "consumers", "outbox", "events", "place", "saga"):
            cdp.screenshot("console-%s.png" % part, "sec-" + part, 0.8)

        # 3. A service stopped turns red, and green again after a start.
        before = cdp.eval("[...document.querySelectorAll('.svc[data-service=%s] .chip')].map((c) => c.dataset.instance)"
                          % js(STOPPED)) or []
        ok_stop = docker("stop", STOPPED)
        red = cdp.wait(service_state(STOPPED) + " === 'down'", STOP_RED_S) if ok_stop else None
        gone = cdp.eval("[...document.querySelectorAll('.svc[data-service=%s] .chip')].map((c) => c.dataset.state)"
                        % js(STOPPED))
        tap(red is not None,
            "a stopped service turns red on the page within %g s of the stop" % STOP_RED_S,
            "%s stopped: %s; red after %s s; its instances: %s" % (STOPPED, ok_stop, red, gone))
        cdp.screenshot("console-services-down.png", "sec-services", 0.8)
        ok_start = docker("start", STOPPED)
        green = cdp.wait(service_state(STOPPED) + " === 'up'", START_GREEN_S) if ok_start else None
        after = cdp.eval("[...document.querySelectorAll('.svc[data-service=%s] .chip[data-state=ready]')].map((c) => c.dataset.instance)"
                         % js(STOPPED)) or []
        tap(green is not None and after and not set(after) & set(before),
            "started again, the service turns green on the page with a new instance",
            "green after %s s; instances before %s, ready now %s" % (green, before, after))
        cdp.screenshot("console.png", scale=0.6)

        # 4. A NATS node killed turns red, the other two stay up; up again after a start.
        ok_kill = docker("kill", KILLED_NODE)
        red = cdp.wait(nodes_are({KILLED_NODE: "down"}), NODE_RED_S) if ok_kill else None
        tap(red is not None,
            "a killed NATS node turns red on the page within %g s, the other two stay up" % NODE_RED_S,
            "%s killed: %s; red after %s s; nodes: %s" % (KILLED_NODE, ok_kill, red, cdp.eval(node_states())))
        cdp.screenshot("console-infra-node-down.png", "sec-infra", 0.8)
        ok_start = docker("start", KILLED_NODE)
        up = cdp.wait(nodes_are({}), START_GREEN_S) if ok_start else None
        tap(up is not None,
            "started again, the NATS node is up on the page",
            "up after %s s; nodes: %s" % (up, cdp.eval(node_states())))
    finally:
        browser.terminate()
        try:
            browser.wait(10)
        except subprocess.TimeoutExpired:
            browser.kill()


if __name__ == "__main__":
    try:
        main()
    except Exception as e:  # a broken harness is a failed case, never a pass
        tap(False, "the browser test runs to its end", repr(e))
    sys.exit(1 if failed else 0)
