#!/usr/bin/env python3
"""docs/metrics.md agrees with a live /metrics scrape (Prometheus text 0.0.4).

usage: metrics_doc_check.py SCRAPE_FILE

Every family in the scrape (its # TYPE line) is in the reference with the
same type and help, every family in the reference is in the scrape, and each
series carries exactly the labels the reference lists for its family
(plus le on histogram buckets).
"""

import os
import re
import sys

import deploy_lib as lib


def main():
    with open(os.path.join(lib.REPO, "docs", "metrics.md")) as f:
        doc = {}
        for line in f:
            m = re.match(r"\| `([^`]+)` \| (\w+) \| (.*?) \| (.*) \|$", line.rstrip("\n"))
            if m:
                labels = [] if m.group(3) == "–" else re.findall(r"`([^`]+)`", m.group(3))
                doc[m.group(1)] = (m.group(2), labels, m.group(4).replace("\\|", "|"))
    types, helps, series_labels = {}, {}, {}
    with open(sys.argv[1]) as f:
        for line in f:
            line = line.rstrip("\n")
            if line.startswith("# TYPE "):
                _, _, name, kind = line.split(" ", 3)
                types[name] = kind
            elif line.startswith("# HELP "):
                _, _, name, text = line.split(" ", 3)
                helps[name] = text.replace("\\n", "\n").replace("\\\\", "\\")
            elif line and not line.startswith("#"):
                m = re.match(r"([A-Za-z_:][A-Za-z0-9_:]*)(\{(.*)\})? ", line)
                family = lib.family_of(m.group(1), types)
                labels = frozenset(re.findall(r'([A-Za-z_][A-Za-z0-9_]*)="', m.group(3) or "")) - {"le"}
                series_labels.setdefault(family, set()).add(labels)
    failures = []
    for name in sorted(set(types) | set(doc)):
        if name not in doc:
            failures.append(f"{name}: in /metrics but not in docs/metrics.md")
        elif name not in types:
            failures.append(f"{name}: in docs/metrics.md but not in /metrics")
        else:
            kind, labels, help_text = doc[name]
            if kind != types[name]:
                failures.append(f"{name}: type {kind} in docs/metrics.md, {types[name]} in /metrics")
            if help_text != helps.get(name):
                failures.append(f"{name}: help differs: '{help_text}' vs '{helps.get(name)}'")
            for got in series_labels.get(name, ()):
                if got != frozenset(labels):
                    failures.append(f"{name}: a series has labels {sorted(got)}, docs/metrics.md lists {labels}")
    for f in failures:
        print(f"FAIL - {f}")
    print(f"# {len(types)} families scraped, {len(doc)} documented, "
          f"{sum(1 for n in types if n in series_labels)} with series")
    if failures:
        print("docs/metrics.md disagrees with /metrics: run scripts/metrics-reference.sh")
        return 1
    print("ok   - docs/metrics.md matches /metrics (families, types, help, labels)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
