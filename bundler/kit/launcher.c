/*
 * The Satchel kit launcher: the first thing that runs on a host with no Python.
 *
 * A kit file is  [this launcher, static] [payload] [kit.json] [trailer]  (docs/KIT.md).
 * The payload is one zstd stream (with its content checksum) of a ustar archive holding
 * the frozen Satchel program and the tools it carries. On the first run the launcher
 * extracts it into a private cache directory named by the payload's sha256 and publishes
 * it with rename(2); every later run only exec()s the program found there. So start-up
 * costs one exec, not a 200 MB extraction, and nothing is written to /tmp (often noexec).
 *
 * Written in C, not Python, because it must run before any Python exists. It extracts
 * only what our own build writes: regular files and directories, relative names without
 * "." or ".." components, no links of any kind.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zstd.h>

#define MAGIC "SATCHEL-KIT-v1\0\0"
#define TRAILER_SIZE 112 /* magic 16 | payload off, len | meta off, len (u64 LE) | id 64 hex */
#define EXIT_DAMAGED 3
#define EXIT_ENV 4

static const char *partial; /* the extraction in progress, removed if we give up */

static int rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw) {
    (void)st; (void)flag; (void)ftw;
    return remove(path);
}

static void die(int code, const char *fmt, const char *arg) {
    fprintf(stderr, "satchel: error: ");
    fprintf(stderr, fmt, arg);
    fputc('\n', stderr);
    if (partial) nftw(partial, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
    exit(code);
}

static uint64_t le64(const unsigned char *p) {
    uint64_t v = 0;
    for (int i = 7; i >= 0; i--) v = (v << 8) | p[i];
    return v;
}

/* ---- the host's C library ---------------------------------------------------------- */

/* Minor version N of "2.N" after `key` in buf, or -1. */
static int minor_after(const char *buf, size_t n, const char *key) {
    const char *p = memmem(buf, n, key, strlen(key));
    if (!p || (size_t)(p - buf) + strlen(key) + 3 > n) return -1;
    p += strlen(key);
    return p[0] == '2' && p[1] == '.' && p[2] >= '0' && p[2] <= '9' ? atoi(p + 2) : -1;
}

/* The frozen Python needs the glibc it was built against or newer: say so in one line
 * instead of letting the dynamic loader fail with a symbol-version message. The host's
 * version is read from its libc's banner ("... release version 2.N."); if no libc is
 * found where distributions put it, the check is left to the loader. */
static void check_glibc(int kit, uint64_t meta_off, uint64_t meta_len) {
    char meta[4096];
    size_t n = meta_len < sizeof meta ? (size_t)meta_len : sizeof meta;
    if (pread(kit, meta, n, (off_t)meta_off) != (ssize_t)n) return;
    int need = minor_after(meta, n, "\"glibc\":\"");
    static const char *libcs[] = {"/lib64/libc.so.6", "/lib/x86_64-linux-gnu/libc.so.6",
                                  "/usr/lib64/libc.so.6", "/usr/lib/x86_64-linux-gnu/libc.so.6",
                                  "/usr/lib/libc.so.6", NULL};
    for (const char **path = libcs; need >= 0 && *path; path++) {
        int fd = open(*path, O_RDONLY | O_CLOEXEC);
        struct stat st;
        if (fd < 0) continue;
        if (fstat(fd, &st) == 0 && st.st_size > 0) {
            char *map = mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_PRIVATE, fd, 0);
            int have = map == MAP_FAILED ? -1 : minor_after(map, (size_t)st.st_size, "release version ");
            if (map != MAP_FAILED) munmap(map, (size_t)st.st_size);
            close(fd);
            if (have >= 0 && have < need) {
                char msg[160];
                snprintf(msg, sizeof msg, "this kit needs glibc 2.%d or newer and this host has 2.%d", need, have);
                die(EXIT_ENV, "%s: use a kit built on an older system (docs/KIT.md)", msg);
            }
            return;
        }
        close(fd);
    }
}

/* ---- the cache directory ------------------------------------------------------- */

static void cache_base(char *out, size_t n) {
    const char *env = getenv("SATCHEL_KIT_CACHE");
    const char *xdg = getenv("XDG_CACHE_HOME"), *home = getenv("HOME");
    if (env && *env) snprintf(out, n, "%s", env);
    else if (geteuid() == 0) snprintf(out, n, "/var/cache/satchel");
    else if (xdg && *xdg) snprintf(out, n, "%s/satchel", xdg);
    else if (home && *home) snprintf(out, n, "%s/.cache/satchel", home);
    else die(EXIT_ENV, "%s", "no cache directory for the kit: set SATCHEL_KIT_CACHE");
}

static void mkdirs(char *path, mode_t mode) {
    for (char *p = path + 1; *p; p++) {
        if (*p != '/') continue;
        *p = '\0';
        if (mkdir(path, mode) != 0 && errno != EEXIST) die(EXIT_ENV, "cannot create %s", path);
        *p = '/';
    }
    if (mkdir(path, mode) != 0 && errno != EEXIST) die(EXIT_ENV, "cannot create %s", path);
}

/* Another user who can write the cache could swap the program we are about to run. */
static void check_private(const char *dir) {
    struct stat st;
    if (lstat(dir, &st) != 0 || !S_ISDIR(st.st_mode))
        die(EXIT_ENV, "kit cache %s is not a directory (a symlink is refused)", dir);
    if (st.st_uid != geteuid() || (st.st_mode & 022))
        die(EXIT_ENV, "kit cache %s must be owned by this user and writable by no one else "
            "(chmod 700 it, or set SATCHEL_KIT_CACHE)", dir);
}

/* ---- the archive ------------------------------------------------------------------ */

struct untar {
    int dirfd;              /* the directory being filled */
    unsigned char hdr[512];
    size_t have;            /* bytes of the current header, or of the current file */
    uint64_t left;          /* file bytes still to come */
    uint64_t pad;           /* padding after the file */
    int fd;                 /* the file being written, -1 between members */
    int done;
};

static uint64_t octal(const unsigned char *p, size_t n) {
    uint64_t v = 0;
    for (size_t i = 0; i < n && p[i] >= '0' && p[i] <= '7'; i++) v = v * 8 + (uint64_t)(p[i] - '0');
    return v;
}

static void safe_name(const unsigned char *h, char *name) {
    char prefix[156] = {0}, base[101] = {0};
    memcpy(prefix, h + 345, 155);
    memcpy(base, h, 100);
    snprintf(name, 260, prefix[0] ? "%s/%s" : "%s%s", prefix, base);
    size_t len = strlen(name);
    while (len > 1 && name[len - 1] == '/') name[--len] = '\0';
    if (!len || name[0] == '/') die(EXIT_DAMAGED, "kit archive member %s has an absolute or empty name", name);
    for (char *c = name; c; c = strchr(c, '/')) {
        if (*c == '/') c++;
        if (!strncmp(c, "../", 3) || !strcmp(c, "..") || !strncmp(c, "./", 2) || !strcmp(c, ".") || *c == '/')
            die(EXIT_DAMAGED, "kit archive member %s has a relative component", name);
    }
}

static void parents(int dirfd, char *name) {
    for (char *p = name; (p = strchr(p, '/')); p++) {
        *p = '\0';
        if (mkdirat(dirfd, name, 0755) != 0 && errno != EEXIST) die(EXIT_ENV, "cannot create %s", name);
        *p = '/';
    }
}

static void header(struct untar *u) {
    unsigned sum = 0;
    int zero = 1;
    for (int i = 0; i < 512; i++) {
        sum += (i >= 148 && i < 156) ? ' ' : u->hdr[i];
        zero &= u->hdr[i] == 0;
    }
    if (zero) { u->done = 1; return; }
    if (octal(u->hdr + 148, 8) != sum || memcmp(u->hdr + 257, "ustar", 5))
        die(EXIT_DAMAGED, "%s", "the kit archive has a bad header: the kit file is damaged");
    char name[260];
    safe_name(u->hdr, name);
    parents(u->dirfd, name);
    mode_t mode = (mode_t)octal(u->hdr + 100, 8) & 0755;
    char type = (char)u->hdr[156];
    if (type == '5') {
        if (mkdirat(u->dirfd, name, 0755) != 0 && errno != EEXIST) die(EXIT_ENV, "cannot create %s", name);
        return;
    }
    if (type != '0' && type != '\0') die(EXIT_DAMAGED, "kit archive member %s is not a file or directory", name);
    u->fd = openat(u->dirfd, name, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, mode | 0600);
    if (u->fd < 0) die(EXIT_ENV, "cannot write %s", name);
    u->left = octal(u->hdr + 124, 12);
    u->pad = (512 - u->left % 512) % 512;
}

static void feed(struct untar *u, const unsigned char *p, size_t n) {
    while (n && !u->done) {
        if (u->fd >= 0 && u->left) {
            size_t k = n < u->left ? n : (size_t)u->left;
            if (write(u->fd, p, k) != (ssize_t)k) die(EXIT_ENV, "%s", "cannot write the kit cache (disk full?)");
            p += k, n -= k, u->left -= k;
        } else if (u->fd >= 0 && u->pad) {
            size_t k = n < u->pad ? n : (size_t)u->pad;
            p += k, n -= k, u->pad -= k;
        } else if (u->fd >= 0) {
            close(u->fd);
            u->fd = -1;
        } else {
            size_t k = 512 - u->have < n ? 512 - u->have : n;
            memcpy(u->hdr + u->have, p, k);
            p += k, n -= k, u->have += k;
            if (u->have == 512) { u->have = 0; header(u); }
        }
    }
    if (u->fd >= 0 && !u->left && !u->pad) { close(u->fd); u->fd = -1; }
}

static void extract(int kit, uint64_t off, uint64_t len, const char *dir) {
    struct untar u = {.fd = -1};
    u.dirfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (u.dirfd < 0) die(EXIT_ENV, "cannot open %s", dir);
    ZSTD_DCtx *z = ZSTD_createDCtx();
    size_t inlen = ZSTD_DStreamInSize(), outlen = ZSTD_DStreamOutSize();
    unsigned char *in = malloc(inlen), *out = malloc(outlen);
    if (!z || !in || !out) die(EXIT_ENV, "%s", "out of memory");
    size_t ret = 1;
    while (len) {
        ssize_t got = pread(kit, in, len < inlen ? (size_t)len : inlen, (off_t)off);
        if (got <= 0) die(EXIT_DAMAGED, "%s", "the kit file is truncated: copy it again");
        off += (uint64_t)got, len -= (uint64_t)got;
        ZSTD_inBuffer zin = {in, (size_t)got, 0};
        while (zin.pos < zin.size) {
            ZSTD_outBuffer zout = {out, outlen, 0};
            ret = ZSTD_decompressStream(z, &zout, &zin);
            if (ZSTD_isError(ret))
                die(EXIT_DAMAGED, "the kit file is damaged (%s): copy it again and check it against SHA256SUMS",
                    ZSTD_getErrorName(ret));
            feed(&u, out, zout.pos);
        }
    }
    if (ret != 0 || !u.done) die(EXIT_DAMAGED, "%s", "the kit payload ends early: the kit file is damaged");
    /* Durable before it is published: a power cut must not leave a half-written program behind. */
    if (syncfs(u.dirfd) != 0) die(EXIT_ENV, "cannot sync %s", dir);
    close(u.dirfd);
    ZSTD_freeDCtx(z);
    free(in);
    free(out);
}

int main(int argc, char **argv) {
    (void)argc;
    char exe[PATH_MAX];
    ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
    if (n <= 0) die(EXIT_ENV, "%s", "cannot find the kit's own file (/proc/self/exe)");
    exe[n] = '\0';
    int kit = open(exe, O_RDONLY | O_CLOEXEC);
    struct stat st;
    unsigned char t[TRAILER_SIZE];
    if (kit < 0 || fstat(kit, &st) != 0 || st.st_size < TRAILER_SIZE ||
        pread(kit, t, TRAILER_SIZE, st.st_size - TRAILER_SIZE) != TRAILER_SIZE || memcmp(t, MAGIC, 16))
        die(EXIT_DAMAGED, "%s has no kit trailer: the kit file is truncated or damaged", exe);
    uint64_t off = le64(t + 16), len = le64(t + 24);
    if (off > (uint64_t)st.st_size || len > (uint64_t)st.st_size - off)
        die(EXIT_DAMAGED, "%s: the kit trailer points outside the file (damaged copy)", exe);
    check_glibc(kit, le64(t + 32), le64(t + 40));
    char id[17];
    memcpy(id, t + 48, 16);
    id[16] = '\0';
    for (int i = 0; i < 16; i++)
        if (!strchr("0123456789abcdef", id[i])) die(EXIT_DAMAGED, "%s: the kit trailer is damaged", exe);

    char base[PATH_MAX / 2], dir[PATH_MAX], program[PATH_MAX + 32], mark[PATH_MAX + 32];
    cache_base(base, sizeof base);
    snprintf(dir, sizeof dir, "%s/kit-%s", base, id);
    snprintf(program, sizeof program, "%s/satchel/satchel", dir);
    snprintf(mark, sizeof mark, "%s/.complete", dir);
    if (access(mark, F_OK) != 0) {
        mkdirs(base, 0700);
        check_private(base);
        char tmp[PATH_MAX + 16];
        snprintf(tmp, sizeof tmp, "%s/.kit-XXXXXX", base);
        if (!mkdtemp(tmp)) die(EXIT_ENV, "cannot create a directory in %s", base);
        partial = tmp;
        extract(kit, off, len, tmp);
        char tmpmark[PATH_MAX + 32];
        snprintf(tmpmark, sizeof tmpmark, "%s/.complete", tmp);
        int fd = open(tmpmark, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
        if (fd < 0) die(EXIT_ENV, "cannot write %s", tmpmark);
        close(fd);
        if (rename(tmp, dir) != 0) {
            /* Another run published the same payload first: use theirs. */
            if (errno != EEXIST && errno != ENOTEMPTY) die(EXIT_ENV, "cannot publish the kit cache %s", dir);
            nftw(tmp, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
        }
        partial = NULL;
    } else {
        check_private(base);
    }
    close(kit);
    /* PyInstaller's bootloader links zlib dynamically; a bare host has none but the copy
     * the frozen program carries (_internal/ has no RPATH entry in the bootloader). */
    char libs[PATH_MAX * 2];
    const char *old = getenv("LD_LIBRARY_PATH");
    snprintf(libs, sizeof libs, "%s/satchel/_internal%s%s", dir, old && *old ? ":" : "", old && *old ? old : "");
    setenv("LD_LIBRARY_PATH", libs, 1);
    setenv("SATCHEL_KIT", exe, 1);
    setenv("SATCHEL_KIT_DIR", dir, 1);
    execv(program, argv);
    die(EXIT_ENV, "cannot run %s (a noexec file system? set SATCHEL_KIT_CACHE)", program);
    return EXIT_ENV;
}
