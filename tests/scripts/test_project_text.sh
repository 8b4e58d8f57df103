#!/usr/bin/env bash
# scripts/check_project_text.py catches what it is for: a tree holding one line of each refused kind and one of
# each bad link gets a finding for each, on the right line, and exit 1; the same tree without them passes.
#   bash tests/scripts/test_project_text.sh          (ctest: Scripts.ProjectTextCatches)
set -euo pipefail
repo=$(cd "$(dirname "$0")/../.." && pwd)
check="python3 $repo/scripts/check_project_text.py"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }

# A clean tree: text about glance, links to a file and a folder that exist, a URL, an anchor.
mkdir -p "$work/tree/docs" "$work/tree/nn"
echo "// Linear: y = x W^T + b for x [N, in], W [out, in]." >"$work/tree/nn/linear.cpp"
cat >"$work/tree/docs/ok.md" <<'MD'
# A chapter
See [the layer](../nn/linear.cpp), [the folder](../nn/), [FlashAttention](https://arxiv.org/abs/2205.14135)
and [below](#a-chapter). Each kernel is tested against the plain one.
MD
$check --root "$work/tree" >"$work/clean.log" || { cat "$work/clean.log"; fail "a clean tree was refused"; }

# One bad line per kind, each on its own known line of bad.md. The words are split by quotes ("iss""ue")
# so that this file itself holds none of them; bash joins the pieces.
bad=(
  "The design came from ../sha""red/DESIGN.md."
  "Measured on a machine under /work/main/build."
  "This closes iss""ue 5's target."
  "Fixed in (#12)."
  "A GPU session of 15 minutes."
  "The device t""ool gave us a GPU."
  "No GPU was lent to us."
  "Tried again in a hel""per's run."
  "[a dead link](missing.md)"
  "[out of the tree](../../elsewhere.md)"
  "[an absolute path](/etc/passwd)"
)
printf '%s\n' "# Bad" "${bad[@]}" >"$work/tree/docs/bad.md"
if $check --root "$work/tree" >"$work/bad.log"; then cat "$work/bad.log"; fail "the bad tree passed"; fi
for i in "${!bad[@]}"; do
  line=$((i + 2))
  grep -q "^docs/bad.md:$line: " "$work/bad.log" || { cat "$work/bad.log"; fail "no finding for line $line: ${bad[$i]}"; }
done
n=$(grep -c '^docs/' "$work/bad.log")
[[ $n -eq ${#bad[@]} ]] || { cat "$work/bad.log"; fail "$n findings for ${#bad[@]} bad lines"; }
grep -q '^docs/bad.md:10: dead link: missing.md' "$work/bad.log" || fail "the dead link is not named"
grep -q '^docs/bad.md:11: link outside the repository' "$work/bad.log" || fail "the link out of the tree is not named"
echo "test_project_text: all checks passed (${#bad[@]} bad lines caught, the clean tree passed)"
