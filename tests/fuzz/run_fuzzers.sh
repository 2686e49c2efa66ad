#!/usr/bin/env bash
# Builds the tokenizer fuzz target with clang (libFuzzer + ASan + UBSan) straight from the
# sources it needs, seeds it with the llama.cpp test texts and runs it for a short while.
# Usage: tests/fuzz/run_fuzzers.sh [seconds]   (default 20; TOKENPROBE_SHARED for the vocabularies)
set -euo pipefail
cd "$(dirname "$0")/../.."
secs=${1:-20}
out=${FUZZ_OUT:-build-fuzz}
mkdir -p "$out/corpus"
export TOKENPROBE_SHARED=${TOKENPROBE_SHARED:-$(pwd)/../shared}

srcs=(tests/fuzz/fuzz_tokenizer.cpp src/core/error.cpp src/core/dtype.cpp src/io/gguf.cpp
      src/io/mapped_file.cpp src/tokenizer/*.cpp)
if [ ! -x "$out/fuzz_tokenizer" ] || [ -n "$(find "${srcs[@]}" src/tokenizer/*.h -newer "$out/fuzz_tokenizer" 2>/dev/null)" ]; then
  echo "fuzz: building $out/fuzz_tokenizer"
  clang++ -std=c++20 -O1 -g -fno-omit-frame-pointer -fsanitize=fuzzer,address,undefined \
    -fno-sanitize-recover=undefined -Isrc $(pkg-config --cflags libpcre2-8 icu-uc) \
    "${srcs[@]}" $(pkg-config --libs libpcre2-8 icu-uc) -o "$out/fuzz_tokenizer"
fi

# Seeds: every test text, once per encoder mode (first byte picks the tokenizer).
python3 - "$TOKENPROBE_SHARED/tokenizer-tests" "$out/corpus" <<'PY'
import glob, os, sys
src, dst = sys.argv[1], sys.argv[2]
n = 0
for inp in sorted(glob.glob(os.path.join(src, "*.inp"))):
    for text in open(inp, "rb").read().split(b"\n__ggml_vocab_test__\n"):
        for mode in range(6):
            open(os.path.join(dst, "seed-%d" % n), "wb").write(bytes([mode]) + text[:2048])
            n += 1
for i, extra in enumerate([b"\x00<s>Hi</s>", b"\x86<user>ab", b"\x01\xff\xfe\xc3(", b"\x06GGUF\x03\x00\x00\x00"]):
    open(os.path.join(dst, "extra-%d" % i), "wb").write(extra)
PY

echo "fuzz: running for ${secs}s"
"$out/fuzz_tokenizer" "$out/corpus" -max_total_time="$secs" -max_len=4096 -timeout=10 -rss_limit_mb=4096 \
  -print_final_stats=1 2>&1 | tail -n 15
