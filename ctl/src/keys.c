/*
 * edgetelctl keys init [--dir DIR]: the operator's signing key pair.
 *
 * The private key signs every config pushed to the fleet, so it is made
 * on the operator's machine, written 0600 in a 0700 directory, and never
 * overwritten: a second init would cut every board off from its operator.
 * The public key goes to the boards (the next step trusts it from the
 * agent's config).
 */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "edgetel/sign.h"
#include "sign_cmd.h"

#define PROG "edgetelctl keys"

int et_ctl_key_dir(char *buf, size_t len)
{
    const char *xdg = getenv("XDG_CONFIG_HOME");
    const char *home = getenv("HOME");
    int n;

    if (xdg && *xdg)
        n = snprintf(buf, len, "%s/edgetel", xdg);
    else if (home && *home)
        n = snprintf(buf, len, "%s/.config/edgetel", home);
    else
        return -ENOENT;
    return n < 0 || (size_t)n >= len ? -ENAMETOOLONG : 0;
}

int et_ctl_keys_main(int argc, char **argv, const char *store)
{
    static const struct option opts[] = {
        { "dir", required_argument, NULL, 'd' },
        { "help", no_argument, NULL, 'h' },
        { NULL, 0, NULL, 0 },
    };
    char dir[4096], priv[4200], pub[4200], err[512], hex[ET_SIGN_KEY_ID_TEXT];
    uint8_t id[ET_SIGN_KEY_ID_LEN];
    struct et_sign_key *k = NULL;
    const char *dir_arg = NULL;
    int opt, rc;

    (void)store;   /* keys live on the operator's machine, not in a store */
    optind = 1;
    while ((opt = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        switch (opt) {
        case 'd': dir_arg = optarg; break;
        case 'h':
            printf("usage: edgetelctl keys init [--dir DIR]\n"
                   "  make the operator's ECDSA P-256 key pair: DIR/" ET_CTL_PRIVATE_KEY
                   " (0600) and DIR/" ET_CTL_PUBLIC_KEY "\n"
                   "  (default DIR: $XDG_CONFIG_HOME/edgetel, else ~/.config/edgetel);\n"
                   "  an existing key is never overwritten\n");
            return 0;
        default:
            return 2;
        }
    }
    if (optind >= argc || strcmp(argv[optind], "init") != 0 || optind + 1 != argc) {
        fprintf(stderr, PROG ": expected \"keys init [--dir DIR]\" (try keys --help)\n");
        return 2;
    }
    if (dir_arg) {
        if (snprintf(dir, sizeof(dir), "%s", dir_arg) >= (int)sizeof(dir)) {
            fprintf(stderr, PROG ": --dir: name too long\n");
            return 2;
        }
    } else if (et_ctl_key_dir(dir, sizeof(dir)) != 0) {
        fprintf(stderr, PROG ": neither XDG_CONFIG_HOME nor HOME is set: give --dir DIR\n");
        return 2;
    }
    rc = et_sign_make_dir(dir);
    if (rc) {
        fprintf(stderr, PROG ": %s: cannot create: %s\n", dir, strerror(-rc));
        return 1;
    }
    snprintf(priv, sizeof(priv), "%s/" ET_CTL_PRIVATE_KEY, dir);
    snprintf(pub, sizeof(pub), "%s/" ET_CTL_PUBLIC_KEY, dir);
    rc = et_sign_keygen(priv, pub, &k, err, sizeof(err));
    if (rc) {
        fprintf(stderr, PROG ": %s\n", err);
        return 1;
    }
    et_sign_key_id(k, id);
    printf("key id %s\nprivate key %s (mode 0600: keep it on this machine)\n"
           "public key %s (give it to the boards)\n", et_sign_key_id_text(id, hex), priv, pub);
    et_sign_key_destroy(k);
    return 0;
}
