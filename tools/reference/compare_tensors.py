#!/usr/bin/env python3
"""compare_tensors.py A.gguf B.gguf: whether two GGUF files hold the same tensors byte for
byte (same names, types, shapes and data), one line per tensor that differs and a summary.
Reads the files with llama.cpp's gguf-py: PYTHONPATH=$LLAMA/gguf-py (the reference checkout,
~/.cache/tokenprobe-ref/llama.cpp). Exit status 0 when every tensor is equal, 1 otherwise.
Used to check `tokenprobe convert --type T` against `llama-quantize --pure` on the same F32
file (tests/data/quant-llama-wide/README.md)."""
import sys

import numpy as np
from gguf import GGUFReader


def tensors(path):
    return {t.name: t for t in GGUFReader(path).tensors}


def main():
    if len(sys.argv) != 3:
        sys.exit("usage: compare_tensors.py A.gguf B.gguf")
    a, b = tensors(sys.argv[1]), tensors(sys.argv[2])
    differing = 0
    for name in sorted(set(a) | set(b)):
        if name not in a or name not in b:
            print(f"DIFF  {name}: only in {'B' if name not in a else 'A'}")
            differing += 1
            continue
        ta, tb = a[name], b[name]
        if ta.tensor_type != tb.tensor_type or list(ta.shape) != list(tb.shape):
            print(f"DIFF  {name}: {ta.tensor_type.name} {list(ta.shape)} vs {tb.tensor_type.name} {list(tb.shape)}")
            differing += 1
            continue
        da, db = np.asarray(ta.data).view(np.uint8).ravel(), np.asarray(tb.data).view(np.uint8).ravel()
        if da.size != db.size or not np.array_equal(da, db):
            n = int(np.count_nonzero(da != db)) if da.size == db.size else -1
            print(f"DIFF  {name} ({ta.tensor_type.name}): {n} of {da.size} bytes differ")
            differing += 1
        else:
            print(f"same  {name} ({ta.tensor_type.name}, {da.size} bytes)")
    print(f"{len(set(a) | set(b)) - differing} of {len(set(a) | set(b))} tensors equal")
    sys.exit(1 if differing else 0)


if __name__ == "__main__":
    main()
