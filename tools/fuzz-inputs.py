#!/usr/bin/env python3
"""fuzz-inputs.py - seed corpora and dictionaries for the fuzz targets.

Usage: fuzz-inputs.py CONTRACTS_DIR OUT_DIR

Writes OUT_DIR/seeds/<target>/ and OUT_DIR/<target>.dict for the targets in
tests/fuzz:

  codecs, roundtrip  one seed per example in contracts/examples/<name>/
                     (valid and invalid), prefixed by the byte that makes
                     fuzz_codec_at pick that codec (ct_messages order, which
                     is the index's, then place_order_request);
  envelope           the envelope examples, and every valid message example
                     wrapped in a valid envelope of its type;
  place_order        the place_order_request examples and the order bodies
                     the system tests send (tests/system/cases.sh);
  headers            request heads built from the headers and queries the
                     system tests send;
  rows               the items of every valid place_order_request example
                     and a value of each other column, each prefixed by the
                     byte that makes fuzz_rows pick that column.

Dictionaries hold the JSON tokens, every property name of the schemas as a
JSON key, their enum and const values as JSON strings, the envelope's
attributes and the message types; the headers target gets header names and
query keys instead. Output depends only on the input. Standard library only.
"""

import json
import os
import re
import sys

JSON_TOKENS = ['{', '}', '[', ']', ':', ',', '"', 'true', 'false', 'null', '-', '0', '1e9',
               '0.5', '\\u0000', '\\ud800', '\\"', '\\\\', '9007199254740991', '9007199254740992']
HEADER_TOKENS = ['GET ', 'POST ', '/orders', '/orders/', '/cancel', '/products', '?wait=', '&',
                 '\n', ': ', 'Idempotency-Key', 'traceparent', 'X-Request-Id', 'Content-Type',
                 'application/json', '; charset=utf-8', '00-', '-01', 'ff-', '-00']
ENVELOPE = ('{"specversion":"1.0","id":"0190a3e2-7c4b-7d4e-9a1f-3b5c6d7e8f90","source":"/shop/%s",'
            '"type":%s,"time":"2024-07-01T12:00:00.123Z","subject":"s","datacontenttype":'
            '"application/json","correlationid":"c","causationid":"0190a3e2-7c4b-7d4e-9a1f-3b5c6d7e8f90",'
            '"traceparent":"00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01","data":%s}')


def dict_entry(s):
    out = []
    for b in s.encode():
        if b == 0x22 or b == 0x5C:
            out.append('\\' + chr(b))
        elif 0x20 <= b < 0x7F:
            out.append(chr(b))
        else:
            out.append('\\x%02X' % b)
    return '"' + ''.join(out) + '"'


def walk(node, names, values):
    if isinstance(node, dict):
        for k, v in node.items():
            if k == 'properties' and isinstance(v, dict):
                names.update(v.keys())
            elif k == 'enum' and isinstance(v, list):
                values.update(x for x in v if isinstance(x, str))
            elif k == 'const' and isinstance(v, str):
                values.add(v)
            walk(v, names, values)
    elif isinstance(node, list):
        for v in node:
            walk(v, names, values)


def write(path, data):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, 'wb') as f:
        f.write(data)


def examples(root, name):
    found = []
    for kind in ('valid', 'invalid'):
        d = os.path.join(root, 'examples', name, kind)
        if os.path.isdir(d):
            for f in sorted(os.listdir(d)):
                with open(os.path.join(d, f), 'rb') as fh:
                    found.append((kind, f, fh.read()))
    return found


def main(argv):
    if len(argv) != 3:
        sys.exit(__doc__.strip().splitlines()[2])
    root, out = argv[1], argv[2]
    with open(os.path.join(root, 'index.json')) as f:
        index = json.load(f)
    messages = index['messages']
    # A message's examples are under its key: its name for v1,
    # <name>_v<N> for a later major (tools/contractgen.py).
    key = lambda m: m['name'] if m['version'] == 1 else '%s_v%d' % (m['name'], m['version'])
    codecs = [key(m) for m in messages] + ['place_order_request']

    names, values = set(), set()
    schema_files = [os.path.join(root, 'envelope.v1.json')]
    sd = os.path.join(root, 'schemas')
    schema_files += [os.path.join(sd, f) for f in sorted(os.listdir(sd))]
    for path in schema_files:
        with open(path) as f:
            walk(json.load(f), names, values)
    values.update(m['type'] for m in messages if 'type' in m)
    entries = JSON_TOKENS + ['"%s":' % n for n in sorted(names)] + ['"%s"' % v for v in sorted(values)]
    json_dict = ''.join('%s\n' % dict_entry(e) for e in entries).encode()
    for t in ('codecs', 'roundtrip', 'envelope', 'place_order', 'rows'):
        write(os.path.join(out, t + '.dict'), json_dict)
    write(os.path.join(out, 'headers.dict'), ''.join('%s\n' % dict_entry(e) for e in HEADER_TOKENS).encode())

    seeds = os.path.join(out, 'seeds')
    for i, name in enumerate(codecs):
        for kind, f, text in examples(root, name):
            for t in ('codecs', 'roundtrip'):
                write(os.path.join(seeds, t, '%s-%s-%s' % (name, kind, f)), bytes([i]) + text)
    for kind, f, text in examples(root, 'envelope'):
        write(os.path.join(seeds, 'envelope', '%s-%s' % (kind, f)), text)
    for m in messages:
        for kind, f, text in examples(root, key(m)):
            if kind == 'valid' and 'type' in m:
                producer = m.get('producer', 'x')
                body = (ENVELOPE % (producer, json.dumps(m['type']), text.decode().strip())).encode()
                write(os.path.join(seeds, 'envelope', 'wrapped-%s-%s' % (key(m), f)), body)
    for kind, f, text in examples(root, 'place_order_request'):
        write(os.path.join(seeds, 'place_order', '%s-%s' % (kind, f)), text)
    # fuzz_rows: the first byte picks the column (see tests/fuzz/fuzz_rows.c);
    # the gateway stores an order's items as the request's array.
    for kind, f, text in examples(root, 'place_order_request'):
        try:
            items = json.loads(text).get('items')
        except (ValueError, AttributeError):
            continue
        if kind == 'valid' and isinstance(items, list):
            write(os.path.join(seeds, 'rows', 'items-%s' % f), bytes([0]) + json.dumps(items).encode())
    for column, value in ((1, 'payment_declined'), (2, 'cust-42'), (3, 'EUR'), (4, 'order_shipped'),
                          (5, 'PENDING'), (5, 'CANCELLED')):
        write(os.path.join(seeds, 'rows', 'column%d-%s' % (column, value)), bytes([column]) + value.encode())

    # The system tests' HTTP: their order bodies, headers and queries.
    system = os.path.join(os.path.dirname(os.path.abspath(root)), 'tests', 'system', 'cases.sh')
    heads = ['GET /orders/00000000-0000-7000-8000-000000000000?wait=30\n',
             'POST /orders\nContent-Type: application/json\n',
             'POST /orders/x/cancel\nX-Request-Id: req-1\n',
             'GET /products\ntraceparent: 00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01\n']
    if os.path.exists(system):
        with open(system) as f:
            text = f.read()
        m = re.search(r'order_json\(\) \{.*?cat <<EOF\n(.*?)\nEOF', text, re.S)
        if m:
            for i, items in enumerate(['[{"sku":"SKU-CABLE","quantity":3}]',
                                       '[{"sku":"SKU-LAMP","quantity":1},{"sku":"SKU-CABLE","quantity":2}]']):
                body = m.group(1).replace('$items', items).replace('$card', 'tok_visa')
                write(os.path.join(seeds, 'place_order', 'system-%d.json' % i), body.encode())
        for h in sorted(set(re.findall(r'-H "([A-Za-z-]+: [^"$]*)', text))):
            heads.append('POST /orders\n%s\n' % h)
        for q in sorted(set(re.findall(r'\?wait=([0-9]+)', text))):
            heads.append('GET /orders/x?wait=%s\nIdempotency-Key: k-%s\n' % (q, q))
    for i, h in enumerate(heads):
        write(os.path.join(seeds, 'headers', 'head-%02d' % i), h.encode())


if __name__ == '__main__':
    main(sys.argv)
