#!/usr/bin/env python3
"""match_nodes.py TRACE NODES_DIR [LAYER,...]: for every hook of a tokenprobe trace (the
prompt's captures, `tokenprobe trace --capture full`), the node of llama.cpp's graph that is
nearest to it (`scripts/llamacpp-reference --all-nodes` writes NODES_DIR/NNNN-OP-NAME.npy)
and their max |difference|: the first hook in graph order whose nearest node is not 0 away
names the first op where the two engines part (docs/numerics.md). LAYERs limit the hooks to
those blocks (default 0,1). Needs numpy only."""
import glob
import json
import os
import struct
import sys

import numpy as np


def trace_tensors(path):
    out = {}
    for f in sorted(glob.glob(os.path.join(path, "activations-*.safetensors"))):
        raw = open(f, "rb").read()
        n = struct.unpack("<Q", raw[:8])[0]
        for name, v in json.loads(raw[8:8 + n]).items():
            if name == "__metadata__":
                continue
            s, e = v["data_offsets"]
            dtype = {"F32": np.float32, "F16": np.float16, "I32": np.int32}[v["dtype"]]
            out[name] = np.frombuffer(raw[8 + n + s:8 + n + e], dtype=dtype).reshape(v["shape"])
    return out


def main():
    if len(sys.argv) < 3:
        sys.exit(__doc__)
    layers = sys.argv[3].split(",") if len(sys.argv) > 3 else ["0", "1"]
    nodes = [(os.path.basename(f)[:-4], np.load(f).astype(np.float64).reshape(-1))
             for f in sorted(glob.glob(os.path.join(sys.argv[2], "*.npy")))]
    for key, value in trace_tensors(sys.argv[1]).items():
        hook = key.split("/", 1)[1]
        if not key.startswith("prompt/") or not any(hook.startswith(f"blocks.{l}.") for l in layers):
            continue
        x = value.astype(np.float64).reshape(-1)
        near = [(np.abs(a - x).max(), name) for name, a in nodes if a.size == x.size]
        if not near:
            print(f"{hook:45} no node of its size")
            continue
        diff, name = min(near)
        print(f"{hook:45} {name:45} {diff:.3g} (max |x| {np.abs(x).max():.3g})")


if __name__ == "__main__":
    main()
