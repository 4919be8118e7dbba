/*
 * The search filter: MLflow's filter subset for model versions.
 *   filter := cond { AND cond }     cond := field op 'value'
 *   field  := [attribute.] (name | stage | version_number | run_id | source_path)
 *           | tags.KEY | tags.`KEY` | tag.KEY | tag.`KEY`
 *   op     := = | != | LIKE | ILIKE | < | <= | > | >= | IN ('a', ...)
 * with MLflow's rules on which field takes which operator.
 * Errors name the 1-based character position where the input stopped making sense.
 */
#include <ctype.h>
#include <string.h>
#include <strings.h>

#include "registry_internal.h"

typedef struct {
    const char *text;
    size_t pos;
    sg_err *err;
} parser;

static void skip_ws(parser *p)
{
    while (isspace((unsigned char)p->text[p->pos]))
        p->pos++;
}

static sg_status fail(parser *p, const char *what)
{
    char near[24];
    snprintf(near, sizeof near, "%.16s", p->text + p->pos);
    return sg_errf(p->err, SG_EINPUT, "search filter: at position %zu: expected %s, found %s%s%s",
                   p->pos + 1, what, *near ? "'" : "end of filter", near, *near ? "'" : "");
}

static bool word_at(parser *p, const char *w)
{
    size_t n = strlen(w);
    if (strncasecmp(p->text + p->pos, w, n) != 0) return false;
    char c = p->text[p->pos + n];
    return !(isalnum((unsigned char)c) || c == '_' || c == '.');
}

static sg_status parse_field(parser *p, reg_filter_cond *c)
{
    /* MLflow's prefix for a version's own columns */
    const bool attribute = strncasecmp(p->text + p->pos, "attribute.", 10) == 0;
    if (attribute) p->pos += 10;
    static const struct {
        const char *word;
        reg_filter_field field;
    } words[] = {{"name", REG_F_NAME},           {"stage", REG_F_STAGE},
                 {"current_stage", REG_F_STAGE}, {"version_number", REG_F_VERSION},
                 {"run_id", REG_F_RUN_ID},       {"source_path", REG_F_SOURCE}};
    for (size_t i = 0; i < sizeof words / sizeof words[0]; i++)
        if (word_at(p, words[i].word)) {
            c->field = words[i].field;
            p->pos += strlen(words[i].word);
            return SG_OK;
        }
    if (attribute)
        return fail(p, "an attribute (name, stage, version_number, run_id or source_path)");
    /* MLflow's own prefixes too: tag.KEY beside tags.KEY */
    if (strncasecmp(p->text + p->pos, "tags.", 5) == 0)
        p->pos += 5;
    else if (strncasecmp(p->text + p->pos, "tag.", 4) == 0)
        p->pos += 4;
    else
        return fail(p, "a field (name, stage, version_number, run_id, source_path or tags.KEY)");
    c->field = REG_F_TAG;
    size_t start = p->pos, n = 0;
    if (p->text[p->pos] == '`') {
        start = ++p->pos;
        while (p->text[p->pos] && p->text[p->pos] != '`')
            p->pos++;
        if (p->text[p->pos] != '`') return fail(p, "a closing backtick");
        n = p->pos++ - start;
    } else {
        for (char ch; (ch = p->text[p->pos]) && (isalnum((unsigned char)ch) || strchr("_-.", ch));)
            p->pos++;
        n = p->pos - start;
    }
    if (n == 0 || n >= sizeof c->tag) {
        p->pos = start;
        return fail(p, "a tag key after 'tags.'");
    }
    memcpy(c->tag, p->text + start, n);
    c->tag[n] = '\0';
    return SG_OK;
}

static sg_status parse_op(parser *p, reg_filter_cond *c)
{
    const char *s = p->text + p->pos;
    const size_t at = p->pos;
    if (s[0] == '!' && s[1] == '=') {
        c->op = REG_OP_NE;
        p->pos += 2;
    } else if (s[0] == '=') {
        c->op = REG_OP_EQ;
        p->pos += 1 + (s[1] == '=');
    } else if (s[0] == '<' || s[0] == '>') {
        c->op = s[1] == '=' ? (s[0] == '<' ? REG_OP_LE : REG_OP_GE)
                            : (s[0] == '<' ? REG_OP_LT : REG_OP_GT);
        p->pos += 1 + (s[1] == '=');
    } else if (word_at(p, "ILIKE")) {
        c->op = REG_OP_ILIKE;
        p->pos += 5;
    } else if (word_at(p, "LIKE")) {
        c->op = REG_OP_LIKE;
        p->pos += 4;
    } else if (strncasecmp(s, "IN", 2) == 0 && (isspace((unsigned char)s[2]) || s[2] == '(')) {
        c->op = REG_OP_IN;
        p->pos += 2;
    } else {
        return fail(p, "an operator (=, !=, LIKE, ILIKE, <, <=, >, >=, IN)");
    }
    /* What MLflow takes for each field */
    const bool cmp = c->op >= REG_OP_LT && c->op <= REG_OP_GE,
               like = c->op == REG_OP_LIKE || c->op == REG_OP_ILIKE;
    const char *only = NULL;
    if (c->field == REG_F_VERSION && (like || c->op == REG_OP_IN))
        only = "version_number takes =, !=, <, <=, >, >=";
    else if (c->field == REG_F_RUN_ID && (like || cmp))
        only = "run_id takes =, != and IN";
    else if (c->field != REG_F_VERSION && c->field != REG_F_RUN_ID && (cmp || c->op == REG_OP_IN))
        only = "<, <=, >, >= are for version_number, IN for run_id";
    if (only) {
        p->pos = at;
        return sg_errf(p->err, SG_EINPUT, "search filter: at position %zu: %s", at + 1, only);
    }
    return SG_OK;
}

/* One quoted string into out[cap] (at most cap - 1 bytes). */
static sg_status parse_quoted(parser *p, char *out, size_t cap, size_t *len)
{
    char q = p->text[p->pos];
    if (q != '\'' && q != '"') return fail(p, "a quoted string");
    size_t start = ++p->pos, n = 0;
    while (p->text[p->pos] && p->text[p->pos] != q) {
        if (n + 1 >= cap) {
            p->pos = start;
            return fail(p, "a value shorter than 512 characters");
        }
        out[n++] = p->text[p->pos++];
    }
    if (p->text[p->pos] != q) return fail(p, "a closing quote");
    p->pos++;
    out[n] = '\0';
    *len = n;
    return SG_OK;
}

static sg_status parse_value(parser *p, reg_filter_cond *c)
{
    size_t n;
    if (c->op == REG_OP_IN) { /* ('a', 'b', ...) */
        if (p->text[p->pos] != '(') return fail(p, "'(' and a list of quoted strings");
        p->pos++;
        size_t o = 0;
        for (;;) {
            skip_ws(p);
            char one[512];
            if (parse_quoted(p, one, sizeof one, &n) != SG_OK) return SG_EINPUT;
            if (memchr(one, '\x1f', n) || o + n + 1 >= sizeof c->value)
                return fail(p, "a shorter list");
            memcpy(c->value + o, one, n);
            o += n;
            c->value[o++] = '\x1f';
            skip_ws(p);
            if (p->text[p->pos] == ',') {
                p->pos++;
                continue;
            }
            if (p->text[p->pos] != ')') return fail(p, "',' or ')'");
            p->pos++;
            c->value[o] = '\0';
            return SG_OK;
        }
    }
    if (c->field == REG_F_VERSION) { /* an integer, quoted or not */
        const size_t at = p->pos;
        const char q = p->text[p->pos];
        if (q == '\'' || q == '"') {
            if (parse_quoted(p, c->value, sizeof c->value, &n) != SG_OK) return SG_EINPUT;
        } else {
            n = strspn(p->text + p->pos, "0123456789");
            if (n == 0 || n >= 19) return fail(p, "a version number");
            memcpy(c->value, p->text + p->pos, n);
            c->value[n] = '\0';
            p->pos += n;
        }
        if (n == 0 || n >= 19 || strspn(c->value, "0123456789") != n) {
            p->pos = at;
            return fail(p, "a version number");
        }
        return SG_OK;
    }
    return parse_quoted(p, c->value, sizeof c->value, &n);
}

sg_status reg_filter_parse(const char *text, reg_filter *f, sg_err *err)
{
    memset(f, 0, sizeof *f);
    parser p = {text, 0, err};
    skip_ws(&p);
    if (!text[p.pos]) return SG_OK; /* empty filter: everything */
    for (;;) {
        if (f->n == REG_FILTER_MAX)
            return sg_errf(err, SG_EINPUT, "search filter: at most %d conditions", REG_FILTER_MAX);
        reg_filter_cond *c = &f->conds[f->n];
        int rc;
        if ((rc = parse_field(&p, c)) != SG_OK) return rc;
        skip_ws(&p);
        if ((rc = parse_op(&p, c)) != SG_OK) return rc;
        skip_ws(&p);
        if ((rc = parse_value(&p, c)) != SG_OK) return rc;
        f->n++;
        skip_ws(&p);
        if (!text[p.pos]) return SG_OK;
        if (!word_at(&p, "AND")) return fail(&p, "AND or the end of the filter");
        p.pos += 3;
        skip_ws(&p);
    }
}

/* The character after the one s starts (text is UTF-8: it was checked when written). */
static const char *next_char(const char *s)
{
    s++;
    while (((unsigned char)*s & 0xC0) == 0x80)
        s++;
    return s;
}

bool reg_like(const char *s, const char *pat, bool ci)
{
    /* SQL LIKE: % any run, _ any one character (not one byte: 'Z_rich' matches "Zürich").
     * Backtracks only to the last %. */
    const char *star = NULL, *mark = NULL;
    while (*s) {
        if (*pat == '%') {
            star = pat++;
            mark = s;
        } else if (*pat == '_') {
            pat++;
            s = next_char(s);
        } else if (*pat && (*pat == *s ||
                            (ci && tolower((unsigned char)*pat) == tolower((unsigned char)*s)))) {
            pat++;
            s++;
        } else if (star) {
            pat = star + 1;
            s = mark = next_char(mark);
        } else {
            return false;
        }
    }
    while (*pat == '%')
        pat++;
    return *pat == '\0';
}

/* MLflow's mark of a prompt (a registered model that holds a prompt, MLflow 2.21 on). Its
   clients add `tag.`mlflow.prompt.is_prompt` != 'true'` to every registered-model search, and
   MLflow's stores take a model without the tag for no prompt. */
#define PROMPT_TAG "mlflow.prompt.is_prompt"

static bool cond_match(const reg_filter_cond *c, const char *v)
{
    /* as MLflow: absent, it matches = 'false' and != 'true' (in any case), nothing else */
    if (!v && c->field == REG_F_TAG && !strcmp(c->tag, PROMPT_TAG))
        return (c->op == REG_OP_EQ && !strcasecmp(c->value, "false")) ||
               (c->op == REG_OP_NE && !strcasecmp(c->value, "true"));
    /* A version without the tag matches no comparison, != included: MLflow's stores join the
       tag's row, so tags.k != 'v' means "has tag k, with another value". */
    if (!v) return false;
    /* A stage is named regardless of case, as a transition names it (stage names are unique
       regardless of case): stage = 'production' had matched nothing. */
    const bool ci = c->field == REG_F_STAGE;
    switch (c->op) {
    case REG_OP_EQ:
        return (ci ? strcasecmp(v, c->value) : strcmp(v, c->value)) == 0;
    case REG_OP_NE:
        return (ci ? strcasecmp(v, c->value) : strcmp(v, c->value)) != 0;
    case REG_OP_LIKE:
        return reg_like(v, c->value, false);
    case REG_OP_ILIKE:
        return reg_like(v, c->value, true);
    case REG_OP_LT: /* version_number and run_id's IN: reg_filter_match */
    case REG_OP_LE:
    case REG_OP_GT:
    case REG_OP_GE:
    case REG_OP_IN:
        return false;
    }
    return false;
}

static bool in_list(const char *list, const char *v)
{
    for (const char *e; (e = strchr(list, '\x1f')) != NULL; list = e + 1)
        if ((size_t)(e - list) == strlen(v) && !strncmp(list, v, (size_t)(e - list))) return true;
    return false;
}

bool reg_filter_match(const reg_filter *f, const reg_filter_row *row)
{
    for (size_t i = 0; i < f->n; i++) {
        const reg_filter_cond *c = &f->conds[i];
        if (c->field == REG_F_VERSION) {
            const long long want = strtoll(c->value, NULL, 10), v = (long long)row->version;
            bool ok = c->op == REG_OP_EQ   ? v == want
                      : c->op == REG_OP_NE ? v != want
                      : c->op == REG_OP_LT ? v < want
                      : c->op == REG_OP_LE ? v <= want
                      : c->op == REG_OP_GT ? v > want
                                           : v >= want;
            if (!ok) return false;
            continue;
        }
        if (c->field == REG_F_RUN_ID && c->op == REG_OP_IN) {
            if (!in_list(c->value, "")) return false;
            continue;
        }
        const char *v = NULL;
        if (c->field == REG_F_NAME)
            v = row->name;
        else if (c->field == REG_F_STAGE)
            v = row->stage;
        else if (c->field == REG_F_RUN_ID)
            v = "";
        else if (c->field == REG_F_SOURCE)
            v = row->source;
        else
            v = row->tags ? json_string_value(json_object_get(row->tags, c->tag)) : NULL;
        if (!cond_match(c, v)) return false;
    }
    return true;
}

bool reg_filter_model_fields(const reg_filter *f)
{
    for (size_t i = 0; i < f->n; i++)
        if (f->conds[i].field != REG_F_NAME && f->conds[i].field != REG_F_TAG) return false;
    return true;
}
