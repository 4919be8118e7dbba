/* `stagegate serve` (the registry server) and `stagegate token add` (its callers' tokens). */
#include <string.h>

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>
#include <netinet/in.h>

#include "cli.h"
#include "stagegate/registry.h"
#include "stagegate/server.h"

static const char serve_usage[] =
    "usage: stagegate serve --db URI --listen HOST:PORT [--tokens FILE] [--artifact-root DIR]\n"
    "                       [--tls-cert CERT.pem --tls-key KEY.pem | --plaintext-remote]\n"
    "                       [--key SERVER.pem] [--threads N]\n"
    "                       [--max-body BYTES] [--max-header BYTES] [--timeout S]\n"
    "                       [--request-time S] [--max-connections N] [--access-log FILE]\n"
    "\n"
    "Serves the registry over MLflow's Model Registry REST API (/api/2.0/mlflow/...) and\n"
    "stagegate's own endpoints (/api/stagegate/...), enforcing the registry's gates on the\n"
    "server (docs/server.md). Callers send 'Authorization: Bearer TOKEN' (see 'stagegate token\n"
    "add'); without --tokens the server answers reads only. model-versions/create reads sources\n"
    "under --artifact-root only. Port 0 picks a free port; the line 'listening on URL' on\n"
    "stderr names it. SIGTERM or SIGINT: stop accepting, finish the requests in flight, exit 0.\n"
    "SIGHUP: reload the tokens file (kept as it was if the new one does not load).\n"
    "--key signs each request the server makes for a caller; a registry with a root of trust\n"
    "(registry init --admin) accepts changes through a server only from a server key an admin\n"
    "added (registry init --server SERVER.pub --as ADMIN.pem). A successful change's response\n"
    "carries the audit head after it in the X-Stagegate-Audit-Head header (\"SEQ HASH\").\n"
    "Defaults: 4 threads, 1 MiB body, 16 KiB headers, 10 s idle, 30 s per request body.\n";

typedef struct {
    const char *scheme;
    const char *host;
} listen_ctx;

static void announce(int port, void *ctx)
{
    const listen_ctx *l = ctx;
    fprintf(stderr, "stagegate serve: listening on %s://%s:%d\n", l->scheme, l->host, port);
    fflush(stderr);
}

/* 127.0.0.0/8, ::1 (bracketed or not) and "localhost". */
static bool is_loopback(const char *host)
{
    char h[256];
    snprintf(h, sizeof h, "%s", host);
    size_t n = strlen(h);
    char *p = h;
    if (n >= 2 && h[0] == '[' && h[n - 1] == ']') {
        h[n - 1] = '\0';
        p = h + 1;
    }
    if (!strcmp(p, "localhost")) return true;
    struct in_addr a4;
    struct in6_addr a6;
    if (inet_pton(AF_INET, p, &a4) == 1) return (ntohl(a4.s_addr) >> 24) == 127;
    if (inet_pton(AF_INET6, p, &a6) == 1) return IN6_IS_ADDR_LOOPBACK(&a6);
    return false;
}

int sg_cmd_serve(int argc, char **argv)
{
    const char *db = NULL, *listen = NULL, *access_log = NULL;
    bool plaintext_remote = false;
    int64_t threads = 0, max_body = 0, max_header = 0, timeout = 0, req_time = 0, max_conn = 0;
    sg_server_config cfg = {0};
    const sg_opt opts[] = {
        SG_OPT_STR("db", &db),
        SG_OPT_STR("listen", &listen),
        SG_OPT_STR("tokens", &cfg.tokens),
        SG_OPT_STR("artifact-root", &cfg.artifact_root),
        SG_OPT_STR("tls-cert", &cfg.tls_cert),
        SG_OPT_STR("tls-key", &cfg.tls_key),
        SG_OPT_STR("key", &cfg.key),
        SG_OPT_INT_("threads", &threads, 1, 256),
        SG_OPT_INT_("max-body", &max_body, 1024, 1 << 30),
        SG_OPT_INT_("max-header", &max_header, 4096, 1 << 20),
        SG_OPT_INT_("timeout", &timeout, 1, 3600),
        SG_OPT_INT_("request-time", &req_time, 1, 3600),
        SG_OPT_INT_("max-connections", &max_conn, 1, 65536),
        SG_OPT_STR("access-log", &access_log),
        SG_OPT_FLAG_("plaintext-remote", &plaintext_remote),
        SG_OPT_END_,
    };
    int n_pos;
    int prc = sg_opts_parse("serve", opts, argc, argv, 1, NULL, 0, &n_pos);
    if (prc == SG_OPTS_HELP) {
        fputs(serve_usage, stdout);
        return 0;
    }
    if (prc != SG_OPTS_OK) return 2;
    if (sg_cli_db_empty("serve", db)) return 2;
    if (!listen) return sg_cli_usage_error("serve", "--listen HOST:PORT is required");
    cfg.db = sg_registry_path(db);
    cfg.listen = listen;
    cfg.threads = (int)threads;
    cfg.max_body = max_body;
    cfg.max_header = max_header;
    cfg.timeout_s = (int)timeout;
    cfg.request_time_s = (int)req_time;
    cfg.max_connections = (int)max_conn;
    char host[256];
    snprintf(host, sizeof host, "%s", listen);
    char *colon = strrchr(host, ':');
    if (colon) *colon = '\0';
    /* Tokens are bearer credentials: off loopback they travel over TLS, unless asked not to. */
    if (!cfg.tls_cert && !plaintext_remote && !is_loopback(host))
        return sg_cli_usage_error("serve",
                                  "--listen %s is not a loopback address: serve it with "
                                  "--tls-cert and --tls-key (tokens are bearer credentials), or "
                                  "pass --plaintext-remote to accept plain HTTP",
                                  listen);
    listen_ctx lc = {cfg.tls_cert ? "https" : "http", host};
    cfg.on_listen = announce;
    cfg.ctx = &lc;
    FILE *log = NULL;
    if (access_log) {
        /* The log is appended to for as long as the server runs: it must not be one of the
           files the server reads (its lines had gone into the tokens file, which then did not
           load, or into the SQLite registry), and it must be a regular file (a FIFO had
           blocked the start before the "listening" line). */
        char bufs[3][PATH_MAX];
        sg_cli_path ins[] = {{"--tokens", cfg.tokens}, {"--tls-cert", cfg.tls_cert},
                             {"--tls-key", cfg.tls_key}, {"--key", cfg.key}, {0}, {0}, {0},
                             {0}, {NULL, NULL}};
        sg_cli_registry_inputs(sg_registry_file(cfg.db), ins + 4, bufs);
        const sg_cli_path outs[] = {{"--access-log", access_log}, {NULL, NULL}};
        if (sg_cli_check_outputs("serve", ins, outs) != 0) return 2;
        struct stat st;
        if (stat(access_log, &st) == 0 && !S_ISREG(st.st_mode))
            return sg_cli_usage_error("serve", "--access-log %s: not a regular file", access_log);
        int fd = open(access_log, O_WRONLY | O_APPEND | O_CREAT | O_NONBLOCK | O_CLOEXEC, 0640);
        if (fd < 0)
            return sg_cli_usage_error("serve", "--access-log %s: cannot open: %s", access_log,
                                      strerror(errno));
        if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
            close(fd);
            return sg_cli_usage_error("serve", "--access-log %s: not a regular file", access_log);
        }
        log = fdopen(fd, "a");
        if (!log) {
            close(fd);
            return sg_cli_usage_error("serve", "--access-log %s: cannot open: %s", access_log,
                                      strerror(errno));
        }
        cfg.access_log = log;
    }
    sg_err err = {{0}};
    int rc = sg_server_run(&cfg, &err);
    if (log) fclose(log);
    if (rc != SG_OK) return sg_cli_fail(rc, &err);
    fprintf(stderr, "stagegate serve: stopped\n");
    return 0;
}

static const char token_usage[] =
    "usage: stagegate token add --tokens FILE --principal PUB.pem [--name LABEL]\n"
    "\n"
    "Makes a fresh token for the principal whose public key is PUB.pem, stores its SHA-256\n"
    "in FILE (created mode 0600; refused if group or others can read it) and prints the\n"
    "token once on stdout. A running server reads FILE when it starts.\n";

int sg_cmd_token(int argc, char **argv)
{
    if (argc < 2 || strcmp(argv[1], "add") != 0) {
        if (argc >= 2 && (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h"))) {
            fputs(token_usage, stdout);
            return 0;
        }
        fputs(token_usage, stderr);
        return 2;
    }
    const char *tokens = NULL, *principal = NULL, *name = NULL;
    const sg_opt opts[] = {SG_OPT_STR("tokens", &tokens), SG_OPT_STR("principal", &principal),
                           SG_OPT_STR("name", &name), SG_OPT_END_};
    int n_pos;
    int prc = sg_opts_parse("token add", opts, argc, argv, 2, NULL, 0, &n_pos);
    if (prc == SG_OPTS_HELP) {
        fputs(token_usage, stdout);
        return 0;
    }
    if (prc != SG_OPTS_OK) return 2;
    if (!tokens || !principal)
        return sg_cli_usage_error("token add",
                                  "--tokens FILE and --principal PUB.pem are required");
    char token[SG_SERVER_TOKEN_LEN + 1];
    sg_err err = {{0}};
    int rc = sg_server_token_add(tokens, principal, name, token, &err);
    if (rc != SG_OK) return sg_cli_fail(rc, &err);
    printf("%s\n", token);
    return 0;
}
