/* Internals shared by the registry's source files; not part of the public API. */
#ifndef STAGEGATE_REGISTRY_INTERNAL_H
#define STAGEGATE_REGISTRY_INTERNAL_H

#include "stagegate/registry.h"
#include "stagegate/report.h"
#include "store.h"

#define REG_MAX_STAGES 32
#define REG_NAME_MAX 128
/* A tag key: 1-250 characters, MLflow's limit (MAX_MODEL_REGISTRY_TAG_KEY_LENGTH), of UTF-8
   (up to 4 bytes each) on one line without '=' (reg_tag_key_ok). */
#define REG_TAG_KEY_CHARS 250
#define REG_TAG_KEY_MAX (4 * REG_TAG_KEY_CHARS + 1)
bool reg_tag_key_ok(const char *key, size_t len);
/* The characters of len bytes of UTF-8 (valid or not: the bytes that start one). */
size_t reg_text_chars(const char *s, size_t len);
#define REG_DEFAULT_REPORT_AGE_DAYS 30
#define REG_PRODUCTION "Production"
#define REG_ARCHIVED "Archived"
#define REG_ZERO_HASH "0000000000000000000000000000000000000000000000000000000000000000"

struct sg_registry {
    const reg_store_ops *ops; /* the backend serving this registry (store.h) */
    reg_store *store;
    char path[4096];
    bool in_tx;
    /* First failure of the current operation's reads (reg_row, reg_prepare), or SG_OK: lets
     * loops that build a document stop at a damaged page instead of returning a short one. */
    int read_rc;
    /* What the current write transaction has read once and may use again (reset by
     * reg_begin, reg_commit and reg_rollback):
     *   tx_cfg: one model's configuration as reg_config_check read it from the tables and
     *     matched with the log; the key and transition checks that follow answer from it, so
     *     they use exactly what was checked, with no further reads;
     *   tx_head: the audit head (seq, hash) the write lock read or the last append wrote;
     *     tx_head_hash is "" when unknown;
     *   tx_root: whether the log had added an admin key when the configuration was read
     *     (an add-key event appended since makes it unknown again). */
    json_t *tx_cfg;
    /* Write transactions committed on this handle, and the audit head the last one left
     * ("" when it was not known: sg_registry_last_commit_head). */
    uint64_t commits;
    int64_t commit_head_seq;
    char commit_head_hash[65];
    enum { REG_ROOT_UNKNOWN = 0, REG_ROOT_NO, REG_ROOT_YES } tx_root;
    int64_t tx_head_seq;
    char tx_head_hash[65];
    /* tx_head_dirty: an append moved the head; reg_commit writes audit_head once for the
     * whole transaction (the appends before it keep the head in tx_head_*). */
    bool tx_head_dirty;
    /* The version document the current write transaction leaves (create-version,
     * transition), and the one the last committed write left (sg_registry_written_version). */
    json_t *tx_doc;
    json_t *written_doc;
    /* What this handle's last transitions found their target stages to need, by model and
     * stage as asked: only a hint for sending a transition's approval and occupant reads
     * with its first round trip under the write lock (lifecycle.c). The checks use what the
     * transaction reads; a stale hint costs a read, or a round trip, nothing else. */
    struct reg_stage_hint {
        char model[REG_NAME_MAX], asked[REG_NAME_MAX], stage[REG_NAME_MAX];
        bool approval, single;
    } hints[16];
    unsigned next_hint;
};

typedef struct {
    char name[REG_NAME_MAX];
    int position;
    bool requires_report;
    bool requires_promoter;
    bool requires_validation;
    bool requires_approval;
    bool multi_version;
} reg_stage;

typedef struct {
    char name[256];
    bool require_approval;
    int64_t max_report_age_days;
    char report_stage[REG_NAME_MAX];
    char policy_sha256[65];  /* pins: "" when not pinned */
    char dataset_sha256[65];
    size_t n_stages;
    reg_stage stages[REG_MAX_STAGES];
} reg_model;

typedef struct {
    int64_t version;
    char stage[REG_NAME_MAX];
    char artifact_path[4096];
    char artifact_sha256[65];
} reg_version;

/* One audit event; strings may be NULL (stored as ''). */
typedef struct {
    const char *model;
    int64_t version;
    const char *action;
    const char *from_stage;
    const char *to_stage;
    const char *actor;
    const char *evidence;
    const char *detail;
    const sg_registry_request *req;
} reg_event;

/* db.c */
sg_status reg_db_error(sg_registry *reg, sg_err *err, const char *what);
SG_MUST_CHECK sg_status reg_exec(sg_registry *reg, const char *sql, sg_err *err);
SG_MUST_CHECK sg_status reg_prepare(sg_registry *reg, const char *sql, reg_stmt **st, sg_err *err);
/* Steps a query: true on a row; false when done or on an error, which is kept in
 * reg->read_rc (the first one since reg_read_start or reg_begin) with err filled. */
bool reg_row(sg_registry *reg, reg_stmt *st, sg_err *err);
void reg_read_start(sg_registry *reg);
/* In a write transaction: st (prepared and bound, a read) may be sent now and answered with
 * the next statement that waits for an answer (PostgreSQL: one round trip for both); its
 * first step reads that answer. Without backend support it runs at its first step. */
void reg_prefetch(sg_registry *reg, reg_stmt *st);
/* Ends a read API call: doc, or NULL (doc freed) when any read of the call failed. */
json_t *reg_read_end(sg_registry *reg, json_t *doc);
SG_MUST_CHECK sg_status reg_begin(sg_registry *reg, sg_err *err);
SG_MUST_CHECK sg_status reg_commit(sg_registry *reg, sg_err *err);
void reg_rollback(sg_registry *reg);
/* Runs a write of the current transaction whose caller needs only its success, and
 * finalizes st. The backend may defer it (PostgreSQL pipelines it with the writes that
 * follow and learns the outcome at the next read or at the commit), so a failure may be
 * returned by a later statement or by reg_finish instead: a constraint failure as
 * SG_EREFUSED with the text `refused` (when not NULL), any other naming `what`. */
SG_MUST_CHECK sg_status reg_write(sg_registry *reg, reg_stmt *st, const char *what,
                                  const char *refused, sg_err *err);
/* Finishes a write: commit on SG_OK, roll back otherwise; returns the final status. */
SG_MUST_CHECK sg_status reg_finish(sg_registry *reg, int rc, sg_err *err);
void reg_now_utc(char out[32]);
int64_t reg_now_epoch(void);
SG_MUST_CHECK sg_status reg_parse_utc(const char *s, int64_t *epoch);
/* Test hook: sleeps inside a write transaction when STAGEGATE_REGISTRY_TEST_PAUSE names the action.
 */
void reg_test_pause(const char *action);
bool reg_valid_name(const char *s);

/* policy.c */
SG_MUST_CHECK sg_status reg_model_load(sg_registry *reg, const char *name, reg_model *m, sg_err *err);
const reg_stage *reg_model_stage(const reg_model *m, const char *stage);
SG_MUST_CHECK sg_status reg_transition_allowed(sg_registry *reg, const char *model, const char *from, const char *to,
                           bool *allowed, sg_err *err);
SG_MUST_CHECK sg_status reg_key_authorized(sg_registry *reg, const char *model, const char *role, const char *stage,
                       const char *key_id, bool *ok, sg_err *err);
int reg_key_count(sg_registry *reg, const char *model, const char *role, const char *stage,
                  int64_t *n, sg_err *err);
SG_MUST_CHECK sg_status reg_version_load(sg_registry *reg, const char *model, int64_t version, reg_version *v,
                     sg_err *err);
/* reg_version_load's statement, prepared, bound and prefetched (reg_prefetch), or NULL; and
 * reg_version_load on it (NULL: prepared there), which finalizes it. */
reg_stmt *reg_version_prefetch(sg_registry *reg, const char *model, int64_t version);
SG_MUST_CHECK sg_status reg_version_load_from(sg_registry *reg, reg_stmt *st, const char *model,
                                              int64_t version, reg_version *v, sg_err *err);

/* Inserts a model's rows (registered_models, stages, transitions, keys, tags) from a spec. */
SG_MUST_CHECK sg_status reg_model_insert(sg_registry *reg, const sg_registry_model_spec *sp,
                                         sg_err *err);

/* trust.c: root of trust, recorded model configurations, pins */
/* The model's configuration from its tables as canonical JSON (NULL with err on failure). */
json_t *reg_config_from_tables(sg_registry *reg, const char *model, sg_err *err);
/* Canonical text of a configuration (malloc'd) and its SHA-256. */
char *reg_config_text(json_t *cfg, char sha_out[65]);
/* Whether an event's detail is a recorded configuration (parsed into *cfg_out). */
bool reg_config_is(const char *detail, const char *evidence, json_t **cfg_out);
/* The evidence a set-pins request signs. */
void reg_pins_evidence(const char *policy_sha256, const char *dataset_sha256, char sha_out[65]);
/* Whether an admin key was ever added (read from the append-only log). */
SG_MUST_CHECK sg_status reg_root_exists(sg_registry *reg, bool *yes, sg_err *err);
/* reg_request_check, required and from an admin key once the registry has a root. */
SG_MUST_CHECK sg_status reg_admin_check(sg_registry *reg, const sg_registry_request *req,
                                        const char *action, const char *model, int64_t version,
                                        const char *target, const char *evidence, char actor[65],
                                        sg_err *err);
/* PEM (malloc'd) of a registered server key, or NULL. */
char *reg_server_key_pem(sg_registry *reg, const char *key_id, sg_err *err);
/* PEM (malloc'd) of an admin key an add-key event of the log introduced, or NULL. */
char *reg_admin_key_pem(sg_registry *reg, const char *key_id, sg_err *err);
/* Appends a create-model / set-pins event holding the configuration the tables now give;
 * evidence NULL = the configuration's digest. actor receives the signer ("" if none). */
SG_MUST_CHECK sg_status reg_config_record(sg_registry *reg, const char *model, const char *action,
                                          const char *evidence, const sg_registry_request *req,
                                          char actor[65], sg_err *err);
/* SG_EREFUSED when the model's tables no longer give the configuration its last
 * configuration event recorded (keys or pins written into the database by hand). */
SG_MUST_CHECK sg_status reg_config_check(sg_registry *reg, const char *model, sg_err *err);
/* In a write transaction, the configuration reg_config_check matched for model (NULL when
 * none was: another model, a model created before recorded configurations, or the tables
 * written since). reg_transition_allowed, reg_key_count and reg_key_authorized answer from
 * it when there is one. */
json_t *reg_tx_config(sg_registry *reg, const char *model);
void reg_tx_config_forget(sg_registry *reg);
/* In a configuration: the PEM of role/stage's key key_id (NULL if none), and in *count (if
 * not NULL) how many keys role/stage has. */
const char *reg_config_key_pem(json_t *cfg, const char *role, const char *stage,
                               const char *key_id, int64_t *count);
bool reg_config_allows(json_t *cfg, const char *from, const char *to);
/* Whether any role of the configuration holds key_id. */
bool reg_config_has_key(json_t *cfg, const char *key_id);
/* reg_config_check, then the model: from the configuration it matched when there is one
 * (no further reads), else from the tables (reg_model_load). */
SG_MUST_CHECK sg_status reg_model_load_checked(sg_registry *reg, const char *name, reg_model *m,
                                               sg_err *err);
/* Whether a request recorded in an audit event holds: signed by pem, or attested by
 * `stagegate serve` (before the root of trust; after it, signed by a registered server key). */
SG_MUST_CHECK sg_status reg_recorded_request_ok(sg_registry *reg, const char *text,
                                                const char *sig64, const char *pem, bool *ok,
                                                sg_err *err);
/* SG_EREFUSED when a report embeds a registry audit head (gate of a models:/ URI) that this
 * registry's log does not hold: the log was cut back or rewritten since, or it is another
 * registry's. */
SG_MUST_CHECK sg_status reg_report_head_check(sg_registry *reg, json_t *statement, sg_err *err);
/* SG_EREFUSED when the registry holds a report for this artifact that stands for the model
 * (verified by its signers, its pins and baseline), was signed at or after ts and did not
 * pass: the latest verdict decides whether the report given with a transition (report_sha) was
 * given or found (report_find.c). */
SG_MUST_CHECK sg_status reg_newer_verdict_check(sg_registry *reg, const char *model,
                                                const char *subject_sha256, const char *report_sha,
                                                int64_t ts, const char *stage, sg_err *err);
/* SG_EREFUSED unless the report statement's policy and dataset digests equal the pins. */
SG_MUST_CHECK sg_status reg_pins_check(const char *model, const char *policy_pin,
                                       const char *dataset_pin, json_t *statement, sg_err *err);
/* A report entering a gated stage while the model has a version in Production must have been
 * gated against one of them: the baseline it names (if any) is a Production version's
 * artifact, and a report whose policy compares with a baseline (a relative metric rule or a
 * shadow section; optional ones would be skipped without one) must name one. SG_EREFUSED. */
SG_MUST_CHECK sg_status reg_baseline_check(sg_registry *reg, const char *model, json_t *statement,
                                           sg_err *err);

/* audit.c */
SG_MUST_CHECK sg_status reg_audit_append(sg_registry *reg, const reg_event *ev, sg_err *err);
/* verify-log's checks (chain, head, state) on the caller's transaction; head_hash receives
 * the last event's hash. */
struct reg_replay_summary_s;
SG_MUST_CHECK sg_status reg_audit_verify(sg_registry *reg, int64_t *events, char head_hash[65],
                                         struct reg_replay_summary_s *sum, sg_err *err);

/* replay.c: verify-log's replay of the whole log and comparison with the tables */
typedef struct reg_replay_summary_s {
    bool root;                  /* the log added an admin key */
    int64_t admins;             /* admin keys the log added */
    int64_t models;             /* models the log created */
    int64_t unrecorded_models;  /* of them, created before schema 4: no configuration recorded */
    int64_t unchecked_events;   /* events of such models, replayed for state only */
} reg_replay_summary;
SG_MUST_CHECK sg_status reg_replay(sg_registry *reg, reg_replay_summary *sum, sg_err *err);
/* The admin public keys (PEM strings) as the log's add-key events introduced them. */
json_t *reg_replay_admin_pems(sg_registry *reg, sg_err *err);

/* request.c: verifies req (if given) against the operation and records its nonce. actor_out
 * receives the key id, or "" when req is NULL and not required. */
SG_MUST_CHECK sg_status reg_request_check(sg_registry *reg, const sg_registry_request *req, bool required,
                      const char *action, const char *model, int64_t version, const char *target,
                      const char *evidence, char actor_out[65], sg_err *err);

/* reg_request_check for a request that changes nothing (a transition confirmed in place):
 * its nonce is not recorded, as the audit log explains every recorded nonce by the event it
 * wrote; a replay of it changes nothing either. */
SG_MUST_CHECK sg_status reg_request_check_unrecorded(sg_registry *reg,
                                                     const sg_registry_request *req, bool required,
                                                     const char *action, const char *model,
                                                     int64_t version, const char *target,
                                                     const char *evidence, char actor_out[65],
                                                     sg_err *err);

/* reports.c: report bodies by SHA-256, inside the caller's write transaction / reads. */
/* The artifact sha256 a DSSE envelope's statement names (its first subject), read without
 * verifying the signature (for lookups only), or "". */
void reg_report_subject(const char *body, size_t len, char out[65]);
/* Verifies a DSSE report with the model's trusted signer keys (every model's when model is
 * NULL); the first that verifies wins and fills info. SG_EREFUSED when none does, SG_EINPUT
 * when the envelope is malformed (registry/runs.c). hint (may be NULL): a key id whose keys
 * are tried first, an order only. */
sg_status reg_verify_with_signers(sg_registry *reg, const char *model, const char *hint,
                                  const uint8_t *env, size_t len, sg_report_info *info,
                                  sg_err *err);
/* The "keyid" of an envelope's first signature when it is a key id (64 hex digits), else "":
 * unauthenticated, a hint for reg_verify_with_signers' order only. */
void reg_report_keyid_hint(const uint8_t *env, size_t len, char out[65]);
/* The trusted signer keys a report verifies with, by key id (at most one per signature). */
typedef struct {
    int n;
    char id[SG_DSSE_MAX_SIGNATURES][65];
} reg_signer_ids;
void reg_signer_ids_add(reg_signer_ids *ids, const char *key_id);
/* The trusted signer keys of the registry a report is listed under: with one signature,
 * known (the key the caller verified it with) or the first trusted key that verifies it;
 * with several, for each distinct signature the first trusted key that verifies it alone,
 * plus known. strict: a signature no trusted key verifies is refused (an upload); else it
 * is not listed. payload_sha256: the signed payload's digest (registry/reports.c). */
SG_MUST_CHECK sg_status reg_report_signers(sg_registry *reg, const uint8_t *body, size_t len,
                                           const char *known, bool strict, reg_signer_ids *ids,
                                           char payload_sha256[65], sg_err *err);
/* Stores a report body under its SHA-256, with the trusted signer keys that verified it and
 * the digest of the payload they signed (report_signers: what a lookup of a model's reports
 * searches, so uploads that verify only with other models' keys cost it nothing). A key that
 * already signed the same payload in another stored body is not listed again. */
SG_MUST_CHECK sg_status reg_report_store(sg_registry *reg, const uint8_t *body, size_t len,
                                         const char *received_by, const reg_signer_ids *signers,
                                         const char *payload_sha256, char sha_out[65], sg_err *err);
SG_MUST_CHECK sg_status reg_report_load(sg_registry *reg, const char *sha256, uint8_t **body,
                                        size_t *len, sg_err *err);

/* "name=value" line of a request text: copies value (false when absent or too long). */
/* SG_OK when a request's registry=SEQ:HASH names an event this registry's log holds with
   that hash (or SEQ 0, the empty log); SG_EREFUSED saying why when it names none or another
   log's (a request made for another registry). */
SG_MUST_CHECK sg_status reg_request_registry_check(sg_registry *reg, const char *text, sg_err *err);
bool reg_request_field(const char *text, const char *name, char *out, size_t len);
/* Whether sig64 (base64) is a signature over text by the public key pem. */
bool reg_sig_ok(const char *pem, const char *text, const char *sig64);

/* query.c: pieces of the read documents, shared with query_models.c and lifecycle.c */
/* Whether the version (model_versions row v) has a passed validation: a scalar subquery,
 * which PostgreSQL runs as one index probe per row (an EXISTS there may become a hash of the
 * whole validations table when the plan expects many rows). */
#define REG_VERSION_VALIDATED                                                                      \
    "COALESCE((SELECT 1 FROM validations WHERE validations.model_name = v.model_name AND"       \
    " validations.version = v.version AND validations.result = 'PASSED' LIMIT 1), 0)"
/* The version documents of the model_versions rows (as v) that `where` selects, with their
 * tags and aliases, in one statement (one round trip to a database server): each version's
 * row (kind 0), then one row per tag (1) and per alias (2), in (model, version) order.
 * `where` appears three times; its parameters are numbered (?1, ?2). Read with
 * reg_version_docs. */
#define REG_VERSION_DOCS(where)                                                                    \
    "SELECT 0, v.model_name, v.version, v.stage, v.artifact_path, v.artifact_sha256,"              \
    " v.created_by, v.created_at, v.updated_at, " REG_VERSION_VALIDATED ", v.description"          \
    " FROM model_versions v WHERE " where                                                          \
    " UNION ALL SELECT 1, v.model_name, v.version, t.tag_key, t.tag_value, '', '', '', '', 0, ''"  \
    " FROM version_tags t JOIN model_versions v ON v.model_name = t.model_name AND"                \
    " v.version = t.version WHERE " where                                                          \
    " UNION ALL SELECT 2, v.model_name, v.version, a.alias, '', '', '', '', '', 0, ''"             \
    " FROM aliases a JOIN model_versions v ON v.model_name = a.model_name AND"                     \
    " v.version = a.version WHERE " where " ORDER BY 2, 3, 1, 4"
/* REG_VERSION_DOCS of one version (?1 model, ?2 version): its tags and aliases are found by
 * their own keys, without the join (fewer tables for a lookup made on every get). */
#define REG_VERSION_DOC_BY_KEY                                                                     \
    "SELECT 0, v.model_name, v.version, v.stage, v.artifact_path, v.artifact_sha256,"              \
    " v.created_by, v.created_at, v.updated_at, " REG_VERSION_VALIDATED ", v.description"          \
    " FROM model_versions v WHERE v.model_name = ?1 AND v.version = ?2"                            \
    " UNION ALL SELECT 1, model_name, version, tag_key, tag_value, '', '', '', '', 0, ''"          \
    " FROM version_tags WHERE model_name = ?1 AND version = ?2"                                    \
    " UNION ALL SELECT 2, model_name, version, alias, '', '', '', '', '', 0, ''"                   \
    " FROM aliases WHERE model_name = ?1 AND version = ?2 ORDER BY 2, 3, 1, 4"
/* The documents of a REG_VERSION_DOCS statement, bound and not yet stepped (finalized here),
 * as an array in (model, version) order; NULL with err (and reg->read_rc) on a failed read. */
json_t *reg_version_docs(sg_registry *reg, reg_stmt *st, sg_err *err);
/* One version's document and, in *v (when not NULL), the fields a gate uses: one statement.
 * SG_EINPUT "model 'M' has no version N" when there is none. */
SG_MUST_CHECK sg_status reg_version_doc_load(sg_registry *reg, const char *model, int64_t version,
                                             reg_version *v, json_t **doc, sg_err *err);
/* The statement reg_version_doc_load runs, prepared, bound and prefetched (reg_prefetch), for
 * reg_version_doc_load_from; NULL on failure (the load then prepares its own). */
reg_stmt *reg_version_doc_prefetch(sg_registry *reg, const char *model, int64_t version);
/* reg_version_doc_load on st from reg_version_doc_prefetch (NULL: prepared here); finalizes st. */
SG_MUST_CHECK sg_status reg_version_doc_load_from(sg_registry *reg, reg_stmt *st,
                                                  const char *model, int64_t version,
                                                  reg_version *v, json_t **doc, sg_err *err);
json_t *reg_stages_json(const reg_model *m);
/* {column 0: column 1} of a query on (model[, version]). */
json_t *reg_kv_object(sg_registry *reg, const char *sql, const char *model, int64_t version,
                      bool int_values, sg_err *err);

/* filter.c */
#define REG_FILTER_MAX 16
typedef enum {
    REG_F_NAME,
    REG_F_STAGE,
    REG_F_TAG,
    REG_F_VERSION, /* MLflow's version_number */
    REG_F_RUN_ID,  /* MLflow's run_id: stagegate records no runs, so every version's is "" */
    REG_F_SOURCE   /* MLflow's source_path: the artifact's path */
} reg_filter_field;
typedef enum {
    REG_OP_EQ,
    REG_OP_NE,
    REG_OP_LIKE,
    REG_OP_ILIKE,
    REG_OP_LT,
    REG_OP_LE,
    REG_OP_GT,
    REG_OP_GE,
    REG_OP_IN /* value holds the listed strings, each ended by '\x1f' */
} reg_filter_op;
typedef struct {
    reg_filter_field field;
    reg_filter_op op;
    char tag[REG_TAG_KEY_MAX];
    char value[512];
} reg_filter_cond;
typedef struct {
    size_t n;
    reg_filter_cond conds[REG_FILTER_MAX];
} reg_filter;
SG_MUST_CHECK sg_status reg_filter_parse(const char *text, reg_filter *f, sg_err *err);
/* The fields a filter reads of a version (or a registered model: stage, version and source
 * NULL or 0, which its search refuses to filter by); tags is a JSON object of its tags. */
typedef struct {
    const char *name, *stage, *source;
    int64_t version;
    json_t *tags;
} reg_filter_row;
bool reg_filter_match(const reg_filter *f, const reg_filter_row *row);
/* Whether the filter reads only name and tag fields (what a registered model has). */
bool reg_filter_model_fields(const reg_filter *f);
bool reg_like(const char *s, const char *pattern, bool case_insensitive);

#endif
