/*
 * Giving back memory the agent touched once: see et_mem_trim() in
 * edgetel/platform.h.
 */
#include <fcntl.h>
#include <malloc.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "edgetel/platform.h"

/*
 * Drop a clean mapping's pages from the resident set, and map them back
 * one at a time (MADV_RANDOM: no fault-around of the pages beside one).
 * Kernels that keep files in large folios map a whole folio at a touch, so
 * the file's pages that no process maps now are also dropped from the page
 * cache: read again page by page, only what runs comes back.
 */
static void drop(unsigned long from, unsigned long to, unsigned long long offset,
                 const char *path)
{
    int fd;

    madvise((void *)from, to - from, MADV_DONTNEED);
    madvise((void *)from, to - from, MADV_RANDOM);
    fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd >= 0) {
        posix_fadvise(fd, (off_t)offset, (off_t)(to - from), POSIX_FADV_DONTNEED);
        close(fd);
    }
}

/*
 * One malloc arena for the whole process: glibc gives each thread that
 * allocates (the MQTT client's two) an arena of its own, a few hundred KiB
 * resident each for a handful of small buffers. The agent's threads
 * allocate rarely, so sharing one costs no measurable time. Runs before
 * main() in every program that links et_mem_trim() (the agent).
 */
__attribute__((constructor)) static void one_arena(void)
{
    mallopt(M_ARENA_MAX, 1);
}

void et_mem_trim(void)
{
    char line[512], path[400] = "";
    unsigned long from = 0, to = 0;
    unsigned long long offset = 0;
    bool candidate = false;
    FILE *smaps;

    malloc_trim(0);
    smaps = fopen("/proc/self/smaps", "re");
    if (!smaps)
        return;
    /*
     * A file's mapping that is not writable and holds no page of its own
     * (Anonymous: 0 kB: nothing was copied on write, such as relocations
     * in RELRO) is exactly what the page cache holds: dropped, a touch maps
     * it again. Anything else is left alone.
     */
    while (fgets(line, sizeof(line), smaps)) {
        unsigned long a, b, anon;
        unsigned long long off;
        char perms[8];

        if (sscanf(line, "%lx-%lx %7s %llx %*s %*s %399s", &a, &b, perms, &off, path) == 5) {
            from = a;
            to = b;
            offset = off;
            candidate = perms[1] != 'w' && perms[3] == 'p' && path[0] == '/';
        } else if (sscanf(line, "%lx-%lx %7s", &a, &b, perms) == 3) {
            candidate = false;   /* anonymous, [heap], [stack], [vdso] */
        } else if (candidate && sscanf(line, "Anonymous: %lu kB", &anon) == 1) {
            if (anon == 0)
                drop(from, to, offset, path);
            candidate = false;
        }
    }
    fclose(smaps);
}
