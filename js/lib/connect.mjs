// connect.mjs - the connection options every JavaScript client of the shop
// uses: the servers of SHOP_NATS_URL, and the NATS user of SHOP_NATS_USER /
// SHOP_NATS_PASSWORD (compose gives the follower and the bus check the
// read-only "observer"), with replies under the user's own inbox prefix,
// _INBOX.<user>, the only inbox its permissions let it subscribe to
// (infra/nats/auth.conf, docs/security.md). Without a user: anonymous.
export function natsOptions(name, env = process.env) {
  const opts = { servers: (env.SHOP_NATS_URL || "nats://nats-1:4222").split(","), name };
  if (env.SHOP_NATS_USER) {
    Object.assign(opts, { user: env.SHOP_NATS_USER, pass: env.SHOP_NATS_PASSWORD || "", inboxPrefix: `_INBOX.${env.SHOP_NATS_USER}` });
  }
  return opts;
}
