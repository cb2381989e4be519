/*
 * version.h - the shop's version, as every program reports it.
 *
 * The NATS service registry ($SRV.INFO, `shopctl services`) shows it per
 * instance, so two releases running side by side during a rollout can be
 * told apart. Semantic versioning; bumped when a release is cut.
 */
#ifndef SHOP_CORE_VERSION_H
#define SHOP_CORE_VERSION_H

#define SHOP_VERSION "0.9.0"

#endif
