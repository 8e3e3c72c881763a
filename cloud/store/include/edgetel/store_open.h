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

#include <stddef.h>

#include "edgetel/store.h"

/**
 * Open a store of the given type ("sqlite"; NULL for the default); for
 * SQLite target is the database file, created with its schema on first
 * open unless ET_STORE_READONLY is set.
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
