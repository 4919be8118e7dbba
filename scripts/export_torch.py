#!/usr/bin/env python3
"""Export a PyTorch nn.Module to ONNX for stagegate, with a dynamic batch axis.

  export_torch.py MODEL.pt OUT.onnx [--opset 13] [--features N] [--output logits|proba|value]
                  [--classes=-1,1]
  export_torch.py STATE.pt OUT.onnx --module package.module:Class [--module-args '{"k": 1}']

MODEL.pt is a whole module saved with torch.save(model, ...) (its class must be importable),
or, with --module, a state dict for an instance of that class built with --module-args.
The input is named "input" with shape [batch, features]; the batch axis is dynamic.
--output writes metadata_props stagegate.output, which says what the output means when the
graph does not end in Softmax or Sigmoid (docs/formats.md). --classes writes
stagegate.classes, the class values of a classifier trained on labels other than 0..k-1
(output column j is the j-th value). Uses Debian's python3-torch.
"""
import argparse
import importlib
import json
import sys

import torch


def load_module(args):
    if args.module:
        mod_name, _, cls_name = args.module.partition(":")
        if not cls_name:
            sys.exit("export_torch: --module must be package.module:Class")
        cls = getattr(importlib.import_module(mod_name), cls_name)
        model = cls(**json.loads(args.module_args or "{}"))
        state = torch.load(args.model, map_location="cpu")
        if not isinstance(state, dict):
            sys.exit("export_torch: %s is not a state dict" % args.model)
        model.load_state_dict(state)
        return model
    model = torch.load(args.model, map_location="cpu")
    if not isinstance(model, torch.nn.Module):
        sys.exit("export_torch: %s holds a %s, not an nn.Module (give --module for a state dict)"
                 % (args.model, type(model).__name__))
    return model


def n_features(model, given):
    if given:
        return given
    for m in model.modules():
        if isinstance(m, torch.nn.Linear):
            return m.in_features
    sys.exit("export_torch: no nn.Linear to read the feature count from; give --features")


def main(argv=None):
    """argv: the arguments after the program name (default: the command line)."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("model")
    ap.add_argument("out")
    ap.add_argument("--module", help="package.module:Class when MODEL is a state dict")
    ap.add_argument("--module-args", help="JSON keyword arguments for the class")
    ap.add_argument("--features", type=int, help="input width (default: the first Linear's)")
    ap.add_argument("--opset", type=int, default=13, help="ONNX opset, 9..17 (default 13)")
    ap.add_argument("--output", choices=["logits", "proba", "value"],
                    help="what the output means when the graph does not end in Softmax/Sigmoid")
    ap.add_argument("--classes", help="a classifier's class values, comma-separated, in "
                    "increasing order (e.g. --classes=-1,1), when they are not 0..k-1")
    args = ap.parse_args(argv)
    if args.classes is not None:
        try:
            values = [int(v) for v in args.classes.split(",")]
        except ValueError:
            sys.exit("export_torch: --classes must be integers separated by commas, e.g. -1,1")
        if len(values) < 2 or any(b <= a for a, b in zip(values, values[1:])):
            sys.exit("export_torch: --classes must be two or more integers in increasing order")
        args.classes = ",".join(str(v) for v in values)
    if not 9 <= args.opset <= 17:
        sys.exit("export_torch: --opset must be 9..17")
    model = load_module(args).eval()
    d = n_features(model, args.features)
    example = torch.zeros(2, d, dtype=torch.float32)
    torch.onnx.export(model, example, args.out, input_names=["input"], output_names=["output"],
                      dynamic_axes={"input": {0: "batch"}, "output": {0: "batch"}},
                      opset_version=args.opset, do_constant_folding=True)
    if args.output or args.classes:
        import onnx
        m = onnx.load(args.out)
        del m.metadata_props[:]
        if args.output:
            m.metadata_props.add(key="stagegate.output", value=args.output)
        if args.classes:
            m.metadata_props.add(key="stagegate.classes", value=args.classes)
        onnx.save(m, args.out)


if __name__ == "__main__":
    main()
