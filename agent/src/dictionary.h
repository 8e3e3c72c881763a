/*
 * The stream's metric dictionary on the board: the entries batches refer
 * to by index (Batch.dict_id, edgetel/codec.h), kept in PATH.dict beside
 * the outbox so that it outlives restarts and the aggregator is not sent
 * it again. Internal to the agent; the batcher is its one user.
 *
 * Rules that keep every batch decodable:
 *   - An entry never changes its index, and a dictionary id is never used
 *     for two contents: the id is the seq of the first batch made with the
 *     dictionary, and seqs never repeat in a stream.
 *   - New entries are made durable (appended, fdatasync) before the batch
 *     that carries them is stored or sent (et_dictionary_save()). When
 *     they cannot be, the batch goes self-contained (its dictionary
 *     inline, dict_id 0) and the entries are forgotten.
 *   - The file names the outbox's stream; a file of another stream (a new
 *     outbox) is started afresh. A file that cannot be read is too: the
 *     next dictionary gets a new id, so nothing read with the old one
 *     changes meaning.
 *   - When the dictionary grows past ET_DICTIONARY_ROTATE entries (names
 *     that came and went: hot-plugged interfaces) a new one is begun,
 *     once no batch of the one before it is left in the outbox; the
 *     previous one is kept for as long as batches of it may be sent again.
 *
 * File: a header line "edgetel-dict 1 <stream hex>", then per dictionary a
 * line "dict <id>" and its entries, one a line in index order,
 * "<type>\t<scale>\t<name>\t<unit>\t<tags>". A line cut short by a crash is
 * cut off at the next open.
 */
#ifndef EDGETEL_DICTIONARY_H
#define EDGETEL_DICTIONARY_H

#include <stddef.h>
#include <stdint.h>

#include "edgetel/codec.h"

#define ET_DICTIONARY_ROTATE 2048

struct et_dictionary;

/**
 * Open (or start) the dictionary of the outbox at outbox_path, whose
 * stream is stream_id (ET_STREAM_ID_LEN bytes). A file that does not
 * parse is said once and started afresh. 0 or -errno.
 */
int et_dictionary_open(struct et_dictionary **out, const char *outbox_path,
                       const uint8_t *stream_id);

/** Close. NULL is a no-op. */
void et_dictionary_close(struct et_dictionary *dy);

/** The dictionary batches are made on now (borrowed: as long as dy lives). */
struct et_dict *et_dictionary_current(struct et_dictionary *dy);

/** The current or the previous dictionary with this id, or NULL. */
const struct et_dict *et_dictionary_find(const struct et_dictionary *dy, uint64_t id);

/**
 * Make the current dictionary's entries from index from on durable, with
 * seq as its id when it has none yet. 0, or -errno: then call
 * et_dictionary_undo(dy, from).
 */
int et_dictionary_save(struct et_dictionary *dy, size_t from, uint64_t seq);

/** Forget the entries from index from on (they could not be saved). */
void et_dictionary_undo(struct et_dictionary *dy, size_t from);

/**
 * Between batches: begin a new dictionary when the current one has grown
 * past ET_DICTIONARY_ROTATE and no batch below its id is left
 * (oldest_seq: the lowest seq the device still holds). True when it did.
 */
bool et_dictionary_rotate(struct et_dictionary *dy, uint64_t oldest_seq);

#endif
