#!/usr/bin/env bash
# Counts the OpenMP parallel regions a command opens, by the function that opens them. Each region wakes
# the sleeping threads (a futex call into the kernel), which on a small virtual machine can cost more than
# the work inside a small region; this is how the batched-matmul fix of docs/01-tensors.md was found.
#   scripts/count_parallel_regions.sh ./build/glance train --no-rlt --steps 10
# How: a tiny preloaded library wraps libgomp's GOMP_parallel (the call GCC emits for `#pragma omp
# parallel`), counts the calls per outlined function, and writes the counts at exit; addr2line names them.
# Two counts per function: the regions that woke other threads (opened outside any other region and
# not asking for one thread), and all of them (those opened inside another region run on one thread).
# Needs gcc and binutils (addr2line); the program's own output is discarded.
set -euo pipefail
[ $# -ge 1 ] || { echo "usage: $0 PROGRAM [ARGS...]" >&2; exit 2; }
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cat > "$work/shim.c" <<'C'
#define _GNU_SOURCE
#include <dlfcn.h>
#include <stdio.h>
#include <pthread.h>
#include <stdlib.h>

typedef void (*gomp_parallel_fn)(void (*)(void*), void*, unsigned, unsigned);
enum { kMax = 4096 };
static void* fns[kMax];
static long counts[kMax], waking[kMax];
int omp_get_level(void);
static int nfns;
static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;

void GOMP_parallel(void (*fn)(void*), void* data, unsigned n, unsigned flags) {
  static gomp_parallel_fn real;
  if (!real) real = (gomp_parallel_fn)dlsym(RTLD_NEXT, "GOMP_parallel");
  pthread_mutex_lock(&lock);
  int i = 0;
  while (i < nfns && fns[i] != (void*)fn) ++i;
  if (i == nfns && nfns < kMax) fns[nfns++] = (void*)fn;
  if (i < kMax) {
    ++counts[i];
    if (omp_get_level() == 0 && n != 1) ++waking[i];
  }
  pthread_mutex_unlock(&lock);
  real(fn, data, n, flags);
}

__attribute__((destructor)) static void report(void) {
  const char* path = getenv("COUNT_REGIONS_OUT");
  FILE* f = path ? fopen(path, "w") : NULL;
  if (!f) return;
  for (int i = 0; i < nfns; ++i) {
    Dl_info info;
    if (!dladdr(fns[i], &info)) continue;
    fprintf(f, "%ld %ld %s 0x%lx\n", waking[i], counts[i], info.dli_fname, (unsigned long)((char*)fns[i] - (char*)info.dli_fbase));
  }
  fclose(f);
}
C
gcc -O2 -shared -fPIC "$work/shim.c" -o "$work/shim.so" -ldl -lpthread
COUNT_REGIONS_OUT="$work/counts" LD_PRELOAD="$work/shim.so" "$@" > /dev/null
printf '%10s %10s  %s\n' waking all function
woke=0 total=0
while read -r wake count file offset; do
  woke=$((woke + wake)) total=$((total + count))
  name=$(addr2line -f -C -e "$file" "$offset" 2>/dev/null | head -n 1 | cut -c 1-120)
  printf '%10d %10d  %s\n' "$wake" "$count" "$name"
done < <(sort -rn "$work/counts")
printf '%10d %10d  in all\n' "$woke" "$total"
