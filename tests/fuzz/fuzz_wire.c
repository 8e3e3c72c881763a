/*
 * libFuzzer target for the wire decoders: everything the aggregator, the
 * agent and the issuer take from the broker (Batch, Ack, Status,
 * ConfigReport, CertRequest, CertReply), plus the peek the agent uses on
 * its own stored batches. A decoded batch is walked the way the
 * aggregator walks it (times, every sample's value).
 *   clang, -DET_FUZZ=ON; run: ./fuzz_wire -max_len=4096
 */
#include <stdlib.h>
#include <string.h>

#include "edgetel/cert_wire.h"
#include "edgetel/codec.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    Edgetel__V1__Batch *b;
    Edgetel__V1__Ack *a;
    Edgetel__V1__Status *s;
    Edgetel__V1__ConfigReport *r;
    Edgetel__V1__CertRequest *rq;
    Edgetel__V1__CertReply *rp;
    uint8_t boot[ET_BOOT_ID_LEN];
    enum et_time_quality tq;
    char err[160];

    et_wire_peek_batch(data, size, boot, &tq);
    if (et_wire_decode_batch(data, size, &b, err, sizeof(err)) == 0) {
        int64_t *mono = malloc((b->n_samples ? b->n_samples : 1) * sizeof(*mono));

        if (mono) {
            et_wire_sample_times(b, mono);
            for (size_t i = 0; i < b->n_samples; i++) {
                const Edgetel__V1__Sample *x = b->samples[i];

                /* What the validator promises, checked on every input. */
                if (x->metric >= b->n_metrics || !b->metrics[x->metric]->name[0])
                    abort();
                if (x->value_case == EDGETEL__V1__SAMPLE__VALUE_STR &&
                    strlen(x->str) > ET_VALUE_STR_MAX)
                    abort();
            }
            free(mono);
        }
        et_wire_free_batch(b);
    }
    if (et_wire_decode_ack(data, size, &a, err, sizeof(err)) == 0)
        edgetel__v1__ack__free_unpacked(a, NULL);
    if (et_wire_decode_status(data, size, &s, err, sizeof(err)) == 0)
        edgetel__v1__status__free_unpacked(s, NULL);
    if (et_wire_decode_config_report(data, size, &r, err, sizeof(err)) == 0) {
        /* What the relay relies on: a bounded message with a valid id. */
        if (size > ET_WIRE_CONFIG_REPORT_MAX || !et_device_id_valid(r->device_id))
            abort();
        edgetel__v1__config_report__free_unpacked(r, NULL);
    }
    if (et_cert_request_decode(data, size, &rq, err, sizeof(err)) == 0) {
        if (!rq->csr.len || rq->csr.len > ET_CERT_CSR_MAX)
            abort();
        edgetel__v1__cert_request__free_unpacked(rq, NULL);
    }
    if (et_cert_reply_decode(data, size, &rp, err, sizeof(err)) == 0) {
        if (rp->result == EDGETEL__V1__CERT_RESULT__CERT_RESULT_ISSUED && !rp->certificate.len)
            abort();
        edgetel__v1__cert_reply__free_unpacked(rp, NULL);
    }
    return 0;
}
