/* `stagegate compare OLD NEW`: the human table and the command line. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "stagegate/compare.h"
#include "stagegate/keys.h"

static const char compare_usage[] =
    "usage: stagegate compare OLD NEW [--json] [--fail-on-regression] [--force] [--pubkey "
    "PUB.pem]\n"
    "                         [--alpha A] [--noise-floor F] [--single-run-floor F]\n"
    "                         [--abs-noise-floor-ns N] [--min-repetition-s S]\n"
    "                         [--history RUNS.json] [--keep-noisy]\n\n"
    "Compares two runs, each a signed gate report or `stagegate bench --json` output.\n"
    "Latency: per percentile (p50, p90, p99, p99.9) the ratio of the medians over the\n"
    "repetitions (bench --repetitions) and a verdict, judged against the variation between\n"
    "runs: regressed / improved when a Mann-Whitney U test over the repetition values\n"
    "rejects 'same distribution' at alpha (default 0.05), the medians moved by more than\n"
    "the noise floor (default 12% p50/p90/p99, 110% p99.9) and by more than either run's\n"
    "spread (max - min over its repetitions). With one repetition on a side, or too few for\n"
    "the U test to reach alpha (3 vs 3), noise cannot be separated from change: only a move\n"
    "beyond the single-run floor (default 20% p50/p90, 50% p99, 320% p99.9) counts. The\n"
    "floors come from A/A runs on a busy 2-core VM (docs/nightly.md); set them for your\n"
    "machine. Repetitions that crossed a noise limit are left out while 5 clean ones\n"
    "remain. Repetitions timed for less than 1 s each (a policy with min_queries and no\n"
    "duration_s) are not judged: back to back, they share one moment of the machine.\n"
    "unchanged otherwise, with the reason.\n"
    "Metrics: the delta and whether NEW crosses the policy's regression margin with OLD as\n"
    "the baseline.\n\n"
    "  --history RUNS.json    `registry runs --json` of earlier runs of the same version on\n"
    "                         the same fingerprint: a value inside their [min, max] (3 runs\n"
    "                         or more) is unchanged\n"
    "  --keep-noisy           judge with every repetition, noisy or not\n"
    "  --noise-floor F        one relative floor for every percentile (e.g. 0.05)\n"
    "  --single-run-floor F   one single-run floor for every percentile\n"
    "  --pubkey PUB.pem       verify signed reports first (without it they are read unverified)\n"
    "  --force                compare runs from different machine fingerprints or scenarios\n"
    "  --fail-on-regression   exit 1 when anything regressed\n"
    "  --json                 print one JSON document\n"
    "  --abs-noise-floor-ns N a percentile that moved by less than N ns is unchanged (default:\n"
    "                         the runs' larger timing-bracket overhead, what the clock "
    "resolves)\n"
    "  --min-repetition-s S   judge latency only when every repetition was timed for at least\n"
    "                         S seconds (default 1; 0 judges every run)\n\n"
    "Exit codes: 0 compared (or nothing regressed with --fail-on-regression), 1 regressed\n"
    "with --fail-on-regression or a report failed verification, 2 usage or input error,\n"
    "including runs on different fingerprints without --force.\n";

static double num(const json_t *o, const char *k)
{
    json_t *v = json_object_get(o, k);
    return json_is_number(v) ? json_number_value(v) : NAN;
}

static void print_run(FILE *out, const char *label, const json_t *r)
{
    fprintf(out, "%s  %s %s", label, sg_json_str(r, "kind"), sg_json_str(r, "file"));
    if (*sg_json_str(r, "subject")) fprintf(out, "  model %s", sg_json_str(r, "subject"));
    if (*sg_json_str(r, "result")) fprintf(out, " %s", sg_json_str(r, "result"));
    if (*sg_json_str(r, "timestamp")) fprintf(out, " at %s", sg_json_str(r, "timestamp"));
    if (!strcmp(sg_json_str(r, "kind"), "report"))
        fprintf(out,
                json_is_true(json_object_get(r, "verified")) ? "  (signature verified, key %.16s)"
                                                             : "  (NOT verified: no --pubkey)%s",
                sg_json_str(r, "key_id"));
    fprintf(out, "\n");
}

static const char *arrow(const char *verdict)
{
    if (!strcmp(verdict, "regressed")) return "\u2191 regressed";
    if (!strcmp(verdict, "improved")) return "\u2193 improved";
    return "= unchanged";
}

static void compare_print_text(const json_t *cmp, FILE *out);

/* The runs' strings (a report's subject, read unverified without --pubkey) are shown, not
   acted on. */
void sg_compare_print(const json_t *cmp, FILE *out)
{
    json_t *p = sg_json_printable((json_t *)cmp);
    if (p) compare_print_text(p, out);
    json_decref(p);
}

static void compare_print_text(const json_t *cmp, FILE *out)
{
    json_t *o = json_object_get(cmp, "old"), *n = json_object_get(cmp, "new");
    print_run(out, "OLD", o);
    print_run(out, "NEW", n);
    json_t *fp = json_object_get(n, "fingerprint");
    if (json_is_true(json_object_get(cmp, "fingerprint_match")) && !json_is_object(fp))
        fprintf(out, "machine: none recorded (neither run measured latency)\n");
    else if (json_is_true(json_object_get(cmp, "fingerprint_match")))
        fprintf(out, "machine: same fingerprint %s (%s)\n", sg_json_str(fp, "id"),
                sg_json_str(fp, "cpu_model"));
    else
        fprintf(out, "machine: DIFFERENT fingerprints, compared with --force\n");
    size_t i;
    json_t *e;
    json_array_foreach(json_object_get(cmp, "differences"), i, e)
    {
        char *a = json_dumps(json_object_get(e, "old"), JSON_ENCODE_ANY);
        char *b = json_dumps(json_object_get(e, "new"), JSON_ENCODE_ANY);
        fprintf(out, "  %s: %s -> %s\n", sg_json_str(e, "field"), a ? a : "?", b ? b : "?");
        free(a);
        free(b);
    }
    json_t *hist = json_object_get(cmp, "history");
    if (hist) {
        long long kept = (long long)json_integer_value(json_object_get(hist, "runs"));
        long long out_ = (long long)json_integer_value(json_object_get(hist, "left_out"));
        fprintf(out, "history: %lld earlier run%s", kept, kept == 1 ? "" : "s");
        long long other = (long long)json_integer_value(json_object_get(hist, "other_keys"));
        if (out_) fprintf(out, " (%lld left out: NEW's own run, or a run listed twice)", out_);
        if (other)
            fprintf(out,
                    " (%lld signed by keys that are neither the model's signers nor NEW's "
                    "left out)",
                    other);
        fputc('\n', out);
    }
    json_t *mw = json_object_get(cmp, "mann_whitney"), *lat = json_object_get(cmp, "latency");
    if (json_array_size(lat)) {
        json_t *reps = json_object_get(cmp, "repetitions");
        json_t *ro = json_object_get(reps, "old"), *rn = json_object_get(reps, "new");
        long long no = (long long)json_integer_value(json_object_get(ro, "repetitions"));
        long long nn = (long long)json_integer_value(json_object_get(rn, "repetitions"));
        fprintf(out, "\nlatency (%s): medians over %lld vs %lld repetitions",
                sg_json_str(n, "scenario"), no, nn);
        long long ko = (long long)json_integer_value(json_object_get(ro, "noisy"));
        long long kn = (long long)json_integer_value(json_object_get(rn, "noisy"));
        if (ko || kn) fprintf(out, " (noisy: %lld old, %lld new)", ko, kn);
        if (no < 2 || nn < 2)
            fprintf(out, "\n  one repetition on a side: run-to-run noise cannot be separated from "
                         "change");
        json_t *win = json_object_get(cmp, "shortest_repetition_s");
        double wo = num(win, "old"), wn = num(win, "new"), need = num(cmp, "min_repetition_s");
        double w = isfinite(wo) && isfinite(wn) ? fmin(wo, wn) : isfinite(wo) ? wo : wn;
        if (isfinite(w) && w < need)
            fprintf(
                out,
                "\n  not judged: the shortest repetition was timed for %.3g ms, and repetitions "
                "that short,\n  back to back, share one moment of the machine (their spread "
                "is not the noise between\n  runs). Time each repetition for at least %.3g s "
                "(a gate policy's duration_s,\n  bench's --duration) to have latency judged.",
                1e3 * w, need);
        (void)mw;
        fprintf(out, "\n  %-6s %12s %12s %8s %7s %7s  %s\n", "", "old", "new", "new/old", "spread",
                "p", "verdict");
        json_array_foreach(lat, i, e)
        {
            char a[32], b[32], p[16] = "-", sp[16] = "-";
            sg_format_ns(num(e, "old_ns"), a, sizeof a);
            sg_format_ns(num(e, "new_ns"), b, sizeof b);
            if (isfinite(num(e, "p_value"))) snprintf(p, sizeof p, "%.3g", num(e, "p_value"));
            double s = fmax(num(e, "old_spread"), num(e, "new_spread"));
            if (isfinite(s)) snprintf(sp, sizeof sp, "%.1f%%", 100 * s);
            fprintf(out, "  %-6s %12s %12s %8.3f %7s %7s  %s (%s)\n", sg_json_str(e, "percentile"),
                    a, b, num(e, "ratio"), sp, p, arrow(sg_json_str(e, "verdict")),
                    sg_json_str(e, "reason"));
        }
        /* The noise band from the recorded history, when compare was given one. */
        json_array_foreach(lat, i, e)
        {
            json_t *h = json_object_get(e, "history_band");
            if (!h) continue;
            char lo[32], hi[32], nv[32];
            sg_format_ns(num(h, "min_ns"), lo, sizeof lo);
            sg_format_ns(num(h, "max_ns"), hi, sizeof hi);
            sg_format_ns(num(h, "new_merged_ns"), nv, sizeof nv);
            fprintf(out, "  %-6s history band %s .. %s over %lld earlier runs; NEW %s (%s)\n",
                    sg_json_str(e, "percentile"), lo, hi,
                    (long long)json_integer_value(json_object_get(h, "runs")), nv,
                    num(h, "new_merged_ns") >= num(h, "min_ns") &&
                            num(h, "new_merged_ns") <= num(h, "max_ns")
                        ? "inside"
                        : "outside");
        }
    }
    json_t *met = json_object_get(cmp, "metrics");
    if (json_is_true(json_object_get(cmp, "dataset_differs")))
        fprintf(out, "\nnote: the runs evaluated different validation sets (sha256 %.12s... then "
                     "%.12s...): metric changes may come from the data\n",
                sg_json_str(json_object_get(cmp, "datasets"), "old"),
                sg_json_str(json_object_get(cmp, "datasets"), "new"));
    if (json_array_size(met)) {
        fprintf(out, "\nmetrics%s\n",
                json_is_true(json_object_get(cmp, "policy_differs"))
                    ? " (the two runs used different policies; NEW's margins apply)"
                    : "");
        json_array_foreach(met, i, e)
        {
            const char *v = sg_json_str(e, "verdict");
            if (json_is_true(json_object_get(e, "not_computed"))) {
                fprintf(out, "  %-20s %10.4g -> %-10s   gated, NEW could not compute it  REGRESSED\n",
                        sg_json_str(e, "name"), num(e, "old"), "(none)");
                continue;
            }
            double d = num(e, "delta");
            const char *ar = d > 0 ? "\u2191" : d < 0 ? "\u2193" : "=";
            fprintf(out, "  %-20s %10.4g -> %-10.4g %s %+-11.4g", sg_json_str(e, "name"),
                    num(e, "old"), num(e, "new"), ar, d);
            if (isfinite(num(e, "margin_limit")))
                fprintf(out, "  margin %s %.4g",
                        json_is_true(json_object_get(e, "greater_is_better")) ? ">=" : "<=",
                        num(e, "margin_limit"));
            fprintf(out, "  %s%s\n", !strcmp(v, "regressed") ? "REGRESSED" : v,
                    json_is_true(json_object_get(e, "crosses_threshold"))
                        ? " (now misses the threshold)"
                        : "");
        }
    }
    long long k = (long long)json_integer_value(json_object_get(cmp, "n_regressed"));
    if (k)
        fprintf(out, "\n%lld figure%s regressed\n", k, k == 1 ? "" : "s");
    else
        fprintf(out, "\nnothing regressed\n");
}

int sg_cmd_compare(int argc, char **argv)
{
    sg_compare_options co;
    sg_compare_options_init(&co);
    bool json = false, fail_on = false;
    const char *pubkey = NULL, *history_path = NULL;
    sg_err err = {{0}};
    bool keep_noisy = false;
    const sg_opt opts[] = {
        SG_OPT_FLAG_("json", &json),
        SG_OPT_FLAG_("fail-on-regression", &fail_on),
        SG_OPT_FLAG_("force", &co.force),
        SG_OPT_STR("pubkey", &pubkey),
        SG_OPT_DBL("alpha", &co.alpha, 1e-12, 0.5),
        SG_OPT_DBL("noise-floor", &co.noise_floor, 0, 10),
        SG_OPT_DBL("abs-noise-floor-ns", &co.abs_noise_floor_ns, 0, 1e12),
        SG_OPT_DBL("single-run-floor", &co.single_run_floor, 0, 10),
        SG_OPT_DBL("min-repetition-s", &co.min_repetition_s, 0, 1e6),
        SG_OPT_STR("history", &history_path),
        SG_OPT_FLAG_("keep-noisy", &keep_noisy),
        SG_OPT_END_,
    };
    const char *pos[2];
    int n_pos;
    int prc = sg_opts_parse("compare", opts, argc, argv, 1, pos, 2, &n_pos);
    if (prc == SG_OPTS_HELP) {
        fputs(compare_usage, stdout);
        return 0;
    }
    if (prc != SG_OPTS_OK) return 2;
    if (n_pos != 2)
        return sg_cli_usage_error("compare", "expected OLD and NEW, got %d argument%s", n_pos,
                                  n_pos == 1 ? "" : "s");
    if (keep_noisy) co.discount_noisy = false;
    json_t *history = NULL;
    if (history_path) {
        json_error_t je = {0};
        uint8_t *data = NULL;
        size_t len = 0;
        /* A regular file of bounded size, as OLD and NEW (a FIFO had blocked for ever) */
        if (sg_read_file(history_path, 64u << 20, &data, &len, &err))
            return sg_cli_fail(SG_EINPUT, &err);
        history = json_loadb((const char *)data, len, JSON_REJECT_DUPLICATES, &je);
        free(data);
        if (!json_is_array(json_object_get(history, "runs"))) {
            json_decref(history);
            return sg_cli_fail(sg_errf(&err, SG_EINPUT,
                                       "%s: not a `registry runs --json` document (no \"runs\" "
                                       "array)%s%s",
                                       history_path, je.text[0] ? ": " : "", je.text),
                               &err);
        }
        co.history = history;
    }
    EVP_PKEY *pub = NULL;
    int rc = pubkey ? sg_key_load_public(pubkey, &pub, &err) : SG_OK;
    sg_compare_run o, n;
    memset(&o, 0, sizeof o);
    memset(&n, 0, sizeof n);
    if (!rc) rc = sg_compare_load(pos[0], pub, &o, &err);
    if (!rc) rc = sg_compare_load(pos[1], pub, &n, &err);
    json_t *cmp = NULL;
    if (!rc) rc = sg_compare_runs(&o, &n, &co, &cmp, &err);
    sg_compare_run_clear(&o);
    sg_compare_run_clear(&n);
    EVP_PKEY_free(pub);
    json_decref(history);
    if (rc) return sg_cli_fail(rc, &err);
    bool regressed = json_is_true(json_object_get(cmp, "regressed"));
    if (json) {
        if (sg_json_print(cmp)) rc = sg_errf(&err, SG_EIO, "compare: cannot write JSON to stdout");
    } else {
        sg_compare_print(cmp, stdout);
    }
    json_decref(cmp);
    if (rc) return sg_cli_fail(rc, &err);
    return fail_on && regressed ? 1 : 0;
}
