/*
 * File-level mutation fuzzer for the HDF5 loaders: validation sets (sg_dataset_open, then
 * every row read in ranges) and model files (sg_model_open, then a prediction), run
 * in-process on whole HDF5 files, meant for the ASan+UBSan build.
 *
 * Each input is a seed file (tests/fuzz/hdf5_corpus/) with 1-4 mutations:
 *   - bit flips and random bytes anywhere;
 *   - "interesting" bytes and 16/32/64-bit integers at structural offsets: the superblock,
 *     and around the signatures of object headers, B-trees, heaps and chunk indexes
 *     (OHDR, TREE, HEAP, SNOD, BTHD, BTLF, FAHD, FADB, EAHB, EAIB, EADB, FRHP, GCOL);
 *   - filter-id relabels in the filter-pipeline messages (deflate, shuffle, fletcher32,
 *     szip, nbit, scaleoffset, a plugin id, 0xffff);
 *   - dimension and chunk-size edits: every place in the file that holds, as a 32- or
 *     64-bit little-endian integer, one of the seed's dataset dimensions or chunk sizes
 *     (read from the seed with libhdf5 at start) gets 0, 1, v-1, v+1, 2v, 1000v, 2^31,
 *     2^32+v, 2^62+1 or all ones;
 *   - truncation, at a random or a structural offset.
 * Every input goes to both loaders, in a forked child with the loaders' own sandboxed dry
 * run switched off, so a crash shows where it happens. The contract checked: accepted, or
 * refused with a one-line message that names the file. A child that dies is a crash: its
 * sanitizer report (or, without sanitizers, a backtrace) says whether the faulting code is
 * libhdf5's or ours; the input is saved once per crash site (--crash-dir). A crash in
 * libhdf5 is then replayed with the sandbox on, which must turn it into a refusal (exit 2
 * in the CLI); a crash in our code, or a libhdf5 crash the sandbox does not catch, fails.
 * An input that runs for more than 10 s is a crash at "timeout" (a hang in libhdf5 is
 * "hang"): the sandbox's CPU limit, lowered to 2 s here, must end it.
 *
 * Built with -DSTAGEGATE_FUZZ_COVERAGE=ON (scripts/fuzz_hdf5.sh), datasets/ is compiled
 * with -fsanitize-coverage=trace-pc and this file counts the distinct program counters
 * reached there: an input that reaches a new one joins the corpus (and --corpus-out).
 *
 *   sg_fuzz_hdf5 [--iters N] [--seconds S] [--seed N] [--corpus-out DIR]
 *                [--crash-dir DIR] SEED.h5...
 *   sg_fuzz_hdf5 --replay CRASH.h5...     (each must be refused, sandbox on)
 */
#include <errno.h>
#include <execinfo.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <hdf5.h>

#include "datasets/h5util.h"
#include "stagegate/dataset.h"
#include "stagegate/kernels.h"
#include "stagegate/model_ops.h"

/* ---------------------------------------------------------------- shared state */
/* Written by the forked children, read by the parent: one child runs at a time. */
#define PC_SLOTS (1u << 20)
#define MAX_CLASSES 4096
typedef struct {
    uint8_t pc_map[PC_SLOTS];
    size_t pcs_seen;
    long accepted, refused, violations;
    uint64_t classes[MAX_CLASSES];
    int n_classes;
} shared_state;
static shared_state *sh;

#ifdef SG_FUZZ_TRACE_PC
void __sanitizer_cov_trace_pc(void);
void __sanitizer_cov_trace_pc(void)
{
    uintptr_t pc = (uintptr_t)__builtin_return_address(0);
    uint32_t h = (uint32_t)((pc * 0x9e3779b97f4a7c15ull) >> 44) & (PC_SLOTS - 1);
    if (sh && !sh->pc_map[h]) {
        sh->pc_map[h] = 1;
        sh->pcs_seen++;
    }
}
#endif

/* ---------------------------------------------------------------- random */
static uint64_t rng_state;
static uint64_t rnd(void)
{
    uint64_t z = (rng_state += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}
static size_t below(size_t n)
{
    return n ? (size_t)(rnd() % n) : 0;
}

/* ---------------------------------------------------------------- corpus */
typedef struct {
    uint8_t *data;
    size_t len;
    size_t *structural; /* offsets of signatures and the superblock */
    size_t n_structural;
    size_t *filters; /* offsets of filter ids in pipeline messages */
    size_t n_filters;
    size_t *ints; /* offsets of 4- or 8-byte integers equal to a dimension or chunk size */
    uint8_t *int_width;
    uint64_t *int_value;
    size_t n_ints;
} seed_file;

static seed_file *corpus;
static size_t n_corpus, cap_corpus;

static void *xrealloc(void *p, size_t n)
{
    void *q = realloc(p, n ? n : 1);
    if (!q) {
        fprintf(stderr, "fuzz_hdf5: out of memory\n");
        exit(2);
    }
    return q;
}

static void push(size_t **arr, size_t *n, size_t v)
{
    *arr = xrealloc(*arr, (*n + 1) * sizeof **arr);
    (*arr)[(*n)++] = v;
}

typedef struct {
    uint64_t v[64];
    int n;
} value_set;

static herr_t collect(hid_t obj, const char *name, const H5O_info_t *info, void *data)
{
    value_set *vs = data;
    if (info->type != H5O_TYPE_DATASET) return 0;
    hid_t ds = H5Dopen2(obj, name, H5P_DEFAULT);
    if (ds < 0) return 0;
    hid_t sp = H5Dget_space(ds), dcpl = H5Dget_create_plist(ds);
    hsize_t d[4] = {0}, c[4] = {0};
    int r = H5Sget_simple_extent_dims(sp, d, NULL);
    int rc = H5Pget_layout(dcpl) == H5D_CHUNKED ? H5Pget_chunk(dcpl, 4, c) : 0;
    for (int i = 0; i < r && vs->n < 62; i++)
        vs->v[vs->n++] = d[i];
    for (int i = 0; i < rc && vs->n < 62; i++)
        vs->v[vs->n++] = c[i];
    H5Pclose(dcpl);
    H5Sclose(sp);
    H5Dclose(ds);
    return 0;
}

/* Finds the offsets the structural mutations aim at. */
static void analyse(seed_file *s, const char *path)
{
    static const char *sigs[] = {"\x89HDF\r\n\x1a\n", "OHDR", "OCHK", "TREE", "HEAP", "SNOD",
                                 "BTHD", "BTLF", "BTIN", "FAHD", "FADB", "EAHB", "EAIB", "EADB",
                                 "EASB", "FRHP", "FHDB", "FHIB", "GCOL", "FSHD", "SMTB"};
    for (size_t k = 0; k < sizeof sigs / sizeof sigs[0]; k++) {
        size_t sl = strlen(sigs[k]);
        for (size_t i = 0; i + sl <= s->len; i++)
            if (memcmp(s->data + i, sigs[k], sl) == 0) push(&s->structural, &s->n_structural, i);
    }
    /* Filter-pipeline entries, version 1: id u16, name length u16, flags, n params, name. */
    static const char *names[] = {"deflate", "shuffle", "fletcher32"};
    for (size_t k = 0; k < 3; k++) {
        size_t nl = strlen(names[k]) + 1;
        for (size_t i = 8; i + nl <= s->len; i++)
            if (memcmp(s->data + i, names[k], nl) == 0) push(&s->filters, &s->n_filters, i - 8);
    }
    /* Version 2 entries have no name: an id of 1..3 followed by flags and a small count. */
    for (size_t i = 0; i + 6 <= s->len; i++) {
        uint16_t id = (uint16_t)(s->data[i] | s->data[i + 1] << 8);
        uint16_t ncd = (uint16_t)(s->data[i + 4] | s->data[i + 5] << 8);
        if (i >= 2 && s->data[i - 2] == 2 && s->data[i - 1] >= 1 && s->data[i - 1] <= 3 &&
            id >= 1 && id <= 3 && ncd <= 8)
            push(&s->filters, &s->n_filters, i);
    }
    value_set vs = {{0}, 0};
    hid_t f = H5Fopen(path, H5F_ACC_RDONLY, H5P_DEFAULT);
    if (f >= 0) {
        H5Ovisit(f, H5_INDEX_NAME, H5_ITER_NATIVE, collect, &vs);
        H5Fclose(f);
    }
    for (size_t i = 0; i + 4 <= s->len; i++) {
        uint64_t v32 = (uint64_t)s->data[i] | (uint64_t)s->data[i + 1] << 8 |
                       (uint64_t)s->data[i + 2] << 16 | (uint64_t)s->data[i + 3] << 24;
        uint64_t v64 = v32;
        if (i + 8 <= s->len)
            for (int b = 4; b < 8; b++)
                v64 |= (uint64_t)s->data[i + (size_t)b] << (8 * b);
        for (int k = 0; k < vs.n; k++) {
            int width = i + 8 <= s->len && v64 == vs.v[k] ? 8 : v32 == vs.v[k] ? 4 : 0;
            if (!width || vs.v[k] < 2) continue;
            push(&s->ints, &s->n_ints, i);
            s->int_width = xrealloc(s->int_width, s->n_ints);
            s->int_value = xrealloc(s->int_value, s->n_ints * sizeof *s->int_value);
            s->int_width[s->n_ints - 1] = (uint8_t)width;
            s->int_value[s->n_ints - 1] = vs.v[k];
            break;
        }
    }
}

static seed_file *add_seed(const uint8_t *data, size_t len, const seed_file *like)
{
    if (n_corpus == cap_corpus) {
        cap_corpus = cap_corpus ? 2 * cap_corpus : 16;
        corpus = xrealloc(corpus, cap_corpus * sizeof *corpus);
    }
    seed_file *s = &corpus[n_corpus++];
    memset(s, 0, sizeof *s);
    s->data = xrealloc(NULL, len);
    memcpy(s->data, data, len);
    s->len = len;
    if (like) { /* a mutant keeps its parent's offsets (those past its end are skipped) */
        s->structural = like->structural, s->n_structural = like->n_structural;
        s->filters = like->filters, s->n_filters = like->n_filters;
        s->ints = like->ints, s->int_width = like->int_width, s->int_value = like->int_value;
        s->n_ints = like->n_ints;
    }
    return s;
}

/* ---------------------------------------------------------------- mutations */
static void put_le(uint8_t *p, uint64_t v, int width)
{
    for (int b = 0; b < width; b++)
        p[b] = (uint8_t)(v >> (8 * b));
}

static uint64_t interesting(uint64_t v)
{
    const uint64_t picks[] = {0,          1,          v - 1,           v + 1,
                              2 * v,      1000 * v,   (uint64_t)1 << 31, ((uint64_t)1 << 32) + v,
                              ((uint64_t)1 << 62) + 1, UINT64_MAX, 0x7fffffff, 0xffff};
    return picks[below(sizeof picks / sizeof picks[0])];
}

static const char *mutate(const seed_file *s, uint8_t *buf, size_t *len)
{
    static char kinds[128];
    kinds[0] = '\0';
    memcpy(buf, s->data, s->len);
    *len = s->len;
    int rounds = 1 + (int)below(4);
    for (int r = 0; r < rounds; r++) {
        size_t n = *len;
        const char *k = "";
        switch (below(9)) {
        case 0:
            if (n) buf[below(n)] ^= (uint8_t)(1u << below(8));
            k = "bitflip";
            break;
        case 1:
            if (n) buf[below(n)] = (uint8_t)rnd();
            k = "byte";
            break;
        case 2:
        case 3: /* near a structure: a byte or an integer of interesting value */
            if (s->n_structural) {
                size_t at = s->structural[below(s->n_structural)] + below(48);
                int width = 1 << below(4);
                if (at + (size_t)width <= n)
                    put_le(buf + at, width == 1 ? (uint64_t)"\x00\x01\x7f\x80\xff"[below(5)]
                                                : interesting(below(1u << 16)),
                           width);
            }
            k = "structural";
            break;
        case 4:
            if (s->n_filters) {
                static const uint16_t ids[] = {0, 1, 2, 3, 4, 5, 6, 32000, 0xffff};
                size_t at = s->filters[below(s->n_filters)];
                if (at + 2 <= n) put_le(buf + at, ids[below(sizeof ids / sizeof ids[0])], 2);
            }
            k = "filter-id";
            break;
        case 5:
        case 6:
            if (s->n_ints) {
                size_t i = below(s->n_ints);
                if (s->ints[i] + s->int_width[i] <= n)
                    put_le(buf + s->ints[i], interesting(s->int_value[i]), s->int_width[i]);
            }
            k = "dim";
            break;
        case 7:
            if (n) *len = below(n);
            k = "truncate";
            break;
        case 8:
            if (s->n_structural) {
                size_t at = s->structural[below(s->n_structural)] + below(16);
                if (at < n) *len = at;
            }
            k = "truncate-structural";
            break;
        }
        if (strlen(kinds) + strlen(k) + 2 < sizeof kinds) {
            if (kinds[0]) strcat(kinds, "+");
            strcat(kinds, k);
        }
    }
    return kinds;
}

/* ---------------------------------------------------------------- running the loaders */
static char input_path[4096];

/* Outcome classes: the loader and its message with the path, digits and quoted text out. */
static void note_class(const char *loader, const char *msg)
{
    uint64_t h = 1469598103934665603ull;
    for (const char *c = loader; *c; c++)
        h = (h ^ (uint8_t)*c) * 1099511628211ull;
    const char *m = strstr(msg, input_path) ? strstr(msg, input_path) + strlen(input_path) : msg;
    bool quoted = false;
    for (; *m; m++) {
        if (*m == '\'' || *m == '"') quoted = !quoted;
        if (quoted || (*m >= '0' && *m <= '9')) continue;
        h = (h ^ (uint8_t)*m) * 1099511628211ull;
    }
    for (int i = 0; i < sh->n_classes; i++)
        if (sh->classes[i] == h) return;
    if (sh->n_classes < MAX_CLASSES) sh->classes[sh->n_classes++] = h;
}

/* Returns false on a contract violation. */
static bool verdict(const char *loader, sg_status rc, const sg_err *err, const char *kinds)
{
    if (rc == SG_OK) {
        sh->accepted++;
        note_class(loader, "accepted");
        return true;
    }
    sh->refused++;
    if (!err->msg[0] || strchr(err->msg, '\n') || !strstr(err->msg, input_path)) {
        if (++sh->violations <= 20)
            fprintf(stderr,
                    "VIOLATION %s (%s): refusal without a one-line message naming the file: "
                    "'%s'\n",
                    loader, kinds, err->msg);
        return false;
    }
    note_class(loader, err->msg);
    return true;
}

static bool run_dataset(const char *kinds)
{
    sg_dataset *ds = NULL;
    sg_err err = {{0}};
    sg_status rc = sg_dataset_open(input_path, &ds, &err);
    if (rc == SG_OK) {
        const int64_t n = sg_dataset_rows(ds);
        const int d = sg_dataset_features(ds);
        /* At most about 4 MiB of rows per read: a declared size is not a reason to allocate. */
        int64_t block = ((int64_t)1 << 20) / d;
        block = block < 1 ? 1 : block > 4096 ? 4096 : block;
        float *X = malloc((size_t)block * (size_t)d * sizeof *X);
        int32_t *L = malloc((size_t)block * sizeof *L);
        double *T = malloc((size_t)block * sizeof *T), *W = malloc((size_t)block * sizeof *W);
        bool ints = sg_dataset_label_kind(ds) == SG_LABELS_INT;
        /* The first rows in two uneven ranges, and the last rows. */
        int64_t starts[3] = {0, block / 3 + 1, n > block ? n - block : 0};
        for (int i = 0; rc == SG_OK && X && L && T && W && i < 3; i++) {
            int64_t r0 = starts[i] < n ? starts[i] : 0;
            int64_t cnt = n - r0 < block ? n - r0 : block;
            if (i == 0 && cnt > 1) cnt = cnt / 3 + 1;
            rc = sg_dataset_read(ds, r0, cnt, X, ints ? L : NULL, T, W, 0, &err);
        }
        free(X);
        free(L);
        free(T);
        free(W);
        sg_dataset_close(ds);
    }
    return verdict("dataset", rc, &err, kinds);
}

static bool run_model(const char *kinds)
{
    sg_model *m = NULL;
    sg_err err = {{0}};
    sg_status rc = sg_model_open(input_path, &m, &err);
    if (rc == SG_OK) {
        enum { ROWS = 5 };
        const int f = m->n_features, w = sg_model_output_width(m);
        float *x = calloc((size_t)ROWS * (size_t)f, sizeof *x);
        float *out = malloc((size_t)ROWS * (size_t)w * sizeof *out);
        void *scratch = NULL;
        if (x && out && sg_model_scratch_new(m, ROWS, &scratch, &err) == SG_OK) {
            for (size_t i = 0; i < (size_t)ROWS * (size_t)f; i++)
                x[i] = (float)((int)(i * 2654435761u % 2001) - 1000) / 250.0f;
            sg_model_predict_batch(m, sg_kernels_variant(SG_ISA_SCALAR), x, ROWS, out, scratch);
        }
        sg_model_scratch_free(m, scratch);
        free(x);
        free(out);
        sg_model_free(m);
    }
    return verdict("model", rc, &err, kinds);
}

/* Without sanitizers a fault leaves no report: print a backtrace for the parent to read. */
static void on_fault(int sig) __attribute__((unused));
static void on_fault(int sig)
{
    void *frames[64];
    int n = backtrace(frames, 64);
    /* Frames 0 and 1 are this handler and the kernel's signal trampoline. */
    if (n > 2) backtrace_symbols_fd(frames + 2, n - 2, 2);
    signal(sig, SIG_DFL);
    raise(sig);
}

/* Where a dead child's report says it faulted: "libhdf5", "stagegate" or "unknown", and the
   first function named in that module (the crash site). */
static const char *attribute(const char *report, char *site, size_t len)
{
    snprintf(site, len, "?");
    if (strstr(report, "runtime error:")) return "stagegate"; /* UBSan: only our code */
    if (strncmp(report, "timeout:", 8) == 0) {
        snprintf(site, len, "timeout");
        return "hang";
    }
    for (const char *l = report; l && *l; l = strchr(l, '\n') ? strchr(l, '\n') + 1 : NULL) {
        const char *e = strchr(l, '\n');
        size_t n = e ? (size_t)(e - l) : strlen(l);
        char line[512];
        snprintf(line, sizeof line, "%.*s", (int)(n < 511 ? n : 511), l);
        bool h5 = strstr(line, "libhdf5") != NULL, ours = strstr(line, "sg_fuzz_hdf5") != NULL;
        if (!h5 && !ours) continue;
        /* ASan: "#1 0x... in FUNC (module+0x...)"; glibc: "module(FUNC+0x...)[0x...]". */
        const char *in = strstr(line, " in ");
        if (in) {
            snprintf(site, len, "%.*s", (int)strcspn(in + 4, " "), in + 4);
        } else if (strchr(line, '(')) {
            const char *f = strchr(line, '(') + 1;
            if (*f == '/' || *f == '+') { /* no symbol: "module+0xOFFSET" */
                const char *slash = strrchr(line, '/');
                f = slash ? slash + 1 : f;
                snprintf(site, len, "%.*s", (int)strcspn(f, ")"), f);
            } else {
                snprintf(site, len, "%.*s", (int)strcspn(f, "+)"), f);
            }
        }
        for (char *c = site; *c; c++) /* the site names a file in --crash-dir */
            if (*c == '/' || *c == ' ' || *c == '(' || *c == ')') *c = '_';
        return h5 ? "libhdf5" : "stagegate";
    }
    return "unknown";
}

typedef enum { RUN_OK, RUN_VIOLATION, RUN_CRASH } run_result;

/*
 * Runs both loaders on the input file in a forked child; sandbox says whether the loaders'
 * own dry run is on. On a crash, report gets the child's stderr.
 */
static run_result run_child(bool sandbox, const char *kinds, char *report, size_t rlen)
{
    char errpath[4200];
    snprintf(errpath, sizeof errpath, "%s.stderr", input_path);
    fflush(NULL);
    pid_t pid = fork();
    if (pid < 0) {
        fprintf(stderr, "fuzz_hdf5: fork: %s\n", strerror(errno));
        exit(2);
    }
    if (pid == 0) {
        FILE *e = freopen(errpath, "w", stderr);
        (void)e;
#if !defined(__SANITIZE_ADDRESS__)
        signal(SIGSEGV, on_fault);
        signal(SIGBUS, on_fault);
        signal(SIGFPE, on_fault);
        signal(SIGABRT, on_fault);
#endif
        sg_h5_sandbox_enable(sandbox);
        /* A hang is a finding too: the sandbox's CPU limit must end it (2 s here), and
           without the sandbox the alarm does, reported as a crash at "timeout". */
        sg_h5_sandbox_cpu_limit(2);
        alarm(sandbox ? 120 : 10);
        bool ok = run_dataset(kinds);
        ok = run_model(kinds) && ok;
        fflush(NULL);
        _exit(ok ? 0 : 3);
    }
    int status = 0;
    while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
        ;
    report[0] = '\0';
    FILE *f = fopen(errpath, "r");
    if (f) {
        size_t n = fread(report, 1, rlen - 1, f);
        report[n] = '\0';
        fclose(f);
    }
    if (WIFSIGNALED(status) && WTERMSIG(status) == SIGALRM)
        snprintf(report, rlen, "timeout: the loaders ran for more than 10 s\n");
    if (WIFEXITED(status) && WEXITSTATUS(status) == 0) return RUN_OK;
    if (WIFEXITED(status) && WEXITSTATUS(status) == 3) return RUN_VIOLATION;
    return RUN_CRASH;
}

static void write_file(const char *path, const uint8_t *data, size_t len)
{
    FILE *f = fopen(path, "wb");
    if (!f || (len && fwrite(data, 1, len, f) != len) || fclose(f) != 0) {
        fprintf(stderr, "fuzz_hdf5: cannot write %s: %s\n", path, strerror(errno));
        exit(2);
    }
}

/* Crash sites seen, each with its first input. */
#define MAX_SITES 64
static struct {
    char where[16], site[128], kinds[128];
    long count;
    bool caught; /* the sandboxed loaders refused the input */
} sites[MAX_SITES];
static int n_sites;
static long crashes, uncaught;
static const char *crash_dir;

static void on_crash(const uint8_t *data, size_t len, const char *kinds, const char *report)
{
    crashes++;
    char site[128];
    const char *where = attribute(report, site, sizeof site);
    int i = 0;
    while (i < n_sites && !(strcmp(sites[i].where, where) == 0 && strcmp(sites[i].site, site) == 0))
        i++;
    if (i == n_sites && n_sites < MAX_SITES) {
        n_sites++;
        snprintf(sites[i].where, sizeof sites[i].where, "%s", where);
        snprintf(sites[i].site, sizeof sites[i].site, "%s", site);
        snprintf(sites[i].kinds, sizeof sites[i].kinds, "%s", kinds);
        char scratch[256];
        /* The same input with the sandbox on: the loaders must refuse it, not crash. */
        sites[i].caught = run_child(true, kinds, scratch, sizeof scratch) == RUN_OK;
        if (crash_dir) {
            char p[4200];
            snprintf(p, sizeof p, "%s/crash-%s-%s.h5", crash_dir, where, site);
            write_file(p, data, len);
            snprintf(p, sizeof p, "%s/crash-%s-%s.txt", crash_dir, where, site);
            FILE *f = fopen(p, "w");
            if (f) {
                fprintf(f, "mutations: %s\n%s", kinds, report);
                fclose(f);
            }
        }
    }
    if (i < MAX_SITES) {
        sites[i].count++;
        bool theirs = !strcmp(sites[i].where, "libhdf5") || !strcmp(sites[i].where, "hang");
        if (!theirs || !sites[i].caught) uncaught++;
    } else {
        uncaught++;
    }
}

static bool run_one(const uint8_t *data, size_t len, const char *kinds)
{
    write_file(input_path, data, len);
    size_t before = sh->pcs_seen;
    static char report[16384];
    run_result r = run_child(false, kinds, report, sizeof report);
    if (r == RUN_CRASH) on_crash(data, len, kinds, report);
    return sh->pcs_seen > before;
}

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static uint8_t *read_all(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    uint8_t *b = n > 0 ? malloc((size_t)n) : NULL;
    if (b && fread(b, 1, (size_t)n, f) != (size_t)n) {
        free(b);
        b = NULL;
    }
    fclose(f);
    *len = b ? (size_t)n : 0;
    return b;
}

int main(int argc, char **argv)
{
    long iters = 2000;
    double seconds = 0;
    const char *corpus_out = NULL;
    rng_state = 20261203;
    int a = 1;
    for (; a + 1 < argc && strncmp(argv[a], "--", 2) == 0; a += 2) {
        if (!strcmp(argv[a], "--iters")) iters = atol(argv[a + 1]);
        else if (!strcmp(argv[a], "--seconds")) seconds = atof(argv[a + 1]);
        else if (!strcmp(argv[a], "--seed")) rng_state = strtoull(argv[a + 1], NULL, 10);
        else if (!strcmp(argv[a], "--corpus-out")) corpus_out = argv[a + 1];
        else if (!strcmp(argv[a], "--crash-dir")) crash_dir = argv[a + 1];
        else break;
    }
    bool replay = false;
    if (a < argc && !strcmp(argv[a], "--replay")) replay = true, a++;
    if (a >= argc) {
        fprintf(stderr, "usage: sg_fuzz_hdf5 [--iters N] [--seconds S] [--seed N] "
                        "[--corpus-out DIR] [--crash-dir DIR] SEED.h5...\n"
                        "       sg_fuzz_hdf5 --replay CRASH.h5...\n");
        return 2;
    }
#if !defined(__SANITIZE_ADDRESS__)
    { /* load libgcc's unwinder now: on_fault must not dlopen it in a corrupt heap */
        void *f[2];
        (void)backtrace(f, 2);
    }
#endif
    sh = mmap(NULL, sizeof *sh, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    if (sh == MAP_FAILED) {
        fprintf(stderr, "fuzz_hdf5: mmap: %s\n", strerror(errno));
        return 2;
    }
    H5Eset_auto2(H5E_DEFAULT, NULL, NULL);
    sg_err err = {{0}};
    if (sg_kernels_init(&err) != SG_OK) {
        fprintf(stderr, "fuzz_hdf5: %s\n", err.msg);
        return 2;
    }
    const char *tmp = getenv("TMPDIR") && *getenv("TMPDIR") ? getenv("TMPDIR") : P_tmpdir;
    char dir[3800];
    snprintf(dir, sizeof dir, "%s/sg_fuzz_hdf5.XXXXXX", tmp);
    if (!mkdtemp(dir)) {
        fprintf(stderr, "fuzz_hdf5: mkdtemp: %s\n", strerror(errno));
        return 2;
    }
    snprintf(input_path, sizeof input_path, "%s/input.h5", dir);

    if (replay) {
        /* Saved crash inputs: with the sandbox on, each must be refused cleanly. */
        int bad = 0;
        for (int i = a; i < argc; i++) {
            size_t len;
            uint8_t *b = read_all(argv[i], &len);
            if (!b) {
                fprintf(stderr, "fuzz_hdf5: cannot read %s\n", argv[i]);
                return 2;
            }
            write_file(input_path, b, len);
            free(b);
            long before = sh->refused;
            static char report[16384];
            run_result r = run_child(true, "replay", report, sizeof report);
            bool ok = r == RUN_OK && sh->refused - before == 2;
            printf("fuzz_hdf5: %s: %s\n", argv[i],
                   ok ? "refused by both loaders" : r == RUN_CRASH ? "CRASHED" : "NOT REFUSED");
            if (!ok) bad++, fputs(report, stdout);
        }
        char errpath[4200];
        snprintf(errpath, sizeof errpath, "%s.stderr", input_path);
        unlink(errpath);
        unlink(input_path);
        rmdir(dir);
        return bad ? 1 : 0;
    }
    size_t n_seeds = 0, max_len = 0;
    for (int i = a; i < argc; i++) {
        size_t len;
        uint8_t *b = read_all(argv[i], &len);
        if (!b) {
            fprintf(stderr, "fuzz_hdf5: cannot read seed %s\n", argv[i]);
            continue;
        }
        seed_file *s = add_seed(b, len, NULL);
        analyse(s, argv[i]);
        free(b);
        if (len > max_len) max_len = len;
        n_seeds++;
    }
    if (!n_seeds) return 2;
    /* The seeds themselves: every one must load with the loader it was written for. */
    for (size_t i = 0; i < n_seeds; i++)
        run_one(corpus[i].data, corpus[i].len, "seed");
    long seed_accepts = sh->accepted;
    uint8_t *buf = xrealloc(NULL, max_len);
    double t0 = now_s();
    long execs = 0, grown = 0;
    for (; seconds > 0 ? now_s() - t0 < seconds : execs < iters; execs++) {
        /* Seeds half the time, grown inputs otherwise (they stay in memory as mutants). */
        size_t pick = n_corpus > n_seeds && rnd() % 2 ? n_seeds + below(n_corpus - n_seeds)
                                                      : below(n_seeds);
        size_t len;
        const char *kinds = mutate(&corpus[pick], buf, &len);
        if (run_one(buf, len, kinds)) {
            seed_file parent = corpus[pick]; /* add_seed may move the array */
            add_seed(buf, len, &parent);
            if (len > max_len) max_len = len;
            grown++;
            if (corpus_out) {
                char p[4200];
                snprintf(p, sizeof p, "%s/cov-%06ld.h5", corpus_out, grown);
                FILE *f = fopen(p, "wb");
                if (f) {
                    fwrite(buf, 1, len, f);
                    fclose(f);
                }
            }
        }
    }
    double dt = now_s() - t0;
    free(buf);
    char errpath[4200];
    snprintf(errpath, sizeof errpath, "%s.stderr", input_path);
    unlink(errpath);
    unlink(input_path);
    rmdir(dir);
    printf("fuzz_hdf5: %ld execs in %.1f s (%.0f/s) over %zu seeds: %ld loads accepted, %ld "
           "refused, %d distinct outcomes, %zu program counters reached in datasets/%s, %ld "
           "inputs added to the corpus, %ld contract violations, %ld crashes at %d sites\n",
           execs, dt, dt > 0 ? (double)execs / dt : 0.0, n_seeds, sh->accepted, sh->refused,
           sh->n_classes, sh->pcs_seen,
#ifdef SG_FUZZ_TRACE_PC
           "",
#else
           " (not instrumented: build with -DSTAGEGATE_FUZZ_COVERAGE=ON)",
#endif
           grown, sh->violations, crashes, n_sites);
    for (int i = 0; i < n_sites; i++)
        printf("fuzz_hdf5: crash in %s at %s: %ld inputs (first from %s); with the sandbox on "
               "the loaders %s\n",
               sites[i].where, sites[i].site, sites[i].count, sites[i].kinds,
               sites[i].caught ? "refuse it (exit 2)" : "STILL FAIL");
    /* Each seed holds one kind of file: one of the two loaders must take it. */
    if (seed_accepts < (long)n_seeds) {
        printf("fuzz_hdf5: only %ld of the %zu seeds loaded\n", seed_accepts, n_seeds);
        return 1;
    }
    if (uncaught) printf("fuzz_hdf5: %ld crashes not turned into refusals\n", uncaught);
    return sh->violations || uncaught ? 1 : 0;
}
