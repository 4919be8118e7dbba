/*
 * `stagegate serve`: an HTTP server that holds the registry database and speaks a subset of
 * MLflow's Model Registry REST API (docs/server.md). Every change goes through the registry's
 * own functions (sg_registry_*), so the server refuses exactly what the CLI refuses, with the
 * same reason text. Callers authenticate with a bearer token (or HTTP basic, the token as the
 * password) that maps to a principal: a public key the model's policy may name.
 */
#ifndef STAGEGATE_SERVER_H
#define STAGEGATE_SERVER_H

#include <stdint.h>
#include <stdio.h>

#include "stagegate/common.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct {
    const char *db;            /* registry --db value (any form the registry accepts) */
    const char *listen;        /* HOST:PORT, an IPv4 or [IPv6] literal; port 0 picks a free one */
    const char *tokens;        /* tokens file, or NULL: reads only, every write refused (401) */
    const char *artifact_root; /* model-versions/create sources must lie under it; NULL: refused */
    const char *tls_cert;      /* PEM files; both or neither */
    const char *tls_key;
    /* the server's own private key (PEM, not readable by others): signs every request it
     * attests for a principal; a registry with a root of trust accepts attested changes only
     * from a server key an admin added (docs/registry.md). NULL: unsigned attestations. */
    const char *key;
    int threads;         /* worker threads (0 = 4) */
    int64_t max_body;    /* request body limit in bytes (0 = 1 MiB) */
    int64_t max_header;  /* per-connection memory for the request line and headers (0 = 16 KiB) */
    int timeout_s;       /* idle time before a connection is closed (0 = 10) */
    int request_time_s;  /* total time to receive one request body (0 = 30) */
    int max_connections; /* open connections at once (0 = 256) */
    FILE *access_log;    /* one line per request; NULL = stderr */
    /* Called once the socket listens, with the bound port (tests and scripts wait for it). */
    void (*on_listen)(int port, void *ctx);
    void *ctx;
} sg_server_config;

/*
 * Runs the server until SIGTERM or SIGINT; then it stops accepting, lets the requests in
 * flight finish (up to 60 s) and returns SG_OK. The calling thread must not have other
 * threads that expect those signals; one server per process (its state is process-wide).
 * SG_EINPUT for a bad configuration.
 */
SG_MUST_CHECK sg_status sg_server_run(const sg_server_config *cfg, sg_err *err);

/* Token length, printable: "sgt_" + 64 hex digits. */
#define SG_SERVER_TOKEN_LEN 68

/*
 * Adds a token for the principal whose public key is pub_path to the tokens file (created
 * mode 0600; an existing file readable by group or others is refused). Only the token's
 * SHA-256 is stored; the token itself goes to token_out, to be shown once.
 */
SG_MUST_CHECK sg_status sg_server_token_add(const char *tokens_path, const char *pub_path,
                                            const char *name,
                                            char token_out[SG_SERVER_TOKEN_LEN + 1], sg_err *err);

#ifdef __cplusplus
}
#endif
#endif
