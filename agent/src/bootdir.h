/*
 * First boot from the SD card: what edgetelctl provision --boot wrote onto
 * the card's boot partition (FAT: every user of the board may read it),
 * moved to where the agent keeps it, and the secret deleted there.
 *
 * The boot folder may hold:
 *   agent.conf     installed as the agent's config file (the --config path)
 *   ca.crt         installed at its [mqtt] ca
 *   operator.pub   installed at its first [agent] trusted_keys
 *   claim.crt, claim.key   installed in DATA_DIR/identity/ (identity.h)
 * with the paths agent.conf names (or, without one, the config file the
 * agent has). Config, CA and operator key are 0644; the data directory and
 * identity/ 0700, the claim's key 0600; when run as root with a user
 * (the agent's, e.g. edgetel), the data directory and the claim belong to
 * that user. Everything is written through a temporary name and renamed,
 * so a power cut leaves the old file or the new; only then are the files
 * deleted from the boot folder, the claim's key overwritten with zeros
 * first (an SD card's wear levelling may still keep old blocks: the claim
 * is single-use and short-lived, so it is worth nothing once the board
 * enrolled). A note, imported.txt, says in the folder what went where.
 * A cut before the deletion imports the same files again at the next start.
 */
#ifndef EDGETEL_BOOTDIR_H
#define EDGETEL_BOOTDIR_H

#include <stddef.h>

/* Raspberry Pi OS mounts the boot partition here (bookworm; /boot before it). */
#define ET_BOOT_DIR_DEFAULT "/boot/firmware/edgetel"

struct et_boot_import {
    const char *boot_dir;       /* the folder on the boot partition */
    const char *config_path;    /* where the agent's config file lives */
    const char *user;           /* owner of what goes into the data directory; NULL: as run */
};

/**
 * Import what the boot folder holds (above).
 * @return 1 when something was imported; 0 when the folder holds nothing
 *         for the agent (or does not exist); -errno with err naming the
 *         file and the cause. A secret that could not be deleted from the
 *         folder after the import is -EACCES with what to do, the files
 *         being in place.
 */
int et_boot_import(const struct et_boot_import *o, char *err, size_t errlen);

#endif
