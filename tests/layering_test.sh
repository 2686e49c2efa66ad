#!/usr/bin/env bash
# Layers point down: the directory-level include graph of src/ (from `#include "dir/..."`
# lines) must follow the declared order below, lowest layer first. A directory may include
# its own headers and those of directories before it; an include of a later directory is
# reported with its file, line and text, and so is a cycle, or a directory missing from the
# order. Usage: layering_test.sh [SRC_DIR] (default: the src/ beside this tests/ folder).
# First checks itself on a small tree that breaks the rules, so a check that cannot fail
# does not pass.
set -euo pipefail

# The layers, lowest first: the one place the order is declared. docs/architecture.md says
# why each sits where it does; the project guide's layer list (ARCHITECTURE.md, "Layers")
# describes what each holds. Differences from that list, where the code is sensibly other:
# tokenizer sits below model (a Model holds its tokenizer, built from the file's metadata);
# probe (hook ids, the Observer protocol, capture specs, interventions) below runtime, whose
# forward pass offers its hooks to observers; and runtime below arch, whose files compose
# runtime/forward.h's building blocks (a Session reaches an architecture only through the
# interface the Model holds); loader above arch, since it binds a file to an architecture;
# hub (HuggingFace Hub downloads, not in the guide's list) right above io, using only core
# and io: fetching a file does not depend on what it holds.
ORDER=(core io hub quant tokenizer model probe runtime arch loader sampling trace analysis batch server apps)

# Upward edges tolerated for now, each "FROM TO" with the reason; empty: there are none, and
# an entry no include needs any more is reported.
ALLOWED=(
)

# check SRC: prints every violation; returns 1 when there is one.
check() {
  local src=$1 bad=0
  declare -A rank=() allowed=() used=()
  local i
  for i in "${!ORDER[@]}"; do rank[${ORDER[$i]}]=$i; done
  local e
  for e in "${ALLOWED[@]}"; do allowed[$e]=1; done
  local edges
  edges=$(mktemp)
  local d
  for d in "$src"/*/; do
    d=$(basename "$d")
    if [ -z "${rank[$d]+x}" ]; then
      echo "src/$d/ is not in the declared layer order (tests/layering_test.sh ORDER): add it where it belongs"
      bad=1
    fi
  done
  local file line text from to
  while IFS=: read -r file line text; do
    from=${file#"$src"/}
    from=${from%%/*}
    to=$(sed -E 's/^[[:space:]]*#[[:space:]]*include[[:space:]]+"([a-z_0-9]+)\/.*/\1/' <<<"$text")
    [ "$to" = "$from" ] && continue
    [ -e "$src/$to" ] || continue  # not one of the project's directories
    [ -n "${rank[$from]+x}" ] && [ -n "${rank[$to]+x}" ] || continue  # reported above
    if [ -n "${allowed["$from $to"]+x}" ]; then
      used["$from $to"]=1
      continue
    fi
    echo "$from $to" >>"$edges"
    if [ "${rank[$to]}" -gt "${rank[$from]}" ]; then
      echo "src/${file#"$src"/}:$line: $text"
      echo "    $from/ includes $to/, a higher layer (order: ${ORDER[*]})"
      bad=1
    fi
  done < <(grep -rnE '^[[:space:]]*#[[:space:]]*include[[:space:]]+"[a-z_0-9]+/' "$src" --include='*.h' --include='*.cpp' | sort)
  local loop
  if ! loop=$(sort -u "$edges" | tsort 2>&1 >/dev/null); then
    echo "a cycle between directories:"
    echo "$loop" | sed 's/^/    /'
    bad=1
  fi
  rm -f "$edges"
  for e in "${ALLOWED[@]}"; do
    if [ -z "${used[$e]+x}" ]; then
      echo "the allowed exception \"$e\" is no longer used: remove it from ALLOWED"
      bad=1
    fi
  done
  return $bad
}

# The self-check: core/ including runtime/ must be reported with its file and line.
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
mkdir -p "$tmp/src/core" "$tmp/src/runtime" "$tmp/src/model" "$tmp/src/arch" "$tmp/src/probe" "$tmp/src/trace"
printf '#pragma once\n#include "runtime/session.h"\n' >"$tmp/src/core/tensor.h"
printf '#include "core/tensor.h"\n' >"$tmp/src/runtime/session.h"
printf '#include "arch/architecture.h"\n' >"$tmp/src/model/model.h"
printf '#include "trace/trace_reader.h"\n' >"$tmp/src/probe/intervention.cpp"
if out=$(check "$tmp/src"); then
  echo "$out"
  echo "FAILED: the check passed a tree where core/ includes runtime/"
  exit 1
fi
grep -q 'src/core/tensor.h:2: #include "runtime/session.h"' <<<"$out" || {
  echo "$out"; echo "FAILED: the upward include was not named with its file and line"; exit 1; }
grep -q 'a cycle between directories' <<<"$out" || { echo "$out"; echo "FAILED: the cycle was not reported"; exit 1; }

src=${1:-$(cd "$(dirname "$0")/../src" && pwd)}
if ! out=$(check "$src"); then
  echo "$out"
  echo "FAILED: src/ includes against the layer order"
  exit 1
fi
echo "OK: src/ includes point down the layers (${ORDER[*]})"
