#!/usr/bin/env bash
# The reference test follows what ../shared holds when it runs: a reference folder whose
# model file is absent is reported as skipped with the reason, not failed and not silently
# passed. Usage: reference_listing_test.sh TOKENPROBE_TESTS_BINARY
set -euo pipefail
bin=$1
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
mkdir -p "$tmp/reference/ghost-model/hello"
echo '{"tokens": [1, 2, 3], "greedy": [4]}' > "$tmp/reference/ghost-model/hello/tokens.json"
out=$(TOKENPROBE_SHARED=$tmp "$bin" --gtest_filter='Shared/Reference.*' 2>&1) || {
  echo "$out"; echo "FAILED: a reference without a model must skip, not fail"; exit 1; }
grep -q 'ghost_model_hello' <<<"$out" || { echo "$out"; echo "FAILED: the case was not listed"; exit 1; }
grep -q 'has no model file ghost-model.gguf' <<<"$out" || { echo "$out"; echo "FAILED: no skip reason"; exit 1; }
grep -q '\[  SKIPPED \] 1 test' <<<"$out" || { echo "$out"; echo "FAILED: the case was not skipped"; exit 1; }
echo "OK: a reference without a model skips with its reason"
