/*
 * The front door to a store (library et_store): open one by type and get
 * its writer (for ingest) and its reader (for edgetelctl, and later a web
 * view), and its config part (for config push and the relay). The row
 * types and the interfaces are store.h, store_writer.h, store_reader.h
 * and store_config.h, in et_cloud, which links no
 * database; this header is what a program that opens a real store adds.
 */
#ifndef EDGETEL_STORE_OPEN_H
#define EDGETEL_STORE_OPEN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "edgetel/store.h"

/**
 * The store type a target names: "postgresql" for a postgresql:// or
 * postgres:// URI or libpq keywords (text with an '='), "sqlite" for
 * anything else (a file). What edgetelctl --store goes by.
 */
const char *et_store_type_of(const char *target);

/** Whether this build has a backend of type ("sqlite", "postgresql"). */
bool et_store_type_known(const char *type);

/**
 * target as it may be shown to a person: a password in a PostgreSQL
 * connection string (URI or keywords) replaced by ***.
 */
void et_store_describe(const char *target, char *out, size_t len);

/**
 * Open a store of the given type ("sqlite", "postgresql"; NULL: the type
 * et_store_type_of(target) says). For SQLite target is the database file,
 * created with its schema on first open unless ET_STORE_READONLY is set;
 * for PostgreSQL a libpq connection string, whose database must exist:
 * the schema is made in its current schema (search_path) on first open.
 * Opened for writing, the store is first checked for damage (SQLite's
 * quick_check, bounded in time) and refused when damaged: nothing is
 * written to it, moved or deleted.
 * @return 0; -ENOENT when a read-only store does not exist; -EPROTONOSUPPORT
 *         for an unknown type; -EPROTO for a file that is not an edgetel
 *         store or is of a newer schema; -EUCLEAN for a damaged store, with
 *         a whole message in err that names the file and says what to do;
 *         -errno otherwise. Except for -EUCLEAN, err gets a reason for a
 *         person that does not repeat the path.
 */
int et_store_open(struct et_store **out, const char *type, const char *target,
                  unsigned flags, char *err, size_t errlen);

/**
 * Upkeep a writer does now and then (the aggregator: at start and every
 * few minutes), outside any transaction. PostgreSQL: the samples' daily
 * partitions for the next days are made, and with retention_ms > 0 every
 * partition wholly older than now_ms - retention_ms is dropped (whole:
 * rows are never deleted one by one). SQLite has nothing to do.
 * @param now_ms  the wall clock, Unix ms.
 * @return 0; -EOPNOTSUPP for retention on a backend that cannot drop old
 *         samples (SQLite); -EROFS on a read-only store; -errno with err
 *         set otherwise (a partition that could not be made or dropped:
 *         the next call tries again).
 */
int et_store_maintain(struct et_store *s, int64_t now_ms, int64_t retention_ms, char *err,
                      size_t errlen);

/** Close; NULL is a no-op. An open transaction is rolled back. */
void et_store_close(struct et_store *s);

/**
 * The store's writer (store_writer.h); NULL when it was opened
 * ET_STORE_READONLY. It lives as long as s.
 */
struct et_store_writer *et_store_writer(struct et_store *s);

/** The store's reader (store_reader.h). It lives as long as s. */
struct et_store_reader *et_store_reader(struct et_store *s);

struct et_store_config;

/**
 * The store's config part (store_config.h): desired configs, devices'
 * groups and running versions, reports. It lives as long as s; opened
 * ET_STORE_READONLY its calls that write answer -EROFS.
 */
struct et_store_config *et_store_config(struct et_store *s);

#endif
