#!/usr/bin/env python3
"""slowloris.py - the slow client of tests/system/guard.sh.

Opens HEADS connections that send a request head one byte at a time and
BODIES connections that send a whole head announcing a small body and then
trickle that body one byte at a time, all from this one address, one byte
per connection every TRICKLE seconds: never idle, never done. It watches
each connection until the server closes it or SECONDS pass, and prints one
JSON line: how many connections were opened, how many the server closed at
once (within REFUSED_WITHIN seconds: over the per-address limit), and for
the others how long each lasted before the server cut it, or that it was
still open at the end.
"""
import json
import selectors
import socket
import sys
import time

TRICKLE = 0.5        # seconds between two bytes on one connection
REFUSED_WITHIN = 1.0  # a close this soon after connecting is a refusal
HEAD = b"GET /readyz HTTP/1.1\r\nHost: gateway\r\nX-Slow: "
BODY_HEAD = (b"POST /orders HTTP/1.1\r\nHost: gateway\r\nContent-Type: application/json\r\n"
             b"Content-Length: 1000\r\n\r\n")


def main():
    host, port = sys.argv[1], int(sys.argv[2])
    heads, bodies, seconds = int(sys.argv[3]), int(sys.argv[4]), float(sys.argv[5])
    sel = selectors.DefaultSelector()
    conns = []
    for i in range(heads + bodies):
        s = socket.create_connection((host, port), timeout=5)
        kind = "head" if i < heads else "body"
        c = {"sock": s, "kind": kind, "opened": time.monotonic(), "closed": None, "sent": 0}
        try:
            s.sendall(BODY_HEAD if kind == "body" else HEAD[:1])
        except (BrokenPipeError, ConnectionResetError):
            pass  # refused at once: the select below sees the close
        c["sent"] = 1
        s.setblocking(False)
        sel.register(s, selectors.EVENT_READ, c)
        conns.append(c)
    print(json.dumps({"event": "opened", "connections": len(conns)}), flush=True)

    end = time.monotonic() + seconds
    next_byte = time.monotonic() + TRICKLE
    while time.monotonic() < end and any(c["closed"] is None for c in conns):
        timeout = max(0.0, min(next_byte, end) - time.monotonic())
        for key, _ in sel.select(timeout):
            c = key.data
            try:
                data = c["sock"].recv(4096)
            except (ConnectionResetError, BlockingIOError):
                data = b""
            if not data:  # closed by the server (an answer would be a failure: kept)
                c["closed"] = time.monotonic()
                sel.unregister(c["sock"])
                c["sock"].close()
            else:
                c["answered"] = True
        if time.monotonic() >= next_byte:
            next_byte += TRICKLE
            for c in conns:
                if c["closed"] is not None:
                    continue
                try:
                    if c["kind"] == "head" and c["sent"] < len(HEAD):
                        c["sock"].send(HEAD[c["sent"]:c["sent"] + 1])
                        c["sent"] += 1
                    else:  # the header's value, or the body, grows by a byte
                        c["sock"].send(b"x")
                except (BrokenPipeError, ConnectionResetError, BlockingIOError):
                    pass

    summary = {"event": "done", "connections": len(conns), "refused": 0, "answered": 0,
               "open_at_end": 0, "cut": {"head": [], "body": []}}
    for c in conns:
        if c.get("answered"):
            summary["answered"] += 1
        if c["closed"] is None:
            summary["open_at_end"] += 1
            c["sock"].close()
            continue
        lasted = c["closed"] - c["opened"]
        if lasted < REFUSED_WITHIN:
            summary["refused"] += 1
        else:
            summary["cut"][c["kind"]].append(round(lasted, 1))
    for kind in ("head", "body"):
        cut = summary["cut"][kind]
        summary["cut"][kind] = {"n": len(cut), "min_s": min(cut, default=0),
                                "max_s": max(cut, default=0)}
    print(json.dumps(summary), flush=True)


if __name__ == "__main__":
    main()
