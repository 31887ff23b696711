#!/usr/bin/env bash
# Checks the commit messages of base..HEAD against CONTRIBUTING.md: a subject
# line of at most 72 characters, then a blank line, then a non-empty body.
# Prints one line per offending commit and exits 1 when there is any.
#
#   scripts/check-commits.sh [base]   (default: the branch's upstream, else origin/main)
#
# Merge commits are skipped.
set -euo pipefail

export LC_ALL=C.UTF-8  # ${#subject} counts characters, not bytes
max_subject=72

base="${1:-}"
if [[ -z "$base" ]]; then
  if git rev-parse --verify --quiet '@{upstream}' >/dev/null 2>&1; then
    base='@{upstream}'
  elif git rev-parse --verify --quiet origin/main >/dev/null; then
    base=origin/main
  else
    echo "usage: $0 BASE   (no upstream and no origin/main to default to)" >&2
    exit 2
  fi
fi
if ! git rev-parse --verify --quiet "$base^{commit}" >/dev/null; then
  echo "check-commits: '$base' is not a commit" >&2
  exit 2
fi

checked=0
bad=0
while read -r commit; do
  checked=$((checked + 1))
  message="$(git log -1 --format=%B "$commit")"
  subject="$(sed -n 1p <<<"$message")"
  second="$(sed -n 2p <<<"$message")"
  body="$(sed -n '3,$p' <<<"$message" | tr -d '[:space:]')"
  problems=()
  if (( ${#subject} > max_subject )); then
    problems+=("subject is ${#subject} characters (max $max_subject)")
  fi
  if [[ -n "$second" ]]; then
    problems+=("no blank line after the subject")
  elif [[ -z "$body" ]]; then
    problems+=("no body")
  fi
  if (( ${#problems[@]} > 0 )); then
    bad=$((bad + 1))
    short="$subject"
    if (( ${#short} > 60 )); then short="${short:0:57}..."; fi
    joined="${problems[0]}"
    for problem in "${problems[@]:1}"; do joined+="; $problem"; done
    printf '%s %s: %s\n' "$(git rev-parse --short "$commit")" "$joined" "$short"
  fi
done < <(git rev-list --no-merges --reverse "$base..HEAD")

if (( bad > 0 )); then
  echo "check-commits: $bad of $checked commits in $base..HEAD break the rules in CONTRIBUTING.md" >&2
  exit 1
fi
echo "check-commits: $checked commits in $base..HEAD are fine"
