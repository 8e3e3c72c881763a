/*
 * Loading the agent config from files, a short error buffer, and the
 * packaged example kept in step with the key tables.
 */
#include "config_test.h"

/* ---- files --------------------------------------------------------------------- */

static char *write_temp(const char *data, size_t len)
{
    char *path = strdup("/tmp/edgetel-test-config-XXXXXX");
    int fd;

    assert_non_null(path);
    fd = mkstemp(path);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, data, len), (ssize_t)len);
    close(fd);
    return path;
}

static void load_files(void **state)
{
    struct et_config c;
    char err[512], msg[512];
    char *path, *big;

    path = write_temp("[agent]\ndevice_id = d9\n[mqtt]\nport = x\n", 39);
    assert_int_equal(et_config_load(path, &c, err, sizeof(err)), -EINVAL);
    snprintf(msg, sizeof(msg), "%s:4: [mqtt] port \"x\": expected a whole number", path);
    assert_string_equal(err, msg);
    assert_true(is_zero(&c, sizeof(c)));
    unlink(path);
    free(path);

    path = write_temp("[agent]\ndevice_id = d9\n", 23);
    assert_int_equal(et_config_load(path, &c, err, sizeof(err)), 0);
    assert_string_equal(c.path, path);
    assert_string_equal(c.device_id, "d9");
    et_config_free(&c);
    unlink(path);

    /* Gone. */
    assert_int_equal(et_config_load(path, &c, err, sizeof(err)), -ENOENT);
    snprintf(msg, sizeof(msg), "%s: cannot open: %s", path, strerror(ENOENT));
    assert_string_equal(err, msg);
    assert_true(is_zero(&c, sizeof(c)));
    free(path);

    /* A directory opens but cannot be read. */
    assert_int_equal(et_config_load("/", &c, err, sizeof(err)), -EIO);
    snprintf(msg, sizeof(msg), "/: cannot read: %s", strerror(EISDIR));
    assert_string_equal(err, msg);

    /* A NUL byte: binary junk, reported on its line. */
    path = write_temp("[agent]\ndevice_id = d9\nx\0y = 1\n", 31);
    assert_int_equal(et_config_load(path, &c, err, sizeof(err)), -EINVAL);
    snprintf(msg, sizeof(msg), "%s:3: NUL byte in the text: not a config file?", path);
    assert_string_equal(err, msg);
    unlink(path);
    free(path);

    /* Larger than the limit: refused before parsing. */
    big = malloc(ET_CONFIG_MAX_BYTES + 1);
    assert_non_null(big);
    memset(big, '\n', ET_CONFIG_MAX_BYTES + 1);
    path = write_temp(big, ET_CONFIG_MAX_BYTES + 1);
    assert_int_equal(et_config_load(path, &c, err, sizeof(err)), -EFBIG);
    snprintf(msg, sizeof(msg), "%s: larger than %d bytes: not a config file?", path,
             ET_CONFIG_MAX_BYTES);
    assert_string_equal(err, msg);
    unlink(path);
    free(path);
    /* At the limit it is read (blank lines only: all defaults). */
    if (host_name_is_device_id()) {
        path = write_temp(big, ET_CONFIG_MAX_BYTES);
        assert_int_equal(et_config_load(path, &c, err, sizeof(err)), 0);
        et_config_free(&c);
        unlink(path);
        free(path);
    }
    free(big);
}

/* A short error buffer is cut, never overrun; a NULL one is allowed. */
static void short_error_buffer(void **state)
{
    struct et_config c;
    char err[16];

    memset(err, 'z', sizeof(err));
    assert_int_equal(et_config_parse("[x]\n", NAME, &c, err, 8), -EINVAL);
    assert_string_equal(err, "agent.c");
    assert_int_equal(err[8], 'z');
    assert_int_equal(et_config_parse("[x]\n", NAME, &c, NULL, 0), -EINVAL);
    assert_int_equal(et_config_parse("[mqtt]\nhost = h\n", NAME, &c, err, 3), -EINVAL);
    assert_string_equal(err, "ag");
}

/* ---- the packaged example --------------------------------------------------------- */

static char *read_example(void)
{
    char path[1024];
    char *text = calloc(1, 65536);
    FILE *f;

    snprintf(path, sizeof(path), "%s/packaging/agent.conf.example", ET_SOURCE_DIR);
    f = fopen(path, "r");
    assert_non_null(f);
    assert_non_null(text);
    fread(text, 1, 65535, f);
    fclose(f);
    return text;
}

/*
 * Every key of the table appears in the example as "# key = DEFAULT" (or
 * "# key = " plus an example value when it has no default), under its
 * section, and has help text; the example parses as it is shipped, and
 * with its [agent] and [mqtt] lines uncommented.
 */
static void example_matches_table(void **state)
{
    const struct et_ini_schema *s = et_config_schema();
    char *text = read_example();
    char *uncommented = calloc(1, 65536);
    const char *section = "";
    struct et_config c;
    char err[512];
    size_t nck, o = 0;
    const struct et_key *ck = et_config_collector_keys(&nck);
    int rc;

    assert_non_null(uncommented);
    for (size_t i = 0; i < s->n_keys; i++) {
        const struct et_ini_key *k = &s->keys[i];
        char header[64], line[256];
        const char *at;

        assert_non_null(k->key.help);
        snprintf(header, sizeof(header), "\n[%s]\n", k->section);
        if (k->key.def)
            snprintf(line, sizeof(line), "\n# %s = %s\n", k->key.name, k->key.def);
        else
            snprintf(line, sizeof(line), "\n# %s = ", k->key.name);
        at = strstr(text, header);
        if (!at)
            print_error("example lacks section [%s]\n", k->section);
        assert_non_null(at);
        if (!strstr(at, line))
            print_error("example lacks \"%s\" under [%s]\n", line + 1, k->section);
        assert_non_null(strstr(at, line));
    }
    for (size_t i = 0; i < nck; i++) {
        char line[256];

        assert_non_null(ck[i].help);
        if (ck[i].def)
            snprintf(line, sizeof(line), "\n# %s = %s\n", ck[i].name, ck[i].def);
        else
            snprintf(line, sizeof(line), "\n# %s = ", ck[i].name);
        assert_non_null(strstr(text, line));
    }

    /* As shipped: everything commented out, the defaults. */
    if (host_name_is_device_id()) {
        assert_int_equal(et_config_parse(text, "agent.conf.example", &c, err, sizeof(err)), 0);
        et_config_free(&c);
    }

    /* Uncomment the "# key = value" lines of the table's sections; [collector]
     * examples need drivers that may not be built in, so they stay comments. */
    for (char *p = text; *p;) {
        char *nl = strchr(p, '\n');
        size_t n = nl ? (size_t)(nl - p + 1) : strlen(p);

        /* Commented-out headers count: "# [collector cpu]" starts an example. */
        if (p[0] == '[' || strncmp(p, "# [", 3) == 0) {
            const char *name = p[0] == '[' ? p + 1 : p + 3;

            /* Only the collectors stay commented: their drivers may not be built in. */
            section = strncmp(name, "collector", 9) == 0 ? "other" : "table";
        }
        if (strncmp(p, "# ", 2) == 0 && strchr(p, '=') && (!nl || strchr(p, '=') < nl) &&
            p[2] >= 'a' && p[2] <= 'z' && strcmp(section, "other") != 0) {
            memcpy(uncommented + o, p + 2, n - 2);
            o += n - 2;
        } else {
            memcpy(uncommented + o, p, n);
            o += n;
        }
        p += n;
    }
    rc = et_config_parse(uncommented, "uncommented", &c, err, sizeof(err));
    if (rc != 0)
        print_error("%s\n%s\n", uncommented, err);
    assert_int_equal(rc, 0);
    /* It really set the keys: the TLS files have no defaults. */
    assert_non_null(c.mqtt.host);
    assert_non_null(c.mqtt.ca_file);
    assert_non_null(c.mqtt.key_file);
    et_config_free(&c);
    free(uncommented);
    free(text);
}

/*
 * The example's [collector] sections, uncommented, parse: the driver keys
 * they show exist and their values are in range. Skipped when one of their
 * drivers is not built in. The example points to --list-drivers for the
 * rest.
 */
static void example_collectors_parse(void **state)
{
    char *text = read_example();
    char *sections = calloc(1, 65536);
    size_t o = (size_t)snprintf(sections, 65536, "[agent]\ndevice_id = d1\n");
    struct et_config c;
    char err[512];
    int rc;

    assert_non_null(sections);
    assert_non_null(strstr(text, "`edgetel-agent --list-drivers` lists every built-in driver"));
    for (char *p = strstr(text, "\n# [collector"); p && *p;) {
        char *nl;
        size_t n;

        p++;
        nl = strchr(p, '\n');
        n = nl ? (size_t)(nl - p) : strlen(p);
        if (strncmp(p, "# ", 2) == 0) {
            memcpy(sections + o, p + 2, n - 2);
            o += n - 2;
        }
        sections[o++] = '\n';
        p += n;
    }
    rc = et_config_parse(sections, "collectors", &c, err, sizeof(err));
    if (rc == 0) {
        assert_int_equal(c.n_collectors, 4);
        if (et_driver_find("bme280")) {
            assert_string_equal(c.collectors[3].type, "bme280");
            assert_int_equal(c.collectors[3].n_keys, 3);
        }
        et_config_free(&c);
    }
    free(sections);
    free(text);
    if (rc != 0 && strstr(err, "no such driver"))
        skip();
    if (rc != 0)
        print_error("%s\n", err);
    assert_int_equal(rc, 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(load_files),
        cmocka_unit_test(short_error_buffer),
        cmocka_unit_test(example_matches_table),
        cmocka_unit_test(example_collectors_parse),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
