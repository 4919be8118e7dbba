/* Deterministic JSON output and strict number parsing, shared by every part. */
#ifndef STAGEGATE_JSON_H
#define STAGEGATE_JSON_H

#include <jansson.h>

#include "stagegate/common.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Prints one JSON document on stdout with keys in insertion order, then a newline. */
sg_status sg_json_print(json_t *doc);
/* Serialises deterministically (insertion order, compact or indented) into a heap string. */
char *sg_json_dumps(json_t *doc, bool indent);
/* Adds a double that prints finite values as numbers and non-finite as null. */
sg_status sg_json_set_real(json_t *obj, const char *key, double v);

/* JSON text as jansson wrote it (text, heap; taken) with each character a terminal acts on
 * rather than shows and that jansson writes as it is (DEL, C1 controls, the line and
 * paragraph separators, the bidirectional controls, U+FFFE and U+FFFF: sg_put_printable's
 * set above the C0 controls) written as its \uXXXX escape instead: the same JSON value, for
 * any parser, that cannot reorder or split what a reader of the raw text sees. NULL when
 * out of memory (text freed) or when text is NULL. */
char *sg_json_text_escape(char *text);

/* A copy of v for a terminal: every string, object keys included, that holds something a
 * terminal would act on is written as sg_put_printable writes it (\xHH); the rest shared.
 * Human output of documents whose strings come from others (a registry's descriptions and
 * tags, a report's subject) renders this copy. New reference; NULL when out of memory. */
json_t *sg_json_printable(json_t *v);

/* A JSON string of s, a file name or another string from outside: as it is when it is
   UTF-8, else with each byte that is not as \xHH (sg_put_printable), so the member is there
   (jansson's json_string gives NULL for invalid UTF-8, and setting NULL sets nothing). New
   reference; NULL only when out of memory. */
json_t *sg_json_string_safe(const char *s);

/* How many values a JSON text would make, at least: its '{', '[' and ',' outside strings,
 * plus one. Counted before parsing text from outside, since jansson holds every value as
 * its own allocation (about 80 bytes): 64 MiB of "[{},{},...]" took 5 GB. Stops counting
 * past stop_at. */
size_t sg_json_count_values(const char *text, size_t len, size_t stop_at);
/* Values a DSSE envelope may hold (payload, payloadType, 16 signatures of two members), and
 * a signed statement. */
#define SG_JSON_ENVELOPE_VALUES 256
/* Below this many bytes a text is parsed without counting (at most ~30 MB of values), so
 * that a small document that is not an envelope gets the parser's precise refusal. */
#define SG_JSON_COUNT_FROM ((size_t)1 << 20)
#define SG_JSON_STATEMENT_VALUES ((size_t)1 << 22) /* a gate's: two 1,024-class confusion
                                                        matrices are 2^21 values */

/* The string member k of o, or "" when it is missing or not a string. */
const char *sg_json_str(const json_t *o, const char *k);

/* Parses an integer / a finite double within [min, max]; returns -1 on error (message in err,
 * naming opt). */
SG_MUST_CHECK sg_status sg_parse_i64(const char *opt, const char *s, int64_t min, int64_t max, int64_t *out,
                 sg_err *err);
SG_MUST_CHECK sg_status sg_parse_double(const char *opt, const char *s, double min, double max, double *out,
                    sg_err *err);

#ifdef __cplusplus
}
#endif
#endif
