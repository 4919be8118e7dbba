/* The table of report formats `gate` can write next to the signed report. */
#include "stagegate/gate.h"

const sg_report_format sg_report_formats[] = {
    {"junit", ".xml", "JUnit XML, one testcase per check (CI systems)", sg_render_junit},
    {"html", ".html", "self-contained HTML with latency histogram and CDF", sg_render_html},
    {"markdown", ".md", "Markdown summary (pull requests, chat)", sg_render_markdown},
};
const size_t sg_n_report_formats = sizeof sg_report_formats / sizeof sg_report_formats[0];

_Static_assert(sizeof sg_report_formats / sizeof sg_report_formats[0] <= SG_REPORT_FORMATS_MAX,
               "raise SG_REPORT_FORMATS_MAX");
