/*
 * A device's Status through ingest: checked, recorded in one transaction,
 * and logged when its online state changes. See ingest.h.
 */
#include "ingest_priv.h"

#include "edgetel/codec.h"
#include "edgetel/config_relay.h"
#include "edgetel/log.h"
#include "edgetel/store_config.h"

/*
 * Inside the Status's transaction: what it says of the device's config.
 * A bad group list is said and ignored (the recorded groups stay); the
 * version is recorded all the same.
 */
static int ingest_status_config(struct et_ingest *ig, const Edgetel__V1__Status *st,
                                const char *device)
{
    char groups[ET_STORE_CONFIG_GROUPS_TEXT_MAX], why[160];
    int ret;

    ret = et_config_groups_canonical((const char *const *)st->groups, st->n_groups, groups,
                                     sizeof(groups), why, sizeof(why));
    if (ret < 0)
        et_warn("ingest", "device %s: the groups in its status are ignored: %s", device, why);
    return et_store_config_device_set(ig->config, device, ret < 0 ? NULL : groups,
                                      st->config_version);
}

int ingest_status(struct et_ingest *ig, const char *topic, const void *payload,
                         size_t len, int64_t now_ms, struct et_ingest_reply *reply)
{
    char why[256];
    char boot_hex[2 * ET_BOOT_ID_LEN + 1];
    Edgetel__V1__Status *st = NULL;
    struct et_store_status row;
    char stream_hex[ET_STORE_STREAM_HEX_LEN + 1];
    struct et_store_status_was was = { .created = false };
    struct et_ingest_stats *counts;
    struct et_store_stream_was stream_was = { .had = false };
    bool created = false, new_stream = false;
    int ret;

    if (len == 0) {
        /* Someone cleared the retained status (a device taken out of
         * service); the device's row keeps its last state. */
        reply->kind = ET_INGEST_IGNORED;
        ig->stats.ignored++;
        et_debug("ingest", "device %s: retained status cleared", reply->device);
        return 0;
    }
    ret = et_wire_decode_status(payload, len, &st, why, sizeof(why));
    if (ret < 0)
        return ingest_malformed(ig, reply, topic, "status", why);
    if (ingest_other_device(ig, reply, topic, "status", st->device_id))
        goto out;   /* ret is 0: dealt with */
    if (ingest_over_budget(ig, reply, "status", 0, 0, len))
        goto out;
    ingest_boot_hex(&st->boot_id, boot_hex);
    row = (struct et_store_status){
        .device = reply->device,
        .online = st->online,
        .boot_id_hex = boot_hex,
        .agent_version = st->agent_version,
        .outbox_batches = st->outbox_batches,
        .dropped_samples = st->dropped_samples,
        .clock_synced = st->clock_synced,
        .reason = st->reason,
        .device_wall_ms = st->wall_ms,
    };
    et_store_hex(st->stream_id.data, st->stream_id.len, stream_hex);
    ret = ingest_tx_begin(ig);
    /* Only an online Status is the device being heard (see ingest.h). */
    if (ret == 0 && st->online)
        ret = et_store_device_seen(ig->w, reply->device, now_ms, boot_hex, 0, &created);
    if (ret == 0)
        ret = et_store_device_status(ig->w, &row, now_ms, &was);
    if (ret == 0 && st->online && ig->config)
        ret = ingest_status_config(ig, st, reply->device);
    /* The birth Status names the stream before any batch of it arrives;
     * an agent from before streams names none. */
    if (ret == 0 && stream_hex[0])
        ret = ingest_note_stream(ig, reply->device, stream_hex, now_ms, &new_stream,
                                 &stream_was);
    if (ret == 0)
        ret = ingest_tx_commit(ig);
    if (ret < 0) {
        ret = ingest_store_failed(ig, reply, ret, "status");
        goto out;
    }
    ingest_committed(ig);
    counts = ingest_counts(ig);
    created = created || was.created;
    reply->changed = !was.had_status || was.online != row.online;
    reply->kind = ET_INGEST_STATUS;
    reply->new_device = created;
    reply->config_status = st->online && ig->config;
    reply->config_version = st->config_version;
    counts->statuses++;
    if (created) {
        counts->new_devices++;
        counts->new_streams += new_stream;
        et_info("ingest", "new device %s (first heard in a status%s%s)", reply->device,
                new_stream ? ", stream " : "", new_stream ? stream_hex : "");
    } else if (new_stream) {
        ingest_log_new_stream(counts, reply->device, stream_hex, &stream_was);
    }
    /* A starting aggregator is replayed every device's retained status:
     * only a change is news. */
    et_log(reply->changed ? ET_LOG_INFO : ET_LOG_DEBUG, "ingest", "device %s %s%s%s%s%s",
           reply->device, st->online ? "online" : "offline",
           st->agent_version[0] ? ", agent " : "", st->agent_version,
           st->reason[0] ? ": " : "", st->reason);
out:
    edgetel__v1__status__free_unpacked(st, NULL);
    return ret;
}
