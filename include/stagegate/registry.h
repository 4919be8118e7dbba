/*
 * The model registry: registered models, integer versions, a per-model lifecycle policy,
 * and transitions whose gates are enforced here (not by the client). An SQLite file or a
 * PostgreSQL database (docs/registry.md).
 *
 * One sg_registry handle belongs to one thread; several processes (on PostgreSQL, on several
 * machines) may share a registry: the backend serializes writes. Every state change appends one or more
 * hash-chained audit events in the same transaction as the change.
 */
#ifndef STAGEGATE_REGISTRY_H
#define STAGEGATE_REGISTRY_H

#include <jansson.h>
#include <openssl/evp.h>

#include "stagegate/common.h"

#ifdef __cplusplus
extern "C" {
#endif

#define SG_REGISTRY_ENV "STAGEGATE_REGISTRY"
#define SG_REGISTRY_DEFAULT_PATH "./stagegate.db"
#define SG_REGISTRY_SCHEMA_VERSION 9
/* How far a signed request's timestamp may be from the registry's clock. */
#define SG_REGISTRY_REQUEST_SKEW_S 300

typedef struct sg_registry sg_registry;

/* The registry a command uses: the --db value, else $STAGEGATE_REGISTRY, else ./stagegate.db
 * (a path, sqlite:PATH, postgresql://..., postgres://... or a libpq connection string). */
const char *sg_registry_path(const char *db_opt);
/* The local file behind that registry (an SQLite database), or NULL for a server or
   PostgreSQL: what an output must not overwrite. */
const char *sg_registry_file(const char *db_opt);

/*
 * Opens (and, with create, creates) a registry and migrates its schema forward.
 * A missing, unreadable, corrupt or foreign file is SG_EINPUT with a message naming it; an
 * unreachable database server is SG_EIO. Messages never show a password.
 */
SG_MUST_CHECK sg_status sg_registry_open(const char *path, bool create, sg_registry **out, sg_err *err);
void sg_registry_close(sg_registry *reg);

/*
 * A signed request: the canonical text an actor signed, its signature, and the actor's public
 * key. The registry verifies it against the operation it is asked to perform.
 */
typedef struct {
    char *text; /* canonical request text (see docs/registry.md) */
    uint8_t *sig;
    size_t sig_len;
    char *pub_pem;   /* SPKI PEM of the signer */
    char key_id[65]; /* sha256 of the signer's DER SPKI, hex */
    bool attested;   /* made by sg_registry_request_attest: no signature, see there */
} sg_registry_request;

/* Builds and signs the canonical request with a private key file (refused if group/other-readable),
 * for registry reg: the text names its audit head (registry=SEQ:HASH), and another registry
 * refuses it. */
SG_MUST_CHECK sg_status sg_registry_request_sign(sg_registry *reg, const char *key_path, const char *action, const char *model,
                             int64_t version, const char *target, const char *evidence,
                             sg_registry_request *req, sg_err *err);
void sg_registry_request_clear(sg_registry_request *req);

/*
 * A request made on a principal's behalf by a service that authenticated the principal by
 * other means (`stagegate serve` checks a bearer token that maps to pub_pem). The text is the
 * canonical request plus a line `auth=<how>`; there is no signature. The registry checks its
 * fields, time and nonce as for a signed request, takes the principal's key id as the actor
 * and stores the text (unsigned) in the audit event. Only code that already holds the
 * database can make one, and such code could write the rows directly: the trust is in that
 * service, as docs/server.md says.
 */
SG_MUST_CHECK sg_status sg_registry_request_attest(sg_registry *reg, const char *pub_pem, const char *auth, const char *action,
                               const char *model, int64_t version, const char *target,
                               const char *evidence, sg_registry_request *req, sg_err *err);

/*
 * The same, signed by the service's own key: the text gains `server=<key id>` after the auth
 * line and the whole text is signed with server_key. A registry with a root of trust accepts
 * an attested request only in this form, from a server key an admin added
 * (sg_registry_add_key(..., "server", ...)), so verify-log can check it later.
 */
SG_MUST_CHECK sg_status sg_registry_request_attest_signed(
    sg_registry *reg, EVP_PKEY *server_key, const char *pub_pem, const char *auth, const char *action,
    const char *model, int64_t version, const char *target, const char *evidence,
    sg_registry_request *req, sg_err *err);
/* A role key given at model creation: PEM file path, with a stage for promoters. */
typedef struct {
    const char *stage; /* promoters only */
    const char *path;
    const char *pem; /* the public key's PEM text instead of a file (path is then ignored) */
} sg_registry_key_ref;

typedef struct {
    const char *name;
    const char *description;   /* may be NULL */
    const char *const *stages; /* ordered; NULL = None, Staging, Production, Archived */
    size_t n_stages;
    const char *transitions;  /* "A>B,C>D"; NULL = each stage to the next, any to Archived */
    const char *report_stage; /* entering it needs a passing report; NULL = Staging */
    const char *const
        *multi_stages; /* stages that may hold several versions (Production is single by default) */
    size_t n_multi;
    const char *const *single_stages; /* other stages that hold at most one version */
    size_t n_single;
    const sg_registry_key_ref *signers;
    size_t n_signers;
    const sg_registry_key_ref *promoters;
    size_t n_promoters;
    const sg_registry_key_ref *approvers;
    size_t n_approvers;
    const char *const *tags; /* "KEY=VALUE" */
    size_t n_tags;
    bool require_approval;
    int64_t max_report_age_days; /* 0 = default (30) */
    /* The model's pinned gate (sha256 hex, NULL or "" = not pinned): a report entering the
     * report stage must name exactly this policy and this dataset in its configuration. */
    const char *policy_sha256;
    const char *dataset_sha256;
} sg_registry_model_spec;

/* State-changing operations. req may be NULL where the policy needs no actor; when given it
 * must verify. SG_EREFUSED (exit 1) when a gate or an authorization check says no. */
SG_MUST_CHECK sg_status sg_registry_create_model(sg_registry *reg, const sg_registry_model_spec *spec,
                             const sg_registry_request *req, sg_err *err);
SG_MUST_CHECK sg_status sg_registry_create_version(sg_registry *reg, const char *model, const char *artifact,
                               const sg_registry_request *req, int64_t *version, sg_err *err);
/* report: DSSE envelope bytes or NULL. */
SG_MUST_CHECK sg_status sg_registry_transition(sg_registry *reg, const char *model, int64_t version, const char *stage,
                           const uint8_t *report, size_t report_len, const sg_registry_request *req,
                           sg_err *err);
/* sg_registry_transition for a caller whose requests may be repeated (MLflow's clients retry
 * one whose answer was lost): a version already in stage is confirmed where the plain call
 * refuses it (SG_EINPUT "already in"). The confirmation takes the authorization the move
 * there took (the request; a promoter of the stage where it asks for one, of Production for
 * Production) and runs no gate again: the version stays where it is, nothing is written (not
 * even the request's nonce), and a report given is only hashed (the request names its
 * digest). *unchanged says it was such a confirmation. */
SG_MUST_CHECK sg_status sg_registry_transition_repeat(sg_registry *reg, const char *model,
                                                      int64_t version, const char *stage,
                                                      const uint8_t *report, size_t report_len,
                                                      const sg_registry_request *req,
                                                      bool *unchanged, sg_err *err);
SG_MUST_CHECK sg_status sg_registry_approve(sg_registry *reg, const char *model, int64_t version, bool reject,
                        const char *comment, const sg_registry_request *req, sg_err *err);
SG_MUST_CHECK sg_status sg_registry_rollback(sg_registry *reg, const char *model, const sg_registry_request *req,
                         int64_t *restored, int64_t *archived, sg_err *err);
/*
 * Brings an Archived version back to Production (registry/restore.c), for MLflow's rollback
 * recipe (archive the current version, then transition the previous one to Production):
 * only for a version that has been in Production before, with a passed validation, no
 * standing rejection and an unchanged artifact, requested by a Production promoter; the
 * occupant of a single-version Production is archived. *applies is false (SG_EINPUT) when
 * the version is not in Archived or the policy allows Archived -> Production itself: then the
 * plain transition and its gates apply. req's action is "transition", target "Production".
 */
SG_MUST_CHECK sg_status sg_registry_restore(sg_registry *reg, const char *model, int64_t version,
                                            const sg_registry_request *req, bool *applies,
                                            int64_t *archived, sg_err *err);
/* value NULL deletes the tag. */
/* Tag values: at most 5,000 characters, MLflow's limit (MAX_MODEL_REGISTRY_TAG_VALUE_LENGTH),
   and at most 100 tags a version: each answer about a version carries all of its tags. */
#define SG_REGISTRY_TAG_VALUE_MAX 5000
#define SG_REGISTRY_TAGS_MAX 100
/* Whether KEY (and VALUE, when not NULL) make a tag set_tag takes: a key of 1-250 characters
   of UTF-8 on one line without '=', a value of UTF-8 text up to SG_REGISTRY_TAG_VALUE_MAX
   characters. The server checks a request's tags with it before it creates anything. */
SG_MUST_CHECK sg_status sg_registry_tag_check(const char *key, const char *value, sg_err *err);
SG_MUST_CHECK sg_status sg_registry_set_tag(sg_registry *reg, const char *model, int64_t version, const char *key,
                        const char *value, const sg_registry_request *req, sg_err *err);
/* Deletes the tag as set_tag with value NULL does, except that a tag the version does not
   have is no error: SG_OK, *present false (when present is not NULL), and nothing changed or
   recorded, as MLflow answers such a delete. The version must exist and the request be
   allowed, as for any delete. */
SG_MUST_CHECK sg_status sg_registry_delete_tag_if_present(sg_registry *reg, const char *model,
                                                          int64_t version, const char *key,
                                                          const sg_registry_request *req,
                                                          bool *present, sg_err *err);
/*
 * A version's description (version > 0), or the model's (version 0): UTF-8 text of at most
 * SG_REGISTRY_DESCRIPTION_MAX bytes, "" to clear it. An audited "set-description" event whose
 * detail is the text and evidence its SHA-256; once the registry has a root of trust, the
 * request must be signed by a key with a role in the model, or an admin's (as set-tag).
 */
#define SG_REGISTRY_DESCRIPTION_MAX 65536
SG_MUST_CHECK sg_status sg_registry_set_description(sg_registry *reg, const char *model,
                                                    int64_t version, const char *text,
                                                    const sg_registry_request *req, sg_err *err);
/* version 0 deletes the alias. */
SG_MUST_CHECK sg_status sg_registry_set_alias(sg_registry *reg, const char *model, const char *alias, int64_t version,
                          const sg_registry_request *req, sg_err *err);
/* Deletes the alias, and an alias the model does not have is no error (as
   sg_registry_delete_tag_if_present). */
SG_MUST_CHECK sg_status sg_registry_delete_alias_if_present(sg_registry *reg, const char *model,
                                                            const char *alias,
                                                            const sg_registry_request *req,
                                                            bool *present, sg_err *err);

/*
 * Report bodies, kept by the registry under their SHA-256 (the `reports` table): the body
 * must be a JSON object without NUL bytes (SG_EINPUT otherwise). Storing the same bytes
 * twice is not an error. A transition into a report stage stores the report it verified;
 * `stagegate serve` stores uploads with put_report and finds them again with get_report
 * (SG_EINPUT when there is none; SG_EREFUSED when the stored body no longer hashes to its
 * key). *body is malloc'd, not NUL-terminated; the caller frees it.
 */
SG_MUST_CHECK sg_status sg_registry_put_report(sg_registry *reg, const uint8_t *body, size_t len,
                                               const char *received_by, char sha_out[65],
                                               sg_err *err);
SG_MUST_CHECK sg_status sg_registry_get_report(sg_registry *reg, const char *sha256,
                                               uint8_t **body, size_t *len, sg_err *err);
/*
 * Lists the signers of the reports stored before schema 9 (reports.signers_known = 0), which
 * every lookup of their digest otherwise reads and verifies: each is verified once with the
 * registry's trusted signer keys and listed under each key that verifies a signature of it.
 * A report no trusted key verifies any more is listed under none, and no lookup finds it (its
 * upload would now be refused; so is a body that is no DSSE envelope). Any other failure (a
 * body that no longer hashes to its key, a failed read) stops the run, naming the report.
 * *listed and *unlisted count them. Each report is listed in its own transaction, after its
 * verification; running it again finds nothing to do.
 */
SG_MUST_CHECK sg_status sg_registry_reindex_reports(sg_registry *reg, int64_t *listed,
                                                    int64_t *unlisted, sg_err *err);
/*
 * Root of trust. add_key adds an `admin` or `server` key (PEM text). The first admin key is
 * accepted unsigned (trust on first use); after it, every add_key, create_model and
 * set_pins needs req signed by an admin key. A server key lets `stagegate serve` sign the
 * requests it attests (see sg_registry_request_attest).
 */
SG_MUST_CHECK sg_status sg_registry_add_key(sg_registry *reg, const char *role, const char *pem,
                                            const sg_registry_request *req, sg_err *err);
/* {"keys": [{key_id, role, added_at, added_by}]} */
json_t *sg_registry_keys(sg_registry *reg, sg_err *err);
/* The evidence a create-model request must sign: the digest of the configuration the spec
 * gives (computed by inserting it in a transaction that is rolled back). */
SG_MUST_CHECK sg_status sg_registry_config_digest(sg_registry *reg,
                                                  const sg_registry_model_spec *spec,
                                                  char sha_out[65], sg_err *err);
/* Replaces a model's pins ("" = unpinned); signed by an admin once there is a root. The
 * request's evidence is sg_registry_pins_evidence of the two values. */
SG_MUST_CHECK sg_status sg_registry_set_pins(sg_registry *reg, const char *model,
                                             const char *policy_sha256,
                                             const char *dataset_sha256,
                                             const sg_registry_request *req, sg_err *err);
void sg_registry_pins_evidence(const char *policy_sha256, const char *dataset_sha256,
                               char sha_out[65]);
/*
 * The stored report whose DSSE statement names subject_sha256 as its artifact digest
 * (registry/report_find.c): what `stagegate serve` passes to a transition that names no
 * report. With model, only a report that verifies against one of that model's trusted signer
 * keys counts (uploads that do not are skipped), and the latest by its signed timestamp wins,
 * so an old genuine report uploaded again cannot shadow a newer verdict; with NULL, the
 * newest received, unverified. SG_EINPUT when there is none; SG_EREFUSED when the stored body no
 * longer hashes to its key. sha_out receives the report's own SHA-256; *body is malloc'd,
 * not NUL-terminated.
 */
SG_MUST_CHECK sg_status sg_registry_find_report(sg_registry *reg, const char *model,
                                                const char *subject_sha256, uint8_t **body,
                                                size_t *len, char sha_out[65], sg_err *err);
/* Reads: each returns a new JSON value (caller json_decref) or NULL with err filled. */
json_t *sg_registry_get_model(sg_registry *reg, const char *model, sg_err *err);
json_t *sg_registry_get_version(sg_registry *reg, const char *model, int64_t version, sg_err *err);
/* The version's artifact digest only (one lookup), e.g. to find its stored report. */
SG_MUST_CHECK sg_status sg_registry_version_digest(sg_registry *reg, const char *model,
                                                   int64_t version, char sha_out[65],
                                                   sg_err *err);
json_t *sg_registry_list(sg_registry *reg, sg_err *err);
/* MLflow filter subset: name = 'x', name LIKE 'p%', tags.K = 'v', stage = 'S', joined by AND. */
json_t *sg_registry_search(sg_registry *reg, const char *filter, sg_err *err);
json_t *sg_registry_history(sg_registry *reg, const char *model, sg_err *err);
/* Registered models whose name matches filter (NULL or "" = all): the name conditions of the
 * search filter only. {"models": [{name, description, created_at}, ...]} by name. */
json_t *sg_registry_search_models(sg_registry *reg, const char *filter, sg_err *err);
/* A model without its full version list: name, description, created_at, report_stage, stages
 * (as in get_model), tags, aliases, and latest_versions: the newest version in each stage that
 * holds one (version documents), by version. */
json_t *sg_registry_model_summary(sg_registry *reg, const char *model, sg_err *err);

/* Checks the audit chain and that current state matches it; SG_EREFUSED when it does not. */
SG_MUST_CHECK sg_status sg_registry_verify_log(sg_registry *reg, json_t **summary, sg_err *err);

/*
 * Checkpoints: the audit head, signed by an admin key, to keep outside the database.
 * sg_registry_checkpoint verifies the log first, then returns the DSSE envelope text
 * (payloadType SG_REGISTRY_CHECKPOINT_TYPE; payload {type, registry, seq, hash, time}).
 * sg_registry_check_checkpoint verifies one (with pubkey_pem, else with the admin keys the
 * log added) and refuses (SG_EREFUSED) a log that no longer holds event seq with that hash:
 * rewound or rewritten. *result receives the payload plus signer_key_id.
 */
#define SG_REGISTRY_CHECKPOINT_TYPE "application/vnd.stagegate.registry-checkpoint+json"
SG_MUST_CHECK sg_status sg_registry_checkpoint(sg_registry *reg, const char *key_path,
                                               char **envelope, sg_err *err);
SG_MUST_CHECK sg_status sg_registry_check_checkpoint(sg_registry *reg, const uint8_t *envelope,
                                                     size_t len, const char *pubkey_pem,
                                                     json_t **result, sg_err *err);
/* The audit head: the last event's seq (0 for an empty log) and hash. */
SG_MUST_CHECK sg_status sg_registry_audit_head(sg_registry *reg, int64_t *seq, char hash[65],
                                               sg_err *err);
/* Whether the handle can still be used: false once its connection to a database server is
 * known lost (the server, whose handles live for its whole run, then opens a new one). */
bool sg_registry_alive(sg_registry *reg);
/* Write transactions committed through this handle so far. */
uint64_t sg_registry_commits(const sg_registry *reg);
/* The audit head the handle's last committed write left, as that write knew it (false when
 * it did not: then read it with sg_registry_audit_head). */
bool sg_registry_last_commit_head(const sg_registry *reg, int64_t *seq, char hash[65]);
/* The version document (as sg_registry_get_version gives it) of model/version as the handle's
 * last committed write left it, built from what that write read and wrote inside its
 * transaction, so no read after the commit is needed; a new reference, or NULL when the
 * last write was not a create-version or transition of that version. */
json_t *sg_registry_written_version(const sg_registry *reg, const char *model, int64_t version);
/* One-shot: opens the registry (db NULL = env/default) and reads its audit head. */
SG_MUST_CHECK sg_status sg_registry_head_uri(const char *db, int64_t *seq, char hash[65],
                                             sg_err *err);
/*
 * Copies every row of src (models, versions, tags, aliases, approvals, validations, nonces,
 * run history, the audit log and its head) into dst, which must hold no model and no audit
 * event. The copy runs in one transaction on dst and commits only after dst's audit chain
 * verifies and every table's row count and digest equal src's; then verify-log runs on dst.
 * summary (may be NULL) receives {tables: {NAME: rows}, events, head_hash}.
 */
SG_MUST_CHECK sg_status sg_registry_copy(sg_registry *src, sg_registry *dst, json_t **summary, sg_err *err);
/* The --db value as errors print it: without any password. */
const char *sg_registry_display(const sg_registry *reg);
/* Whether the backend queues writers of every process itself, first come first served and
 * with blocking waits (PostgreSQL); SQLite's writers poll a busy lock instead, so a process
 * with many writer threads does better queueing them itself first. */
bool sg_registry_queues_writers(const sg_registry *reg);

/* true when s is a models:/ URI. */
bool sg_is_model_uri(const char *s);
/* Reads a version's one spelling: decimal digits, the first 1-9, at most INT64_MAX. "01",
 * "+1", " 1" and "1.0" are refused, so that no version is named under a second text (in a
 * URI, a signed request, a log line). false when s is not such a text. */
bool sg_version_parse(const char *s, int64_t *v);
/* Resolves models:/NAME/VERSION, models:/NAME/STAGE, models:/NAME/latest, models:/NAME@ALIAS to
 * the artifact path after checking its sha256 still matches the registry (else SG_EINPUT). */
SG_MUST_CHECK sg_status sg_registry_resolve(sg_registry *reg, const char *uri, char *path_out, size_t len,
                        json_t **info, sg_err *err);
/* One-shot form for other commands: opens the registry (db NULL = env/default) read-only.
 * sha256_out receives the registered digest, which the file had when it was checked: a
 * caller compares with that, not with a second read of a file that may have changed since. */
SG_MUST_CHECK sg_status sg_registry_resolve_uri(const char *uri, const char *db_path_or_null,
                                                char *path_out, size_t len, char sha256_out[65],
                                                sg_err *err);
/* As above, also returning the registered artifact sha256 (hex), so a caller can bind what it
 * loads later to the registry's digest, not only to the file as it was at resolution. It does
 * not read the artifact: the caller must check the bytes it loads against the digest before
 * parsing them (sg_model_open_verified). */
SG_MUST_CHECK sg_status sg_registry_resolve_uri_digest(const char *uri, const char *db_path_or_null, char *path_out,
                                   size_t len, char sha256_out[65], sg_err *err);

/* ---------------------------------------------- run history (runs.c) */

/*
 * Records a run from a signed gate report: finds the version whose artifact
 * digest is the report's subject (model disambiguates when several models hold
 * that artifact, version the version when one model holds it twice: 0 = the only one), verifies
 * the report with pub or, when pub is NULL, with the
 * model's trusted signer keys (SG_EREFUSED when none verifies), and stores
 * model, version, current stage, fingerprint, time, report digest, report path
 * and figures. *run (may be NULL) receives the stored run as JSON.
 */
SG_MUST_CHECK sg_status sg_registry_record_run(sg_registry *reg, const char *report_path, EVP_PKEY *pub,
                           const char *model, int64_t version, json_t **run, sg_err *err);

typedef struct {
    int64_t version;         /* 0 = any */
    const char *fingerprint; /* NULL = any */
    int64_t limit;           /* 0 = all; the newest `limit` runs */
} sg_runs_filter;

/* {"model": NAME, "runs": [run, ...]} oldest first; a run has id, model, version, stage,
 * fingerprint, machine, time, recorded_at, report_sha256, report_path, result, signer_key_id,
 * scenario, figures {metrics, latency_ns, gated}, and verdict: the nightly compare verdict
 * stored with sg_registry_set_run_verdict, or null when none was stored. */
json_t *sg_registry_runs(sg_registry *reg, const char *model, const sg_runs_filter *f, sg_err *err);

/* true for the verdicts a run may carry: "regressed", "improved", "unchanged" (compared with
 * an earlier comparable run) and "first" (nothing to compare with). */
bool sg_run_verdict_valid(const char *verdict);

/*
 * Stores the verdict of the nightly compare of the run of `model` recorded from the report
 * whose SHA-256 (hex) is report_sha256, replacing any earlier one. SG_EINPUT for a verdict
 * sg_run_verdict_valid refuses, an unknown model, or no such run. Like recording a run, it is
 * an observation, not an audit event. *run (may be NULL) receives the run as JSON.
 */
SG_MUST_CHECK sg_status sg_registry_set_run_verdict(sg_registry *reg, const char *model,
                                                    const char *report_sha256, const char *verdict,
                                                    json_t **run, sg_err *err);

#ifdef __cplusplus
}
#endif
#endif
