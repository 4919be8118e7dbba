/*
 * Load generator for `stagegate serve` (scripts/bench_server.sh): CLIENTS threads, each on its
 * own keep-alive HTTP/1.1 connection to 127.0.0.1:PORT, for SECONDS, doing the mix of
 * bench_server.sh: model-versions/get 45%, model-versions/search with a filter 25%,
 * get-latest-versions 10% (of the reads' share), and gated promotions (the write share: one
 * step at a time of create-version -> Staging with the uploaded report -> approval by a
 * second principal -> Production with archive_existing_versions).
 *
 * A C client, so that on a small machine the load generator's own CPU time does not decide
 * the figure (a Python client spent about a sixth of the two cores at 1,000 requests/s).
 * Each request is timed from the first byte sent to the last byte of the response read.
 *
 * usage: server_load PORT CLIENTS SECONDS WRITE_SHARE WORKDIR [RATE WRITERS]
 *   RATE > 0: open loop for the promotions instead of the mix: WRITERS of the clients only
 *   promote, each pacing its steps so that together they start RATE promotions per second
 *   (a writer behind its schedule goes on without pausing, and the rate reached is
 *   printed); the other clients only read, as fast as they can (WRITE_SHARE is not used).
 *   WORKDIR holds alice.token, bob.token, signer.pub.pem, alice.pub.pem, bob.pub.pem and
 *   model.report (what bench_server.sh writes); the artifact is "model.bin" under the
 *   server's artifact root.
 * Prints the summary lines bench_server.sh shows; exit 0 when no request failed.
 *
 * Threads: each thread owns its connection, latency arrays and counters (struct client);
 * the model names are written before the threads start and only read after; main reads the
 * rest after joining every thread.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <jansson.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define M "/api/2.0/mlflow/"
#define MAX_FAILS 10

typedef struct {
    double *v;
    size_t n, cap;
} lat_list;

typedef struct {
    int id;
    int fd;
    char name[96];
    lat_list read, write;
    long promotions, failures;
    char fail_text[MAX_FAILS][256];
    unsigned rng;
    char *buf; /* response buffer */
    size_t cap;
    int role; /* 0: the mix (closed loop); 1: paced promotions only; 2: reads only */
} client;

static int port;
static client *clients;
static int n_clients;
static double seconds, write_share;
static double promotion_rate; /* open loop: promotions per second started by the writers */
static int n_writers;
static char *alice_token, *bob_token, *signer_pem, *alice_pem, *bob_pem, *report;
static size_t report_len;
static char run_id[32];

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static char *slurp(const char *dir, const char *name, size_t *len)
{
    char path[4096];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    FILE *f = fopen(path, "rb");
    if (!f) {
        fprintf(stderr, "server_load: cannot read %s: %s\n", path, strerror(errno));
        exit(2);
    }
    size_t cap = 4096, n = 0;
    char *s = malloc(cap);
    for (size_t k; s && (k = fread(s + n, 1, cap - n - 1, f)) > 0;) {
        n += k;
        if (cap - n < 2) s = realloc(s, cap *= 2);
    }
    fclose(f);
    if (!s) exit(2);
    s[n] = '\0';
    if (len) *len = n;
    return s;
}

static void trim(char *s)
{
    size_t n = strlen(s);
    while (n && (s[n - 1] == '\n' || s[n - 1] == '\r' || s[n - 1] == ' '))
        s[--n] = '\0';
}

static void lat_add(lat_list *l, double v)
{
    if (l->n == l->cap) {
        l->cap = l->cap ? l->cap * 2 : 4096;
        l->v = realloc(l->v, l->cap * sizeof *l->v);
        if (!l->v) exit(2);
    }
    l->v[l->n++] = v;
}

static int connect_server(void)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    if (fd < 0) return -1;
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    struct timeval tv = {.tv_sec = 60};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    if (connect(fd, (struct sockaddr *)&a, sizeof a) != 0) {
        close(fd);
        return -1;
    }
    return fd;
}

static int send_all(int fd, const char *p, size_t n)
{
    while (n) {
        ssize_t k = send(fd, p, n, MSG_NOSIGNAL);
        if (k <= 0) return -1;
        p += k;
        n -= (size_t)k;
    }
    return 0;
}

/* One request on c's connection: the status, or -1 when the connection failed. The body is
 * in c->buf (NUL-terminated), *body_len its length. */
static int request(client *c, const char *method, const char *path, const char *token,
                   const char *body, size_t body_len, size_t *out_len)
{
    char head[1024];
    int hn = snprintf(head, sizeof head,
                      "%s %s HTTP/1.1\r\nHost: 127.0.0.1:%d\r\nAuthorization: Bearer %s\r\n"
                      "Content-Type: application/json\r\nContent-Length: %zu\r\n\r\n",
                      method, path, port, token, body ? body_len : 0);
    if (hn <= 0 || (size_t)hn >= sizeof head) return -1;
    if (send_all(c->fd, head, (size_t)hn) != 0) return -1;
    if (body && body_len && send_all(c->fd, body, body_len) != 0) return -1;
    size_t n = 0, need = 0, hdr_end = 0;
    for (;;) {
        if (c->cap - n < 4096) {
            c->cap = c->cap ? c->cap * 2 : 65536;
            c->buf = realloc(c->buf, c->cap);
            if (!c->buf) exit(2);
        }
        ssize_t k = recv(c->fd, c->buf + n, c->cap - n - 1, 0);
        if (k <= 0) return -1;
        n += (size_t)k;
        c->buf[n] = '\0';
        if (!hdr_end) {
            char *e = strstr(c->buf, "\r\n\r\n");
            if (!e) continue;
            hdr_end = (size_t)(e - c->buf) + 4;
            const char *cl = strcasestr(c->buf, "\r\nContent-Length:");
            if (!cl || cl > e) return -1; /* the server always sends a length */
            need = hdr_end + strtoul(cl + 17, NULL, 10);
        }
        if (n >= need) break;
    }
    int status = atoi(c->buf + 9);
    memmove(c->buf, c->buf + hdr_end, need - hdr_end);
    c->buf[need - hdr_end] = '\0';
    *out_len = need - hdr_end;
    return status;
}

static void fail(client *c, const char *method, const char *path, int status)
{
    if (c->failures < MAX_FAILS)
        snprintf(c->fail_text[c->failures], sizeof c->fail_text[0], "%.8s %.100s: %s %d %.120s",
                 method, path, status < 0 ? "connection failed" : "HTTP", status,
                 status < 0 ? "" : c->buf);
    c->failures++;
}

/* A request whose failure ends the setup. */
static void must(client *c, const char *method, const char *path, const char *token,
                 const char *body, size_t len)
{
    size_t out;
    int s = request(c, method, path, token, body, len, &out);
    if (s != 200) {
        fprintf(stderr, "server_load: setup %s %s: %d %.300s\n", method, path, s,
                s < 0 ? "" : c->buf);
        exit(2);
    }
}

static void setup(client *c)
{
    snprintf(c->name, sizeof c->name, "bench-%s-%d", run_id, c->id);
    json_t *pol = json_pack("{s[s]s{s[s]}s[s]sb}", "signers", signer_pem, "promoters",
                            "Production", alice_pem, "approvers", bob_pem, "require_approval", 1);
    json_t *b = json_pack("{ssso}", "name", c->name, "stagegate_policy", pol);
    char *text = json_dumps(b, JSON_COMPACT);
    json_decref(b);
    must(c, "POST", M "registered-models/create", alice_token, text, strlen(text));
    free(text);
    must(c, "POST", "/api/stagegate/reports", alice_token, report, report_len);
    char body[256];
    int n = snprintf(body, sizeof body, "{\"name\":\"%s\",\"source\":\"model.bin\"}", c->name);
    must(c, "POST", M "model-versions/create", alice_token, body, (size_t)n);
}

static unsigned next_rand(client *c)
{
    c->rng = c->rng * 1103515245u + 12345u;
    return c->rng >> 8;
}

static void *run(void *arg)
{
    client *c = arg;
    static const char *const step_path[4] = {
        M "model-versions/create", M "model-versions/transition-stage",
        "/api/stagegate/approve", M "model-versions/transition-stage"};
    int step = 0;
    long version = 1;
    double start = now_s(), end = start + seconds;
    /* Paced writer: step k of its promotions is due at start + k / step_rate. */
    double step_rate = c->role == 1 ? promotion_rate * 4.0 / n_writers : 0;
    long steps_sent = 0;
    while (now_s() < end) {
        if (c->role == 1) {
            double wait = start + (double)steps_sent / step_rate - now_s();
            if (wait > 0) {
                struct timespec ts = {(time_t)wait, (long)((wait - (double)(time_t)wait) * 1e9)};
                nanosleep(&ts, NULL);
                if (now_s() >= end) break;
            }
            steps_sent++;
        }
        double x = (double)(next_rand(c) & 0xffffff) / 16777216.0;
        const char *other = NULL;
        char path[512], body[512];
        const char *method = "GET", *token = alice_token, *bp = NULL;
        bool write = c->role == 1 || (c->role == 0 && x >= 1.0 - write_share);
        if (c->role == 2) x *= 0.8; /* the reads in the mix's proportions */
        if (!write && c->role == 0) x = x / (1.0 - write_share) * 0.8;
        if (!write) {
            other = clients[next_rand(c) % (unsigned)n_clients].name;
        }
        int bn = 0;
        if (write) {
            method = "POST";
            snprintf(path, sizeof path, "%s", step_path[step]);
            if (step == 0)
                bn = snprintf(body, sizeof body, "{\"name\":\"%s\",\"source\":\"model.bin\"}",
                              c->name);
            else if (step == 1)
                bn = snprintf(body, sizeof body,
                              "{\"name\":\"%s\",\"version\":\"%ld\",\"stage\":\"Staging\"}",
                              c->name, version);
            else if (step == 2)
                bn = snprintf(body, sizeof body, "{\"name\":\"%s\",\"version\":\"%ld\"}", c->name,
                              version);
            else
                bn = snprintf(body, sizeof body,
                              "{\"name\":\"%s\",\"version\":\"%ld\",\"stage\":\"Production\","
                              "\"archive_existing_versions\":true}",
                              c->name, version);
            if (step == 2) token = bob_token;
            bp = body;
        } else if (x < 0.45) {
            snprintf(path, sizeof path, M "model-versions/get?name=%s&version=1", other);
        } else if (x < 0.70) {
            /* name = '<other>' AND stage = 'Production', URL-encoded */
            snprintf(path, sizeof path,
                     M "model-versions/search?filter=name%%20%%3D%%20%%27%s%%27%%20AND%%20"
                       "stage%%20%%3D%%20%%27Production%%27",
                     other);
        } else {
            method = "POST";
            snprintf(path, sizeof path, M "registered-models/get-latest-versions");
            bn = snprintf(body, sizeof body,
                          "{\"name\":\"%s\",\"stages\":[\"Production\",\"Staging\"]}", other);
            bp = body;
        }
        double t0 = now_s();
        size_t out = 0;
        int s = request(c, method, path, token, bp, (size_t)bn, &out);
        double dt = now_s() - t0;
        if (s < 0) { /* a dropped connection counts as a failure; reconnect */
            fail(c, method, path, s);
            close(c->fd);
            c->fd = connect_server();
            if (c->fd < 0) break;
            continue;
        }
        lat_add(write ? &c->write : &c->read, dt);
        if (s != 200) {
            fail(c, method, path, s);
            continue;
        }
        if (write) {
            if (step == 0) {
                json_t *doc = json_loadb(c->buf, out, 0, NULL);
                const char *v = json_string_value(
                    json_object_get(json_object_get(doc, "model_version"), "version"));
                version = v ? strtol(v, NULL, 10) : 0;
                json_decref(doc);
                if (!v) {
                    fail(c, method, path, s);
                    continue;
                }
            }
            if (step == 3) c->promotions++;
            step = (step + 1) % 4;
        }
    }
    return NULL;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static double pct(const lat_list *l, double p)
{
    if (!l->n) return 0.0 / 0.0;
    size_t i = (size_t)(p * (double)l->n);
    return l->v[i < l->n ? i : l->n - 1] * 1e3;
}

static void merge(lat_list *all, const lat_list *l)
{
    for (size_t i = 0; i < l->n; i++)
        lat_add(all, l->v[i]);
}

int main(int argc, char **argv)
{
    if (argc != 6 && argc != 8) {
        fprintf(stderr,
                "usage: server_load PORT CLIENTS SECONDS WRITE_SHARE WORKDIR [RATE WRITERS]\n");
        return 2;
    }
    if (argc == 8) {
        promotion_rate = atof(argv[6]);
        n_writers = atoi(argv[7]);
    }
    port = atoi(argv[1]);
    n_clients = atoi(argv[2]);
    seconds = atof(argv[3]);
    write_share = atof(argv[4]);
    if (port <= 0 || n_clients <= 0 || n_clients > 256 || seconds <= 0 || write_share < 0 ||
        write_share > 1 || promotion_rate < 0 ||
        (promotion_rate > 0 && (n_writers < 1 || n_writers >= n_clients))) {
        fprintf(stderr, "server_load: bad arguments\n");
        return 2;
    }
    const char *dir = argv[5];
    alice_token = slurp(dir, "alice.token", NULL);
    bob_token = slurp(dir, "bob.token", NULL);
    trim(alice_token);
    trim(bob_token);
    signer_pem = slurp(dir, "signer.pub.pem", NULL);
    alice_pem = slurp(dir, "alice.pub.pem", NULL);
    bob_pem = slurp(dir, "bob.pub.pem", NULL);
    report = slurp(dir, "model.report", &report_len);
    snprintf(run_id, sizeof run_id, "%ld", (long)time(NULL));
    client *cs = clients = calloc((size_t)n_clients, sizeof *cs);
    pthread_t *th = calloc((size_t)n_clients, sizeof *th);
    if (!cs || !th) return 2;
    for (int i = 0; i < n_clients; i++) {
        cs[i].id = i;
        cs[i].role = promotion_rate > 0 ? (i < n_writers ? 1 : 2) : 0;
        cs[i].rng = (unsigned)i * 2654435761u + 1;
        if ((cs[i].fd = connect_server()) < 0) {
            fprintf(stderr, "server_load: cannot connect to 127.0.0.1:%d\n", port);
            return 2;
        }
        setup(&cs[i]);
    }
    double t0 = now_s();
    for (int i = 0; i < n_clients; i++)
        if (pthread_create(&th[i], NULL, run, &cs[i]) != 0) return 2;
    for (int i = 0; i < n_clients; i++)
        pthread_join(th[i], NULL);
    double wall = now_s() - t0;
    lat_list reads = {0}, writes = {0};
    long promos = 0, fails = 0;
    for (int i = 0; i < n_clients; i++) {
        merge(&reads, &cs[i].read);
        merge(&writes, &cs[i].write);
        promos += cs[i].promotions;
        fails += cs[i].failures;
    }
    qsort(reads.v, reads.n, sizeof *reads.v, cmp_double);
    qsort(writes.v, writes.n, sizeof *writes.v, cmp_double);
    printf("requests:   %zu in %.1f s = %.0f req/s\n", reads.n + writes.n, wall,
           (double)(reads.n + writes.n) / wall);
    printf("reads:      %.0f /s   p50 %.2f ms  p99 %.2f ms\n", (double)reads.n / wall,
           pct(&reads, .5), pct(&reads, .99));
    printf("writes:     %.0f /s   p50 %.2f ms  p99 %.2f ms\n", (double)writes.n / wall,
           pct(&writes, .5), pct(&writes, .99));
    printf("promotions: %ld gated promotions to Production = %.1f /s (each: create-version, "
           "Staging with a verified report, approval, Production)\n",
           promos, (double)promos / wall);
    if (promotion_rate > 0)
        printf("open loop:  %d writers paced at %.1f promotions/s (reached %.1f /s), %d readers "
               "reading as fast as they can\n",
               n_writers, promotion_rate, (double)promos / wall, n_clients - n_writers);
    printf("failures:   %ld\n", fails);
    for (int i = 0, shown = 0; i < n_clients; i++)
        for (long k = 0; k < cs[i].failures && k < MAX_FAILS && shown < MAX_FAILS; k++, shown++)
            printf("  %s\n", cs[i].fail_text[k]);
    for (int i = 0; i < n_clients; i++) {
        close(cs[i].fd);
        free(cs[i].read.v);
        free(cs[i].write.v);
        free(cs[i].buf);
    }
    free(reads.v);
    free(writes.v);
    free(cs);
    free(th);
    return fails ? 1 : 0;
}
