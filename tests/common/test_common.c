/*
 * common/: status mapping, one-line errors, SHA-256 (FIPS 180-2 vectors), whole-file
 * reads with a size limit, atomic output files, option parsing and huge-page buffers.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <dirent.h>
#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <malloc.h>
#include <stdlib.h>
#include <sys/resource.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <fcntl.h>
#include <unistd.h>

#include "stagegate/json.h"
#include "stagegate/common.h"

static char tmpdir[256];

static int make_dir(void **state)
{
    (void)state;
    const char *base = getenv("TMPDIR");
    snprintf(tmpdir, sizeof tmpdir, "%s/sg_common_XXXXXX", base && *base ? base : P_tmpdir);
    return mkdtemp(tmpdir) ? 0 : -1;
}

/* Removes the files of tmpdir (flat) and the folder. */
static int remove_dir(void **state)
{
    (void)state;
    DIR *d = opendir(tmpdir);
    if (!d) return -1;
    struct dirent *e;
    char p[512];
    while ((e = readdir(d)))
        if (strcmp(e->d_name, ".") && strcmp(e->d_name, "..")) {
            snprintf(p, sizeof p, "%s/%s", tmpdir, e->d_name);
            unlink(p);
        }
    closedir(d);
    return rmdir(tmpdir);
}

static int count_entries(void)
{
    DIR *d = opendir(tmpdir);
    assert_non_null(d);
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d)))
        if (strcmp(e->d_name, ".") && strcmp(e->d_name, "..")) n++;
    closedir(d);
    return n;
}

static void write_bytes(const char *path, const void *data, size_t len)
{
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    assert_int_equal(fwrite(data, 1, len, f), len);
    assert_int_equal(fclose(f), 0);
}

static void test_status_strings(void **state)
{
    (void)state;
    assert_string_equal(sg_status_string(SG_EREFUSED), "refused");
    assert_string_equal(sg_status_string(SG_EINPUT), "input error");
}

static void test_errf_one_line(void **state)
{
    (void)state;
    sg_err err;
    assert_int_equal(sg_errf(&err, SG_EINPUT, "%s: bad\nthing\r%d", "f.h5", 3), SG_EINPUT);
    assert_string_equal(err.msg, "f.h5: bad thing 3");
    assert_int_equal(sg_errf(NULL, SG_EIO, "x"), SG_EIO);
    /* A message cut short is cut between characters: one cut inside "é" was invalid UTF-8,
       which verify --json's "error" could not hold (the member went missing). */
    char *long_msg = malloc(sizeof err.msg + 16);
    assert_non_null(long_msg);
    memset(long_msg, 'a', sizeof err.msg - 2);
    strcpy(long_msg + sizeof err.msg - 2, "\xc3\xa9tail"); /* é across the 6143-byte cut */
    sg_errf(&err, SG_EINPUT, "%s", long_msg);
    assert_int_equal(strlen(err.msg), sizeof err.msg - 2);
    assert_true(sg_utf8_valid(err.msg));
    free(long_msg);
}

/* JSON text keeps its value and loses the characters a terminal acts on: U+202E (right-to-left
   override), U+2028, U+0085 and DEL come out as \uXXXX; other non-ASCII text stays as it is. */
static void test_json_text_escape(void **state)
{
    (void)state;
    const char *value = "a\xe2\x80\xae"
                        "b\xe2\x80\xa8"
                        "c\xc2\x85"
                        "d\x7f"
                        "e\xc3\xa9\xe6\x97\xa5"
                        "\xd8\x9c"
                        "\xe2\x81\xa6"
                        "\xef\xbf\xbe"
                        "\xf0\x9f\x99\x82";
    json_t *doc = json_pack("{s:s}", "m\xe2\x80\xaek", value);
    assert_non_null(doc);
    char *text = sg_json_text_escape(json_dumps(doc, JSON_COMPACT));
    assert_non_null(text);
    assert_string_equal(text,
                        "{\"m\\u202ek\":\"a\\u202eb\\u2028c\\u0085d\\u007fe\xc3\xa9\xe6\x97\xa5"
                        "\\u061c\\u2066\\ufffe\xf0\x9f\x99\x82\"}");
    json_t *back = json_loads(text, 0, NULL);
    assert_non_null(back);
    assert_true(json_equal(doc, back)); /* the same value for any parser */
    json_decref(back);
    free(text);
    /* Nothing to escape: the same buffer back. */
    char *plain = strdup("{\"k\": \"\xc3\xa9\"}");
    assert_ptr_equal(sg_json_text_escape(plain), plain);
    free(plain);
    assert_null(sg_json_text_escape(NULL));
    /* What stagegate prints (sg_json_dumps) is escaped the same way. */
    char *printed = sg_json_dumps(doc, false);
    assert_non_null(printed);
    assert_null(strstr(printed, "\xe2\x80\xae"));
    assert_non_null(strstr(printed, "a\\u202eb"));
    free(printed);
    json_decref(doc);
}

/* Copies cut at a character boundary, never inside one; short ones are whole. */
static void test_utf8_copy(void **state)
{
    (void)state;
    char b[6];
    sg_utf8_copy(b, sizeof b, "abc");
    assert_string_equal(b, "abc");
    sg_utf8_copy(b, sizeof b, "abcde");
    assert_string_equal(b, "abcde");
    sg_utf8_copy(b, sizeof b, "abcd\xc3\xa9"); /* 2-byte é would be cut after its lead */
    assert_string_equal(b, "abcd");
    sg_utf8_copy(b, sizeof b, "ab\xf0\x9f\x99\x82z"); /* 4-byte emoji cut after 3 bytes */
    assert_string_equal(b, "ab");
    sg_utf8_copy(b, sizeof b, "a\xf0\x9f\x99\x82z"); /* ends right after it: kept */
    assert_string_equal(b, "a\xf0\x9f\x99\x82");
    sg_utf8_copy(b, sizeof b, "\x80\x80\x80\x80\x80\x80"); /* not UTF-8: cut by bytes */
    assert_int_equal(strlen(b), 5);
    sg_utf8_copy(b, 1, "abc");
    assert_string_equal(b, "");
}

static void expect_printable(const char *in, const char *want)
{
    char buf[256] = "";
    FILE *f = fmemopen(buf, sizeof buf - 1, "w");
    assert_non_null(f);
    sg_put_printable(f, in);
    fclose(f);
    if (strcmp(buf, want) != 0) fail_msg("\"%s\" printed as \"%s\", want \"%s\"", in, buf, want);
}

/* Outside bytes in an error line: shown, never acted on by the terminal. */
static void test_put_printable(void **state)
{
    (void)state;
    expect_printable("plain ascii: 1 < 2", "plain ascii: 1 < 2");
    /* well-formed UTF-8 passes as it is */
    expect_printable("caf\xc3\xa9 \xe2\x86\x92 \xf0\x9f\x99\x82", "caf\xc3\xa9 \xe2\x86\x92 \xf0\x9f\x99\x82");
    /* C0 controls, DEL, an escape sequence */
    expect_printable("a\nb\tc\x7f\x1b[31m", "a\\x0ab\\x09c\\x7f\\x1b[31m");
    /* C1 controls (U+0085) and bidirectional overrides (U+202E, U+2066) as their bytes */
    expect_printable("x\xc2\x85y", "x\\xc2\\x85y");
    expect_printable("\xe2\x80\xae" "exe.txt\xe2\x81\xa6", "\\xe2\\x80\\xaeexe.txt\\xe2\\x81\\xa6");
    /* the Arabic letter mark (U+061C, bidirectional) and the noncharacters U+FFFE, U+FFFF */
    expect_printable("a\xd8\x9c"
                     "b\xef\xbf\xbe"
                     "c\xef\xbf\xbf",
                     "a\\xd8\\x9cb\\xef\\xbf\\xbec\\xef\\xbf\\xbf");
    /* not UTF-8: stray continuation, a lead byte cut short, overlong, surrogate, > U+10FFFF */
    expect_printable("\x80", "\\x80");
    expect_printable("\xc3(", "\\xc3(");
    expect_printable("\xe2\x86", "\\xe2\\x86");
    expect_printable("\xc0\xaf", "\\xc0\\xaf");
    expect_printable("\xed\xa0\x80", "\\xed\\xa0\\x80");
    expect_printable("\xf4\x90\x80\x80", "\\xf4\\x90\\x80\\x80");
    expect_printable("\xff\xfe", "\\xff\\xfe");
    /* sg_utf8_valid draws the same line */
    assert_true(sg_utf8_valid("") && sg_utf8_valid("caf\xc3\xa9 \xf0\x9f\x99\x82 \x1b[2J"));
    static const char *const bad[] = {"\x80", "\xc3(", "\xe2\x86", "\xc0\xaf", "\xed\xa0\x80",
                                      "\xf4\x90\x80\x80", "ok\xff"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        if (sg_utf8_valid(bad[i])) fail_msg("bad[%zu] taken for UTF-8", i);
}

/* FIPS 180-2 appendix B vectors, and the empty message. */
static void test_sha256_vectors(void **state)
{
    (void)state;
    char hex[65];
    sg_sha256_hex((const uint8_t *)"abc", 3, hex);
    assert_string_equal(hex, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
    sg_sha256_hex((const uint8_t *)"", 0, hex);
    assert_string_equal(hex, "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");

    /* One million 'a': spans the file hasher's 1 MiB read buffer. */
    char path[512];
    snprintf(path, sizeof path, "%s/million", tmpdir);
    char *a = malloc(1000000);
    assert_non_null(a);
    memset(a, 'a', 1000000);
    write_bytes(path, a, 1000000);
    free(a);
    sg_err err;
    assert_int_equal(sg_sha256_file_hex(path, hex, &err), SG_OK);
    assert_string_equal(hex, "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0");
    unlink(path);

    snprintf(path, sizeof path, "%s/absent", tmpdir);
    assert_int_equal(sg_sha256_file_hex(path, hex, &err), SG_EINPUT);
    assert_non_null(strstr(err.msg, "absent"));
}

static void test_read_file_limit(void **state)
{
    (void)state;
    char path[512];
    snprintf(path, sizeof path, "%s/data", tmpdir);
    static uint8_t buf[10000];
    for (size_t i = 0; i < sizeof buf; i++)
        buf[i] = (uint8_t)(i * 7);
    write_bytes(path, buf, sizeof buf);

    uint8_t *data;
    size_t len;
    sg_err err;
    /* Exactly at the limit loads; one byte under the size is refused and names the file. */
    assert_int_equal(sg_read_file(path, sizeof buf, &data, &len, &err), SG_OK);
    assert_int_equal(len, sizeof buf);
    assert_memory_equal(data, buf, sizeof buf);
    assert_int_equal(data[len], 0);
    free(data);
    /* Read into a buffer of the file's size, not one grown by doubling past it (16 KiB). */
    assert_int_equal(sg_read_file(path, 1 << 20, &data, &len, &err), SG_OK);
    assert_int_equal(len, sizeof buf);
    assert_true(malloc_usable_size(data) < sizeof buf + 64);
    free(data);
    assert_int_equal(sg_read_file(path, sizeof buf - 1, &data, &len, &err), SG_EINPUT);
    assert_null(data);
    assert_non_null(strstr(err.msg, "data: file is larger than 9999 bytes"));
    /* Limits below the initial buffer size hold too. */
    assert_int_equal(sg_read_file(path, 100, &data, &len, &err), SG_EINPUT);
    write_bytes(path, buf, 100);
    assert_int_equal(sg_read_file(path, 100, &data, &len, &err), SG_OK);
    assert_int_equal(len, 100);
    free(data);
    write_bytes(path, buf, 0);
    assert_int_equal(sg_read_file(path, 0, &data, &len, &err), SG_OK);
    assert_int_equal(len, 0);
    free(data);
    unlink(path);
    /* A file whose size stat does not give (0 in /proc) is read by growing the buffer, past
       several doublings here (smaps of a test process is tens of KB), then cut to fit. */
    assert_int_equal(sg_read_file("/proc/self/smaps", 1 << 24, &data, &len, &err), SG_OK);
    assert_true(len > 8192);
    assert_int_equal(strlen((char *)data), len);
    free(data);
    assert_int_equal(sg_read_file("/proc/self/smaps", 5000, &data, &len, &err), SG_EINPUT);
    assert_non_null(strstr(err.msg, "file is larger than 5000 bytes"));

    assert_int_equal(sg_read_file(tmpdir, 1 << 20, &data, &len, &err), SG_EINPUT);
    assert_non_null(strstr(err.msg, "directory"));
    /* A FIFO is refused at once instead of blocking the open until a writer appears. */
    char fifo[600];
    snprintf(fifo, sizeof fifo, "%s/fifo", tmpdir);
    assert_int_equal(mkfifo(fifo, 0600), 0);
    assert_int_equal(sg_read_file(fifo, 1 << 20, &data, &len, &err), SG_EINPUT);
    assert_non_null(strstr(err.msg, "a FIFO"));
    uint8_t digest[32];
    assert_int_equal(sg_sha256_file(fifo, digest, &err), SG_EINPUT);
    unlink(fifo);
}

static void test_outfile_commit_and_abort(void **state)
{
    (void)state;
    char path[512];
    snprintf(path, sizeof path, "%s/out.txt", tmpdir);
    write_bytes(path, "old", 3);
    sg_err err;
    sg_outfile o;

    /* Abort: the old file stays untouched and no temporary file is left. */
    assert_int_equal(sg_outfile_open(&o, path, &err), SG_OK);
    fputs("half written", o.fp);
    fflush(o.fp);
    assert_int_equal(count_entries(), 2);
    sg_outfile_abort(&o);
    assert_int_equal(count_entries(), 1);
    uint8_t *data;
    size_t len;
    assert_int_equal(sg_read_file(path, 100, &data, &len, &err), SG_OK);
    assert_string_equal((char *)data, "old");
    free(data);

    /* Until commit the destination still holds the old content; after it, the new. */
    assert_int_equal(sg_outfile_open(&o, path, &err), SG_OK);
    fputs("new content", o.fp);
    fflush(o.fp);
    assert_int_equal(sg_read_file(path, 100, &data, &len, &err), SG_OK);
    assert_string_equal((char *)data, "old");
    free(data);
    assert_int_equal(sg_outfile_commit(&o, &err), SG_OK);
    assert_int_equal(sg_read_file(path, 100, &data, &len, &err), SG_OK);
    assert_string_equal((char *)data, "new content");
    free(data);
    assert_int_equal(count_entries(), 1);
    unlink(path);

    /* A destination in a missing folder fails at open, naming the path. */
    snprintf(path, sizeof path, "%s/nodir/out.txt", tmpdir);
    assert_int_equal(sg_outfile_open(&o, path, &err), SG_EIO);
    assert_non_null(strstr(err.msg, "nodir/out.txt"));
    sg_outfile_abort(&o);

    /* A destination that is a directory (or a device, FIFO, socket) is refused at open, and
       again at commit if it became one meanwhile; the temporary file is removed. */
    snprintf(path, sizeof path, "%s/adir", tmpdir);
    assert_int_equal(mkdir(path, 0700), 0);
    assert_int_equal(sg_outfile_open(&o, path, &err), SG_EINPUT);
    assert_non_null(strstr(err.msg, "adir: is a directory, not a regular file"));
    assert_int_equal(count_entries(), 1);
    rmdir(path);
    assert_int_equal(sg_outfile_open(&o, path, &err), SG_OK);
    fputs("x", o.fp);
    assert_int_equal(mkfifo(path, 0600), 0);
    assert_int_equal(sg_outfile_commit(&o, &err), SG_EINPUT);
    assert_non_null(strstr(err.msg, "adir: is a FIFO, not a regular file"));
    assert_int_equal(count_entries(), 1);
    unlink(path);
}

static void test_tmp_path_same_dir(void **state)
{
    (void)state;
    char tmp[4096], tmp2[4096];
    sg_err err;
    assert_int_equal(sg_tmp_path_for("a/b/out.h5", tmp, sizeof tmp, &err), SG_OK);
    assert_true(strncmp(tmp, "a/b/.out.h5.tmp.", 16) == 0);
    assert_int_equal(sg_tmp_path_for("out.h5", tmp2, sizeof tmp2, &err), SG_OK);
    assert_true(strncmp(tmp2, "./.out.h5.tmp.", 14) == 0);
    /* Two temporary names for the same target differ (a counter, not just the pid). */
    assert_int_equal(sg_tmp_path_for("a/b/out.h5", tmp2, sizeof tmp2, &err), SG_OK);
    assert_string_not_equal(tmp, tmp2);
    char small[8];
    assert_int_equal(sg_tmp_path_for("out.h5", small, sizeof small, &err), SG_EINPUT);
}

static volatile sig_atomic_t got_term;
static void count_term(int sig)
{
    (void)sig;
    got_term++;
}

/* Outputs renamed as a set: a SIGTERM raised while they are held arrives after the release,
   never between two renames. */
static void test_tmp_signals_hold(void **state)
{
    (void)state;
    struct sigaction sa = {.sa_handler = count_term}, old;
    sigemptyset(&sa.sa_mask);
    assert_int_equal(sigaction(SIGTERM, &sa, &old), 0);
    got_term = 0;
    sigset_t saved;
    sg_tmp_signals_hold(&saved);
    raise(SIGTERM);
    raise(SIGTERM); /* held signals of one kind are delivered once */
    assert_int_equal(got_term, 0);
    sg_tmp_signals_release(&saved);
    assert_int_equal(got_term, 1);
    assert_int_equal(sigaction(SIGTERM, &old, NULL), 0);
}

/* A name as long as a directory entry may be (255 bytes) still has a temp name that fits. */
static void test_tmp_path_long_name(void **state)
{
    (void)state;
    char name[300], path[600], tmp[4096];
    memset(name, 'n', 255);
    name[255] = '\0';
    snprintf(path, sizeof path, "%s/%s", tmpdir, name);
    sg_err err;
    assert_int_equal(sg_tmp_path_for(path, tmp, sizeof tmp, &err), SG_OK);
    const char *base = strrchr(tmp, '/') + 1;
    assert_true(strlen(base) <= 255);
    int fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL, 0600);
    assert_true(fd >= 0);
    close(fd);
    sg_tmp_remove(tmp);
}

/* Makes tmpdir/name holding "x", modified age seconds ago. */
static void make_aged(const char *name, int age)
{
    char p[512];
    snprintf(p, sizeof p, "%s/%s", tmpdir, name);
    write_bytes(p, "x", 1);
    struct timespec t[2];
    clock_gettime(CLOCK_REALTIME, &t[0]);
    t[0].tv_sec -= age;
    t[1] = t[0];
    assert_int_equal(utimensat(AT_FDCWD, p, t, 0), 0);
}

static bool exists_in_dir(const char *name)
{
    char p[512];
    snprintf(p, sizeof p, "%s/%s", tmpdir, name);
    struct stat st;
    return lstat(p, &st) == 0;
}

/* A writer killed with SIGKILL leaves its temp file; the next write of that output removes
   it, but never a live writer's, a fresh one, another output's, another user's or a link. */
static void test_tmp_sweep_stale(void **state)
{
    (void)state;
    const int old = SG_TMP_STALE_SECONDS + 5;
    make_aged(".out.json.tmp.0123456789abcdef", old);   /* stale: goes */
    make_aged(".out.json.tmp.fedcba9876543210", old);   /* locked below: stays */
    make_aged(".out.json.tmp.00112233445566aa", 1);     /* fresh: stays */
    make_aged(".other.json.tmp.0123456789abcdef", old); /* another output: stays */
    make_aged(".out.json.tmp.0123", old);               /* not a temp name: stays */
    make_aged("out.json.tmp.0123456789abcdef", old);    /* no leading dot: stays */
    char p[512], target[512];
    snprintf(target, sizeof target, "%s/.other.json.tmp.0123456789abcdef", tmpdir);
    snprintf(p, sizeof p, "%s/.out.json.tmp.aaaaaaaaaaaaaaaa", tmpdir);
    assert_int_equal(symlink(target, p), 0); /* a link: stays, and so does what it names */
    bool as_root = geteuid() == 0;
    if (as_root) { /* someone else's: stays */
        make_aged(".out.json.tmp.bbbbbbbbbbbbbbbb", old);
        snprintf(p, sizeof p, "%s/.out.json.tmp.bbbbbbbbbbbbbbbb", tmpdir);
        assert_int_equal(chown(p, 65534, 65534), 0);
    }
    /* A live writer's lock: an open file description of its own (this process's other
       descriptor conflicts with it as another process's would). */
    snprintf(p, sizeof p, "%s/.out.json.tmp.fedcba9876543210", tmpdir);
    int held = open(p, O_WRONLY | O_CLOEXEC);
    assert_true(held >= 0);
    assert_true(sg_tmp_lock(held));

    char path[512];
    snprintf(path, sizeof path, "%s/out.json", tmpdir);
    sg_err err;
    sg_outfile o;
    assert_int_equal(sg_outfile_open(&o, path, &err), SG_OK);
    /* The new writer's own temp file is locked while it is open: a second sweep spares it
       even once old. */
    struct timespec t[2] = {{.tv_sec = 1000000000}, {.tv_sec = 1000000000}};
    assert_int_equal(utimensat(AT_FDCWD, o.tmp_path, t, 0), 0);
    assert_int_equal(sg_tmp_sweep(tmpdir, "out.json"), 0);
    assert_int_equal(access(o.tmp_path, F_OK), 0);
    fputs("{}", o.fp);
    assert_int_equal(sg_outfile_commit(&o, &err), SG_OK);

    assert_false(exists_in_dir(".out.json.tmp.0123456789abcdef"));
    assert_true(exists_in_dir(".out.json.tmp.fedcba9876543210"));
    assert_true(exists_in_dir(".out.json.tmp.00112233445566aa"));
    assert_true(exists_in_dir(".other.json.tmp.0123456789abcdef"));
    assert_true(exists_in_dir(".out.json.tmp.0123"));
    assert_true(exists_in_dir("out.json.tmp.0123456789abcdef"));
    assert_true(exists_in_dir(".out.json.tmp.aaaaaaaaaaaaaaaa"));
    if (as_root) assert_true(exists_in_dir(".out.json.tmp.bbbbbbbbbbbbbbbb"));
    assert_true(exists_in_dir("out.json"));

    /* Once its writer is gone (the descriptor closed, as at exit), it goes too. */
    close(held);
    assert_int_equal(sg_tmp_sweep(tmpdir, "out.json"), 1);
    assert_false(exists_in_dir(".out.json.tmp.fedcba9876543210"));
    DIR *d = opendir(tmpdir);
    for (struct dirent *e; (e = readdir(d));)
        if (strcmp(e->d_name, ".") && strcmp(e->d_name, "..")) { /* for the next tests */
            snprintf(p, sizeof p, "%s/%s", tmpdir, e->d_name);
            unlink(p);
        }
    closedir(d);
}

static void test_parse_options(void **state)
{
    (void)state;
    int64_t i;
    double d;
    sg_err err;
    assert_int_equal(sg_parse_i64("--n", "42", 1, 100, &i, &err), 0);
    assert_int_equal(i, 42);
    assert_int_equal(sg_parse_i64("--n", "0", 1, 100, &i, &err), -1);
    assert_non_null(strstr(err.msg, "--n: '0'"));
    assert_int_equal(sg_parse_i64("--n", "12abc", 1, 100, &i, &err), -1);
    assert_int_equal(sg_parse_i64("--n", "", 1, 100, &i, &err), -1);
    assert_int_equal(sg_parse_i64("--n", "99999999999999999999", 1, INT64_MAX, &i, &err), -1);
    assert_int_equal(sg_parse_double("--t", "0.25", 0, 1, &d, &err), 0);
    assert_true(d == 0.25);
    /* "-0" is 0, without the sign a report would echo as -0. */
    assert_int_equal(sg_parse_double("--t", "-0", 0, 1, &d, &err), 0);
    assert_true(d == 0 && !signbit(d));
    assert_int_equal(sg_parse_double("--t", "nan", 0, 1, &d, &err), -1);
    /* hex floats are C's, not a number an option means (0x0.8 had read as 0.5) */
    assert_int_equal(sg_parse_double("--t", "0x0.8", 0, 1, &d, &err), -1);
    assert_non_null(strstr(err.msg, "--t: '0x0.8' is not a number in [0, 1]"));
    assert_int_equal(sg_parse_double("--t", "0X1P-1", 0, 1, &d, &err), -1);
    assert_int_equal(sg_parse_double("--t", "inf", 0, INFINITY, &d, &err), -1);
    assert_int_equal(sg_parse_double("--t", "1.0001", 0, 1, &d, &err), -1);
    assert_int_equal(sg_parse_double("--t", "1e-400", -1, 1, &d, &err), -1);
    assert_non_null(strstr(err.msg, "too small for a double"));
    /* a subnormal is a number (strtod flags it as an underflow) */
    assert_int_equal(sg_parse_double("--t", "1e-310", 0, 1, &d, &err), 0);
    assert_true(d > 0 && d < 1.1e-310);
    assert_int_equal(sg_parse_double("--t", "5e-324", 0, 1, &d, &err), 0);
    assert_true(d > 0);
    /* White space around a value is refused at either end (strtod and strtoll skip it in
       front). */
    assert_int_equal(sg_parse_double("--t", " 0.5", 0, 1, &d, &err), -1);
    assert_non_null(strstr(err.msg, "--t: ' 0.5'"));
    assert_int_equal(sg_parse_double("--t", "\t0.5", 0, 1, &d, &err), -1);
    assert_int_equal(sg_parse_double("--t", "0.5 ", 0, 1, &d, &err), -1);
    assert_int_equal(sg_parse_i64("--n", " 42", 1, 100, &i, &err), -1);
    assert_int_equal(sg_parse_i64("--n", "\n42", 1, 100, &i, &err), -1);
    assert_int_equal(sg_parse_i64("--n", "42 ", 1, 100, &i, &err), -1);
}

/* Unit formatting: the unit chosen per value, three significant digits, rounding carried
 * into the next unit, thousands separators, binary memory units. */
static void test_unit_formatting(void **state)
{
    (void)state;
    static const struct {
        double ns;
        const char *want;
    } durations[] = {
        {0, "0 ns"},
        {0.5, "0.500 ns"},
        {7, "7.00 ns"},
        {717, "717 ns"},
        {999.4, "999 ns"},
        {999.7, "1.00 \u00b5s"},
        {4567, "4.57 \u00b5s"},
        {45670, "45.7 \u00b5s"},
        {456700, "457 \u00b5s"},
        {999999, "1.00 ms"},
        {4.28e6, "4.28 ms"},
        {1246337065, "1.25 s"},
        {3e12, "3000 s"},
        {NAN, "-"},
        {INFINITY, "-"},
    };
    char buf[32];
    for (size_t i = 0; i < sizeof durations / sizeof durations[0]; i++) {
        sg_format_ns(durations[i].ns, buf, sizeof buf);
        assert_string_equal(buf, durations[i].want);
    }
    static const struct {
        double v;
        const char *want;
    } counts[] = {
        {0, "0"},
        {7, "7"},
        {999, "999"},
        {1000, "1,000"},
        {100000, "100,000"},
        {1e5, "100,000"},
        {1234567, "1,234,567"},
        {-4321, "-4,321"},
        {600000.4, "600,000"},
        {NAN, "-"},
    };
    for (size_t i = 0; i < sizeof counts / sizeof counts[0]; i++) {
        sg_format_count(counts[i].v, buf, sizeof buf);
        assert_string_equal(buf, counts[i].want);
    }
    static const struct {
        double bytes;
        const char *want;
    } sizes[] = {
        {0, "0 B"},
        {512, "512 B"},
        {1023, "1023 B"},
        {35.6, "35.6 B"},
        {0.25, "0.25 B"},
        {1012.5, "1012.5 B"}, /* not "1010 B", below a 1012-byte value */
        {1024, "1.00 KiB"},
        {1536, "1.50 KiB"},
        {1048575, "1.00 MiB"},
        {33.4 * 1048576, "33.4 MiB"},
        {256.0 * 1048576, "256 MiB"},
        {2.56e9, "2.38 GiB"},
        {NAN, "-"},
    };
    for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
        sg_format_bytes(sizes[i].bytes, buf, sizeof buf);
        assert_string_equal(buf, sizes[i].want);
    }
}

/* The VmFlags line of the mapping in /proc/self/smaps that holds address a, or "" */
static void vm_flags_of(const void *a, char *out, size_t cap)
{
    out[0] = '\0';
    FILE *f = fopen("/proc/self/smaps", "r");
    if (!f) return;
    char line[512];
    bool inside = false;
    while (fgets(line, sizeof line, f)) {
        unsigned long lo, hi;
        if (sscanf(line, "%lx-%lx ", &lo, &hi) == 2 && strchr(line, '-') < strchr(line, ' ')) {
            inside = (uintptr_t)a >= lo && (uintptr_t)a < hi;
        } else if (inside && strncmp(line, "VmFlags:", 8) == 0) {
            snprintf(out, cap, "%s", line + 8);
            break;
        }
    }
    fclose(f);
}

static void test_alloc_huge(void **state)
{
    (void)state;
    /* Below 512 KiB: an ordinary 64-byte-aligned block. */
    uint8_t *small = sg_alloc_huge(1000);
    assert_non_null(small);
    assert_int_equal((uintptr_t)small % 64, 0);
    memset(small, 1, 1000);
    sg_free_aligned(small);

    /* From 512 KiB: 2 MiB-aligned and every byte usable; its mapping is marked for huge
       pages (the kernel records MADV_HUGEPAGE as VmFlags "hg" wherever it has transparent
       huge pages, whatever their mode) only under STAGEGATE_HUGE_PAGES=1. */
    const size_t sizes[] = {(size_t)512 << 10, ((size_t)5 << 20) + 1};
    const char *const modes[] = {NULL, "0", "1"};
    const bool thp = access("/sys/kernel/mm/transparent_hugepage/enabled", F_OK) == 0;
    for (size_t m = 0; m < sizeof modes / sizeof *modes; m++) {
        if (modes[m])
            setenv("STAGEGATE_HUGE_PAGES", modes[m], 1);
        else
            unsetenv("STAGEGATE_HUGE_PAGES");
        const bool want = m == 2;
        assert_int_equal(sg_huge_pages_wanted(), want);
        for (size_t i = 0; i < sizeof sizes / sizeof *sizes; i++) {
            const size_t big = sizes[i];
            uint8_t *p = sg_alloc_huge(big);
            assert_non_null(p);
            assert_int_equal((uintptr_t)p % ((size_t)2 << 20), 0);
            memset(p, 0xa5, big);
            assert_int_equal(p[big - 1], 0xa5);
            if (thp) {
                char flags[512];
                vm_flags_of(p + big / 2, flags, sizeof flags);
                assert_int_equal(strstr(flags, " hg") != NULL, want);
            }
            sg_free_aligned(p);
        }
    }
    unsetenv("STAGEGATE_HUGE_PAGES");

    /* A size that cannot be rounded up is refused, not wrapped. */
    assert_null(sg_alloc_huge(SIZE_MAX - 10));
}

static void put(const char *dir, const char *rel, const char *text)
{
    char path[1024], cmd[1100];
    snprintf(path, sizeof path, "%s/%s", dir, rel);
    snprintf(cmd, sizeof cmd, "mkdir -p \"$(dirname '%s')\"", path);
    assert_int_equal(system(cmd), 0);
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
}

/* The memory limit: physical memory, or the process's cgroup limit when lower (v2 and v1,
   "max" and v1's no-limit number, a path the namespace hides). */
static void test_memory_limit(void **state)
{
    (void)state;
    char d[512], proc[600], sys[600], cmd[600];
    snprintf(d, sizeof d, "%s/cg_XXXXXX", tmpdir);
    assert_non_null(mkdtemp(d));
    snprintf(proc, sizeof proc, "%s/self_cgroup", d);
    snprintf(sys, sizeof sys, "%s/sys", d);
    const uint64_t phys = sg_physical_memory();
    assert_true(phys > (64u << 20));
    put(d, "self_cgroup", "0::/grp\n");
    put(sys, "grp/memory.max", "1048576\n");
    assert_int_equal(sg_memory_limit_at(proc, sys), 1048576);
    put(sys, "grp/memory.max", "max\n");
    assert_int_equal(sg_memory_limit_at(proc, sys), phys);
    put(d, "self_cgroup", "5:cpu,memory:/a/b\n3:cpuset:/\n0::/\n");
    put(sys, "memory/a/b/memory.limit_in_bytes", "2097152\n");
    assert_int_equal(sg_memory_limit_at(proc, sys), 2097152);
    put(sys, "memory/a/b/memory.limit_in_bytes", "9223372036854771712\n");
    assert_int_equal(sg_memory_limit_at(proc, sys), phys);
    put(d, "self_cgroup", "0::/hidden/by/namespace\n");
    put(sys, "memory.max", "3145728\n");
    assert_int_equal(sg_memory_limit_at(proc, sys), 3145728);
    snprintf(proc, sizeof proc, "%s/none", d);
    assert_int_equal(sg_memory_limit_at(proc, sys), phys);
    /* the check before an allocation uses it: more than physical memory is refused */
    sg_err err;
    assert_int_equal(sg_check_alloc((int64_t)(phys / 4 + 1), 4, "what", &err), SG_EINPUT);
    assert_non_null(strstr(err.msg, "memory this process may use"));
    assert_int_equal(sg_check_alloc(1000, 4, "what", &err), SG_OK);
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", d);
    assert_int_equal(system(cmd), 0);
    /* ulimit -v and -d: what they leave of what the process maps now is the limit (a set
       whose kept scores could not fit had been streamed whole before the sort failed). */
    static const int res[] = {RLIMIT_AS, RLIMIT_DATA};
#if defined(__SANITIZE_ADDRESS__)
    /* AddressSanitizer maps its allocator's regions on demand: no limit below them here */
    return;
#endif
    for (size_t i = 0; i < 2; i++) {
        struct rlimit saved, rl;
        assert_int_equal(getrlimit(res[i], &saved), 0);
        unsigned long long pages[7];
        FILE *f = fopen("/proc/self/statm", "r");
        assert_non_null(f);
        assert_int_equal(fscanf(f, "%llu %llu %llu %llu %llu %llu %llu", &pages[0], &pages[1],
                                &pages[2], &pages[3], &pages[4], &pages[5], &pages[6]),
                         7);
        fclose(f);
        const uint64_t used = (uint64_t)pages[i == 0 ? 0 : 5] * (uint64_t)sysconf(_SC_PAGESIZE);
        rl = saved;
        rl.rlim_cur = (rlim_t)(used + (256u << 20));
        if (saved.rlim_max != RLIM_INFINITY && rl.rlim_cur > saved.rlim_max) continue;
        assert_int_equal(setrlimit(res[i], &rl), 0);
        const uint64_t lim = sg_memory_limit();
        assert_int_equal(setrlimit(res[i], &saved), 0);
        /* 256 MiB left, give or take what the process mapped meanwhile */
        if (!(lim <= (256u << 20) && lim > (128u << 20)))
            fail_msg("limit %zu: sg_memory_limit %llu, want about 256 MiB", i,
                     (unsigned long long)lim);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_status_strings),     cmocka_unit_test(test_errf_one_line),
        cmocka_unit_test(test_utf8_copy),          cmocka_unit_test(test_json_text_escape),
        cmocka_unit_test(test_put_printable),      cmocka_unit_test(test_sha256_vectors),
        cmocka_unit_test(test_read_file_limit),    cmocka_unit_test(test_outfile_commit_and_abort),
        cmocka_unit_test(test_tmp_path_same_dir),  cmocka_unit_test(test_tmp_signals_hold),
        cmocka_unit_test(test_tmp_path_long_name), cmocka_unit_test(test_tmp_sweep_stale),
        cmocka_unit_test(test_parse_options),      cmocka_unit_test(test_unit_formatting),
        cmocka_unit_test(test_alloc_huge),         cmocka_unit_test(test_memory_limit),
    };
    return cmocka_run_group_tests(tests, make_dir, remove_dir);
}
