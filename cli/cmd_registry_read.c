/* `stagegate registry` read subcommands: JSON with --json, short human text otherwise. */
#include <string.h>

#include "cmd_registry.h"

static long long jint(json_t *o, const char *k)
{
    return (long long)json_integer_value(json_object_get(o, k));
}

static void print_version_line(json_t *v)
{
    printf("%s v%lld  %-12s %s", sg_json_str(v, "name"), jint(v, "version"),
           sg_json_str(v, "stage"), sg_json_str(v, "artifact_path"));
    size_t i;
    json_t *a;
    json_array_foreach(json_object_get(v, "aliases"), i, a) printf(" @%s", json_string_value(a));
    const char *k;
    json_t *t;
    json_object_foreach(json_object_get(v, "tags"), k, t) printf(" %s=%s", k, json_string_value(t));
    printf("\n");
}

static void print_version(json_t *v)
{
    printf("%s v%lld\n  stage: %s\n  artifact: %s\n  sha256: %s\n  created: %s by %s\n  validated: "
           "%s\n",
           sg_json_str(v, "name"), jint(v, "version"), sg_json_str(v, "stage"),
           sg_json_str(v, "artifact_path"), sg_json_str(v, "artifact_sha256"),
           sg_json_str(v, "created_at"),
           *sg_json_str(v, "created_by") ? sg_json_str(v, "created_by") : "(anonymous)",
           json_is_true(json_object_get(v, "validated")) ? "yes" : "no");
    if (*sg_json_str(v, "description"))
        printf("  description: %s\n", sg_json_str(v, "description"));
    const char *k;
    json_t *t;
    json_object_foreach(json_object_get(v, "tags"), k, t)
        printf("  tag %s = %s\n", k, json_string_value(t));
    size_t i;
    json_array_foreach(json_object_get(v, "aliases"), i, t)
        printf("  alias @%s\n", json_string_value(t));
}

static void print_model(json_t *m)
{
    printf("%s%s%s\n", sg_json_str(m, "name"), *sg_json_str(m, "description") ? ": " : "",
           sg_json_str(m, "description"));
    size_t i, j;
    json_t *s, *r;
    printf("  stages:");
    json_array_foreach(json_object_get(m, "stages"), i, s)
    {
        printf("%s %s", i ? " >" : "", sg_json_str(s, "name"));
        json_t *req = json_object_get(s, "requires");
        if (json_array_size(req)) {
            printf(" [");
            json_array_foreach(req, j, r) printf("%s%s", j ? "," : "", json_string_value(r));
            printf("]");
        }
    }
    printf("\n  max report age: %lld days%s\n", jint(m, "max_report_age_days"),
           json_is_true(json_object_get(m, "require_approval")) ? ", approval required" : "");
    if (*sg_json_str(m, "policy_sha256") || *sg_json_str(m, "dataset_sha256"))
        printf("  pinned gate: policy sha256:%.16s..., dataset sha256:%.16s...\n",
               sg_json_str(m, "policy_sha256"), sg_json_str(m, "dataset_sha256"));
    json_array_foreach(json_object_get(m, "keys"), i, s)
        printf("  %s%s%s key %.16s\n", sg_json_str(s, "role"), *sg_json_str(s, "stage") ? " " : "",
               sg_json_str(s, "stage"), sg_json_str(s, "key_id"));
    json_array_foreach(json_object_get(m, "versions"), i, s)
    {
        printf("  ");
        print_version_line(s);
    }
}

static int emit(reg_cli *c, json_t *doc, void (*human)(json_t *))
{
    int rc = 0;
    if (c->json) {
        (void)sg_json_print(doc); /* a failed write: main reports it */
    } else {
        /* names are checked when written; descriptions, tags, paths and comments are free text */
        json_t *p = sg_json_printable(doc);
        if (p) human(p);
        rc = p ? 0 : 2;
        json_decref(p);
    }
    json_decref(doc);
    return rc;
}

static void print_list(json_t *doc)
{
    size_t i;
    json_t *m;
    json_array_foreach(json_object_get(doc, "models"), i, m)
    {
        json_t *p = json_object_get(m, "production_version");
        printf("%-32s %3lld versions  Production: ", sg_json_str(m, "name"), jint(m, "versions"));
        if (json_is_integer(p))
            printf("v%lld\n", (long long)json_integer_value(p));
        else
            printf("-\n");
    }
}

static void print_search(json_t *doc)
{
    size_t i;
    json_t *v;
    json_array_foreach(json_object_get(doc, "versions"), i, v) print_version_line(v);
}

static void print_history(json_t *doc)
{
    size_t i;
    json_t *e;
    json_array_foreach(json_object_get(doc, "events"), i, e)
    {
        printf("#%lld %s %-16s v%lld", jint(e, "seq"), sg_json_str(e, "time"),
               sg_json_str(e, "action"), jint(e, "version"));
        if (*sg_json_str(e, "to_stage"))
            printf(" %s -> %s",
                   *sg_json_str(e, "from_stage") ? sg_json_str(e, "from_stage") : "(new)",
                   sg_json_str(e, "to_stage"));
        if (*sg_json_str(e, "actor_key_id")) printf(" by %.16s", sg_json_str(e, "actor_key_id"));
        if (*sg_json_str(e, "evidence_sha256"))
            printf(" evidence %.16s", sg_json_str(e, "evidence_sha256"));
        const char *d = sg_json_str(e, "detail");
        if (!strncmp(d, "{\"", 2))
            printf(" (configuration recorded)");
        else if (!strncmp(d, "-----BEGIN", 10))
            printf(" (key recorded)");
        else if (*d)
            printf(" (%s)", d);
        printf("\n");
    }
}

static void print_resolved(json_t *doc)
{
    printf("%s\n", sg_json_str(doc, "artifact_path"));
}

/* verify-log's lines for a verified log, local or through a server: the count and head, a
   checkpoint that holds, and the warnings (a server's answer had lost them). */
static void print_verified(json_t *doc)
{
    printf("audit log verified: %lld events, head %s\n", jint(doc, "events"),
           sg_json_str(doc, "head_hash"));
    json_t *held = json_object_get(doc, "checkpoint");
    if (held)
        printf("checkpoint of %s (event %lld, signed by %.16s) holds\n", sg_json_str(held, "time"),
               jint(held, "seq"), sg_json_str(held, "signer_key_id"));
    if (!json_is_true(json_object_get(doc, "root_of_trust")))
        printf("warning: no root of trust: model creation and configuration changes are "
               "not signed (stagegate registry init --admin PUB)\n");
    if (jint(doc, "models_without_recorded_configuration") > 0)
        printf("warning: %lld model(s) were created before configurations were recorded: "
               "their %lld event(s) were replayed for state only (pin them to record one)\n",
               jint(doc, "models_without_recorded_configuration"),
               jint(doc, "events_replayed_for_state_only"));
}

int reg_cli_print(reg_cli *c, json_t *doc)
{
    void (*human)(json_t *) = print_search;
    if (!strcmp(c->sub, "get"))
        human = c->n_pos == 2 ? print_version : print_model;
    else if (!strcmp(c->sub, "list"))
        human = print_list;
    else if (!strcmp(c->sub, "history"))
        human = print_history;
    else if (!strcmp(c->sub, "verify-log") && !c->json) {
        print_verified(doc); /* (a server's answer: the same lines, warnings included) */
        json_decref(doc);
        return 0;
    }
    return emit(c, doc, human);
}

int reg_cli_read(reg_cli *c, sg_registry *reg)
{
    sg_err err;
    json_t *doc = NULL;
    void (*human)(json_t *) = NULL;
    if (!strcmp(c->sub, "get")) {
        if (c->n_pos == 2) {
            int64_t v;
            if (reg_cli_parse_version(c->pos[1], &v)) return 2;
            doc = sg_registry_get_version(reg, c->pos[0], v, &err);
            human = print_version;
        } else {
            doc = sg_registry_get_model(reg, c->pos[0], &err);
            human = print_model;
        }
    } else if (!strcmp(c->sub, "list")) {
        doc = sg_registry_list(reg, &err);
        human = print_list;
    } else if (!strcmp(c->sub, "search")) {
        doc = sg_registry_search(reg, c->n_pos ? c->pos[0] : "", &err);
        human = print_search;
    } else if (!strcmp(c->sub, "history")) {
        doc = sg_registry_history(reg, c->pos[0], &err);
        human = print_history;
    } else if (!strcmp(c->sub, "resolve")) {
        char path[4096];
        int rc = sg_registry_resolve(reg, c->pos[0], path, sizeof path, &doc, &err);
        if (rc != SG_OK) return reg_cli_fail(rc, &err);
        human = print_resolved;
    } else { /* verify-log */
        /* The checkpoint first: a log cut back or rewritten past it is the finding to report,
         * whatever the replay of the rest would say. */
        json_t *cp = json_object();
        if (c->checkpoint) {
            int crc = reg_cmd_check_checkpoint(c, reg, cp);
            if (crc != 0) {
                json_decref(cp);
                return crc;
            }
        }
        int rc = sg_registry_verify_log(reg, &doc, &err);
        if (doc && json_object_get(cp, "checkpoint"))
            json_object_set(doc, "checkpoint", json_object_get(cp, "checkpoint"));
        json_decref(cp);
        if (c->json && doc)
            sg_json_print(doc);
        else if (rc == SG_OK)
            print_verified(doc);
        json_decref(doc);
        if (rc != SG_OK) return reg_cli_fail(rc, &err);
        return 0;
    }
    if (!doc) return reg_cli_fail(SG_EINPUT, &err);
    return emit(c, doc, human);
}
