/*
 * First boot from the SD card's boot partition (bootdir.h).
 */
#define _GNU_SOURCE
#include "bootdir.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pwd.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "edgetel/config.h"
#include "edgetel/ini.h"
#include "edgetel/log.h"
#include "edgetel/text.h"

#define FILE_MAX (1024 * 1024)
#define NOTE "imported.txt"

/* What the folder may hold, and what is secret. */
enum { F_CONF, F_CA, F_PUB, F_CLAIM_CRT, F_CLAIM_KEY, N_FILES };
static const char *const names[N_FILES] = {
    "agent.conf", "ca.crt", "operator.pub", "claim.crt", "claim.key",
};

struct import {
    const struct et_boot_import *o;
    uid_t uid;
    gid_t gid;
    bool chown;
    char *text[N_FILES];        /* each file's content; NULL: not there */
    size_t len[N_FILES];
    char dest[N_FILES][PATH_MAX];
    char *err;
    size_t errlen;
};

/* mkdir -p dir, the folders it makes mode (and the last owned by the import's user). */
static int make_dirs(struct import *im, const char *dir, mode_t mode, bool own)
{
    char path[PATH_MAX];
    size_t n = strlen(dir);

    if (n == 0 || n >= sizeof(path))
        return et_text_reason(im->err, im->errlen, -ENAMETOOLONG, "%s: not a folder", dir);
    memcpy(path, dir, n + 1);
    for (char *p = path + 1;; p++) {
        char c = *p;

        if (c != '/' && c != '\0')
            continue;
        *p = '\0';
        if (mkdir(path, mode) != 0 && errno != EEXIST)
            return et_text_reason(im->err, im->errlen, -errno, "%s: cannot create: %s", path,
                                  strerror(errno));
        *p = c;
        if (!c)
            break;
    }
    if (own && im->chown && chown(dir, im->uid, im->gid) != 0)
        return et_text_reason(im->err, im->errlen, -errno, "%s: chown: %s", dir,
                              strerror(errno));
    return 0;
}

/* Write text to dest through dest.tmp (born with mode, owned by the user when own), rename. */
static int install(struct import *im, int which, mode_t mode, bool own)
{
    char tmp[PATH_MAX + 8];
    const char *dest = im->dest[which];
    int fd, rc = 0;

    snprintf(tmp, sizeof(tmp), "%s.tmp", dest);
    unlink(tmp);
    fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, mode);
    if (fd < 0)
        return et_text_reason(im->err, im->errlen, -errno, "%s: cannot create: %s", tmp,
                              strerror(errno));
    errno = 0;
    if (fchmod(fd, mode) != 0 || (own && im->chown && fchown(fd, im->uid, im->gid) != 0) ||
        write(fd, im->text[which], im->len[which]) != (ssize_t)im->len[which] || fsync(fd) != 0)
        rc = -(errno ? errno : EIO);
    if (close(fd) != 0 && rc == 0)
        rc = -errno;
    if (rc == 0 && rename(tmp, dest) != 0)
        rc = -errno;
    if (rc) {
        unlink(tmp);
        return et_text_reason(im->err, im->errlen, rc, "%s: %s", dest, strerror(-rc));
    }
    et_info("boot", "%s/%s -> %s (mode %04o)", im->o->boot_dir, names[which], dest,
            (unsigned)mode);
    return 0;
}

/* Overwrite with zeros, then delete: the partition is readable by every user. */
static int shred(const char *path, size_t len)
{
    static const char zeros[4096];
    int fd = open(path, O_WRONLY | O_NOFOLLOW | O_CLOEXEC);

    if (fd >= 0) {
        for (size_t done = 0; done < len;) {
            ssize_t w = write(fd, zeros, len - done < sizeof(zeros) ? len - done
                                                                   : sizeof(zeros));
            if (w <= 0)
                break;
            done += (size_t)w;
        }
        fsync(fd);
        close(fd);
    }
    return unlink(path) == 0 ? 0 : -errno;
}

/* The destinations, from the folder's agent.conf or the config the agent has. */
static int destinations(struct import *im)
{
    struct et_config cfg;
    char why[512];
    int rc;

    if (im->text[F_CONF])
        rc = et_config_parse(im->text[F_CONF], im->o->config_path, &cfg, why, sizeof(why));
    else
        rc = et_config_load(im->o->config_path, &cfg, why, sizeof(why));
    if (rc)
        return et_text_reason(im->err, im->errlen, rc, "%s/%s: %s (nothing imported; the "
                              "files stay)", im->o->boot_dir,
                              im->text[F_CONF] ? names[F_CONF] : "*", why);
    snprintf(im->dest[F_CONF], PATH_MAX, "%s", im->o->config_path);
    snprintf(im->dest[F_CA], PATH_MAX, "%s", cfg.mqtt.ca_file ? cfg.mqtt.ca_file : "");
    snprintf(im->dest[F_PUB], PATH_MAX, "%s",
             cfg.n_trusted_key_files ? cfg.trusted_key_files[0] : "");
    snprintf(im->dest[F_CLAIM_CRT], PATH_MAX, "%s/identity/claim.crt", cfg.data_dir);
    snprintf(im->dest[F_CLAIM_KEY], PATH_MAX, "%s/identity/claim.key", cfg.data_dir);
    rc = make_dirs(im, cfg.data_dir, 0700, true);
    if (rc == 0 && (im->text[F_CLAIM_CRT] || im->text[F_CLAIM_KEY])) {
        char dir[PATH_MAX + 16];

        snprintf(dir, sizeof(dir), "%s/identity", cfg.data_dir);
        rc = make_dirs(im, dir, 0700, true);
    }
    if (rc == 0 && im->text[F_PUB] && !im->dest[F_PUB][0])
        et_warn("boot", "%s/%s: the config names no [agent] trusted_keys: not imported (the "
                "board takes no pushed config)", im->o->boot_dir, names[F_PUB]);
    if (rc == 0 && im->text[F_CA] && !im->dest[F_CA][0])
        rc = et_text_reason(im->err, im->errlen, -EINVAL, "%s/%s: the config names no [mqtt] "
                            "ca to put it at (nothing imported)", im->o->boot_dir, names[F_CA]);
    et_config_free(&cfg);
    return rc;
}

/* The folder a file goes into, made (0755) when missing. */
static int parent_dir(struct import *im, int which)
{
    char dir[PATH_MAX];
    char *slash;

    snprintf(dir, sizeof(dir), "%s", im->dest[which]);
    slash = strrchr(dir, '/');
    if (!slash || slash == dir)
        return 0;
    *slash = '\0';
    return make_dirs(im, dir, 0755, false);
}

/* Tell a person looking at the card what became of its files. */
static void write_note(const struct import *im)
{
    char path[PATH_MAX + 32];
    FILE *f;

    snprintf(path, sizeof(path), "%s/" NOTE, im->o->boot_dir);
    f = fopen(path, "we");
    if (!f)
        return;
    fprintf(f, "edgetel-agent took the files of this folder at its start:\n");
    for (int i = 0; i < N_FILES; i++)
        if (im->text[i] && im->dest[i][0])
            fprintf(f, "  %s -> %s\n", names[i], im->dest[i]);
    fprintf(f, "The claim's key was overwritten and deleted here.\n");
    fclose(f);
}

static int owner(struct import *im)
{
    struct passwd *pw;

    if (!im->o->user)
        return 0;
    if (geteuid() != 0)
        return et_text_reason(im->err, im->errlen, -EPERM, "--user %s: only root gives files "
                              "to another user (run the import as root, e.g. systemd's "
                              "ExecStartPre=+)", im->o->user);
    pw = getpwnam(im->o->user);
    if (!pw)
        return et_text_reason(im->err, im->errlen, -ENOENT, "--user %s: no such user",
                              im->o->user);
    im->uid = pw->pw_uid;
    im->gid = pw->pw_gid;
    im->chown = true;
    return 0;
}

int et_boot_import(const struct et_boot_import *o, char *err, size_t errlen)
{
    static const mode_t modes[N_FILES] = { 0644, 0644, 0644, 0644, 0600 };
    static const bool owned[N_FILES] = { false, false, false, true, true };
    struct import im = { .o = o, .err = err, .errlen = errlen };
    char path[PATH_MAX + 32];
    bool any = false;
    int rc = 0;

    for (int i = 0; i < N_FILES && rc == 0; i++) {
        snprintf(path, sizeof(path), "%s/%s", o->boot_dir, names[i]);
        if (access(path, F_OK) != 0 && errno == ENOENT)
            continue;
        rc = et_ini_read_file(path, FILE_MAX, &im.text[i], &im.len[i], err, errlen);
        any |= im.text[i] != NULL;
    }
    if (rc || !any)
        goto out;
    if (!im.text[F_CLAIM_CRT] != !im.text[F_CLAIM_KEY]) {
        rc = et_text_reason(err, errlen, -EINVAL, "%s: claim.crt and claim.key go together "
                            "(nothing imported)", o->boot_dir);
        goto out;
    }
    et_info("boot", "first-boot files in %s: taking them", o->boot_dir);
    if ((rc = owner(&im)) || (rc = destinations(&im)))
        goto out;
    for (int i = 0; i < N_FILES && rc == 0; i++) {
        if (!im.text[i] || !im.dest[i][0])
            continue;
        if ((rc = parent_dir(&im, i)) == 0)
            rc = install(&im, i, modes[i], owned[i]);
    }
    if (rc)
        goto out;
    /* In place: now off the card. The secret first, and said when it cannot go. */
    for (int i = N_FILES - 1; i >= 0; i--) {
        if (!im.text[i])
            continue;
        int gone;

        snprintf(path, sizeof(path), "%s/%s", o->boot_dir, names[i]);
        gone = shred(path, im.len[i]);
        if (gone && i == F_CLAIM_KEY)
            rc = et_text_reason(err, errlen, -EACCES, "%s: imported, but it cannot be deleted "
                                "from the boot partition (%s): any user of the board can read "
                                "it there until the board enrolls (the claim is then used "
                                "up); delete it by hand, and run the import as root "
                                "(ExecStartPre=+edgetel-agent --import-boot)", path,
                                strerror(-gone));
    }
    write_note(&im);
out:
    for (int i = 0; i < N_FILES; i++)
        free(im.text[i]);
    return rc ? rc : any ? 1 : 0;
}
