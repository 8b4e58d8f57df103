#!/usr/bin/env python3
"""Copies REPO/cuda/ to GEN/cuda/, rewriting the CUDA-only syntax into C++ that compiles against cudasim's headers:

  extern __shared__ T smem[];            ->  T* smem = reinterpret_cast<T*>(::sim::shared_memory());
  __shared__ T a[N][M], b[N][M];         ->  auto& a = ::sim::static_shared<T[N][M], ID>(); auto& b = ...;
  kernel<targs><<<grid, block>>>(args);  ->  ::sim::launch(nullptr, grid, block, [&] { kernel<targs>(args); });
  ... <<<grid, block, smem[, stream]>>>  ->  ::sim::launch(reinterpret_cast<const void*>(&kernel<targs>), grid, ...)

(the function pointer lets the launch check the kernel's cudaFuncSetAttribute shared-memory limit). Line numbers
are kept (#line 1 "original path" on top, and no rewrite adds or removes a newline), so diagnostics, __FILE__
and __LINE__ name the original source. Files whose rewritten text did not change are not touched (make sees
their old time stamps).

  rewrite.py REPO GEN
"""
import os
import re
import sys

IDENT = re.compile(r'[A-Za-z_]\w*')


def fail(path, msg):
    sys.exit(f'rewrite.py: {path}: {msg}')


def match_back_name(s, end):
    """The kernel expression that ends at s[end] (exclusive): `name`, `ns::name`, `name<targs>` (balanced <>)."""
    i = end
    while i > 0 and s[i - 1].isspace():
        i -= 1
    stop = i
    if i > 0 and s[i - 1] == '>':  # template arguments: walk back to the matching '<'
        depth = 0
        while i > 0:
            i -= 1
            if s[i] == '>':
                depth += 1
            elif s[i] == '<':
                depth -= 1
                if depth == 0:
                    break
        if depth != 0:
            return None
    while i > 0 and (s[i - 1].isalnum() or s[i - 1] in '_:'):
        i -= 1
    name = s[i:stop]
    if not IDENT.match(name.lstrip(':')):
        return None
    return i, name


def split_top(s, sep=','):
    parts, depth, cur = [], 0, ''
    for ch in s:
        if ch in '([{<':
            depth += 1
        elif ch in ')]}>':
            depth -= 1
        if ch == sep and depth == 0:
            parts.append(cur)
            cur = ''
        else:
            cur += ch
    parts.append(cur)
    return parts


def matching_paren(s, i):
    """s[i] == '('; the index of its matching ')'."""
    depth = 0
    for j in range(i, len(s)):
        if s[j] == '(':
            depth += 1
        elif s[j] == ')':
            depth -= 1
            if depth == 0:
                return j
    return -1


def rewrite_launches(path, s):
    out, pos, count = [], 0, 0
    while True:
        k = s.find('<<<', pos)
        if k < 0:
            break
        line_start = s.rfind('\n', 0, k) + 1
        if '//' in s[line_start:k]:  # in a comment: left alone
            out.append(s[pos:k + 3])
            pos = k + 3
            continue
        back = match_back_name(s, k)
        if back is None:
            fail(path, f'cannot find the kernel name before <<< at offset {k}')
        start, name = back
        e = s.find('>>>', k)
        cfg = s[k + 3:e]
        j = e + 3
        while s[j].isspace():
            j += 1
        if s[j] != '(':
            fail(path, f'no argument list after >>> of {name}')
        close = matching_paren(s, j)
        args = s[j + 1:close]
        semi = close + 1
        if s[semi] != ';':
            fail(path, f'launch of {name} not followed by ;')
        between = s[start + len(name):k] + s[e + 3:j]  # whitespace (newlines) between the pieces: kept
        nconfig = len(split_top(cfg))
        fn = f'reinterpret_cast<const void*>(&{name})' if nconfig >= 3 else 'nullptr'
        out.append(s[pos:start])
        out.append(f'::sim::launch({fn}, {cfg},{between} [&] {{ {name}({args}); }});')
        pos = semi + 1
        count += 1
    out.append(s[pos:])
    return ''.join(out), count


EXTERN_SHARED = re.compile(r'extern\s+__shared__\s+(?:__align__\(\s*\d+\s*\)\s+)?([^;]*?)\s*\b(\w+)\s*\[\s*\]\s*;')
STATIC_SHARED = re.compile(r'__shared__\s+(?:__align__\(\s*(\d+)\s*\)\s+)?([^;]*);')
DECLARATOR = re.compile(r'^\s*(.*?)\s*\b(\w+)\s*((?:\[[^\]]*\]\s*)*)$', re.S)

def rewrite_shared(path, s):
    s = EXTERN_SHARED.sub(lambda m: f'{m.group(1)}* {m.group(2)} = reinterpret_cast<{m.group(1)}*>(::sim::shared_memory());', s)

    def static(m):
        line = s.count('\n', 0, m.start()) + 1  # IDs from the line: stable, distinct within a file
        align = m.group(1)
        decls = split_top(m.group(2))
        first = DECLARATOR.match(decls[0])
        if not first or not first.group(1):
            fail(path, f'cannot parse the __shared__ declaration "{m.group(0)}"')
        typ = first.group(1)
        pieces = []
        for n, d in enumerate(decls):
            dm = DECLARATOR.match(d) if n == 0 else re.match(r'^\s*()(\w+)\s*((?:\[[^\]]*\]\s*)*)$', d)
            if not dm:
                fail(path, f'cannot parse the declarator "{d}"')
            dims = dm.group(3).strip()
            targs = f'{typ} {dims}'.strip() + f', {line * 16 + n}' + (f', {align}' if align else '')
            pieces.append(f'auto& {dm.group(2)} = ::sim::static_shared<{targs}>();')
        return ' '.join(pieces)

    return STATIC_SHARED.sub(static, s)


def main():
    repo, gen = sys.argv[1], sys.argv[2]
    src_root = os.path.join(repo, 'cuda')
    launches = 0
    for dirpath, _, files in os.walk(src_root):
        for f in sorted(files):
            if not f.endswith(('.cu', '.cuh', '.h', '.cpp')):
                continue
            src = os.path.join(dirpath, f)
            rel = os.path.relpath(src, repo)
            dst = os.path.join(gen, rel)
            s = open(src).read()
            s, n = rewrite_launches(rel, s)
            launches += n
            s = rewrite_shared(rel, s)
            if '__shared__' in re.sub(r'//.*', '', s):
                fail(rel, 'a __shared__ declaration was left unrewritten')
            s = f'#line 1 "{os.path.abspath(src)}"\n' + s
            os.makedirs(os.path.dirname(dst), exist_ok=True)
            if os.path.exists(dst) and open(dst).read() == s:
                continue
            open(dst, 'w').write(s)
    if launches == 0:
        sys.exit('rewrite.py: no kernel launches found')
    print(f'rewrite.py: {launches} launches rewritten')


if __name__ == '__main__':
    main()
