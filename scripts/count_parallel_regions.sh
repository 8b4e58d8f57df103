#!/usr/bin/env bash
# Counts the OpenMP parallel regions a command opens, by the function that opens them. Each region wakes
# the sleeping threads (a futex call into the kernel), which on a small virtual machine can cost more than
# the work inside a small region; this is how the batched-matmul fix of docs/01-tensors.md was found.
#   scripts/count_parallel_regions.sh ./build/glance train --no-rlt --steps 10
# How: a tiny preloaded library wraps libgomp's GOMP_parallel (the call GCC emits for `#pragma omp
# parallel`), counts the calls per outlined function, and writes the counts at exit, one file per process
# (a wrapper such as /usr/bin/time inherits the preload too); addr2line names the functions.
# Two counts per function: the regions that woke other threads (opened outside any other region and
# not asking for one thread), and all of them (those opened inside another region run on one thread).
# Needs gcc, binutils (addr2line) and a program built with GCC's OpenMP (libgomp); the program's own
# output is discarded. A program that ends without running exit handlers (_exit, a crash) reports nothing.
set -euo pipefail
[ $# -ge 1 ] || { echo "usage: $0 PROGRAM [ARGS...]" >&2; exit 2; }
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cat > "$work/shim.c" <<'C'
#define _GNU_SOURCE
#include <dlfcn.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

typedef void (*gomp_parallel_fn)(void (*)(void*), void*, unsigned, unsigned);
enum { kMax = 4096 };
static void* fns[kMax];
static long counts[kMax], waking[kMax];
static int nfns;
static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
int omp_get_level(void);

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
  const char* dir = getenv("COUNT_REGIONS_DIR");
  if (!dir || nfns == 0) return;
  char path[PATH_MAX], exe[PATH_MAX];
  snprintf(path, sizeof path, "%s/%d", dir, (int)getpid());
  ssize_t len = readlink("/proc/self/exe", exe, sizeof exe - 1);
  exe[len > 0 ? len : 0] = '\0';
  FILE* f = fopen(path, "w");
  if (!f) return;
  for (int i = 0; i < nfns; ++i) {
    Dl_info info;
    if (!dladdr(fns[i], &info)) continue;
    // The main program is reported by the name it was started with; its full path is /proc/self/exe.
    const char* file = strchr(info.dli_fname, '/') ? info.dli_fname : exe;
    fprintf(f, "%ld %ld 0x%lx %s\n", waking[i], counts[i], (unsigned long)((char*)fns[i] - (char*)info.dli_fbase),
            file);
  }
  fclose(f);
}
C
gcc -O2 -shared -fPIC "$work/shim.c" -o "$work/shim.so" -ldl -lpthread
mkdir "$work/counts"
COUNT_REGIONS_DIR="$work/counts" LD_PRELOAD="$work/shim.so" "$@" > /dev/null
if [ -z "$(ls -A "$work/counts")" ]; then
  echo "$0: no parallel region was counted (a program built with GCC's OpenMP that opens none, or one that" \
       "ended without running exit handlers)" >&2
  exit 1
fi
printf '%10s %10s  %s\n' waking all function
woke=0 total=0
# Sum over processes by (offset, file); the file is last on each line, so a path with spaces stays whole.
while read -r wake count offset file; do
  woke=$((woke + wake)) total=$((total + count))
  name=$(addr2line -f -C -e "$file" "$offset" 2>/dev/null | head -n 1 | cut -c 1-120) || name='??'
  printf '%10d %10d  %s\n' "$wake" "$count" "${name:-??}"
done < <(cat "$work"/counts/* | awk '{ key = $3; for (i = 4; i <= NF; ++i) key = key " " $i
                                       w[key] += $1; a[key] += $2 }
                                     END { for (k in w) print w[k], a[k], k }' | sort -rn)
printf '%10d %10d  in all\n' "$woke" "$total"
