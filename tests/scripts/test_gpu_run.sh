#!/usr/bin/env bash
# scripts/gpu_run.sh without a GPU: its `run` command against stand-ins (a fake nvidia-smi and compute-sanitizer
# on PATH, fake glance programs in a prebuilt folder, a python3 wrapper that plays PyTorch's two benchmark
# scripts), so CI checks what a run on a GPU machine depends on: prebuilt programs are used only for the same
# sources and a compute capability they were built for, a run ends inside its --budget even when a program
# hangs, --pack leaves the summary, env.txt and one archive, and the summary reports what the programs printed.
#   bash tests/scripts/test_gpu_run.sh          (ctest: Scripts.GpuRun)
set -uo pipefail
repo=$(cd "$(dirname "$0")/../.." && pwd)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
failures=0
fail() { echo "FAIL: $*"; failures=$((failures + 1)); }
check_contains() {  # file text what
  grep -qF -- "$2" "$1" || fail "$3: '$2' not in $(basename "$1")"
}

# ---- stand-ins -----------------------------------------------------------------------------------------------
mkdir -p "$work/path" "$work/bins/tests" "$work/bins/bench" "$work/prebuilt"
cat >"$work/path/nvidia-smi" <<'EOF'
#!/usr/bin/env bash
case "$*" in
  *--query-gpu=compute_cap*) echo "9.0" ;;
  *--query-gpu*) echo "name, compute_cap"; echo "Fake H100, 9.0" ;;
  *) echo "Fake nvidia-smi" ;;
esac
EOF
cat >"$work/path/compute-sanitizer" <<'EOF'
#!/usr/bin/env bash
while [[ $1 == --* ]]; do case $1 in --tool | --leak-check | --error-exitcode) shift 2 ;; *) shift ;; esac; done
"$@"
echo "========= ERROR SUMMARY: 0 errors"
EOF
# test_cuda: one test passes, one fails, one skips; FAKE_TEST_SLEEP makes it hang first.
cat >"$work/bins/tests/test_cuda" <<'EOF'
#!/usr/bin/env bash
xml=
for a in "$@"; do
  case $a in
    --gtest_list_tests) printf 'Fake.\n  Passes\n'; exit 0 ;;
    --gtest_output=xml:*) xml=${a#--gtest_output=xml:} ;;
  esac
done
if [[ -n ${FAKE_TEST_SLEEP:-} ]]; then  # passes one test, then hangs in the next (exec: timeout's signal reaches the sleep)
  printf '[ RUN      ] Fake.Passes\n[       OK ] Fake.Passes (1 ms)\n[ RUN      ] Fake.Hangs\n'
  exec sleep "$FAKE_TEST_SLEEP"
fi
echo "[  PASSED  ] 1 test."
echo "[  FAILED  ] Fake.Fails"
if [[ -n $xml ]]; then cat >"$xml" <<'XML'
<?xml version="1.0" encoding="UTF-8"?>
<testsuites tests="3" failures="1" disabled="0" errors="0" time="0.5" name="AllTests">
  <testsuite name="Fake" tests="3" failures="1" disabled="0" skipped="1" errors="0" time="0.5">
    <testcase name="Passes" status="run" result="completed" time="0.1" classname="Fake" />
    <testcase name="Fails" status="run" result="completed" time="0.1" classname="Fake">
      <failure message="tests/cuda/fake.cpp:10&#x0A;Expected equality of these values" type=""></failure>
    </testcase>
    <testcase name="Skips" status="run" result="skipped" time="0" classname="Fake">
      <skipped message="no GPU" />
    </testcase>
  </testsuite>
</testsuites>
XML
fi
exit 1
EOF
cat >"$work/bins/bench/bench_cuda_ops" <<'EOF'
#!/usr/bin/env bash
echo '{"bench":"cuda_copy","case":"d2d","shape":"[67108864]","reference":3000,"reps":10}'
echo '{"bench":"cuda_ops","case":"add","shape":"[67108864]","ms":0.3,"glance":2700,"ratio":0.9,"check":"ok"}'
echo '{"bench":"cuda_ops","case":"sum_all","shape":"[67108864]","ms":0.5,"glance":1500,"ratio":0.5,"check":"ok"}'
echo '{"bench":"cuda_ops","case":"exp","shape":"[67108864]","ms":0.3,"glance":2400,"ratio":0.8,"check":"FAILED"}'
EOF
# bench_train_step: 10 ms a dense step, 4 ms an RLT step (with its clips' token counts).
cat >"$work/bins/bench/bench_train_step" <<'EOF'
#!/usr/bin/env bash
policy=dense att=fused tf32=false
while (($#)); do
  case $1 in --policy) policy=$2; shift ;; --attention-kernel) att=$2; shift ;; --tf32) tf32=true ;; esac
  shift
done
if [[ $policy == rlt ]]; then
  echo "{\"bench\":\"train_step\",\"case\":\"rlt_rlt_d192_depth4\",\"glance\":4.0,\"device\":\"cuda\",\"tf32\":$tf32,\"policy\":\"rlt\",\"attention\":\"$att\",\"counts\":[100,120],\"kept_fraction\":0.3}"
else
  echo "{\"bench\":\"train_step\",\"case\":\"rlt_dense_d192_depth4\",\"glance\":10.0,\"device\":\"cuda\",\"tf32\":$tf32,\"policy\":\"$policy\",\"attention\":\"$att\"}"
fi
EOF
# bench_attention_cuda: one dense case and one pack per precision asked for.
cat >"$work/bins/bench/bench_attention_cuda" <<'EOF'
#!/usr/bin/env bash
dtypes=fp32,bf16,fp16
while (($#)); do [[ $1 == --dtypes ]] && dtypes=$2; shift; done
for dt in ${dtypes//,/ }; do
  echo "{\"bench\":\"attention\",\"case\":\"n512_d64\",\"kernel\":\"fused_$dt\",\"dtype\":\"$dt\",\"fwd_ms\":1.0,\"fwdbwd_ms\":4.0}"
  echo "{\"bench\":\"attention\",\"case\":\"rlt_pack_32_d64\",\"kernel\":\"fused_$dt\",\"dtype\":\"$dt\",\"fwd_ms\":1.0,\"fwdbwd_ms\":2.0,\"counts\":[100,120]}"
done
EOF
cat >"$work/bins/glance" <<'EOF'
#!/usr/bin/env bash
out=
while (($#)); do [[ $1 == --out ]] && out=$2; shift; done
mkdir -p "$out/rlt" && echo '{"step":1}' >"$out/rlt/metrics.jsonl"
echo 'training...'
echo '{"demo":{},"dense":{"clips_per_s":1000,"val_acc":0.85},"rlt":{"clips_per_s":3000,"val_acc":0.95,"kept_fraction":0.27},"speedup":3.0}'
EOF
# python3 wrapper: PyTorch's benchmark scripts are played (PyTorch is 1.5x slower per step than glance dense;
# SDPA memory-efficient fp32 is 1.2x slower, flash bf16 2x faster, the padded pack 3x slower); anything else
# (gpu_summary.py, the counts helper) goes to the real python3.
cat >"$work/path/python-wrapper" <<'EOF'
#!/usr/bin/env bash
case "${1:-}" in
  bench/train_step_torch.py)
    shift
    policy=dense tf32=false att=all
    while (($#)); do
      case $1 in --counts) policy=rlt; shift ;; --tf32) tf32=true ;; --attention) att=$2; shift ;; esac
      shift
    done
    echo "{\"bench\":\"train_step\",\"case\":\"rlt_${policy}_d192_depth4\",\"reference_impl\":\"pytorch_cuda\",\"median_ms\":15.0,\"tf32\":$tf32,\"policy\":\"$policy\",\"attention\":\"$att\"}"
    ;;
  bench/attention_torch.py)
    dtypes=fp32,bf16
    while (($#)); do [[ $1 == --dtypes ]] && dtypes=$2; shift; done
    for dt in ${dtypes//,/ }; do
      if [[ $dt == fp32 ]]; then backend=efficient ms=4.8; else backend=flash ms=2.0; fi
      echo "{\"bench\":\"attention\",\"case\":\"n512_d64\",\"kernel\":\"torch_sdpa\",\"variant\":\"dense\",\"backend\":\"$backend\",\"backend_ran\":\"$backend\",\"dtype\":\"$dt\",\"fwd_ms\":1.0,\"fwdbwd_ms\":$ms}"
      echo "{\"bench\":\"attention\",\"case\":\"rlt_pack_32_d64\",\"kernel\":\"torch_sdpa\",\"variant\":\"padded\",\"backend\":\"default\",\"backend_ran\":\"$backend\",\"dtype\":\"$dt\",\"fwd_ms\":3.0,\"fwdbwd_ms\":6.0}"
    done
    ;;
  *) exec python3 "$@" ;;
esac
EOF
chmod +x "$work"/path/* "$work"/bins/glance "$work"/bins/tests/* "$work"/bins/bench/*
# The prebuilt folder as `prebuild` leaves it: the programs packed with xz, and a manifest with the source hash.
tar -C "$work/bins" -cf - glance tests bench |
  python3 -c 'import lzma, sys; sys.stdout.buffer.write(lzma.compress(sys.stdin.buffer.read(), preset=1))' \
    >"$work/prebuilt/binaries.tar.xz"
hash=$(bash "$repo/scripts/gpu_run.sh" source-hash)
printf 'commit: fake\nsource hash: %s\nbuilt: now\ncuda architectures: 80;90\n' "$hash" >"$work/prebuilt/manifest.txt"
export PATH="$work/path:$PATH" PYTHON="$work/path/python-wrapper" GLANCE_COMMIT=fake
DIRS=(--prebuilt "$work/prebuilt" --unpack-dir "$work/run" --build-dir "$work/no-build")

# run_parts LABEL BUDGET STATUS ARGS...: `run --label LABEL --budget BUDGET --pack ARGS` into $work/out-LABEL (log
# $work/LABEL.log); checks that it exits with STATUS (1 when a step failed) inside its budget and that --pack left
# only the summary, env.txt and one archive.
run_parts() {
  local label=$1 budget=$2 want=$3 out=$work/out-$1 start took n rc
  shift 3
  start=$(date +%s)
  bash "$repo/scripts/gpu_run.sh" run "${DIRS[@]}" --out "$out" --label "$label" --budget "$budget" --pack "$@" \
    >"$work/$label.log" 2>&1
  rc=$?
  ((rc == want)) || fail "$label: exit $rc, expected $want ($(tail -n 3 "$work/$label.log"))"
  took=$(($(date +%s) - start))
  ((took < budget)) || fail "$label took $took s, over its $budget s budget"
  n=$(find "$out" -maxdepth 1 -type f | wc -l)
  ((n == 3)) || fail "$label left $n files in its output folder (summary, env.txt, archive: 3)"
}

# ---- 1. tests, demo, ops and the training step with the prebuilt programs --------------------------------------------
run_parts first 330 1 --parts test,demo,ops,train --cap test=150,demo=90,ops=60,train=60 --reps 10  # 1: a failing test
out=$work/out-first
s=$out/summary-first.md
check_contains "$s" "binaries: prebuilt" "first used the prebuilt binaries"
check_contains "$s" "test_cuda: **1 passed, 1 failed**, 1 skipped" "test counts from the XML"
check_contains "$s" "FAILED Fake.Fails: tests/cuda/fake.cpp:10" "the failure named with its first line"
check_contains "$s" "| elementwise and reductions >= 0.7 of the d2d copy | 1 of 3 ops | worst sum_all 0.5; failed or stopped: exp | **no** |" "bandwidth target (a failed check is not met)"
check_contains "$s" "| RLT training step >= 1.0x PyTorch eager | 3 of 3 cases | worst rlt_dense_d192_depth4 1.5 | yes |" "training-step target"
check_contains "$s" "RLT val_acc 0.95" "the demo's result"
check_contains "$s" "dense ms / RLT ms" "RLT vs dense"
tar tzf "$out/gpu-run-first.tar.gz" >"$work/first-files.txt" 2>/dev/null || fail "no gpu-run-first.tar.gz"
for f in test_cuda.xml test_cuda.log cuda_ops.jsonl train_step.jsonl demo_cuda.json demo-metrics.tar.gz; do
  grep -q "$f" "$work/first-files.txt" || fail "first: $f not packed"
done

# ---- 2. attention, memcheck, the other steps -------------------------------------------------------------------------
run_parts second 270 0 --parts attention,memcheck,train-variants,attention-fp16,train-base --attention-max-n 8192
out=$work/out-second
s=$out/summary-second.md
check_contains "$s" "ERROR SUMMARY: 0 errors" "memcheck's verdict"
check_contains "$s" "| fp32 fused fwd+bwd >= 1.0x SDPA memory-efficient | 1 of 1 cases | worst n512_d64 1.2 | yes |" "fp32 attention target"
check_contains "$s" "| bf16 fused fwd+bwd >= 0.6x SDPA flash | 0 of 1 cases | worst n512_d64 0.5 | **no** |" "bf16 attention target"
check_contains "$s" "| fp32 variable-length pack >= 2x the padded batch | 1 of 1 packs | worst rlt_pack_32_d64 3 | yes |" "varlen target"
grep -q '"dtype":"fp16"' <(tar xzOf "$out/gpu-run-second.tar.gz" ./attention_glance.jsonl 2>/dev/null) ||
  fail "second: no fp16 attention line"

# ---- 3. a hanging test_cuda: the run still ends inside its budget, and says what is missing ---------------
out=$work/out-hang
start=$(date +%s)
FAKE_TEST_SLEEP=600 bash "$repo/scripts/gpu_run.sh" run "${DIRS[@]}" --out "$out" --label hang --budget 37 \
  --parts test,demo,ops >"$work/hang.log" 2>&1
took=$(($(date +%s) - start))
((took <= 52)) || fail "with a hanging test_cuda the run took $took s (budget 37, and 15 s for a loaded machine)"
check_contains "$work/hang.log" "test_cuda: TIMED OUT" "the time-out said"
check_contains "$work/hang.log" "SKIPPED" "later steps skipped when no time is left"
check_contains "$out/summary-hang.md" "test_cuda.xml missing" "the summary on a hung test_cuda"
check_contains "$out/summary-hang.md" "it stopped in **Fake.Hangs**" "the test that hung named"

# ---- 4. prebuilt programs of other sources are refused; a build of this code on the machine is used ---------
sed -i 's/^source hash: .*/source hash: 0000000000000000/' "$work/prebuilt/manifest.txt"
cp -r "$work/bins" "$work/no-build"
echo "$hash" >"$work/no-build/.glance-source-hash"
echo "built-here" >"$work/no-build/.glance-commit"
out=$work/out-stale
bash "$repo/scripts/gpu_run.sh" run "${DIRS[@]}" --out "$out" --parts demo --budget 60 >"$work/stale.log" 2>&1
check_contains "$work/stale.log" "was built from other sources" "stale prebuilt binaries refused"
check_contains "$out/env.txt" "binaries: built on this machine" "the machine's own build used instead"

# ---- 4b. ... and so are those built for another compute capability --------------------------------------------
sed -i "s/^source hash: .*/source hash: $hash/; s/^cuda architectures: .*/cuda architectures: 80/" "$work/prebuilt/manifest.txt"
out=$work/out-arch
bash "$repo/scripts/gpu_run.sh" run "${DIRS[@]}" --out "$out" --parts demo --budget 60 >"$work/arch.log" 2>&1
check_contains "$work/arch.log" "is for sm_80, this GPU is sm_90" "prebuilt programs of another compute capability refused"

# ---- 5. ... but with --no-build a run without usable programs stops at once instead of building ---------------
out=$work/out-nobuild
start=$(date +%s)
bash "$repo/scripts/gpu_run.sh" run --prebuilt "$work/prebuilt" --unpack-dir "$work/run" --build-dir "$work/empty-build" \
  --out "$out" --no-build >"$work/nobuild.log" 2>&1 && fail "a run without usable programs exited 0"
(($(date +%s) - start < 30)) || fail "a run without usable programs took $(($(date +%s) - start)) s"
check_contains "$work/nobuild.log" "STOP: no usable programs" "the stop said"
check_contains "$out/env.txt" "binaries: none usable" "env.txt says why"
[[ -e $work/empty-build ]] && fail "--no-build started a build"

if ((failures)); then
  echo "--- first.log"; cat "$work/first.log"
  echo "--- summary-first.md"; cat "$work/out-first/summary-first.md" 2>/dev/null
  echo "$failures check(s) failed"
  exit 1
fi
echo "gpu_run.sh: all checks passed"
