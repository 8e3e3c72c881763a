/*
 * The cumulative ack: the walk over a stream's stored seqs, the bound on
 * how far a seq may jump, and the Ack message. See ack.h.
 */
#include "edgetel/ack.h"

#include "edgetel/codec.h"

uint64_t et_ack_seq_limit(const struct et_store_stream *st, int64_t now_ms)
{
    uint64_t top, allowance, secs;
    int64_t since;

    top = st ? (st->top_seq > st->acked_through ? st->top_seq : st->acked_through) : 0;
    if (top == 0)
        return ET_ACK_FIRST_SEQ_MAX;
    /* Since the top seq was stored; a stream with an ack but no batch
     * (migrated from before streams) counts from its start. Instances'
     * clocks may differ a little: never less than nothing. */
    since = st->top_seq ? st->top_received_ms : st->started_ms;
    /* In unsigned arithmetic: the two clocks may be as far apart as int64 goes. */
    secs = now_ms > since ? ((uint64_t)now_ms - (uint64_t)since) / 1000 : 0;
    if (secs > (UINT64_MAX - ET_ACK_SEQ_JUMP) / ET_ACK_SEQ_JUMP_PER_S)
        return UINT64_MAX;
    allowance = ET_ACK_SEQ_JUMP + secs * ET_ACK_SEQ_JUMP_PER_S;
    return top > UINT64_MAX - allowance ? UINT64_MAX : top + allowance;
}

int et_ack_advance(struct et_store_writer *w, const char *device, const char *stream,
                   uint64_t floor, uint64_t *acked_through)
{
    uint64_t seqs[ET_ACK_SCAN_SEQS];
    uint64_t start, ack;
    size_t n, i;
    int ret;

    ret = et_store_ack_get(w, device, stream, &start);
    if (ret < 0)
        return ret;
    ack = start;
    if (floor > ack)
        ack = floor > ET_STORE_SEQ_MAX ? ET_STORE_SEQ_MAX : floor;
    /* Page through the stored seqs above the ack until the first gap; a
     * full page without one may have more behind it. */
    do {
        ret = et_store_seqs_after(w, device, stream, ack, seqs, ET_ACK_SCAN_SEQS, &n);
        if (ret < 0)
            return ret;
        for (i = 0; i < n && seqs[i] == ack + 1; i++)
            ack++;
    } while (i == ET_ACK_SCAN_SEQS);

    if (ack != start) {
        ret = et_store_ack_set(w, device, stream, ack);
        if (ret < 0)
            return ret;
    }
    *acked_through = ack;
    return 0;
}

int et_ack_encode(const char *device, const uint8_t *stream_id, uint64_t seq,
                  uint64_t acked_through, uint8_t **out, size_t *len)
{
    uint64_t selective = seq;

    return et_wire_encode_ack(device, stream_id, acked_through, &selective,
                              seq > acked_through ? 1 : 0, out, len);
}
