"""Shared helpers of the tests of deploy/: the metric catalog, PromQL metric
names, the dashboards' queries and the pending-families list.

Used by names_check.py, dashboards_check.py, metrics_doc_check.py and
compose_test.py (run by CTest, see tests/deploy/CMakeLists.txt). Python 3
standard library plus PyYAML (Debian python3-yaml).
"""

import json
import os
import re
import subprocess

REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
DEPLOY = os.path.join(REPO, "deploy")
DASHBOARDS = os.path.join(DEPLOY, "grafana", "dashboards")
PENDING = os.path.join(DEPLOY, "grafana", "pending-families.txt")

# Series Prometheus itself attaches to every scrape target.
SYNTHETIC = {"up", "scrape_duration_seconds", "scrape_samples_scraped", "scrape_samples_post_metric_relabeling",
             "scrape_series_added"}
HISTOGRAM_SUFFIXES = ("_bucket", "_sum", "_count")


class Checks:
    """Named checks printed as ok/FAIL lines (the format of tests/integration/lib.sh)."""

    def __init__(self):
        self.passed = 0
        self.failed = []

    def __call__(self, name, ok, detail=""):
        if ok:
            self.passed += 1
            print(f"ok   - {name}")
        else:
            self.failed.append(name)
            print(f"FAIL - {name}" + (f": {detail}" if detail else ""))

    def finish(self):
        """Prints the totals; the exit status."""
        print(f"{self.passed} passed, {len(self.failed)} failed")
        return 1 if self.failed else 0


def load_catalog(gatewayz_bin, config):
    """{name: (type, [labels], help)} from `gatewayz metrics-catalog`."""
    out = subprocess.run([gatewayz_bin, "metrics-catalog", "--config", config], check=True, capture_output=True,
                         text=True, env=dict(os.environ, ASAN_OPTIONS="detect_leaks=0")).stdout
    catalog = {}
    for line in out.splitlines():
        name, kind, labels, help_text = line.split("\t", 3)
        catalog[name] = (kind, [l for l in labels.split(",") if l], help_text)
    if len(catalog) < 20:
        raise RuntimeError(f"metrics-catalog listed only {len(catalog)} families")
    return catalog


def load_pending(path=PENDING):
    """{family: reason} from deploy/grafana/pending-families.txt."""
    pending = {}
    with open(path) as f:
        for line in f:
            line = line.split("#", 1)[0].strip()
            if line:
                name, reason = line.split(None, 1)
                pending[name] = reason.strip()
    return pending


def family_of(sample_name, families):
    """The family (a key of `families`) a sample name belongs to, or None."""
    if sample_name in families:
        return sample_name
    for suffix in HISTOGRAM_SUFFIXES:
        if sample_name.endswith(suffix) and sample_name[: -len(suffix)] in families:
            return sample_name[: -len(suffix)]
    return None


_KEYWORDS = {"and", "or", "unless", "by", "without", "on", "ignoring", "group_left", "group_right", "offset", "bool",
             "inf", "nan", "start", "end", "atan2"}


def metric_names(expr):
    """The metric names a PromQL expression selects (bare names, not __name__ matchers)."""
    s = re.sub(r'"(?:[^"\\]|\\.)*"|\'(?:[^\'\\]|\\.)*\'|`[^`]*`', '""', expr)
    if "__name__" in s:
        raise ValueError(f"__name__ matchers are not supported here: {expr}")
    s = re.sub(r"\{[^}]*\}", " ", s)                     # label matchers
    s = re.sub(r"\[[^\]]*\]", " ", s)                    # ranges, subqueries
    s = re.sub(r"\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", " ", s)
    s = re.sub(r"(?<![A-Za-z0-9_:.])\d[\d.]*(?:[eE][-+]?\d+)?(?:ms|s|m|h|d|w|y)?", " ", s)  # numbers, durations
    names = set()
    for m in re.finditer(r"[A-Za-z_:][A-Za-z0-9_:]*", s):
        rest = s[m.end():].lstrip()
        if rest.startswith("("):
            continue  # a function or an aggregation
        if m.group(0).lower() in _KEYWORDS:
            continue
        names.add(m.group(0))
    return names


def dashboards():
    """[(file name, dashboard dict)] of deploy/grafana/dashboards/*.json."""
    out = []
    for name in sorted(os.listdir(DASHBOARDS)):
        if name.endswith(".json"):
            with open(os.path.join(DASHBOARDS, name)) as f:
                out.append((name, json.load(f)))
    return out


def panels(dashboard):
    """Every panel, rows' nested panels included."""
    for panel in dashboard.get("panels", []):
        yield panel
        for inner in panel.get("panels", []):
            yield inner


def queries(dashboard):
    """[(panel title, refId, expr)] of every Prometheus target."""
    out = []
    for panel in panels(dashboard):
        for target in panel.get("targets", []):
            if target.get("expr"):
                out.append((panel.get("title", ""), target.get("refId", ""), target["expr"]))
    return out


def variables(dashboard):
    """[(name, query)] of the dashboard's query variables, in order."""
    out = []
    for var in dashboard.get("templating", {}).get("list", []):
        if var.get("type") == "query":
            q = var.get("query")
            out.append((var["name"], q.get("query") if isinstance(q, dict) else q))
    return out


def parse_label_values(query):
    """label_values(SELECTOR, LABEL) -> (SELECTOR, LABEL)."""
    m = re.fullmatch(r"\s*label_values\((.*),\s*([A-Za-z_][A-Za-z0-9_]*)\s*\)\s*", query)
    if not m:
        raise ValueError(f"unsupported variable query: {query}")
    return m.group(1).strip(), m.group(2)


def substitute(expr, values, rate_interval="1m", range_="5m", interval="15s"):
    """Grafana's variables in `expr`: $__rate_interval, $__range, $__interval and `values` ({name: text})."""
    expr = expr.replace("$__rate_interval", rate_interval).replace("$__range", range_).replace("$__interval", interval)
    for name in sorted(values, key=len, reverse=True):
        expr = expr.replace("${" + name + "}", values[name]).replace("$" + name, values[name])
    if "$" in expr:
        raise ValueError(f"unresolved variable in: {expr}")
    return expr
