/*
 * JUnit XML: one testcase per gate check, so CI systems (GitLab, Jenkins,
 * GitHub test reporters) show the gate in their native test views.
 */
#include <math.h>
#include <string.h>

#include "render_internal.h"
#include "stagegate/gate.h"

/* The part of a check name before the first dot: metric, latency, memory or shadow. */
static void check_class(const char *name, char *out, size_t n)
{
    const char *dot = strchr(name, '.');
    size_t len = dot ? (size_t)(dot - name) : strlen(name);
    if (!strncmp(name, "latency.", 8) || !strncmp(name, "memory.", 7) ||
        !strncmp(name, "shadow.", 7))
        snprintf(out, n, "stagegate.gate.%.*s", (int)len, name);
    else
        snprintf(out, n, "stagegate.gate.metrics.%.*s", (int)len, name);
}

sg_status sg_render_junit(FILE *out, const sg_gate_decision *d, json_t *statement)
{
    fprintf(out, "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
    fprintf(out,
            "<testsuites name=\"stagegate\" tests=\"%d\" failures=\"%d\" errors=\"0\" "
            "skipped=\"%d\">\n",
            d->n, d->n_failed, d->n_skipped);
    fprintf(out, "  <testsuite name=\"stagegate gate: ");
    sg_fputs_xml_escaped(out, sg_render_subject_name(statement));
    fprintf(out, "\" tests=\"%d\" failures=\"%d\" errors=\"0\" skipped=\"%d\" timestamp=\"", d->n,
            d->n_failed, d->n_skipped);
    const char *ts = json_string_value(sg_render_pred(statement, "timestamp"));
    sg_fputs_xml_escaped(out, ts ? ts : "");
    fprintf(out, "\">\n    <properties>\n");
    fprintf(out, "      <property name=\"result\" value=\"%s\"/>\n",
            d->passed ? "PASSED" : "FAILED");
    const char *sha = sg_render_subject_sha256(statement);
    if (*sha) {
        fprintf(out, "      <property name=\"model_sha256\" value=\"");
        sg_fputs_xml_escaped(out, sha);
        fprintf(out, "\"/>\n");
    }
    fprintf(out, "    </properties>\n");
    for (int i = 0; i < d->n; i++) {
        const sg_gate_check *c = &d->checks[i];
        char cls[160];
        check_class(c->name, cls, sizeof cls);
        fprintf(out, "    <testcase classname=\"");
        sg_fputs_xml_escaped(out, cls);
        fprintf(out, "\" name=\"");
        sg_fputs_xml_escaped(out, c->name);
        fprintf(out, "\" time=\"%.3f\">\n", c->seconds > 0 ? c->seconds : 0.0);
        if (c->skipped) {
            fprintf(out, "      <skipped message=\"");
            sg_fputs_xml_escaped(out, c->text);
            fprintf(out, "\"/>\n");
        } else if (!c->passed) {
            fprintf(out, "      <failure type=\"gate\" message=\"");
            sg_fputs_xml_escaped(out, c->text);
            fprintf(out, "\">");
            sg_fputs_xml_escaped(out, c->text);
            if (isfinite(c->value) && isfinite(c->limit)) {
                char lim[40], val[40];
                sg_format_shortest(c->limit, lim, sizeof lim);
                sg_format_shortest(c->value, val, sizeof val);
                /* (escaped whole: the operator is "<=" for a latency, memory or error bound) */
                char req[160];
                snprintf(req, sizeof req, "\nrequired: value %s %s; measured %s", c->op, lim, val);
                sg_fputs_xml_escaped(out, req);
            }
            fprintf(out, "</failure>\n");
        }
        fprintf(out, "      <system-out>");
        sg_fputs_xml_escaped(out, c->text);
        fprintf(out, "</system-out>\n    </testcase>\n");
    }
    fprintf(out, "  </testsuite>\n</testsuites>\n");
    return ferror(out) ? SG_EIO : SG_OK;
}
