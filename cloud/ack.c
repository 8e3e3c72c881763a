/*
 * The cumulative ack: the walk over stored seqs and the Ack message. See
 * ack.h.
 */
#include "edgetel/ack.h"

#include "edgetel/codec.h"

int et_ack_advance(struct et_store_writer *w, const char *device, uint64_t floor,
                   uint64_t *acked_through)
{
    uint64_t seqs[ET_ACK_SCAN_SEQS];
    uint64_t start, ack;
    size_t n, i;
    int ret;

    ret = et_store_ack_get(w, device, &start);
    if (ret < 0)
        return ret;
    ack = start;
    if (floor > ack)
        ack = floor > ET_STORE_SEQ_MAX ? ET_STORE_SEQ_MAX : floor;
    /* Page through the stored seqs above the ack until the first gap; a
     * full page without one may have more behind it. */
    do {
        ret = et_store_seqs_after(w, device, ack, seqs, ET_ACK_SCAN_SEQS, &n);
        if (ret < 0)
            return ret;
        for (i = 0; i < n && seqs[i] == ack + 1; i++)
            ack++;
    } while (i == ET_ACK_SCAN_SEQS);

    if (ack != start) {
        ret = et_store_ack_set(w, device, ack);
        if (ret < 0)
            return ret;
    }
    *acked_through = ack;
    return 0;
}

int et_ack_encode(const char *device, uint64_t seq, uint64_t acked_through, uint8_t **out,
                  size_t *len)
{
    uint64_t selective = seq;

    return et_wire_encode_ack(device, acked_through, &selective, seq > acked_through ? 1 : 0,
                              out, len);
}
