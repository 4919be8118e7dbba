#!/usr/bin/python3
"""Reference test: `stagegate eval` on models exported with torch.onnx.export against
PyTorch's own forward pass.

MLPs with ReLU, GELU, Tanh, LeakyReLU, BatchNorm1d, LayerNorm, Dropout, softmax, sigmoid,
log-softmax and regression heads, and a logistic-regression-like model, exported at opsets
9..17 (LayerNorm is a native op only from 17; below that PyTorch decomposes it and GELU,
which the compiler fuses back). Regression MLPs chain the other activations torch.nn
exports (ReLU6, Hardtanh, Hardsigmoid, Hardswish, ELU, SELU, CELU, Softplus with beta 1
and 2, SiLU, Mish, Softsign, LogSigmoid, PReLU with one and with per-channel slopes) at
opsets 9..17 (CELU from 12). Checks, per model:
- probabilities / predictions within 1e-5 of PyTorch's (eval mode, float32);
- each of those activations saw inputs in every region its formula distinguishes (below,
  inside and above a clip, both signs), so a wrong branch would change the output;
- the metrics stagegate reports equal the ones computed from PyTorch's outputs;
- a pure MLP chain runs on the dense kernels, the others on the step plan with the fused
  GELU / LayerNorm steps (from the model description and --breakdown stage names);
- a shared layer per token (nn.Linear, LayerNorm, softmax and sums over [batch, 3, 4]) matches;
- nn.TransformerEncoderLayer and nn.MultiheadAttention (batch first or not, with the attention
  weights) match: their export moves the batch to axis 1 and merges it with heads and tokens;
  so do sequence-first pooling, a CLS token, a causal mask and a key padding mask from the data;
- integer features ((x > 0).sum(1), any, argmax, argmin: int64 per row) match exactly, and so
  do nn.Embedding lookups of categorical columns (clamped into the table, or not);
- bucketed features offset into one embedding table (a clamp bounds the floats cast to int64);
- nn.GroupNorm and nn.InstanceNorm1d (InstanceNormalization), and an ensemble with a stack of
  weights per member (TabM: MatMul by a rank-3 constant, or Einsum) match;
- topk, sort, sparsemax, a top-2 mixture of experts (gather by the chosen indices) and
  one_hot match;
- nn.LSTM (2 layers, bidirectional) and nn.GRU (initial h from the data) match;
- CNNs match: Conv2d/Conv1d (padding, stride, dilation, groups), BatchNorm2d, MaxPool and
  AvgPool (padding, ceil_mode), AdaptiveAvgPool2d(1), F.pad (reflect, replicate);
- the one-row path the latency run takes agrees with the batch path (sg_onnx_one_vs_batch);
- every kernel variant this CPU runs agrees, and export_torch.py (whole module and state
  dict) writes a model that loads, with its metadata saying what the output means.
"""
import json
import os
import subprocess
import sys
import tempfile

import h5py
import numpy as np
import onnx
import torch
import torch.nn as nn
import torch.nn.functional as F

SG = os.environ["STAGEGATE_BIN"]
SRC = os.environ["STAGEGATE_SOURCE_DIR"]
PY = "/usr/bin/python3"
TOL = 1e-5
failures = []
torch.manual_seed(0)


def check(cond, what):
    if not cond:
        failures.append(what)
        print("FAIL:", what)


def export(model, path, d, opset):
    torch.onnx.export(model, torch.zeros(2, d), path, input_names=["input"],
                      output_names=["output"], opset_version=opset,
                      dynamic_axes={"input": {0: "batch"}, "output": {0: "batch"}})


def randomize_bn(model):
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, (nn.BatchNorm1d, nn.BatchNorm2d)):
                m.running_mean.uniform_(-0.5, 0.5)
                m.running_var.uniform_(0.5, 2.0)
                m.weight.uniform_(0.5, 1.5)
                m.bias.uniform_(-0.2, 0.2)
            if isinstance(m, nn.LayerNorm):
                m.weight.uniform_(0.5, 1.5)
                m.bias.uniform_(-0.2, 0.2)


def run_eval(model_path, data, extra=(), isa=None):
    preds = model_path + ".pred.h5"
    env = dict(os.environ)
    if isa:
        env["STAGEGATE_ISA"] = isa
    p = subprocess.run([SG, "eval", "--model", model_path, "--data", data, "--json",
                        "--predictions", preds, *extra], capture_output=True, text=True, env=env)
    if p.returncode != 0:
        return None, None, p.stderr.strip()
    with h5py.File(preds) as f:
        out = f["proba"][()] if "proba" in f else f["prediction"][()]
    return json.loads(p.stdout), out, None


def torch_out(model, X, head):
    with torch.no_grad():
        z = model(torch.from_numpy(X)).double().numpy()
    if head == "logits":  # what stagegate applies: softmax / sigmoid of the logits
        if z.shape[1] == 1:
            p = 1 / (1 + np.exp(-z[:, 0]))
            return np.stack([1 - p, p], 1)
        e = np.exp(z - z.max(1, keepdims=True))
        return e / e.sum(1, keepdims=True)
    if head == "logsoftmax":
        return np.exp(z)
    if head == "sigmoid":
        return np.stack([1 - z[:, 0], z[:, 0]], 1)
    if head == "value":
        return z[:, 0]
    return z


def check_metrics(name, doc, ref, y):
    m = doc["metrics"]
    if ref.ndim == 1:
        mse = float(np.mean((ref - y) ** 2))
        check(abs(m["mean_squared_error"] - mse) <= 1e-5 * max(1, mse),
              "%s: mse %r vs torch %r" % (name, m["mean_squared_error"], mse))
        return
    if ref.shape[1] == 2:
        # A p1 within float noise of 0.5 may fall either side of the threshold.
        keep = np.abs(ref[:, 1] - 0.5) > 1e-5
        lab = (ref[:, 1] > 0.5).astype(int)
    else:
        srt = np.sort(ref, 1)
        keep = srt[:, -1] - srt[:, -2] > 1e-5
        lab = ref.argmax(1)
    acc = float(np.mean(lab[keep] == y[keep]))
    n_amb = int((~keep).sum())
    check(abs(m["accuracy"] * len(y) - acc * keep.sum()) <= n_amb + 1e-6,
          "%s: accuracy %r vs torch %r" % (name, m["accuracy"], acc))


def case(tmp, name, model, d, opset, head, data, X, y, extra=(), want_plan=None, stages=None):
    model = model.eval()
    path = os.path.join(tmp, "%s_o%d.onnx" % (name, opset))
    try:
        export(model, path, d, opset)
    except Exception as e:  # an opset PyTorch cannot export this model at
        print("skip %s opset %d: %s" % (name, opset, str(e).splitlines()[0][:100]))
        return
    doc, out, errmsg = run_eval(path, data, extra)
    label = "%s opset %d" % (name, opset)
    if doc is None:
        check(False, "%s: eval failed: %s" % (label, errmsg))
        return
    ref = torch_out(model, X, head)
    diff = float(np.max(np.abs(out.astype(np.float64) - ref)))
    check(diff <= TOL, "%s: max |stagegate - torch| = %.3g" % (label, diff))
    check_metrics(label, doc, ref, y)
    desc = doc["model"]["description"]
    if "dense kernels" in desc and not any(isinstance(x, nn.BatchNorm1d) for x in model.modules()):
        want_bytes = 4 * sum(q.numel() for q in model.parameters())
        check(doc["model"]["param_bytes"] == want_bytes, "%s: param_bytes %d, PyTorch's %d"
              % (label, doc["model"]["param_bytes"], want_bytes))
    if want_plan:
        check(want_plan in desc, "%s: description %r lacks %r" % (label, desc, want_plan))
    if stages:
        b = subprocess.run([SG, "bench", "--model", path, "--data", data, "--scenario",
                            "single-stream", "--duration", "0.05", "--min-queries", "50",
                            "--warmup", "5", "--breakdown", "--json", "--cpus", "0", *extra],
                           capture_output=True, text=True)
        got = list(json.loads(b.stdout)["breakdown_ns"]) if b.returncode == 0 else b.stderr
        for s in stages:
            check(any(s in g for g in got), "%s: breakdown %r lacks %r" % (label, got, s))
    print("ok %-28s opset %2d  max diff %.2g  %s" % (name, opset, diff, desc))
    return path


# Input intervals each activation must see at least 2% of its inputs in, so that every
# branch of its formula is exercised; None: the activation's own clip bounds.
REGIONS = {
    nn.ReLU6: [(-np.inf, 0), (0, 6), (6, np.inf)],
    nn.Hardtanh: None,
    nn.Hardsigmoid: [(-np.inf, -3), (-3, 3), (3, np.inf)],
    nn.Hardswish: [(-np.inf, -3), (-3, 3), (3, np.inf)],
    nn.ELU: [(-np.inf, -1), (0, np.inf)],
    nn.SELU: [(-np.inf, -1), (0, np.inf)],
    nn.CELU: [(-np.inf, -1), (0, np.inf)],
    nn.Softplus: [(-np.inf, -2), (2, np.inf)],
    nn.SiLU: [(-np.inf, -2), (2, np.inf)],
    nn.Mish: [(-np.inf, -2), (2, np.inf)],
    nn.Softsign: [(-np.inf, -2), (2, np.inf)],
    nn.LogSigmoid: [(-np.inf, -4), (2, np.inf)],
    nn.PReLU: [(-np.inf, -0.5), (0.5, np.inf)],
}


class ShapeBranch(nn.Module):
    def __init__(self, d):
        super().__init__()
        self.l1, self.l2 = nn.Linear(d, 8), nn.Linear(8, 3)

    def forward(self, x):
        h = torch.relu(self.l1(x))
        if h.shape[1] > 4:
            h = h * 2.0
        return torch.softmax(self.l2(h), 1)


def activation_mlp(d, width, acts, gains):
    """Linear -> act -> ... -> Linear(width, 1), the Linear before each act scaled by its gain
    so that the activations see both their flat and their curved parts."""
    layers, k = [], d
    for a, gain in zip(acts, gains):
        lin = nn.Linear(k, width)
        with torch.no_grad():
            lin.weight.mul_(gain)
        layers += [lin, a]
        k = width
    layers.append(nn.Linear(k, 1))
    model = nn.Sequential(*layers).eval()
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, nn.PReLU):  # distinct slopes, so a wrong channel shows
                m.weight.uniform_(0.05, 0.6)
    return model


def check_regions(name, model, X):
    seen = {}
    hooks = [m.register_forward_hook(lambda m, i, o: seen.__setitem__(m, i[0].numpy().ravel()))
             for m in model.modules() if type(m) in REGIONS]
    with torch.no_grad():
        model(torch.from_numpy(X))
    for h in hooks:
        h.remove()
    for m, x in seen.items():
        regions = REGIONS[type(m)] or [(-np.inf, m.min_val), (m.min_val, m.max_val),
                                       (m.max_val, np.inf)]
        for lo, hi in regions:
            share = float(np.mean((x > lo) & (x < hi)))
            check(share >= 0.02, "%s: %s sees %.1f%% of its inputs in (%g, %g)"
                  % (name, type(m).__name__, 100 * share, lo, hi))


def make_set(tmp, task, d, classes=3):
    path = os.path.join(tmp, "%s_%d.h5" % (task, d))
    args = [PY, os.path.join(SRC, "scripts/make_dataset.py"), "--out", path, "--task", task,
            "--rows", "1500", "--features", str(d), "--seed", "3"]
    if task == "multiclass":
        args += ["--classes", str(classes)]
    subprocess.run(args, check=True, capture_output=True)
    with h5py.File(path) as f:
        return path, f["X"][()], f["y"][()]


def main():
    tmp = tempfile.mkdtemp(prefix="sg_onnx_parity_")
    d = 12
    mc, Xm, ym = make_set(tmp, "multiclass", d)
    bi, Xb, yb = make_set(tmp, "binary", d)
    rg, Xr, yr = make_set(tmp, "regression", d)
    relu_softmax = nn.Sequential(nn.Linear(d, 32), nn.ReLU(), nn.Linear(32, 16), nn.ReLU(),
                                 nn.Linear(16, 3), nn.Softmax(dim=1))
    general = nn.Sequential(nn.Linear(d, 32), nn.GELU(), nn.LayerNorm(32), nn.Linear(32, 24),
                            nn.BatchNorm1d(24), nn.ReLU(), nn.Dropout(0.3), nn.Linear(24, 3))
    randomize_bn(general)
    tanh_bn = nn.Sequential(nn.Linear(d, 24), nn.BatchNorm1d(24), nn.Tanh(), nn.Dropout(0.1),
                            nn.Linear(24, 1), nn.Sigmoid())
    randomize_bn(tanh_bn)
    logreg = nn.Sequential(nn.Linear(d, 1), nn.Sigmoid())
    regress = nn.Sequential(nn.Linear(d, 32), nn.LeakyReLU(0.05), nn.Linear(32, 1))
    logsm = nn.Sequential(nn.Linear(d, 16), nn.Tanh(), nn.Linear(16, 3), nn.LogSoftmax(dim=1))
    binary_softmax = nn.Sequential(nn.Linear(d, 16), nn.ReLU(), nn.Linear(16, 2), nn.Softmax(1))
    logits2 = nn.Sequential(nn.Linear(d, 16), nn.GELU(), nn.Linear(16, 1))
    class RowFeatures(nn.Module):
        """Column slices and row reductions as tabular models use them: sum, max, min,
        L1/L2 norms, log-sum-exp, product, every other column, the columns reversed."""
        def __init__(self):
            super().__init__()
            self.fc = nn.Linear(6 + 7 + (d - 6 + 1) // 2 + d, 16)
            self.out = nn.Linear(16, 3)

        def forward(self, x):
            a, b = x[:, :6], x[:, 6:]
            f = torch.cat([a, b.sum(1, keepdim=True), b.amax(1, keepdim=True),
                           b.amin(1, keepdim=True), x.norm(p=1, dim=1, keepdim=True),
                           x.norm(dim=1, keepdim=True), torch.logsumexp(x, 1, keepdim=True),
                           (0.5 * a).prod(1, keepdim=True), b[:, ::2], x.flip(1)], 1)
            return torch.softmax(self.out(torch.relu(self.fc(f))), 1)
    row_features = RowFeatures()

    class Tokens(nn.Module):
        """A shared layer per token: the row viewed as 3 tokens of 4 features, nn.Linear on
        [batch, 3, 4] (a MatMul on rows of rank 2, then a bias Add), GELU, optionally
        LayerNorm per token, a softmax and a sum over each token's last axis, a per-token
        score whose log-softmax runs across the tokens, then flattened into a head."""
        def __init__(self, ln):
            super().__init__()
            self.tok = nn.Linear(4, 8)
            self.ln = nn.LayerNorm(8) if ln else None
            self.tok2 = nn.Linear(8, 6)
            self.score = nn.Linear(8, 1, bias=False)
            self.head = nn.Linear(3 * 6 + 3 + 3, 3)

        def forward(self, x):
            h = nn.functional.gelu(self.tok(x.view(-1, 3, 4)))
            if self.ln is not None:
                h = self.ln(h)
            p = torch.softmax(self.tok2(h), -1)
            q = torch.log_softmax(self.score(h).squeeze(-1), 1)
            f = torch.cat([p.flatten(1), h.sum(-1, keepdim=True).flatten(1), q], 1)
            return torch.softmax(self.head(f), 1)
    class Layout(nn.Module):
        """Layout and shape operators as PyTorch exports them: the row as 3 tokens of 4,
        transposed (Transpose) and permuted; chunk and split (Split); a token's mean expanded
        back over it (Expand); zeros concatenated and ones_like (ConstantOfShape); repeat
        (Tile); F.normalize (Expand of the norm); a softmax across the tokens (a Transpose
        pair below opset 13); a variance over the tokens (ReduceProd of the shape); x.view
        with x.size(-1) // 4 (int64 Div on the shape)."""
        def __init__(self):
            super().__init__()
            self.tok = nn.Linear(3, 5)
            self.head = nn.Linear(20 + 12 * 7 + 8 + 4 + 3, 3)

        def forward(self, x):
            n = x.size(0)
            t = x.view(n, 3, 4)
            tt = torch.relu(self.tok(t.transpose(1, 2)))
            a, b = x.chunk(2, 1)
            c = torch.cat(torch.split(x, [5, 7], 1)[::-1], 1)
            m = t - t.mean(-1, keepdim=True).expand_as(t)
            z = torch.cat([a * b, torch.zeros(n, 2)], 1)
            o = x + torch.ones_like(x)
            r = a.repeat(1, 2)
            nm = nn.functional.normalize(x, dim=1)
            s = torch.softmax(t, 1)
            p = t.permute(0, 2, 1).reshape(n, -1)
            v = t.var(1)
            q = x.view(n, x.size(-1) // 4, -1)[:, :, 1]
            f = torch.cat([tt.flatten(1), c, m.flatten(1), z, o, r, nm, s.flatten(1), p, v, q], 1)
            return torch.softmax(self.head(f), 1)
    class Conditions(nn.Module):
        """Conditions as PyTorch exports them: torch.where on a comparison (Greater, Where),
        masked_fill (Equal/Less, Where), a mask of two comparisons cast to float (And, Cast),
        ~mask (Not), and a learned row expanded to the batch with expand(n, -1) (Equal and
        Where on the shape, then Expand)."""
        def __init__(self):
            super().__init__()
            self.fc = nn.Linear(d, 8)
            self.bias_row = nn.Parameter(torch.randn(1, 4))
            self.register_buffer("not_first", torch.arange(8) > 0)
            self.head = nn.Linear(8 * 7 + 4, 3)

        def forward(self, x):
            h = self.fc(x)
            a = torch.where(h > 0, h, 0.1 * h)
            b = h.masked_fill(h < -0.5, -0.5)
            m = ((h > -0.2) & (h < 0.3)).float() * h
            nm = torch.where(~(h > 0), h * h, h)
            e = self.bias_row.expand(x.size(0), -1)
            # NaN and infinities made inside: log of negatives cleaned by nan_to_num (IsNaN,
            # IsInf after a Cast to double, Where), isfinite as a mask, and a -inf
            # masked_fill before a softmax (causal attention's; column 0 is never masked).
            lg = torch.log(h)
            clean = torch.nan_to_num(lg, nan=0.0, posinf=1.0, neginf=-1.0)
            fin = torch.where(torch.isfinite(lg), lg, torch.zeros_like(lg))
            sm = torch.softmax(h.masked_fill((h < -0.5) & self.not_first, float("-inf")), 1)
            return torch.softmax(self.head(torch.cat([a, b, m, nm, e, clean, fin, sm], 1)), 1)
    class Attention(nn.Module):
        """Self-attention over the row's features as tokens, written batch first (as
        FT-Transformer-style tabular models are): a per-feature embedding, one QKV Linear
        chunked in three (Split), heads by reshape and transpose ([batch, heads, tokens,
        dim]), q @ k^T and weights @ v (MatMul of two per-row tensors), a scaled softmax, a
        residual and LayerNorm, then the mean over the tokens into a head."""
        def __init__(self, e=8, h=2):
            super().__init__()
            self.h, self.e = h, e
            self.w = nn.Parameter(torch.randn(d, e) * 0.5)
            self.b = nn.Parameter(torch.randn(d, e) * 0.1)
            self.qkv, self.o, self.ln = nn.Linear(e, 3 * e), nn.Linear(e, e), nn.LayerNorm(e)
            self.head = nn.Linear(e, 3)

        def forward(self, x):
            n, t = x.size(0), x.size(1)
            z = x.unsqueeze(-1) * self.w + self.b
            q, k, v = self.qkv(z).chunk(3, -1)
            q, k, v = (u.reshape(n, t, self.h, self.e // self.h).transpose(1, 2)
                       for u in (q, k, v))
            a = torch.softmax(q @ k.transpose(-2, -1) / (self.e // self.h) ** 0.5, -1)
            y = (a @ v).transpose(1, 2).reshape(n, t, self.e)
            return torch.softmax(self.head(self.ln(z + self.o(y)).mean(1)), 1)
    class Transformer(nn.Module):
        """nn.TransformerEncoderLayer and nn.MultiheadAttention over the row's features as
        tokens. PyTorch exports their attention sequence first: the batch moves to axis 1,
        merges with the heads ([T, N*H, d]) and with the tokens ([T*N, E], the output
        projection's Gemm), and moves back. Batch first or not, post-norm with ReLU or pre-norm
        with GELU; the attention weights averaged over the heads feed the output too."""
        def __init__(self, batch_first, norm_first, e=8, h=2):
            super().__init__()
            self.bf = batch_first
            self.w = nn.Parameter(torch.randn(d, e) * 0.5)
            self.b = nn.Parameter(torch.randn(d, e) * 0.1)
            self.enc = nn.TransformerEncoderLayer(e, h, 2 * e, dropout=0.0,
                                                  batch_first=batch_first, norm_first=norm_first,
                                                  activation="gelu" if norm_first else "relu")
            # sequence first with add_bias_kv (a Tile of bias_k by the batch size)
            self.mha = nn.MultiheadAttention(e, h, batch_first=batch_first,
                                             add_bias_kv=not batch_first)
            self.head = nn.Linear(e, 3)

        def forward(self, x):
            z = x.unsqueeze(-1) * self.w + self.b
            if not self.bf:
                z = z.transpose(0, 1)
            z = self.enc(z)
            o, a = self.mha(z, z, z, need_weights=True)
            z = z + o
            if not self.bf:
                z = z.transpose(0, 1)
            return torch.softmax(self.head(z.mean(1) + a.amax(-1).mean(1, keepdim=True)), 1)
    class SeqFirstIdioms(nn.Module):
        """Sequence first throughout, as nn.TransformerEncoderLayer defaults: a CLS token expanded
        to [1, batch, E] (the batch size at axis 1 of an Expand) and concatenated along the
        tokens, a causal mask (a buffer of -inf above the diagonal: an initializer read by
        Add), torch.split of the tokens, and pooling by h[-1] (Gather), h[:1].squeeze(0)
        and h.mean(0) (the batch back to axis 0)."""
        def __init__(self, e=8, h=2):
            super().__init__()
            self.w = nn.Parameter(torch.randn(d, e) * 0.5)
            self.b = nn.Parameter(torch.randn(d, e) * 0.1)
            self.cls = nn.Parameter(torch.randn(1, 1, e))
            self.enc = nn.TransformerEncoderLayer(e, h, 2 * e, dropout=0.0)
            self.register_buffer("mask", nn.Transformer.generate_square_subsequent_mask(d + 1))
            self.head = nn.Linear(e, 3)

        def forward(self, x):
            t = (x.unsqueeze(-1) * self.w + self.b).permute(1, 0, 2)
            t = torch.cat([self.cls.expand(1, x.size(0), -1), t], 0)
            h = self.enc(t, src_mask=self.mask)
            a, b = torch.split(h, [2, d - 1], 0)
            z = h[-1] + h[:1].squeeze(0) + h.mean(0) + a.amax(0) - b.mean(0)
            return torch.softmax(self.head(z), 1)

    class PaddingMask(nn.Module):
        """A key padding mask computed from the data (a feature of 0 is missing; the CLS
        token's column a boolean ConstantOfShape per row; PyTorch builds zeros of
        [batch * heads, ...] with ConstantOfShape for it), a CLS token, and a
        per-token Linear on h.reshape(-1, E) ([batch * tokens, E])."""
        def __init__(self, e=8, h=2):
            super().__init__()
            self.w = nn.Parameter(torch.randn(d, e) * 0.5)
            self.b = nn.Parameter(torch.randn(d, e) * 0.1)
            self.cls = nn.Parameter(torch.randn(1, 1, e))
            self.mha = nn.MultiheadAttention(e, h, batch_first=True)
            self.tm, self.head = nn.Linear(e, e), nn.Linear(e, 3)

        def forward(self, x):
            n, e = x.size(0), self.cls.size(-1)
            t = torch.cat([self.cls.expand(n, -1, -1), x.unsqueeze(-1) * self.w + self.b], 1)
            kpm = torch.cat([torch.zeros(n, 1, dtype=torch.bool), x == 0], 1)
            o, _ = self.mha(t, t, t, key_padding_mask=kpm, need_weights=True)
            o = torch.relu(self.tm(o.reshape(-1, e))).reshape(n, d + 1, e)
            return torch.softmax(self.head(o[:, 0] + o.mean(1)), 1)
    class Counts(nn.Module):
        """Integer features PyTorch exports as int64 per row: (x > 0).sum(1) (a condition cast
        to int64 and summed), .any(1), argmax and argmin, combined and cast to float."""
        def __init__(self):
            super().__init__()
            self.l = nn.Linear(d + 4, 3)

        def forward(self, x):
            k = (x > 0).sum(1, keepdim=True)
            extra = torch.cat([k * 2 - 1, (x > 1).any(1, keepdim=True).long(),
                               x.argmax(1, keepdim=True), x.argmin(1, keepdim=True)], 1)
            return torch.softmax(self.l(torch.cat([x, extra.float()], 1)), 1)
    class Embeddings(nn.Module):
        """Categorical features as nn.Embedding: columns of x cast to int64 (toward zero),
        clamped into the table from opset 12 (PyTorch's clamp of an int64 exports float
        bounds before), looked up per row (Gather with indices per row)."""
        def __init__(self, clamp):
            super().__init__()
            self.clamp = clamp
            self.e1, self.e2 = nn.Embedding(6, 3), nn.Embedding(8, 4)
            self.l = nn.Linear(d - 3 + 3 + 8, 3)

        def forward(self, x):
            c1, c2 = x[:, 0].long(), x[:, 1:3].long()
            if self.clamp:
                c1, c2 = c1.clamp(0, 5), c2.clamp(0, 7)
            h = torch.cat([x[:, 3:], self.e1(c1), self.e2(c2).flatten(1)], 1)
            return torch.softmax(self.l(h), 1)
    class Buckets(nn.Module):
        """Every feature bucketed (floor of a scaled value, clamped to 10 bins: the clamp bounds
        the floats, so their int64 cast is known to stay below 10) and offset into one shared
        nn.Embedding table (index + 10 * feature)."""
        def __init__(self):
            super().__init__()
            self.emb = nn.Embedding(10 * d, 2)
            self.register_buffer("off", torch.arange(d) * 10)
            self.l = nn.Linear(2 * d, 3)

        def forward(self, x):
            i = torch.clamp(torch.floor((x + 2.5) * 2), 0, 9).long() + self.off
            return torch.softmax(self.l(self.emb(i).flatten(1)), 1)
    class Selection(nn.Module):
        """Ranking and picking per row: torch.topk (values and indices), torch.sort, sparsemax
        (sort, cumsum, arange, gather), a top-2 mixture of experts (topk of the gate, softmax
        of the chosen logits, gather of the chosen experts' outputs), one_hot of an argmax,
        the rank of each value (argsort of argsort: TopK of integers) and a running count
        (cumsum of integers)."""
        def __init__(self):
            super().__init__()
            self.g, self.e, self.s = nn.Linear(d, 4), nn.Linear(d, 16), nn.Linear(d, 6)
            self.o = nn.Linear(3 + 3 + 6 + 6 + 4 + 4 + 6 + d, 3)

        def forward(self, x):
            v, i = torch.topk(x[:, :6], 3)
            srt, _ = torch.sort(x[:, 6:12], 1, descending=True)
            z = self.s(x)
            zs, _ = torch.sort(z, dim=-1, descending=True)
            cs = zs.cumsum(-1)
            rng = torch.arange(1, z.shape[-1] + 1, dtype=z.dtype)
            k = (1 + rng * zs > cs).sum(-1, keepdim=True)
            kf = (1 + rng * zs > cs).float().sum(-1, keepdim=True).long()  # TabNet's form
            tau = (cs.gather(-1, kf - 1) - 1) / k.to(z.dtype)
            sparse = torch.clamp(z - tau, min=0)
            gv, gi = torch.topk(self.g(x), 2)
            eo = self.e(x).reshape(-1, 4, 4)
            moe = (torch.gather(eo, 1, gi.unsqueeze(-1).expand(-1, -1, 4)) *
                   torch.softmax(gv, 1).unsqueeze(-1)).sum(1)
            hot = F.one_hot(x[:, :4].argmax(1), 4).float()
            rank = torch.argsort(torch.argsort(x[:, 6:12], 1), 1).float()  # integers ranked
            count = (x > 0).long().cumsum(1).float()  # integers summed along the row
            return torch.softmax(self.o(torch.cat([v, i.float(), srt[:, :6], sparse, moe,
                                                   hot, rank, count], 1)), 1)
    class Recurrent(nn.Module):
        """The features as a sequence of 3 steps of 4 (batch first): a 2-layer bidirectional
        nn.LSTM (its last output and final c), and an nn.GRU whose initial h comes from the
        data (expanded per direction)."""
        def __init__(self):
            super().__init__()
            self.lstm = nn.LSTM(4, 5, num_layers=2, bidirectional=True, batch_first=True)
            self.gru = nn.GRU(4, 3, batch_first=True)
            self.o = nn.Linear(10 + 5 + 3, 3)

        def forward(self, x):
            seq = x.reshape(-1, 3, 4)
            y, (h, c) = self.lstm(seq)
            g, _ = self.gru(seq, torch.tanh(x[:, :3]).unsqueeze(0))
            return torch.softmax(self.o(torch.cat([y[:, -1], c[-1], g.mean(1)], 1)), 1)
    class Norms(nn.Module):
        """nn.GroupNorm over [batch, 6, 4] and nn.InstanceNorm1d (affine) over [batch, 4, 6]:
        both export as InstanceNormalization (GroupNorm's with scale 1 and shift 0 between
        reshapes, then its own Mul and Add)."""
        def __init__(self):
            super().__init__()
            self.l, self.o = nn.Linear(d, 24), nn.Linear(48, 3)
            self.gn, self.inn = nn.GroupNorm(3, 6), nn.InstanceNorm1d(4, affine=True)
            with torch.no_grad():
                for m in (self.gn, self.inn):
                    m.weight.uniform_(0.5, 1.5)
                    m.bias.uniform_(-0.3, 0.3)

        def forward(self, x):
            h = self.l(x)
            a = self.gn(h.reshape(-1, 6, 4)).flatten(1)
            b = self.inn(h.reshape(-1, 4, 6)).flatten(1)
            return torch.softmax(self.o(torch.relu(torch.cat([a, b], 1))), 1)
    class TabM(nn.Module):
        """An ensemble of k members in one model, each with its own weights (TabM): the
        input repeated k times, times a [k, d, 16] stack of weights (MatMul of [batch, k, 1, d]
        by it, Einsum 'bki,kij->bkj' from opset 12, or torch.bmm with the members first, which
        moves the batch to axis 1), then the members' mean."""
        def __init__(self, einsum, k=4):
            super().__init__()
            self.einsum, self.k = einsum, k
            self.W1 = nn.Parameter(torch.randn(k, d, 16) / d ** 0.5)
            self.b1 = nn.Parameter(torch.randn(k, 16) * 0.1)
            self.W2 = nn.Parameter(torch.randn(k, 16, 3) / 4)

        def forward(self, x):
            h = x.unsqueeze(1).expand(-1, self.k, -1)
            if self.einsum == "bmm":  # members first: [k, N, d] @ [k, d, h], the batch moved
                h = torch.relu(torch.bmm(h.transpose(0, 1), self.W1).transpose(0, 1) + self.b1)
                z = torch.matmul(h.transpose(0, 1), self.W2).transpose(0, 1)
            elif self.einsum:
                h = torch.relu(torch.einsum("bki,kij->bkj", h, self.W1) + self.b1)
                z = torch.einsum("bki,kij->bkj", h, self.W2)
            else:
                h = torch.relu(torch.matmul(h.unsqueeze(2), self.W1).squeeze(2) + self.b1)
                z = torch.matmul(h.unsqueeze(2), self.W2).squeeze(2)
            return torch.softmax(z.mean(1), 1)
    class CNN(nn.Module):
        """A small image CNN on the features seen as [batch, 1, 8, 8] (after a Linear):
        Conv2d, BatchNorm2d, ReLU, MaxPool2d, a grouped Conv2d with stride and padding,
        AvgPool2d with padding counted (exported as Pad + AveragePool), AdaptiveAvgPool2d(1)
        (GlobalAveragePool)."""
        def __init__(self):
            super().__init__()
            self.l = nn.Linear(d, 64)
            self.f = nn.Sequential(nn.Conv2d(1, 4, 3, padding=1), nn.BatchNorm2d(4), nn.ReLU(),
                                   nn.MaxPool2d(2), nn.Conv2d(4, 6, 3, stride=2, padding=1,
                                                              groups=2),
                                   nn.ReLU(), nn.AvgPool2d(3, stride=1, padding=1),
                                   nn.AdaptiveAvgPool2d(1))
            self.o = nn.Linear(6, 3)

        def forward(self, x):
            return torch.softmax(self.o(self.f(self.l(x).reshape(-1, 1, 8, 8)).flatten(1)), 1)
    class Conv1dNet(nn.Module):
        """Conv1d over [batch, 4, 16] with dilation, F.pad reflect and replicate, MaxPool1d and
        AvgPool1d with ceil_mode (opset 11+)."""
        def __init__(self, ceil):
            super().__init__()
            self.ceil = ceil
            self.l = nn.Linear(d, 64)
            self.c1 = nn.Conv1d(4, 6, 3, dilation=2)
            self.c2 = nn.Conv1d(6, 6, 3, groups=3, bias=False)
            with torch.no_grad():
                self.o = nn.Linear(self.body(torch.zeros(1, d)).shape[1], 3)

        def body(self, x):
            h = F.pad(self.l(x).reshape(-1, 4, 16), (2, 1), mode="reflect")
            h = torch.relu(self.c1(h))
            h = F.max_pool1d(h, 2, stride=2, ceil_mode=self.ceil)
            h = self.c2(F.pad(h, (1, 2), mode="replicate"))
            return F.avg_pool1d(h, 3, stride=2, ceil_mode=self.ceil).flatten(1)

        def forward(self, x):
            return torch.softmax(self.o(self.body(x)), 1)
    w = 16
    act_models = [  # (name, model, first opset PyTorch exports it at)
        ("relu6_hardtanh_hardsigmoid_hardswish",
         activation_mlp(d, w, [nn.ReLU6(), nn.Hardtanh(-2, 2), nn.Hardsigmoid(), nn.Hardswish()],
                        [2, 2, 2, 8]), 9),
        ("elu_selu_softplus",
         activation_mlp(d, w, [nn.ELU(), nn.SELU(), nn.Softplus(), nn.Softplus(beta=2)],
                        [2, 2, 2, 2]), 9),
        ("silu_mish_softsign_logsigmoid",
         activation_mlp(d, w, [nn.SiLU(), nn.Mish(), nn.Softsign(), nn.LogSigmoid()],
                        [2, 2, 2, 8]), 9),
        ("prelu", activation_mlp(d, w, [nn.PReLU(), nn.PReLU(num_parameters=w)], [1.5, 1.5]), 9),
        ("celu", activation_mlp(d, w, [nn.CELU(), nn.CELU(0.5)], [1.5, 1.5]), 12),
    ]
    for name, model, _ in act_models:
        check_regions(name, model, Xr)

    for opset in range(9, 18):
        case(tmp, "relu_softmax", relu_softmax, d, opset, "proba", mc, Xm, ym,
             want_plan="dense kernels", stages=["input", "Gemm"] if opset == 13 else None)
        case(tmp, "gelu_layernorm_bn_dropout", general, d, opset, "logits", mc, Xm, ym,
             extra=["--output", "logits"], want_plan="step plan",
             stages=["LayerNorm", "GELU", "BatchNormalization"] if opset in (13, 17) else None)
        case(tmp, "tanh_bn_sigmoid", tanh_bn, d, opset, "sigmoid", bi, Xb, yb,
             want_plan="dense kernels")
    # One model per group of activations, every opset it exports at (none may be skipped);
    # the breakdown names their steps (Hardswish is HardSigmoid + Mul below opset 14).
    act_stages = {13: ["/1/Clip", "/3/Clip", "/5/HardSigmoid", "/7/HardSigmoid", "/7/Mul"],
                  14: ["/1/Clip", "/7/HardSwish"]}
    for name, model, first in act_models:
        for opset in range(first, 18):
            ran = case(tmp, name, model, d, opset, "value", rg, Xr, yr,
                       extra=["--output", "value"], want_plan="step plan",
                       stages=act_stages.get(opset) if name.startswith("relu6") else None)
            check(ran is not None, "%s opset %d did not run" % (name, opset))
    for opset in (9, 13, 17):
        case(tmp, "logreg", logreg, d, opset, "sigmoid", bi, Xb, yb, want_plan="dense kernels")
        # A regressor of a rate ends in Sigmoid too: --output value makes its one column the
        # prediction (it had been taken as a binary classifier whatever the flag said).
        case(tmp, "sigmoid_value", logreg, d, opset, "value", rg, Xr, yr,
             extra=["--output", "value"])
    # torch.jit.script keeps an `if` on a shape: Shape, Gather, Greater, then a Cast of that
    # constant to bool before the If (the cast to bool had been refused).
    scripted = torch.jit.script(ShapeBranch(d).eval())
    for opset in (13, 14, 17):
        case(tmp, "scripted_shape_if", scripted, d, opset, "proba", mc, Xm, ym)
        case(tmp, "leaky_regression", regress, d, opset, "value", rg, Xr, yr,
             extra=["--output", "value"], want_plan="step plan")
        case(tmp, "tanh_logsoftmax", logsm, d, opset, "logsoftmax", mc, Xm, ym,
             want_plan="dense kernels")
        case(tmp, "binary_softmax", binary_softmax, d, opset, "proba", bi, Xb, yb)
        case(tmp, "slices_reductions", row_features, d, opset, "proba", mc, Xm, ym,
             want_plan="step plan")
        case(tmp, "gelu_logit1", logits2, d, opset, "logits", bi, Xb, yb,
             extra=["--output", "logits"])
    tokens, tokens_ln = Tokens(False), Tokens(True)  # (made here: the seed's draws above stay)
    randomize_bn(tokens_ln)
    layout, conditions, attention = Layout(), Conditions(), Attention()
    # Per-token layers: every opset. LayerNorm per token at 17, where it is one operator, and
    # below, where PyTorch's decomposition broadcasts one mean per token ([batch, 3, 1] against
    # [batch, 3, 4]: a gather step expands it; it had been refused).
    for opset in range(9, 18):
        case(tmp, "tokens", tokens, d, opset, "proba", mc, Xm, ym, want_plan="step plan",
             stages=["MatMul"] if opset == 13 else None)
    for opset in (9, 11, 13, 15, 17):
        ran = case(tmp, "layout", layout, d, opset, "proba", mc, Xm, ym, want_plan="step plan")
        check(ran is not None, "layout opset %d did not run" % opset)
        if opset >= 11:  # nan_to_num and isfinite export from 11; comparisons at 9 are in
            # helper_ops.py
            ran = case(tmp, "conditions", conditions, d, opset, "proba", mc, Xm, ym,
                       want_plan="step plan")
            check(ran is not None, "conditions opset %d did not run" % opset)
            ran = case(tmp, "attention", attention, d, opset, "proba", mc, Xm, ym,
                       want_plan="step plan")
            check(ran is not None, "attention opset %d did not run" % opset)
    for opset in (11, 13, 17):
        case(tmp, "tokens_layernorm", tokens_ln, d, opset, "proba", mc, Xm, ym,
             want_plan="step plan")
    # Transformers as PyTorch exports them (the batch moved and merged with heads and tokens).
    transformer_bf, transformer_sf = Transformer(True, False), Transformer(False, True)
    for opset in (11, 14, 17):
        for name, model in (("transformer_bf", transformer_bf), ("transformer_sf", transformer_sf)):
            ran = case(tmp, name, model, d, opset, "proba", mc, Xm, ym, want_plan="step plan")
            check(ran is not None, "%s opset %d did not run" % (name, opset))
    # Embeddings: the categorical columns hold table indices (plus a fraction, cut toward
    # zero); clamped, also indices past the table.
    Xc = Xm.copy()
    rng_c = np.random.default_rng(4)
    Xc[:, 0] = rng_c.integers(0, 6, len(Xc)) + 0.5
    Xc[:, 1] = rng_c.integers(0, 8, len(Xc))
    Xc[:, 2] = rng_c.integers(-3, 11, len(Xc))
    cat = os.path.join(tmp, "categorical.h5")
    with h5py.File(cat, "w") as f:
        f["X"], f["y"] = Xc, ym
    Xi = Xc.copy()
    Xi[:, 2] = np.clip(Xi[:, 2], 0, 7)
    cat_in = os.path.join(tmp, "categorical_in_range.h5")
    with h5py.File(cat_in, "w") as f:
        f["X"], f["y"] = Xi, ym
    for opset in (11, 13, 17):
        ran = case(tmp, "embeddings", Embeddings(False), d, opset, "proba", cat_in, Xi, ym,
                   want_plan="step plan")
        check(ran is not None, "embeddings opset %d did not run" % opset)
        if opset >= 13:
            ran = case(tmp, "embeddings_clamped", Embeddings(True), d, opset, "proba", cat, Xc,
                       ym, want_plan="step plan")
            check(ran is not None, "embeddings_clamped opset %d did not run" % opset)
    counts = Counts()
    for opset in (9, 11, 13, 17):
        ran = case(tmp, "integer_counts", counts, d, opset, "proba", mc, Xm, ym,
                   want_plan="step plan")
        check(ran is not None, "integer_counts opset %d did not run" % opset)
    # GroupNorm, InstanceNorm, and an ensemble's stack of weights (MatMul and Einsum).
    norms, tabm, tabm_einsum, buckets = Norms(), TabM(False), TabM(True), Buckets()
    tabm_bmm = TabM("bmm")
    for opset in (11, 17):  # (two opsets each, for CI time)
        for name, model, first in (("norms", norms, 9), ("tabm", tabm, 9),
                                   ("tabm_einsum", tabm_einsum, 12), ("buckets", buckets, 11),
                                   ("tabm_bmm", tabm_bmm, 11)):
            if opset >= first:
                ran = case(tmp, name, model, d, opset, "proba", mc, Xm, ym,
                           want_plan="step plan")
                check(ran is not None, "%s opset %d did not run" % (name, opset))
    # Ranking and picking per row (continuous data: no equal values, whose order PyTorch's
    # topk leaves open; helper_ops.py checks ONNX's index order for them).
    selection = Selection()
    for opset in (11, 17):
        ran = case(tmp, "selection", selection, d, opset, "proba", mc, Xm, ym,
                   want_plan="step plan")
        check(ran is not None, "selection opset %d did not run" % opset)
    # Recurrent layers.
    recurrent = Recurrent()
    for opset in (9, 17):
        ran = case(tmp, "recurrent", recurrent, d, opset, "proba", mc, Xm, ym,
                   want_plan="step plan")
        check(ran is not None, "recurrent opset %d did not run" % opset)
    # Convolutions and pooling.
    cnn = CNN()
    randomize_bn(cnn)
    for opset in (9, 17):
        for name, model, first in (("cnn", cnn, 9), ("conv1d", Conv1dNet(False), 9),
                                   ("conv1d_ceil", Conv1dNet(True), 11)):
            if opset >= first:
                ran = case(tmp, name, model, d, opset, "proba", mc, Xm, ym,
                           want_plan="step plan")
                check(ran is not None, "%s opset %d did not run" % (name, opset))
    # Their idioms: sequence-first pooling, a CLS token, causal and key padding masks.
    seq_first, padding = SeqFirstIdioms(), PaddingMask()
    Xpad = Xm.copy()
    Xpad[np.random.default_rng(3).uniform(size=Xpad.shape) < 0.25] = 0.0
    pad = os.path.join(tmp, "padded.h5")
    with h5py.File(pad, "w") as f:
        f["X"], f["y"] = Xpad, ym
    for opset in (11, 14, 17):
        ran = case(tmp, "seq_first_idioms", seq_first, d, opset, "proba", mc, Xm, ym,
                   want_plan="step plan")
        check(ran is not None, "seq_first_idioms opset %d did not run" % opset)
        ran = case(tmp, "padding_mask", padding, d, opset, "proba", pad, Xpad, ym,
                   want_plan="step plan")
        check(ran is not None, "padding_mask opset %d did not run" % opset)
    # A deep step plan: past 64 and then 128 graph values, the loader's value table grows and
    # moves; a shape read from it before the move must not be used after (this ran under the
    # sanitizers into a use after free).
    deep = nn.Sequential(*[m for i in range(20) for m in (nn.Linear(d if i == 0 else 8, 8),
                                                          nn.ELU())],
                         nn.Linear(8, 3), nn.Softmax(1))
    case(tmp, "deep_elu_20", deep, d, 13, "proba", mc, Xm, ym, want_plan="step plan")

    # The one-row path (the latency run's) agrees with the batch path on these plans.
    for name in ("tokens_o13", "tokens_layernorm_o17", "slices_reductions_o13",
                 "binary_softmax_o13", "relu_softmax_o13", "deep_elu_20_o13", "layout_o13",
                 "conditions_o13", "tokens_layernorm_o11", "attention_o13", "attention_o17",
                 "transformer_bf_o14", "transformer_sf_o17", "seq_first_idioms_o14",
                 "padding_mask_o17", "integer_counts_o13", "embeddings_clamped_o13",
                 "norms_o17", "tabm_o11", "tabm_einsum_o17", "cnn_o17", "conv1d_ceil_o17",
                 "selection_o17", "tabm_bmm_o17", "recurrent_o17"):
        p = subprocess.run([os.environ["SG_ONNX_ONE_VS_BATCH"], os.path.join(tmp, name + ".onnx")],
                           capture_output=True, text=True)
        check(p.returncode == 0, "%s one row vs batch: %s" % (name, (p.stderr or p.stdout).strip()))

    # Every kernel variant agrees with PyTorch on both plans, and on a model whose LogSigmoid
    # has its Sigmoid fused into each variant's GEMM epilogue.
    # The variants this CPU and OS can run, as stagegate decides (cpuid and XCR0); the scalar
    # one always runs, so a failed probe cannot skip every variant unseen.
    probe = subprocess.run([SG, "clock", "--json"], capture_output=True, text=True)
    runnable = json.loads(probe.stdout)["kernels"]["runnable"] if probe.returncode == 0 else []
    check("scalar" in runnable, "clock --json names no scalar kernels: " + probe.stderr.strip())
    for isa in ("scalar", "avx2", "avx512"):
        if isa not in runnable:
            print("skip %s: this CPU or OS cannot run it" % isa)
            continue
        for name, model, head, extra, data, X in (
                ("relu_softmax", relu_softmax, "proba", (), mc, Xm),
                ("gelu_layernorm_bn_dropout", general, "logits", ("--output", "logits"), mc, Xm),
                (act_models[2][0], act_models[2][1], "value", ("--output", "value"), rg, Xr)):
            path = os.path.join(tmp, "%s_o13.onnx" % name)
            doc, out, e = run_eval(path, data, extra, isa)
            ref = torch_out(model.eval(), X, head)
            check(doc is not None and float(np.max(np.abs(out - ref))) <= TOL,
                  "%s under %s: %s" % (name, isa, e or "differs"))

    # export_torch.py: a whole saved module with --output, and a state dict with --module.
    whole = os.path.join(tmp, "regress.pt")
    torch.save(regress, whole)
    out = os.path.join(tmp, "regress_script.onnx")
    subprocess.run([PY, os.path.join(SRC, "scripts/export_torch.py"), whole, out, "--output",
                    "value", "--opset", "15"], check=True, capture_output=True)
    doc, pred, e = run_eval(out, rg)
    check(doc is not None and "metadata_props" in doc["model"]["estimator"],
          "export_torch.py whole module: %s" % (e or doc["model"]["estimator"]))
    if doc is not None:
        check(float(np.max(np.abs(pred - torch_out(regress, Xr, "value")))) <= TOL,
              "export_torch.py whole module: predictions differ")
    sd = os.path.join(tmp, "state.pt")
    torch.save(relu_softmax.state_dict(), sd)
    modfile = os.path.join(tmp, "mymodels.py")
    with open(modfile, "w") as f:
        f.write("import torch.nn as nn\n"
                "def MLP(d):\n"
                "    return nn.Sequential(nn.Linear(d, 32), nn.ReLU(), nn.Linear(32, 16), nn.ReLU(),\n"
                "                         nn.Linear(16, 3), nn.Softmax(dim=1))\n")
    out = os.path.join(tmp, "state_script.onnx")
    subprocess.run([PY, os.path.join(SRC, "scripts/export_torch.py"), sd, out, "--module",
                    "mymodels:MLP", "--module-args", json.dumps({"d": d})], check=True,
                   capture_output=True, env=dict(os.environ, PYTHONPATH=tmp))
    doc, pred, e = run_eval(out, mc)
    check(doc is not None and float(np.max(np.abs(pred - torch_out(relu_softmax, Xm, "proba"))))
          <= TOL, "export_torch.py state dict: %s" % (e or "predictions differ"))

    # A model exported from a batch-1 dummy input without a dynamic batch axis: PyTorch folds
    # x.view(x.size(0), -1) into a Reshape to [1, -1], which only a batch of 1 runs. It is
    # refused, and the line says how to export it; exported with a dynamic batch, it matches.
    class Viewed(nn.Module):
        def __init__(self):
            super().__init__()
            self.a, self.b = nn.Linear(d, 32), nn.Linear(32, 3)

        def forward(self, x):
            return torch.softmax(self.b(torch.relu(self.a(x)).view(x.size(0), -1)), dim=1)

    viewed = Viewed().eval()
    fixed = os.path.join(tmp, "batch1.onnx")
    torch.onnx.export(viewed, torch.zeros(1, d), fixed, input_names=["x"], output_names=["p"],
                      opset_version=13)
    doc, pred, e = run_eval(fixed, mc)
    check(doc is None and e is not None and "shape[0] = 1 would not keep the batch" in e
          and "graph input 'x' is declared with a fixed batch of 1" in e
          and "dynamic_axes={'x': {0: 'batch'}}" in e and "\n" not in e,
          "batch-1 export: %s" % (e or "accepted"))
    # A CLS token expanded to the batch and concatenated (FT-Transformer): exported with a
    # fixed batch, the token is a constant; the line names the fixed batch too.
    class Cls(nn.Module):
        def __init__(self):
            super().__init__()
            self.cls, self.a = nn.Parameter(torch.randn(1, 1, 4)), nn.Linear(4, 3)
            self.emb = nn.Linear(1, 4)  # a token per feature

        def forward(self, x):
            t = torch.cat([self.cls.expand(x.shape[0], -1, -1), self.emb(x.unsqueeze(2))], 1)
            return torch.softmax(self.a(t[:, 0] + t[:, 1:].mean(1)), dim=1)

    fixed = os.path.join(tmp, "cls_batch1.onnx")
    torch.onnx.export(Cls().eval(), torch.zeros(1, d), fixed, input_names=["x"],
                      output_names=["p"], opset_version=13)
    doc, pred, e = run_eval(fixed, mc)
    check(doc is None and e is not None and "concatenating a constant to rows" in e
          and "graph input 'x' is declared with a fixed batch of 1" in e and "\n" not in e,
          "batch-1 CLS export: %s" % (e or "accepted"))
    # With a dynamic batch PyTorch writes x.size(0) as Shape -> Gather -> Unsqueeze -> Concat
    # into the Reshape's shape, at every opset (these, where Unsqueeze and Shape change).
    for opset in (9, 11, 13, 15, 17):
        dyn = os.path.join(tmp, "batch_dyn_%d.onnx" % opset)
        torch.onnx.export(viewed, torch.zeros(1, d), dyn, input_names=["x"], output_names=["p"],
                          opset_version=opset, dynamic_axes={"x": {0: "batch"}, "p": {0: "batch"}})
        ops = {n.op_type for n in onnx.load(dyn).graph.node}
        doc, pred, e = run_eval(dyn, mc)
        check({"Shape", "Gather", "Reshape"} <= ops and doc is not None
              and float(np.max(np.abs(pred - torch_out(viewed, Xm, "proba")))) <= TOL,
              "x.view(x.size(0), -1) at opset %d (%s): %s" % (opset, sorted(ops),
                                                             e or "predictions differ"))

    if failures:
        print("%d failures" % len(failures))
        sys.exit(1)
    subprocess.run(["rm", "-rf", tmp])
    print("all ONNX models match PyTorch")


if __name__ == "__main__":
    main()
