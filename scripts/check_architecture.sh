#!/usr/bin/env bash
# Checks docs/architecture.md against the build: the link graph drawn there (the lines "A -> B" of its
# "link graph" block) must be exactly the links between glance's own targets that the CMakeLists.txt files
# declare (target_link_libraries of every library target and of the glance program; glance_flags, the
# shared compiler flags, is left out). Also checks the two include rules the page states: nothing in nn/,
# autograd/ or rlt/ includes a CPU kernel header (tensor/cpu/), and cuda/ includes nothing above tensor/.
#   scripts/check_architecture.sh [source dir]      exit 0 when they agree, 1 (with the differences) when not
set -euo pipefail
root=${1:-$(cd "$(dirname "$0")/.." && pwd)}
doc="$root/docs/architecture.md"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

# ---- the links the build declares ----
# Each CMakeLists.txt as one line per command: comments dropped, newlines inside a command joined.
for f in "$root"/*/CMakeLists.txt; do
  sed 's/#.*//' "$f" | tr '\n' ' ' | sed 's/)/)\n/g'
done > "$tmp/commands"
# The targets that count: every add_library(glance_...) and the glance program.
{
  grep -oE 'add_library\( *glance_[a-z_]+' "$tmp/commands" | sed -E 's/add_library\( *//'
  grep -qE 'add_executable\( *glance ' "$tmp/commands" && echo glance
} | grep -vx glance_flags | sort -u > "$tmp/targets"
grep -oE 'target_link_libraries\( *[A-Za-z_]+[^)]*' "$tmp/commands" | sed -E 's/target_link_libraries\( *//' |
  while read -r target rest; do
    grep -qx "$target" "$tmp/targets" || continue
    for dep in $rest; do
      if grep -qx "$dep" "$tmp/targets"; then echo "$target -> $dep"; fi
    done
  done | sort -u > "$tmp/built"

# ---- the links the page draws: the block after the line "<!-- link graph -->" ----
awk '/<!-- link graph -->/ {on = 1; next} on && /^```/ {n++; if (n == 2) exit; next} on && n == 1' "$doc" |
  { grep -E '^ *[A-Za-z_]+ *-> *[A-Za-z_]+ *$' || true; } | sed -E 's/ *-> */ -> /; s/^ *//; s/ *$//' | sort -u > "$tmp/drawn"

status=0
if [[ ! -s "$tmp/drawn" ]]; then
  echo "check_architecture: docs/architecture.md has no link graph (a \`\`\` block after <!-- link graph -->)"
  status=1
elif ! diff -u --label "docs/architecture.md (drawn)" --label "CMakeLists.txt (built)" "$tmp/drawn" "$tmp/built"; then
  echo "check_architecture: the link graph of docs/architecture.md differs from the CMake targets (above)"
  status=1
fi

# ---- the include rules ----
if grep -rnE '#include "tensor/cpu/' "$root/nn" "$root/autograd" "$root/rlt"; then
  echo "check_architecture: a layer above tensor/ includes a CPU kernel header (tensor/cpu/); go through the Backend"
  status=1
fi
if [[ -d "$root/cuda" ]] && grep -rnE '#include "(autograd|nn|rlt)/' "$root/cuda"; then
  echo "check_architecture: cuda/ includes a layer above tensor/; a device depends on tensor/ only"
  status=1
fi
[[ $status == 0 ]] && echo "check_architecture: docs/architecture.md matches the build ($(wc -l < "$tmp/built") links)"
exit $status
