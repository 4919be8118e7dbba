/*
 * Machine fingerprint: the part of the machine record that must match for two
 * latency runs to be comparable. Governor, boost or bindings are reported by
 * bench but left out here: they are settings of the same machine and show up
 * as warnings, while a different CPU, kernel or BLAS build is a different
 * machine for latency purposes.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "stagegate/json.h"
#include "stagegate/compare.h"

static const char *const fp_fields[] = {"cpu_model", "cpu_signature", "cores",
                                        "tsc_mhz",   "kernel",        "openblas",
                                        "stagegate_version"};
#define FP_NFIELDS (sizeof fp_fields / sizeof fp_fields[0])

static json_t *str_or_null(const json_t *v)
{
    return json_is_string(v) ? json_string(json_string_value(v)) : json_null();
}

json_t *sg_fingerprint_from_machine(const json_t *machine)
{
    if (!json_is_object(machine)) return NULL;
    json_t *fp = json_object();
    json_object_set_new(fp, "cpu_model", str_or_null(json_object_get(machine, "cpu_model")));
    /* A virtual machine's model name is often just "AMD EPYC"; vendor, family and model
     * (not the stepping) tell two generations apart. Null when the record has none. */
    const json_t *sig = json_object_get(machine, "cpu_signature");
    const json_t *ven = json_object_get(sig, "vendor"), *fam = json_object_get(sig, "family"),
                 *mod = json_object_get(sig, "model");
    char sigbuf[160];
    if (json_is_string(ven) && json_is_integer(fam) && json_is_integer(mod)) {
        snprintf(sigbuf, sizeof sigbuf, "%.100s family %lld model %lld", json_string_value(ven),
                 (long long)json_integer_value(fam), (long long)json_integer_value(mod));
        json_object_set_new(fp, "cpu_signature", json_string(sigbuf));
    } else {
        json_object_set_new(fp, "cpu_signature", json_null());
    }
    json_t *cores = json_object_get(machine, "cores");
    json_object_set_new(fp, "cores",
                        json_is_integer(cores) ? json_integer(json_integer_value(cores))
                                               : json_null());
    /* TSC calibration varies in the last few kHz run to run: 10 MHz steps keep one machine one
     * fingerprint, and real TSC rates differ by far more than that between CPU models. */
    double hz = json_number_value(json_object_get(machine, "tsc_hz"));
    /* (a rate past 1 THz is no TSC's, and past 9.2e25 Hz its MHz would not fit an integer) */
    json_object_set_new(fp, "tsc_mhz",
                        isfinite(hz) && hz > 0 && hz <= 1e12
                            ? json_integer((json_int_t)(round(hz / 1e7) * 10))
                            : json_null());
    json_object_set_new(fp, "kernel", str_or_null(json_object_get(machine, "kernel")));
    json_object_set_new(
        fp, "openblas",
        str_or_null(json_object_get(json_object_get(machine, "openblas"), "config")));
    json_object_set_new(
        fp, "stagegate_version",
        str_or_null(json_object_get(json_object_get(machine, "stagegate"), "version")));
    /* The id hashes the fields in a fixed order, each as compact JSON, one per line. */
    size_t cap = 256, len = 0;
    char *buf = malloc(cap);
    for (size_t i = 0; buf && i < FP_NFIELDS; i++) {
        char *s = json_dumps(json_object_get(fp, fp_fields[i]), JSON_ENCODE_ANY | JSON_COMPACT);
        size_t sl = s ? strlen(s) : 0;
        if (len + sl + 2 > cap) {
            cap = (len + sl + 2) * 2;
            char *nb = realloc(buf, cap);
            if (!nb) free(buf);
            buf = nb;
        }
        if (buf) {
            memcpy(buf + len, s ? s : "", sl);
            len += sl;
            buf[len++] = '\n';
        }
        free(s);
    }
    char hex[65] = "";
    if (buf) sg_sha256_hex((const uint8_t *)buf, len, hex);
    free(buf);
    hex[16] = 0;
    json_t *out = json_object();
    json_object_set_new(out, "id", json_string(hex));
    json_object_update(out, fp);
    json_decref(fp);
    return out;
}

json_t *sg_fingerprint_diff(const json_t *old_fp, const json_t *new_fp)
{
    json_t *d = json_array();
    for (size_t i = 0; i < FP_NFIELDS; i++) {
        json_t *a = json_object_get(old_fp, fp_fields[i]),
               *b = json_object_get(new_fp, fp_fields[i]);
        if (json_equal(a ? a : json_null(), b ? b : json_null())) continue;
        json_t *e = json_object();
        json_object_set_new(e, "field", json_string(fp_fields[i]));
        json_object_set(e, "old", a ? a : json_null());
        json_object_set(e, "new", b ? b : json_null());
        json_array_append_new(d, e);
    }
    return d;
}
