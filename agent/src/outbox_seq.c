/*
 * The seq sidecar, PATH.seq: what keeps a seq from being handed out twice
 * when the database alone cannot (a power cut lost its last commits, or a
 * damaged one was replaced), and the outbox's stream id, which must live
 * exactly as long as the seqs it names. See "How a seq is kept from
 * repeating" and "Streams" in edgetel/outbox.h.
 *
 * The file is three or four lines of text:
 *   edgetel-outbox-seq 2
 *   stream HEX F      the stream id (32 hex digits) and its first seq
 *   reserved N        no seq above N was used
 *   clean M           only after a clean close: no seq above M was used
 *                     (M is at least the database's mark)
 * and is only ever replaced whole (a new file, fsync, rename, fsync of the
 * directory), so a crash leaves the old one or the new one. Version 1, from
 * before streams, has no stream line; it is still read, and the outbox then
 * gets a stream whose first seq is where its seqs continue.
 *
 * The stream id is kept in the database's meta table too (key 'stream',
 * a blob, and 'stream_first'), so it survives what the seqs survive: the
 * sidecar outlives a damaged database that is moved aside, the database's
 * own mark outlives a lost sidecar.
 */
#include "outbox_internal.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <sys/random.h>
#include <unistd.h>

#include "edgetel/log.h"
#include "edgetel/sqlite.h"

/*
 * Seqs the sidecar reserves at a time. One sidecar write (two fsyncs) per
 * block; after a crash up to one block of seqs is skipped. At one batch
 * every 5 s a block lasts over an hour; a 64-bit seq never runs out.
 */
#define OUTBOX_SEQ_BLOCK 1024

#define SEQ_FILE_MAGIC_V1 "edgetel-outbox-seq 1\n"
#define SEQ_FILE_MAGIC "edgetel-outbox-seq 2\n"
#define STREAM_HEX_LEN (2 * ET_OUTBOX_STREAM_ID_LEN)

struct seq_file {
    bool present;
    uint64_t reserved;
    bool clean;
    uint64_t clean_hwm;
    bool has_stream;            /* version 2 */
    uint8_t stream_id[ET_OUTBOX_STREAM_ID_LEN];
    uint64_t stream_first;
};

static void stream_hex(const uint8_t *id, char out[STREAM_HEX_LEN + 1])
{
    static const char digits[] = "0123456789abcdef";

    for (size_t i = 0; i < ET_OUTBOX_STREAM_ID_LEN; i++) {
        out[2 * i] = digits[id[i] >> 4];
        out[2 * i + 1] = digits[id[i] & 0xf];
    }
    out[STREAM_HEX_LEN] = '\0';
}

/* 32 lower-case hex digits into the id; false for anything else. */
static bool stream_unhex(const char *hex, uint8_t *id)
{
    if (strlen(hex) != STREAM_HEX_LEN)
        return false;
    for (size_t i = 0; i < STREAM_HEX_LEN; i++) {
        char c = hex[i];
        unsigned v;

        if (c >= '0' && c <= '9')
            v = (unsigned)(c - '0');
        else if (c >= 'a' && c <= 'f')
            v = (unsigned)(c - 'a' + 10);
        else
            return false;
        id[i / 2] = i % 2 ? (uint8_t)(id[i / 2] | v) : (uint8_t)(v << 4);
    }
    return true;
}

/*
 * Whether text is the start of a clean line and no more: what a clean
 * mark written in place (seq_mark_in_place) leaves when the power goes
 * during the write. The reservation before it is intact, so it reads as
 * "not clean", never as garbage.
 */
static bool clean_line_cut_short(const char *text)
{
    static const char line[] = "clean ";
    size_t n = strlen(text);

    if (n == 0 || strchr(text, '\n'))
        return false;
    if (strncmp(text, line, n < sizeof(line) - 1 ? n : sizeof(line) - 1) != 0)
        return false;
    return n <= sizeof(line) - 1 || strspn(text + sizeof(line) - 1, "0123456789") ==
                                        n - (sizeof(line) - 1);
}

/*
 * Read PATH.seq. A missing file is no error (first start). A file that
 * cannot be parsed is reported and treated as missing: the database's own
 * mark is then all there is.
 */
static void seq_file_read(const struct et_outbox *ob, struct seq_file *sf)
{
    char buf[256];
    unsigned long long reserved, clean, first;
    int used = 0, used2 = 0;
    const char *p;
    ssize_t n;
    int fd;

    memset(sf, 0, sizeof(*sf));
    fd = open(ob->seq_path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        if (errno != ENOENT)
            et_warn(OUTBOX_LOG, "%s: cannot read: %s; seqs continue from the database alone",
                    ob->seq_path, strerror(errno));
        return;
    }
    n = read(fd, buf, sizeof(buf) - 1);
    close(fd);
    if (n < 0) {
        et_warn(OUTBOX_LOG, "%s: cannot read: %s; seqs continue from the database alone",
                ob->seq_path, strerror(errno));
        return;
    }
    buf[n] = '\0';
    p = buf;
    if (strncmp(p, SEQ_FILE_MAGIC, strlen(SEQ_FILE_MAGIC)) == 0) {
        char hex[STREAM_HEX_LEN + 1];

        p += strlen(SEQ_FILE_MAGIC);
        if (sscanf(p, "stream %32[0-9a-f] %llu\n%n", hex, &first, &used) != 2 || used == 0 ||
            !stream_unhex(hex, sf->stream_id) || first == 0)
            goto garbage;
        sf->has_stream = true;
        sf->stream_first = first;
        p += used;
    } else if (strncmp(p, SEQ_FILE_MAGIC_V1, strlen(SEQ_FILE_MAGIC_V1)) == 0) {
        p += strlen(SEQ_FILE_MAGIC_V1);
    } else {
        goto garbage;
    }
    used = 0;
    if (sscanf(p, "reserved %llu\n%n", &reserved, &used) != 1 || used == 0)
        goto garbage;
    sf->reserved = reserved;
    if (p[used] != '\0') {
        if (sscanf(p + used, "clean %llu\n%n", &clean, &used2) == 1 && used2 > 0 &&
            p[used + used2] == '\0') {
            sf->clean = true;
            sf->clean_hwm = clean;
        } else if (!clean_line_cut_short(p + used)) {
            goto garbage;
        }
    }
    sf->present = true;
    return;
garbage:
    et_warn(OUTBOX_LOG, "%s: not a seq reservation file; seqs continue from the database alone",
            ob->seq_path);
    memset(sf, 0, sizeof(*sf));
}

/* The text of PATH.seq, naming the handle's stream; the clean line, when
 * there is one, comes last (seq_mark_in_place relies on it). */
static int seq_file_format(const struct et_outbox *ob, char *buf, size_t cap,
                           uint64_t reserved, bool clean, uint64_t clean_hwm)
{
    char hex[STREAM_HEX_LEN + 1];
    int len;

    stream_hex(ob->stream_id, hex);
    len = snprintf(buf, cap, SEQ_FILE_MAGIC "stream %s %" PRIu64 "\nreserved %" PRIu64 "\n",
                   hex, ob->stream_first, reserved);
    if (clean && len >= 0 && (size_t)len < cap)
        len += snprintf(buf + len, cap - (size_t)len, "clean %" PRIu64 "\n", clean_hwm);
    return len;
}

/* Replace PATH.seq atomically: a new file, fsync, rename, fsync the directory. */
static int seq_file_write(const struct et_outbox *ob, uint64_t reserved, bool clean,
                          uint64_t clean_hwm)
{
    char buf[256];
    int len, fd, ret = 0;
    ssize_t n;

    len = seq_file_format(ob, buf, sizeof(buf), reserved, clean, clean_hwm);
    fd = open(ob->seq_tmp_path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0)
        return -errno;
    do {
        n = write(fd, buf, (size_t)len);
    } while (n < 0 && errno == EINTR);
    if (n != len) {
        ret = n < 0 ? -errno : -ENOSPC;
        goto out_close;
    }
    if (fsync(fd) < 0) {
        ret = -errno;
        goto out_close;
    }
    if (close(fd) < 0) {
        ret = -errno;
        goto out_unlink;
    }
    if (rename(ob->seq_tmp_path, ob->seq_path) < 0) {
        ret = -errno;
        goto out_unlink;
    }
    return et_outbox_sync_dir(ob);
out_close:
    close(fd);
out_unlink:
    unlink(ob->seq_tmp_path);
    return ret;
}

int et_outbox_seq_reserve(struct et_outbox *ob, uint64_t seq)
{
    uint64_t reserved = ob->reserved;
    int ret;

    if (ob->seq_armed && seq <= reserved)
        return 0;
    if (seq > reserved)
        reserved = seq - 1 + OUTBOX_SEQ_BLOCK;
    ret = seq_file_write(ob, reserved, false, 0);
    if (ret < 0) {
        /* Said once until it works again: on a full card it is tried at every batch. */
        if (!ob->seq_failing)
            et_warn(OUTBOX_LOG, "%s: cannot reserve seqs up to %" PRIu64 ": %s; new batches "
                    "wait until it can", ob->seq_path, reserved, strerror(-ret));
        ob->seq_failing = true;
        return ret;
    }
    if (ob->seq_failing)
        et_info(OUTBOX_LOG, "%s: seqs reserved again (up to %" PRIu64 ")", ob->seq_path,
                reserved);
    ob->seq_failing = false;
    ob->reserved = reserved;
    ob->seq_armed = true;
    return 0;
}

/* ---- the stream ---------------------------------------------------------- */

/*
 * 16 bytes from the kernel's random pool. Uniqueness is all that matters
 * (no secret rides on it): getrandom() without flags waits only until the
 * pool is first initialised, seconds at most after boot, and never again.
 */
static int stream_make_id(uint8_t *id)
{
    ssize_t n;

    do {
        n = getrandom(id, ET_OUTBOX_STREAM_ID_LEN, 0);
    } while (n < 0 && errno == EINTR);
    if (n < 0)
        return -errno;
    return n == ET_OUTBOX_STREAM_ID_LEN ? 0 : -EIO;
}

struct stream_meta {
    uint8_t id[ET_OUTBOX_STREAM_ID_LEN];
    bool has_id;
    uint64_t first;
};

static int read_stream_id(void *ctx, sqlite3_stmt *row)
{
    struct stream_meta *m = ctx;

    if (sqlite3_column_type(row, 0) == SQLITE_BLOB &&
        sqlite3_column_bytes(row, 0) == ET_OUTBOX_STREAM_ID_LEN) {
        memcpy(m->id, sqlite3_column_blob(row, 0), ET_OUTBOX_STREAM_ID_LEN);
        m->has_id = true;
    }
    return 0;
}

static int read_stream_first(void *ctx, sqlite3_stmt *row)
{
    ((struct stream_meta *)ctx)->first = et_sqlite_col_u64(row, 0);
    return 0;
}

/* The stream the database's meta names; m->has_id false when none. 0 or -errno. */
static int stream_meta_load(struct et_outbox *ob, struct stream_meta *m)
{
    sqlite3_stmt *s = ob->stmt[ST_META_GET];
    int ret;

    memset(m, 0, sizeof(*m));
    sqlite3_bind_text(s, 1, "stream", -1, SQLITE_STATIC);
    ret = et_sqlite_one_row(s, read_stream_id, m);
    if (ret == 0 || ret == -ENOENT) {
        sqlite3_bind_text(s, 1, "stream_first", -1, SQLITE_STATIC);
        ret = et_sqlite_one_row(s, read_stream_first, m);
    }
    return ret == -ENOENT ? 0 : ret;
}

/* Write the handle's stream into the database's meta, both keys or neither. */
static int stream_meta_save(struct et_outbox *ob)
{
    sqlite3_stmt *set = ob->stmt[ST_META_SET];
    int ret = et_sqlite_run(ob->stmt[ST_BEGIN]);

    if (ret < 0)
        return ret;
    sqlite3_bind_text(set, 1, "stream", -1, SQLITE_STATIC);
    sqlite3_bind_blob(set, 2, ob->stream_id, ET_OUTBOX_STREAM_ID_LEN, SQLITE_STATIC);
    ret = et_sqlite_run(set);
    if (ret == 0) {
        sqlite3_bind_text(set, 1, "stream_first", -1, SQLITE_STATIC);
        sqlite3_bind_int64(set, 2, et_sqlite_u64_arg(ob->stream_first));
        ret = et_sqlite_run(set);
    }
    if (ret == 0)
        ret = et_sqlite_run(ob->stmt[ST_COMMIT]);
    if (ret < 0)
        et_sqlite_run(ob->stmt[ST_ROLLBACK]);
    return ret;
}

/*
 * Decide the handle's stream, once next_seq is known: the sidecar's, else
 * the database's (a lost sidecar), else a new one whose first seq is
 * next_seq (a new outbox, or one from before streams). Then make sure the
 * database names it too. 0, or -errno when no id could be made.
 */
static int stream_start(struct et_outbox *ob, const struct seq_file *sf)
{
    struct stream_meta db;
    char hex[STREAM_HEX_LEN + 1], other[STREAM_HEX_LEN + 1];
    int ret;

    ret = stream_meta_load(ob, &db);
    if (ret < 0)
        et_warn(OUTBOX_LOG, "%s: cannot read the stream id kept in it: %s", ob->path,
                strerror(-ret));
    if (sf->has_stream) {
        memcpy(ob->stream_id, sf->stream_id, ET_OUTBOX_STREAM_ID_LEN);
        ob->stream_first = sf->stream_first;
        if (db.has_id && memcmp(db.id, ob->stream_id, ET_OUTBOX_STREAM_ID_LEN) != 0) {
            stream_hex(ob->stream_id, hex);
            stream_hex(db.id, other);
            et_warn(OUTBOX_LOG, "%s names stream %s but %s names %s (a database copied from "
                    "elsewhere?): keeping %s, which holds the seq reservation", ob->seq_path,
                    hex, ob->path, other, hex);
        }
    } else if (db.has_id) {
        memcpy(ob->stream_id, db.id, ET_OUTBOX_STREAM_ID_LEN);
        ob->stream_first = db.first ? db.first : 1;
    } else {
        ret = stream_make_id(ob->stream_id);
        if (ret < 0)
            return ret;
        ob->stream_first = ob->next_seq;
        stream_hex(ob->stream_id, hex);
        if (sf->present || ob->db_hwm > 0)
            et_info(OUTBOX_LOG, "%s: made before streams: from seq %" PRIu64 " on its batches "
                    "are stream %s", ob->path, ob->stream_first, hex);
        else
            et_info(OUTBOX_LOG, "%s: new outbox, stream %s", ob->path, hex);
    }
    if (!db.has_id || db.first != ob->stream_first ||
        memcmp(db.id, ob->stream_id, ET_OUTBOX_STREAM_ID_LEN) != 0) {
        ret = stream_meta_save(ob);
        if (ret < 0)
            et_warn(OUTBOX_LOG, "%s: cannot record the stream id in it: %s; %s keeps it",
                    ob->path, strerror(-ret), ob->seq_path);
    }
    return 0;
}

const uint8_t *et_outbox_stream_id(const struct et_outbox *ob)
{
    return ob->stream_id;
}

uint64_t et_outbox_stream_first_seq(const struct et_outbox *ob)
{
    return ob->stream_first;
}

/* ---- open and close --------------------------------------------------------- */

int et_outbox_seq_start(struct et_outbox *ob, bool replaced)
{
    struct seq_file sf;
    uint64_t last;
    int ret;

    seq_file_read(ob, &sf);
    /*
     * A clean mark may be above the database's: the last run used seqs it
     * could not store (sent from memory, or an undone group on a full
     * disk). It stopped after using them, so nothing above the mark was.
     */
    ob->last_run_clean = sf.present && sf.clean && sf.clean_hwm >= ob->db_hwm && !replaced;
    if (ob->last_run_clean) {
        last = sf.clean_hwm;
    } else {
        last = sf.reserved > ob->db_hwm ? sf.reserved : ob->db_hwm;
        if (last > ob->db_hwm && replaced)
            et_info(OUTBOX_LOG, "%s: the database was replaced; seqs continue after the reserved "
                    "seq %" PRIu64 " so that none repeats", ob->path, last);
        else if (last > ob->db_hwm)
            et_warn(OUTBOX_LOG, "%s: the last run did not stop cleanly (crash, kill or power "
                    "loss): batches it made after seq %" PRIu64 " and had not yet committed "
                    "(at most one durability window, unless storing was failing) are lost unless "
                    "they reached the aggregator; how many is not recorded. Seqs continue after "
                    "the reserved seq %" PRIu64 " so that none repeats", ob->path, ob->db_hwm,
                    last);
    }
    ob->next_seq = last + 1;
    ob->reserved = sf.reserved > last ? sf.reserved : last;
    ret = stream_start(ob, &sf);
    if (ret < 0)
        return ret;
    /*
     * Drop the "clean" mark now: a crash from here on must be seen as one.
     * If that write fails the first append tries again before storing.
     */
    ret = seq_file_write(ob, ob->reserved, false, 0);
    if (ret < 0)
        et_warn(OUTBOX_LOG, "%s: cannot write: %s; will retry before the first append",
                ob->seq_path, strerror(-ret));
    else
        ob->seq_armed = true;
    return 0;
}

/*
 * The clean mark without new space: a full disk cannot give the new file
 * seq_file_write needs, but PATH.seq already has a block, and the clean
 * text is the armed text plus one line. So when the file holds exactly the
 * armed text, write the clean text over it in place: the bytes before the
 * new line do not change, and a write cut short reads as "not clean"
 * (clean_line_cut_short). 0 or -errno.
 */
static int seq_mark_in_place(const struct et_outbox *ob, uint64_t clean_hwm)
{
    char want[256], have[256], clean[256];
    int want_len, len, fd, ret = 0;
    ssize_t n;

    want_len = seq_file_format(ob, want, sizeof(want), ob->reserved, false, 0);
    len = seq_file_format(ob, clean, sizeof(clean), ob->reserved, true, clean_hwm);
    fd = open(ob->seq_path, O_RDWR | O_CLOEXEC);
    if (fd < 0)
        return -errno;
    n = pread(fd, have, sizeof(have), 0);
    if (n != want_len || memcmp(have, want, (size_t)want_len) != 0) {
        ret = n < 0 ? -errno : -ESTALE;
        goto out;
    }
    n = pwrite(fd, clean + want_len, (size_t)(len - want_len), want_len);
    if (n != len - want_len)
        ret = n < 0 ? -errno : -ENOSPC;
    else if (fsync(fd) < 0)
        ret = -errno;
out:
    close(fd);
    return ret;
}

void et_outbox_seq_mark_clean(struct et_outbox *ob)
{
    uint64_t hwm = ob->seq_high > ob->next_seq - 1 ? ob->seq_high : ob->next_seq - 1;
    int ret = seq_file_write(ob, ob->reserved, true, hwm);

    if (ret < 0 && seq_mark_in_place(ob, hwm) == 0) {
        et_debug(OUTBOX_LOG, "%s: clean stop recorded in place (%s)", ob->seq_path,
                 strerror(-ret));
        return;
    }
    if (ret < 0)
        et_warn(OUTBOX_LOG, "%s: cannot record the clean stop: %s; the next start will take it "
                "for a crash and skip to seq %" PRIu64 " (nothing is lost)", ob->seq_path,
                strerror(-ret), ob->reserved + 1);
}
