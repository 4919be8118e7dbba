#!/usr/bin/env python3
"""Parses every chart of the rendered pages and checks what a reader relies on:
axis titles present, every label inside the picture, no two labels overlapping,
the central 98% of the queries spread over at least a sixth of the histogram's
x-axis, and the tables' wording and units (p99.9, thousands separators, MiB).

Label boxes use the renderer's estimate: 0.6 em per character, the baseline at
y, 0.8 em above it and 0.25 em below.
"""
import re
import sys
import xml.etree.ElementTree as ET

SVG = "{http://www.w3.org/2000/svg}"
failures = []


def fail(page, msg):
    failures.append(f"{page}: {msg}")


def boxes(svg):
    out = []
    for t in svg.iter(SVG + "text"):
        text = "".join(t.itertext())
        size = float(t.get("font-size", "11"))
        x, y = float(t.get("x")), float(t.get("y"))
        w = 0.6 * size * len(text)
        anchor = t.get("text-anchor", "start")
        x0 = x - w if anchor == "end" else x - w / 2 if anchor == "middle" else x
        out.append((text, t.get("class", ""), x0, y - 0.8 * size, x0 + w, y + 0.25 * size))
    return out


def check_svg(page, svg, kind):
    vb = [float(v) for v in svg.get("viewBox").split()]
    bx = boxes(svg)
    titles = [b for b in bx if "axis-title" in b[1]]
    if len(titles) < 2:
        fail(page, f"{kind}: {len(titles)} axis titles, expected 2 ({[b[0] for b in titles]})")
    for b in bx:
        if b[2] < vb[0] - 0.5 or b[3] < vb[1] - 0.5 or b[4] > vb[0] + vb[2] + 0.5 or b[5] > vb[1] + vb[3] + 0.5:
            fail(page, f"{kind}: label {b[0]!r} outside the view box {vb}: {b[2:]}")
    for i in range(len(bx)):
        for j in range(i + 1, len(bx)):
            a, b = bx[i], bx[j]
            if a[2] < b[4] and b[2] < a[4] and a[3] < b[5] and b[3] < a[5]:
                fail(page, f"{kind}: labels {a[0]!r} and {b[0]!r} overlap")
    ticks = [b for b in bx if "tick" in b[1]]
    if len(ticks) < 4:
        fail(page, f"{kind}: only {len(ticks)} tick labels")
    return bx


def check_histogram(page, svg):
    bars = [r for r in svg.iter(SVG + "rect") if r.get("class") == "bar"]
    over = [r for r in svg.iter(SVG + "rect") if r.get("class") == "bar overflow"]
    axis = [l for l in svg.iter(SVG + "line") if l.get("class") == "axis" and l.get("y1") == l.get("y2")]
    x0, x1 = float(axis[0].get("x1")), float(axis[0].get("x2"))
    counts = [float(r.get("data-count")) for r in bars]
    total = sum(counts) + sum(float(r.get("data-count")) for r in over)
    cum, first, last = 0.0, None, None
    for r, c in zip(bars, counts):
        cum += c
        if first is None and cum >= 0.01 * total:
            first = r
        if last is None and cum >= 0.99 * total:
            last = r
    last = last if last is not None else bars[-1]
    span = float(last.get("x")) + float(last.get("width")) - float(first.get("x"))
    share = span / (x1 - x0)
    if share < 1 / 6:
        fail(page, f"histogram: the central 98% spans {share:.1%} of the x-axis (< 1/6)")
    return share, len(over)


def check_marks(page, html):
    """The trend page marks exactly the runs whose stored nightly verdict is regressed."""
    charts = [ET.fromstring(s) for s in re.findall(r"<svg [^>]*class=\"chart\".*?</svg>", html, re.S)]
    for svg in charts:
        fig = svg.get("data-figure")
        want = sorted(int(c.get("data-run")) for c in svg.iter(SVG + "circle")
                      if c.get("data-verdict") == "regressed")
        got = sorted(int(p.get("data-run")) for p in svg.iter(SVG + "path")
                     if p.get("class") == "regressed")
        if got != want:
            fail(page, f"{fig}: regressed marks on runs {got}, stored verdicts say {want}")
        if page == "trend" and want != [23, 31]:
            fail(page, f"{fig}: the fixture's regressed nights are runs 23 and 31, not {want}")


def main(d):
    pages = {"gate-pass": True, "gate-fail": True, "gate-server": True, "trend": False}
    for page, gate in pages.items():
        html = open(f"{d}/{page}.html", encoding="utf-8").read()
        if "<script" in html or "src=\"http" in html or "<link" in html:
            fail(page, "not self-contained")
        svgs = re.findall(r"<svg .*?</svg>", html, re.S)
        if not svgs:
            fail(page, "no charts")
        for s in svgs:
            svg = ET.fromstring(s)
            cls = svg.get("class", "")
            if "chart" not in cls.split():
                continue  # legend swatches
            kind = "histogram" if "histogram" in cls else "cdf" if "cdf" in cls else svg.get("data-figure", "chart")
            check_svg(page, svg, kind)
            if kind == "histogram":
                share, overflow = check_histogram(page, svg)
                if page == "gate-pass" and overflow != 1:
                    fail(page, "the 4.28 ms outlier is not one overflow bar")
            if kind == "cdf" and page == "gate-pass":
                # one query of 100,000 lies past the axis: the share inside is not "100%"
                over = [t.text for t in svg.iter(SVG + "text") if t.get("class") == "over"]
                if over != ["99.999%"]:
                    fail(page, f"the CDF's share inside the axis reads {over}, not 99.999%")
        if gate:
            text = re.sub(r"<svg .*?</svg>", "", html, flags=re.S)
            if "p999" in text or "p99.9" not in text:
                fail(page, "percentile written as p999, or p99.9 missing")
            if "e+0" in text:
                fail(page, "a number in exponent notation")
            if "100,000" not in text:
                fail(page, "counts without thousands separators")
            if re.search(r"\d (MB|KB)\b", text) or "MiB" not in text:
                fail(page, "memory not in binary units")
            if re.search(r"\d+\.\d{4,} (us|ms)", text):
                fail(page, "a latency with more than three significant digits")
            if 'class="verdict' not in text:
                fail(page, "no verdict banner")
        else:
            if "class=\"legend\"" not in html:
                fail(page, "no legend")
            if "class=\"regressed\"" not in html:
                fail(page, "regressed nights not marked")
            check_marks(page, html)
            if "class=\"limit\"" not in html:
                fail(page, "policy limits not drawn")
    if "Machine" not in open(f"{d}/gate-pass.html", encoding="utf-8").read():
        fail("gate-pass", "no machine section")
    server = open(f"{d}/gate-server.html", encoding="utf-8").read()
    if "achieved" not in server or "5,000" not in server:
        fail("gate-server", "target vs achieved QPS missing")
    for f in failures:
        print("FAIL", f)
    print(f"{len(failures)} failure(s)")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
