/*
 * Markdown summary sized for a pull-request comment: the verdict, one table
 * row per check, the candidate-vs-baseline metrics and the latency line.
 */
#include <math.h>
#include <string.h>
#include <strings.h>

#include "render_internal.h"
#include "stagegate/common.h"
#include "stagegate/gate.h"

/* Table cells: '|' would split the cell and a newline would end the table; other control
   characters (an escape sequence in a model's file name) are shown as '?', as the HTML
   report shows them, not written into a file that CI prints to a terminal. */
static void md_cell(FILE *out, const char *s)
{
    for (const char *p = s; p && *p; p++) {
        /* a direction control would reorder the name and the table's text after it, a
           control character drive the terminal that prints the comment */
        size_t ctl = sg_render_control_len(p);
        if (ctl) {
            fputc('?', out);
            p += ctl - 1;
        } else if (*p == '|')
            fputs("\\|", out);
        else if (*p == '<')
            fputs("&lt;", out);
        else if (*p == '&') /* no entity of the text's own (&#x202E; is a right-to-left override) */
            fputs("&amp;", out);
        else if (strchr("`*_\\[]()!~", *p)) /* no emphasis, code, link or image of its own */
            fprintf(out, "\\%c", *p);
        /* nor an autolink (GFM's https://..., www.host, user@host) or an @mention */
        else if (*p == ':' || *p == '@' ||
                 (*p == '.' && p - s >= 3 && !strncasecmp(p - 3, "www", 3)))
            fprintf(out, "\\%c", *p);
        else
            fputc(*p, out);
    }
}

static void md_num(FILE *out, double v, int digits)
{
    if (isfinite(v))
        fprintf(out, "%.*g", digits, v);
    else
        fputs("—", out);
}

static void md_ms(FILE *out, double ms)
{
    char b[32];
    sg_format_ns(ms * 1e6, b, sizeof b);
    fputs(b, out);
}

sg_status sg_render_markdown(FILE *out, const sg_gate_decision *d, json_t *statement)
{
    fprintf(out, "### %s stagegate gate %s: ", d->passed ? "✅" : "❌",
            d->passed ? "PASSED" : "FAILED");
    md_cell(out, sg_render_subject_name(statement));
    fprintf(out, "\n\n");
    const char *sha = sg_render_subject_sha256(statement);
    fprintf(out, "sha256 `%.12s…` · %d checks: %d passed, %d failed, %d skipped\n\n", sha, d->n,
            d->n - d->n_failed - d->n_skipped, d->n_failed, d->n_skipped);
    fprintf(out, "| | check | value | limit | detail |\n|---|---|---|---|---|\n");
    for (int i = 0; i < d->n; i++) {
        const sg_gate_check *c = &d->checks[i];
        fprintf(out, "| %s | ", c->skipped ? "⚪" : c->passed ? "✅" : "❌");
        md_cell(out, c->name);
        char v[48], lim[48];
        sg_gate_check_number(v, sizeof v, c, c->value);
        sg_gate_check_number(lim, sizeof lim, c, c->limit);
        fputs(" | ", out);
        md_cell(out, v);
        fputs(" | ", out);
        if (isfinite(c->limit)) fprintf(out, "%s ", !strcmp(c->op, ">=") ? "≥" : "≤");
        md_cell(out, lim);
        fputs(" | ", out);
        md_cell(out, c->text);
        fputs(" |\n", out);
    }
    json_t *m = sg_render_pred(statement, "metrics"),
           *bm = sg_render_pred(statement, "baseline_metrics");
    if (json_is_object(m) && json_object_size(m)) {
        fprintf(out, "\n<details><summary>Metrics</summary>\n\n| metric | candidate | baseline "
                     "|\n|---|---|---|\n");
        const char *k;
        json_t *v;
        json_object_foreach(m, k, v)
        {
            if (!json_is_number(v)) continue; /* the confusion matrix is in the report, not here */
            json_t *b = json_object_get(bm, k);
            fputs("| ", out);
            md_cell(out, k);
            fputs(" | ", out);
            if (!strcmp(k, "example_count")) { /* a count: "50,000", never "5e+04" */
                char c1[32], c2[32];
                sg_format_count(json_number_value(v), c1, sizeof c1);
                sg_format_count(json_is_number(b) ? json_number_value(b) : NAN, c2, sizeof c2);
                /* no baseline: the dash every other missing value has */
                fprintf(out, "%s | %s |\n", c1, json_is_number(b) ? c2 : "—");
                continue;
            }
            const int dv = sg_render_metric_digits(statement, k, json_number_value(v), b);
            md_num(out, json_number_value(v), dv);
            fputs(" | ", out);
            md_num(out, json_is_number(b) ? json_number_value(b) : NAN, dv);
            fputs(" |\n", out);
        }
        fprintf(out, "\n</details>\n");
    }
    json_t *lat = sg_render_pred(statement, "latency");
    double p50, p90, p99;
    if (lat && sg_render_latency_ms(lat, "p50", &p50) && sg_render_latency_ms(lat, "p90", &p90) &&
        sg_render_latency_ms(lat, "p99", &p99)) {
        const char *sc = json_string_value(json_object_get(lat, "scenario"));
        fprintf(out, "\nLatency (%s, per query): p50 ", sc ? sc : "bench");
        md_ms(out, p50);
        fputs(" · p90 ", out);
        md_ms(out, p90);
        fputs(" · p99 ", out);
        md_ms(out, p99);
        fputc('\n', out);
    }
    json_t *sh = sg_render_pred(statement, "shadow");
    json_t *agr = json_object_get(sh, "agreement");
    if (json_is_number(agr)) {
        char rows[32], pct[48];
        sg_format_count((double)json_integer_value(json_object_get(sh, "rows")), rows, sizeof rows);
        sg_render_percent(json_number_value(agr), sg_render_shadow_limit(statement), pct,
                          sizeof pct);
        fprintf(out, "\nShadow agreement with the baseline: %s over %s rows\n", pct, rows);
    }
    return ferror(out) ? SG_EIO : SG_OK;
}
