/*
 * The search filter: MLflow's filter subset for model versions.
 *   filter := cond { AND cond }     cond := field op 'value'
 *   field  := name | attribute.name | stage | tags.KEY | tags.`KEY` | tag.KEY | tag.`KEY`
 *   op     := = | != | LIKE | ILIKE
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
    if (word_at(p, "name")) {
        c->field = REG_F_NAME;
        p->pos += 4;
        return SG_OK;
    }
    if (word_at(p, "stage") || word_at(p, "current_stage")) {
        c->field = REG_F_STAGE;
        p->pos += word_at(p, "stage") ? 5 : 13;
        return SG_OK;
    }
    /* MLflow's own prefixes too: attribute.name, and tag.KEY beside tags.KEY */
    if (word_at(p, "attribute.name")) {
        c->field = REG_F_NAME;
        p->pos += 14;
        return SG_OK;
    }
    if (strncasecmp(p->text + p->pos, "tags.", 5) == 0)
        p->pos += 5;
    else if (strncasecmp(p->text + p->pos, "tag.", 4) == 0)
        p->pos += 4;
    else
        return fail(p, "a field (name, stage or tags.KEY)");
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
    if (s[0] == '!' && s[1] == '=') {
        c->op = REG_OP_NE;
        p->pos += 2;
    } else if (s[0] == '=') {
        c->op = REG_OP_EQ;
        p->pos += 1 + (s[1] == '=');
    } else if (word_at(p, "ILIKE")) {
        c->op = REG_OP_ILIKE;
        p->pos += 5;
    } else if (word_at(p, "LIKE")) {
        c->op = REG_OP_LIKE;
        p->pos += 4;
    } else {
        return fail(p, "an operator (=, !=, LIKE, ILIKE)");
    }
    return SG_OK;
}

static sg_status parse_value(parser *p, reg_filter_cond *c)
{
    char q = p->text[p->pos];
    if (q != '\'' && q != '"') return fail(p, "a quoted string");
    size_t start = ++p->pos, n = 0;
    while (p->text[p->pos] && p->text[p->pos] != q) {
        if (n + 1 >= sizeof c->value) {
            p->pos = start;
            return fail(p, "a value shorter than 512 characters");
        }
        c->value[n++] = p->text[p->pos++];
    }
    if (p->text[p->pos] != q) return fail(p, "a closing quote");
    p->pos++;
    c->value[n] = '\0';
    return SG_OK;
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
   MLflow's stores read a model without the tag as "false": not a prompt. */
#define PROMPT_TAG "mlflow.prompt.is_prompt"

static bool cond_match(const reg_filter_cond *c, const char *v)
{
    if (!v && c->field == REG_F_TAG && !strcmp(c->tag, PROMPT_TAG)) v = "false";
    /* A version without the tag matches no comparison, != included: MLflow's stores join the
       tag's row, so tags.k != 'v' means "has tag k, with another value". */
    if (!v) return false;
    switch (c->op) {
    case REG_OP_EQ:
        return strcmp(v, c->value) == 0;
    case REG_OP_NE:
        return strcmp(v, c->value) != 0;
    case REG_OP_LIKE:
        return reg_like(v, c->value, false);
    case REG_OP_ILIKE:
        return reg_like(v, c->value, true);
    }
    return false;
}

bool reg_filter_match(const reg_filter *f, const char *name, const char *stage, json_t *tags)
{
    for (size_t i = 0; i < f->n; i++) {
        const reg_filter_cond *c = &f->conds[i];
        const char *v = NULL;
        if (c->field == REG_F_NAME)
            v = name;
        else if (c->field == REG_F_STAGE)
            v = stage;
        else
            v = tags ? json_string_value(json_object_get(tags, c->tag)) : NULL;
        if (!cond_match(c, v)) return false;
    }
    return true;
}
