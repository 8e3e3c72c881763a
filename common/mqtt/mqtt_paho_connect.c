/*
 * The Paho adapter's connecting (see mqtt_paho_internal.h for its threads
 * and locks): the timer thread that starts every attempt when the backoff
 * says, the Paho client and its connect options (TLS, will, version), the
 * text that says why an attempt failed and whether the broker refused us
 * (which decides the backoff's cap), the fallback to MQTT 3.1.1, and the
 * socket options of the connection once it is up (TCP_NODELAY,
 * TCP_USER_TIMEOUT).
 */
#include "mqtt_paho_internal.h"

#include "edgetel/log.h"

#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>

#include <openssl/err.h>
#include <openssl/ssl.h>

/* Caller holds m->lock. Arms the timer thread for the next attempt. */
static void schedule_retry_locked(struct paho *m, enum et_backoff_cause cause)
{
    int64_t now = paho_mono_ms();

    if (m->stopping)
        return;
    m->connect_due = true;
    m->connect_at_ms = et_backoff_next(&m->backoff, now, cause);
    et_debug(MQTT_LOG, "%s: next connect to %s in %lld ms", m->client_id, m->uri,
             (long long)(m->connect_at_ms - now));
    pthread_cond_broadcast(&m->wake);
}

static void retry_locked(struct paho *m, const char *reason, enum et_backoff_cause cause)
{
    __atomic_store_n(&m->connected, false, __ATOMIC_RELEASE);
    if (m->stopping)
        return;
    paho_queue_simple_locked(m, ET_MQTT_DISCONNECTED, 0, reason);
    schedule_retry_locked(m, cause);
}

void paho_retry_later_locked(struct paho *m, const char *reason)
{
    retry_locked(m, reason, ET_BACKOFF_UNREACHABLE);
}

/*
 * Whether an OpenSSL error line ("<thread>:error:<hex code>:...") is a
 * verdict that retrying soon will not change: our check of the broker's
 * certificate failed, or the broker sent an alert (a certificate it does
 * not accept, a protocol it will not speak). A cut connection or an EOF in
 * the middle of the handshake (a broker being stopped) is not.
 */
static bool ssl_error_is_refusal(const char *line)
{
    const char *code = strstr(line, ":error:");
    unsigned long e;
    char *end;
    int reason;

    if (!code)
        return false;
    e = strtoul(code + 7, &end, 16);
    if (end == code + 7 || *end != ':' || ERR_GET_LIB(e) != ERR_LIB_SSL)
        return false;
    reason = ERR_GET_REASON(e);
    return reason == SSL_R_CERTIFICATE_VERIFY_FAILED || reason >= SSL_AD_REASON_OFFSET;
}

/* ---- why a connect failed ------------------------------------------------ */

/*
 * OpenSSL prints one line per queued error; the last is the most specific
 * and is kept. OpenSSL 3 writes
 * "<thread>:error:<code>:<library>:<function>:<reason>:<file>:<line>:";
 * a person needs library, function and reason.
 */
static int on_ssl_error(const char *str, size_t len, void *context)
{
    struct paho *m = context;
    const char *start = str;
    const char *end;
    int field = 0;

    while (len > 0 && (str[len - 1] == '\n' || str[len - 1] == '\r'))
        len--;
    end = str + len;
    for (const char *p = str; p < end; p++) {
        if (*p != ':')
            continue;
        field++;
        if (field == 3)
            start = p + 1;
        if (field == 6) {
            end = p;
            break;
        }
    }
    if (field < 6) {
        start = str;
        end = str + len;
    }
    paho_callback_enter(m);
    pthread_mutex_lock(&m->lock);
    snprintf(m->tls_error, sizeof(m->tls_error), "%.*s", (int)(end - start), start);
    /* OpenSSL hands the line over NUL-terminated. */
    m->tls_refused = ssl_error_is_refusal(str);
    pthread_mutex_unlock(&m->lock);
    paho_callback_leave(m);
    return 0;
}

/* MQTT 3.1.1 CONNACK return codes, which Paho 3.1.1 connects report as positive codes. */
static const char *connack_v3_text(int code)
{
    static const char *const text[] = {
        [1] = "connection refused: unacceptable protocol version",
        [2] = "connection refused: identifier rejected",
        [3] = "connection refused: server unavailable",
        [4] = "connection refused: bad user name or password",
        [5] = "connection refused: not authorized",
    };

    return code > 0 && code < (int)(sizeof(text) / sizeof(text[0])) ? text[code] : NULL;
}

/*
 * Paho reports a refusing CONNACK as a positive code (the CONNACK's return
 * code, or for MQTT 5 its reason code) with the message "CONNACK return
 * code"; negative codes are its own errors.
 */
static void connect_failure_reason(struct paho *m, const MQTTAsync_failureData5 *fail,
                                   char *buf, size_t size)
{
    const char *paho = fail && fail->code < 0 ? MQTTAsync_strerror(fail->code) : NULL;
    int connack = fail && fail->code > 0 ? fail->code
                  : fail && fail->reasonCode != MQTTREASONCODE_SUCCESS ? (int)fail->reasonCode
                  : 0;
    const char *connack_text = !connack ? NULL
                               : m->version >= MQTTVERSION_5 && connack >= 0x80
                               ? MQTTReasonCode_toString((enum MQTTReasonCodes)connack)
                               : connack_v3_text(connack);
    int n;

    n = snprintf(buf, size, "connect to %s failed: %s", m->uri,
                 fail && fail->message ? fail->message : (paho ? paho : "unknown error"));
    if (paho && n >= 0 && (size_t)n < size)
        n += snprintf(buf + n, size - (size_t)n, " (Paho %d: %s)", fail->code, paho);
    if (connack && n >= 0 && (size_t)n < size)
        n += snprintf(buf + n, size - (size_t)n, "; broker refused: 0x%02x %s", (unsigned)connack,
                      connack_text ? connack_text : "(unknown reason code)");
    if (m->tls_error[0] && n >= 0 && (size_t)n < size)
        snprintf(buf + n, size - (size_t)n, "; TLS: %s", m->tls_error);
    else if (m->tls && fail && fail->code == MQTTASYNC_FAILURE && n >= 0 && (size_t)n < size)
        /* With TLS 1.3 the broker judges our certificate after our side of the
         * handshake is done, so its refusal looks like a closed connection. */
        snprintf(buf + n, size - (size_t)n, "; broker down, or it refused %s%s (see its log)",
                 m->cert_file ? "our certificate " : "a client without a certificate",
                 m->cert_file ? m->cert_file : "");
}

void paho_on_connect_failure(void *context, MQTTAsync_failureData5 *fail)
{
    struct paho *m = context;
    char reason[MQTT_REASON_MAX * 2];
    enum et_backoff_cause cause;

    paho_callback_enter(m);
    pthread_mutex_lock(&m->lock);
    connect_failure_reason(m, fail, reason, sizeof(reason));
    /* The broker answered no (a CONNACK refusal, a TLS verdict): the long
     * cap. Anything else may be a broker that is restarting: the short one. */
    cause = m->tls_refused || (fail && (fail->code > 0 || fail->reasonCode >= 0x80))
            ? ET_BACKOFF_REFUSED : ET_BACKOFF_UNREACHABLE;
    /* A 3.1.1-only broker answers an MQTT 5 CONNECT with the 3.1.1 refusal
     * "unacceptable protocol version" (1); an MQTT 5 broker that will not
     * speak 5 on this listener says 0x84. */
    if (m->version_auto && m->version >= MQTTVERSION_5 && fail &&
        (fail->code == 1 || fail->code == MQTTREASONCODE_UNSUPPORTED_PROTOCOL_VERSION)) {
        size_t n = strlen(reason);

        m->fallback_due = true;
        snprintf(reason + n, sizeof(reason) - n, "; trying MQTT 3.1.1 next");
        cause = ET_BACKOFF_UNREACHABLE;     /* the next attempt can succeed: soon */
    }
    m->tls_error[0] = '\0';
    m->tls_refused = false;
    retry_locked(m, reason, cause);
    pthread_mutex_unlock(&m->lock);
    paho_callback_leave(m);
}

/* ---- socket options: TCP_NODELAY, TCP_USER_TIMEOUT ----------------------- */

/*
 * Paho sets neither option and has no hook for socket options, so the
 * sockets are found by their peer port. Another client's socket to the
 * same port in this process gets the options too, which does it no harm.
 *
 * TCP_NODELAY: Paho writes a PUBACK and the next PUBLISH as two small
 * writes; with Nagle the second waits for the broker's delayed ACK (40 ms
 * on Linux), and with a window of batches in flight every round trip paid
 * it twice (measured: 100 ms per batch with a window of one, 4 ms without).
 *
 * TCP_USER_TIMEOUT: Paho (1.3.12, MQTTProtocol_keepalive) sends a PINGREQ
 * once a keepalive has passed with nothing sent or nothing received, and
 * drops the connection when nothing has arrived 1.5 keepalives after it:
 * a partition is noticed 2.5 keepalives after the last packet received.
 * With the option at 1.5 keepalives the kernel ends the connection once
 * written data has waited that long for the peer's TCP acknowledgement,
 * so while batches are being sent the partition is noticed 1.5 keepalives
 * after the first of them is written into it, and Paho reports it lost.
 */
static void set_options_if_peer_port(int fd, int port, int user_timeout_ms)
{
    struct sockaddr_storage peer;
    socklen_t len = sizeof(peer);
    int type = 0, on = 1;
    socklen_t tlen = sizeof(type);
    int peer_port = -1;

    if (getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &tlen) != 0 || type != SOCK_STREAM)
        return;
    if (getpeername(fd, (struct sockaddr *)&peer, &len) != 0)
        return;
    if (peer.ss_family == AF_INET)
        peer_port = ntohs(((struct sockaddr_in *)&peer)->sin_port);
    else if (peer.ss_family == AF_INET6)
        peer_port = ntohs(((struct sockaddr_in6 *)&peer)->sin6_port);
    if (peer_port != port)
        return;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &on, sizeof(on));
    if (user_timeout_ms > 0) {
        unsigned int ut = (unsigned int)user_timeout_ms;

        setsockopt(fd, IPPROTO_TCP, TCP_USER_TIMEOUT, &ut, sizeof(ut));
    }
}

void paho_set_socket_options(int port, int user_timeout_ms)
{
    struct rlimit rl;
    struct dirent *de;
    DIR *dir = opendir("/proc/self/fd");
    int max_fd = 1024;

    /* The open descriptors are listed in /proc; without it, try them all. */
    if (dir) {
        int own = dirfd(dir);

        while ((de = readdir(dir))) {
            char *end;
            long fd = strtol(de->d_name, &end, 10);

            if (*end == '\0' && end != de->d_name && fd > 2 && fd != own && fd <= INT_MAX)
                set_options_if_peer_port((int)fd, port, user_timeout_ms);
        }
        closedir(dir);
        return;
    }
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur != RLIM_INFINITY &&
        rl.rlim_cur < 65536)
        max_fd = (int)rl.rlim_cur;
    for (int fd = 3; fd < max_fd; fd++)
        set_options_if_peer_port(fd, port, user_timeout_ms);
}

/* ---- the client and the connect request ---------------------------------- */

int paho_make_client(struct paho *m, int version, char *why, size_t why_size)
{
    MQTTAsync_createOptions copts = MQTTAsync_createOptions_initializer5;
    int rc;

    /* Paho fixes the protocol version when the client is created. */
    copts.MQTTVersion = version;
    if (m->max_inflight * 2 > copts.maxBufferedMessages)
        copts.maxBufferedMessages = m->max_inflight * 2;
    if (copts.maxBufferedMessages < MQTT_MIN_BUFFERED)
        copts.maxBufferedMessages = MQTT_MIN_BUFFERED;
    rc = MQTTAsync_createWithOptions(&m->client, m->uri, m->client_id,
                                     MQTTCLIENT_PERSISTENCE_NONE, NULL, &copts);
    if (rc != MQTTASYNC_SUCCESS) {
        snprintf(why, why_size, "cannot create MQTT client for %s: %s", m->uri,
                 MQTTAsync_strerror(rc) ? MQTTAsync_strerror(rc) : "unknown error");
        m->client = NULL;
        return rc == MQTTASYNC_BAD_PROTOCOL ? -EPROTONOSUPPORT : -EINVAL;
    }
    if (MQTTAsync_setCallbacks(m->client, m, paho_on_connection_lost, paho_on_message, NULL) !=
            MQTTASYNC_SUCCESS ||
        MQTTAsync_setDisconnected(m->client, m, paho_on_server_disconnect) != MQTTASYNC_SUCCESS) {
        snprintf(why, why_size, "cannot set MQTT callbacks for %s", m->uri);
        MQTTAsync_destroy(&m->client);
        m->client = NULL;
        return -EIO;
    }
    return 0;
}

/* Timer thread, not connected: replace the MQTT 5 client by a 3.1.1 one. */
static int fall_back_to_311(struct paho *m, char *why, size_t why_size)
{
    int rc;

    pthread_rwlock_wrlock(&m->client_lock);
    MQTTAsync_destroy(&m->client);
    rc = paho_make_client(m, MQTTVERSION_3_1_1, why, why_size);
    if (rc)
        rc = paho_make_client(m, MQTTVERSION_5, why, why_size) ? rc : -EAGAIN;
    pthread_mutex_lock(&m->lock);
    if (m->client && rc == 0)
        m->version = MQTTVERSION_3_1_1;
    pthread_mutex_unlock(&m->lock);
    pthread_rwlock_unlock(&m->client_lock);
    if (rc == 0)
        et_warn(MQTT_LOG, "%s: %s does not speak MQTT 5: using MQTT 3.1.1 "
                "(no reason codes: refused publishes are not reported)", m->client_id, m->uri);
    return rc;
}

/* Called by the timer thread without m->lock. Returns 0 when Paho accepted the request. */
static int begin_connect(struct paho *m, char *why, size_t why_size)
{
    MQTTAsync_connectOptions conn5 = MQTTAsync_connectOptions_initializer5;
    MQTTAsync_connectOptions conn3 = MQTTAsync_connectOptions_initializer;
    MQTTAsync_connectOptions conn = m->version >= MQTTVERSION_5 ? conn5 : conn3;
    MQTTAsync_SSLOptions ssl = MQTTAsync_SSLOptions_initializer;
    MQTTAsync_willOptions will = MQTTAsync_willOptions_initializer;
    MQTTProperties props = MQTTProperties_initializer;
    int rc;

    /* No session is kept on either side: whoever publishes keeps the data
     * until its own end-to-end acknowledgement (mqtt.h). */
    if (m->version >= MQTTVERSION_5) {
        conn.cleanstart = 1;
    } else {
        conn.MQTTVersion = MQTTVERSION_3_1_1;
        conn.cleansession = 1;
    }
    PAHO_SET_REPLY(conn, m->version, &m->reply_connect);
    conn.keepAliveInterval = m->keepalive_s;
    conn.maxInflight = m->max_inflight;
    conn.connectTimeout = MQTT_CONNECT_TIMEOUT_S;
    conn.automaticReconnect = 0;
    if (m->will_topic) {
        will.topicName = m->will_topic;
        will.message = NULL;    /* so Paho takes the binary payload below */
        will.payload.data = m->will_payload;
        will.payload.len = (int)m->will_len;
        will.retained = m->will_retain;
        will.qos = 1;
        conn.will = &will;
    }
    if (m->tls) {
        ssl.trustStore = m->ca_file;
        ssl.keyStore = m->cert_file;
        ssl.privateKey = m->key_file;
        ssl.enableServerCertAuth = 1;
        ssl.verify = 1;         /* check the broker's name against host */
        ssl.sslVersion = MQTT_SSL_VERSION_TLS_1_2;
        ssl.disableDefaultTrustStore = 1;   /* trust only our CA */
        ssl.ssl_error_cb = on_ssl_error;
        ssl.ssl_error_context = m;
        conn.ssl = &ssl;
    }
    /*
     * MQTT 5: tell the broker the largest packet we take (mqtt.h), so a
     * device's 200 MiB publish is dropped by the broker instead of read
     * into this process. Paho copies the properties.
     */
    if (m->version >= MQTTVERSION_5 && m->max_packet) {
        MQTTProperty max = { .identifier = MQTTPROPERTY_CODE_MAXIMUM_PACKET_SIZE };

        max.value.integer4 = (unsigned int)(m->max_packet + ET_MQTT_HEADER_ROOM);
        if (MQTTProperties_add(&props, &max) == 0)
            conn.connectProperties = &props;
        else
            et_warn(MQTT_LOG, "%s: cannot set the maximum packet size on CONNECT: larger "
                    "messages will be read and then dropped", m->client_id);
    }
    rc = MQTTAsync_connect(m->client, &conn);
    MQTTProperties_free(&props);
    if (rc != MQTTASYNC_SUCCESS) {
        snprintf(why, why_size, "connect to %s not started: %s (Paho %d)", m->uri,
                 MQTTAsync_strerror(rc) ? MQTTAsync_strerror(rc) : "unknown error", rc);
        return -EIO;
    }
    return 0;
}

/* ---- the timer thread ---------------------------------------------------- */

void *paho_timer_main(void *arg)
{
    struct paho *m = arg;
    char why[MQTT_REASON_MAX];
    bool fallback;
    int rc;

    pthread_mutex_lock(&m->lock);
    while (!m->stopping) {
        if (!m->connect_due) {
            pthread_cond_wait(&m->wake, &m->lock);
            continue;
        }
        if (paho_mono_ms() < m->connect_at_ms) {
            struct timespec ts;

            paho_deadline_ts(m->connect_at_ms, &ts);
            pthread_cond_timedwait(&m->wake, &m->lock, &ts);
            continue;
        }
        m->connect_due = false;
        fallback = m->fallback_due;
        m->fallback_due = false;
        pthread_mutex_unlock(&m->lock);

        /* On -EAGAIN the 3.1.1 client could not be made but MQTT 5 could:
         * connect with 5 and let the broker refuse again. */
        if (fallback && fall_back_to_311(m, why, sizeof(why)) != 0 && !m->client) {
            /* Neither version could be created (out of memory?): try again later. */
            pthread_mutex_lock(&m->lock);
            m->fallback_due = true;
            paho_retry_later_locked(m, why);
            continue;
        }
        et_debug(MQTT_LOG, "%s: connecting to %s", m->client_id, m->uri);
        rc = begin_connect(m, why, sizeof(why));
        pthread_mutex_lock(&m->lock);
        if (rc != 0)
            paho_retry_later_locked(m, why);
    }
    pthread_mutex_unlock(&m->lock);
    return NULL;
}
