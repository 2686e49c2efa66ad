#!/usr/bin/env python3
"""Writes a uniform importance matrix (every weight 1.0) for a GGUF model, in llama.cpp's legacy
.dat format, so that llama-quantize can write the i-quants that refuse to run without one
(IQ2_XXS, IQ2_XS, IQ2_S, IQ1_S, IQ1_M; IQ3_XXS asks for one too). The reference build has no
llama-imatrix to compute a real one, and a uniform one makes the encoding depend on the
weights alone.

Format (common/imatrix-loader.cpp, common_imatrix_load_legacy): int32 n_entries; per entry
int32 name length, the name, int32 ncall (1), int32 nval (the tensor's row length ne[0]),
float32 values[nval]. One entry per matrix (2-D tensor) of the model.

    PYTHONPATH=$LLAMA/gguf-py /usr/bin/python3 tools/quant/uniform_imatrix.py MODEL.gguf OUT.dat
"""
import struct
import sys

from gguf import GGUFReader


def main():
    if len(sys.argv) != 3:
        sys.exit("usage: uniform_imatrix.py MODEL.gguf OUT.dat")
    reader = GGUFReader(sys.argv[1])
    entries = [(t.name, int(t.shape[0])) for t in reader.tensors if len(t.shape) == 2]
    with open(sys.argv[2], "wb") as f:
        f.write(struct.pack("<i", len(entries)))
        for name, ne0 in entries:
            raw = name.encode()
            f.write(struct.pack("<i", len(raw)) + raw + struct.pack("<ii", 1, ne0))
            f.write(struct.pack(f"<{ne0}f", *([1.0] * ne0)))
    print(f"{sys.argv[2]}: {len(entries)} entries")


if __name__ == "__main__":
    main()
