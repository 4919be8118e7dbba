"""`stagegate compare`'s Mann-Whitney U statistic and p-value against scipy.

Random pairs of latency histograms (exact small values with heavy ties, and
lognormal latencies cut into the log-linear buckets) are written as bench JSON;
the CLI's --json statistic and p-value must equal
scipy.stats.mannwhitneyu(method="asymptotic", use_continuity=True) on the
samples expanded from the buckets. The per-percentile p-values over repetitions must equal
scipy.stats.mannwhitneyu(x, y) with its default method (exact or asymptotic) on the
repetition values. Also checks --fail-on-regression's exit code.
"""
import json
import os
import subprocess
import sys
import tempfile

import numpy as np
from scipy.stats import mannwhitneyu

SG = os.environ["STAGEGATE_BIN"]


def bucket_low(v):
    """Lowest value of v's bucket in the 3-significant-digit log-linear layout."""
    v = int(v)
    if v < 2048:
        return v
    b = v.bit_length() - 11
    return (v >> b) << b


def bench_doc(samples):
    vals, counts = np.unique([bucket_low(v) for v in samples], return_counts=True)
    s = np.sort(np.repeat(vals, counts))
    pct = {k: int(s[max(int(np.ceil(q * len(s))), 1) - 1])
           for k, q in (("p50", .5), ("p90", .9), ("p99", .99), ("p999", .999))}
    machine = {"cpu_model": "test cpu", "cores": 4, "tsc_hz": 3.0e9, "kernel": "Linux test",
               "openblas": {"config": "OpenBLAS test"}, "stagegate": {"version": "0"}}
    hist = {"unit": "ns", "significant_digits": 3, "sub_bucket_count": 2048, "count": int(counts.sum()),
            "buckets": [[int(v), int(c)] for v, c in zip(vals, counts)]}
    return {"scenario": "single-stream", "latency_ns": pct, "machine": machine, "histogram": hist}, \
        np.repeat(vals, counts).astype(float)


def compare(tmp, a, b, *extra):
    pa, pb = os.path.join(tmp, "a.json"), os.path.join(tmp, "b.json")
    json.dump(a, open(pa, "w"))
    json.dump(b, open(pb, "w"))
    r = subprocess.run([SG, "compare", pa, pb, *extra], capture_output=True, text=True)
    return r


def main():
    rng = np.random.default_rng(20240501)
    cases = []
    for _ in range(12):  # small exact values, many ties
        n1, n2 = rng.integers(5, 60, size=2)
        cases.append((rng.integers(0, 12, n1), rng.integers(0, 12, n2) + rng.integers(0, 3)))
    for shift in (1.0, 1.0, 1.01, 1.03, 1.1, 0.95):  # lognormal latencies, bucketed
        n1, n2 = rng.integers(200, 4000, size=2)
        cases.append((np.round(rng.lognormal(np.log(2e5), 0.3, n1)),
                      np.round(shift * rng.lognormal(np.log(2e5), 0.3, n2))))
    cases.append((np.arange(1, 4), np.arange(4, 7)))  # disjoint
    worst = 0.0
    with tempfile.TemporaryDirectory() as tmp:
        for i, (x, y) in enumerate(cases):
            a, xs = bench_doc(x)
            b, ys = bench_doc(y)
            r = compare(tmp, a, b, "--json")
            assert r.returncode == 0, (i, r.stderr)
            mw = json.loads(r.stdout)["mann_whitney"]
            ref = mannwhitneyu(xs, ys, method="asymptotic", use_continuity=True, alternative="two-sided")
            assert mw["n_old"] == len(xs) and mw["n_new"] == len(ys)
            assert abs(mw["u"] - ref.statistic) <= 1e-9 * max(1.0, ref.statistic), (i, mw["u"], ref.statistic)
            err = abs(mw["p_value"] - ref.pvalue)
            assert err <= 1e-9 * ref.pvalue + 1e-14, (i, mw["p_value"], ref.pvalue)
            worst = max(worst, err / max(ref.pvalue, 1e-300))
        # Over repetitions: the per-percentile p-value is scipy's mannwhitneyu with its default
        # method "auto" on the repetition values (exact without ties when a side has <= 8
        # values, else asymptotic with tie correction).
        rep_cases = [(rng.normal(1000, 30, 5), rng.normal(1100, 30, 5)),
                     (rng.normal(1000, 30, 5), rng.normal(1000, 30, 7)),
                     (np.array([5., 6, 7]), np.array([5., 8, 9, 10])),  # a tie: asymptotic
                     (rng.normal(1000, 30, 12), rng.normal(1020, 30, 15)),  # both > 8: asymptotic
                     (rng.normal(1000, 30, 2), rng.normal(1500, 30, 9)),
                     # exact with one side of 1,000: counts near 1e19, where the product form
                     # had cancelled to a p-value of -1.6e-19 (scipy: 7.8e-20)
                     (100 + np.arange(8.0), 200 + 0.37 * np.arange(1000.0)),
                     (200 + 0.37 * np.arange(1000.0), 100 + np.arange(8.0)),
                     (rng.normal(1000, 30, 8), rng.normal(1010, 30, 400))]
        for i, (x, y) in enumerate(rep_cases):
            a, _ = bench_doc(np.round(rng.lognormal(np.log(1e3), 0.1, 50)))
            b, _ = bench_doc(np.round(rng.lognormal(np.log(1e3), 0.1, 50)))
            for doc, vals in ((a, x), (b, y)):
                doc["repetition_count"] = len(vals)
                doc["repetitions"] = [{"queries": 1000, "latency_ns": {"p50": float(v), "p90": 1.0,
                                                                     "p99": 1.0, "p999": 1.0}}
                                      for v in vals]
            r = compare(tmp, a, b, "--json")
            assert r.returncode == 0, (i, r.stderr)
            row = json.loads(r.stdout)["latency"][0]
            ref = mannwhitneyu(x, y, alternative="two-sided")
            assert abs(row["p_value"] - ref.pvalue) <= 1e-9 * ref.pvalue + 1e-14, (i, row["p_value"], ref.pvalue)
            if min(len(x), len(y)) <= 8 and max(len(x), len(y)) > 100:  # relative, however small
                assert abs(row["p_value"] - ref.pvalue) <= 1e-9 * ref.pvalue, (i, row["p_value"], ref.pvalue)
            assert row["old_repetitions"] == list(map(float, x)), (i, row)
        # Exit codes: a 50% shift in single runs regresses (beyond the 20% single-run floor);
        # 1 only with --fail-on-regression.
        a, _ = bench_doc(np.round(rng.lognormal(np.log(1e5), 0.2, 3000)))
        b, _ = bench_doc(np.round(1.5 * rng.lognormal(np.log(1e5), 0.2, 3000)))
        assert compare(tmp, a, b).returncode == 0
        r = compare(tmp, a, b, "--fail-on-regression")
        assert r.returncode == 1, r
        assert "\u2191 regressed" in r.stdout, r.stdout
        assert compare(tmp, b, a, "--fail-on-regression").returncode == 0
    print(f"{len(cases)} histogram cases and {len(rep_cases)} repetition cases match "
          f"scipy.stats.mannwhitneyu; worst relative p-value error {worst:.2e}")


if __name__ == "__main__":
    sys.exit(main())
