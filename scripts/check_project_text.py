#!/usr/bin/env python3
"""Checks that glance's files speak of glance alone, and that its docs link only to what a reader has.

  python3 scripts/check_project_text.py [--root DIR]

Two checks over every text file of the repository (the files git tracks plus the untracked ones it does not
ignore; without git, every file under DIR outside build folders):

  1. words: each line is matched against the regular expressions of scripts/project_text_rules.txt (words
     about how a project is developed, issue numbers used as targets, paths outside the repository);
  2. links: every Markdown link [text](target) whose target is not a URL (http:, https:, mailto:, ...) or an
     anchor (#...) must name a file or folder that exists inside the repository, relative to the page.

Prints one line per finding, `path:line: what`, and exits 1 when there is any, 0 otherwise. Run by ctest
(Scripts.ProjectText) and so by CI; tests/scripts/test_project_text.sh shows it catching each kind.
"""
import argparse
import os
import re
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
RULES = os.path.join(HERE, "project_text_rules.txt")
# Files that must name the refused words to do their job.
EXEMPT = {"scripts/project_text_rules.txt", "tests/scripts/test_project_text.sh"}
LINK = re.compile(r"!?\[[^\]]*\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)")
URL = re.compile(r"^[a-zA-Z][a-zA-Z0-9+.-]*:")


def load_rules(path):
    rules = []
    with open(path, encoding="utf-8") as f:
        for n, line in enumerate(f, 1):
            line = line.rstrip("\n")
            if not line.strip() or line.lstrip().startswith("#"):
                continue
            try:
                rules.append((line, re.compile(line, re.IGNORECASE)))
            except re.error as e:
                sys.exit(f"{path}:{n}: not a regular expression ({e}): {line}")
    return rules


def repository_files(root):
    """Paths relative to root: git's view when root is a checkout, else a walk that skips build folders."""
    try:
        out = subprocess.run(["git", "-C", root, "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
                             capture_output=True, check=True).stdout
        files = sorted({p for p in out.decode("utf-8", "replace").split("\0") if p})
        return [p for p in files if os.path.isfile(os.path.join(root, p))]
    except (OSError, subprocess.CalledProcessError):
        files = []
        for d, dirs, names in os.walk(root):
            dirs[:] = [x for x in dirs if x != ".git" and not x.startswith("build")]
            files += [os.path.relpath(os.path.join(d, n), root) for n in names]
        return sorted(files)


def read_text(path):
    """The file's lines, or None for a binary file (a NUL byte or not UTF-8)."""
    with open(path, "rb") as f:
        data = f.read()
    if b"\0" in data:
        return None
    try:
        return data.decode("utf-8").splitlines()
    except UnicodeDecodeError:
        return None


def link_problem(root, page, target):
    """Why the link `target` on `page` (relative to root) leads nowhere a reader has, or None."""
    if URL.match(target) or target.startswith("#"):
        return None
    path = target.split("#", 1)[0].split("?", 1)[0]
    if not path:
        return None
    if path.startswith("/"):
        return f"link to an absolute path: {target}"
    real_root = os.path.realpath(root)
    resolved = os.path.realpath(os.path.join(root, os.path.dirname(page), path))
    if resolved != real_root and not resolved.startswith(real_root + os.sep):
        return f"link outside the repository: {target}"
    if not os.path.exists(resolved):
        return f"dead link: {target}"
    return None


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--root", default=os.path.dirname(HERE), help="the repository (default: this script's)")
    ap.add_argument("--rules", default=os.path.relpath(RULES), help="the word list (default: scripts/project_text_rules.txt)")
    args = ap.parse_args()
    root = os.path.abspath(args.root)
    rules = load_rules(args.rules)

    findings, checked = [], 0
    for rel in repository_files(root):
        if rel.replace(os.sep, "/") in EXEMPT:
            continue
        lines = read_text(os.path.join(root, rel))
        if lines is None:
            continue
        checked += 1
        for n, line in enumerate(lines, 1):
            for text, rx in rules:
                if rx.search(line):
                    findings.append(f"{rel}:{n}: refused words [{text}]: {line.strip()[:160]}")
                    break
            if rel.endswith(".md"):
                for m in LINK.finditer(line):
                    why = link_problem(root, rel, m.group(1))
                    if why:
                        findings.append(f"{rel}:{n}: {why}")

    for f in findings:
        print(f)
    if findings:
        print(f"check_project_text: {len(findings)} finding(s) in {checked} files "
              f"(rules: {args.rules})")
        return 1
    print(f"check_project_text: {checked} files, no findings")
    return 0


if __name__ == "__main__":
    sys.exit(main())
