#!/usr/bin/env python3
"""Every metric and label the shipped alert rules and dashboards select exists.

usage: names_check.py GATEWAYZ_BIN

Reads the families and their labels from the registry (`gatewayz
metrics-catalog` on deploy/gatewayz.yaml) and checks, in
deploy/prometheus/alerts.yml and every deploy/grafana/dashboards/*.json:
  - each metric name is a family gatewayz exports (histograms by their
    _bucket/_sum/_count series), a series Prometheus adds to each target (up,
    scrape_*), or a family listed in deploy/grafana/pending-families.txt;
  - each label in a selector `name{label=...}` is one of that family's labels
    (or job, instance, and le on _bucket series);
  - every panel and variable uses the Prometheus data source provisioned in
    deploy/grafana/provisioning/datasources (by uid), and dashboard uids are unique.
"""

import os
import re
import sys

import yaml

import deploy_lib as lib

failures = []


def fail(msg):
    failures.append(msg)
    print(f"FAIL - {msg}")


def check_expr(where, expr, catalog, pending):
    try:
        names = lib.metric_names(expr)
    except ValueError as e:
        fail(f"{where}: {e}")
        return
    if not names:
        fail(f"{where}: selects no metric: {expr}")
    for name in sorted(names):
        family = lib.family_of(name, catalog)
        if family is None and name not in lib.SYNTHETIC and lib.family_of(name, pending) is None:
            fail(f"{where}: '{name}' is not a metric gatewayz exports (nor pending): {expr}")
    stripped = re.sub(r'"(?:[^"\\]|\\.)*"', '""', expr)
    for m in re.finditer(r"([A-Za-z_:][A-Za-z0-9_:]*)\s*\{([^}]*)\}", stripped):
        name, matchers = m.group(1), m.group(2)
        family = lib.family_of(name, catalog)
        if family is not None:
            allowed = set(catalog[family][1]) | {"job", "instance"}
            if name.endswith("_bucket") and family != name:
                allowed.add("le")
        elif name in lib.SYNTHETIC:
            allowed = {"job", "instance"}
        else:
            continue  # pending families not exported by gatewayz: labels unknown
        for label in re.findall(r"([A-Za-z_][A-Za-z0-9_]*)\s*(?:=~|!~|!=|=)", matchers):
            if label not in allowed:
                fail(f"{where}: '{name}' has no label '{label}' (has {sorted(allowed)}): {expr}")


def main():
    catalog = lib.load_catalog(sys.argv[1], os.path.join(lib.DEPLOY, "gatewayz.yaml"))
    pending = lib.load_pending()
    for family in pending:
        if family in catalog and pending[family] == "tempo":
            fail(f"pending-families.txt: {family} is a gatewayz family but marked tempo")
    checked = 0

    with open(os.path.join(lib.DEPLOY, "prometheus", "alerts.yml")) as f:
        rules = yaml.safe_load(f)
    for group in rules["groups"]:
        for rule in group["rules"]:
            check_expr(f"alerts.yml {rule.get('alert') or rule.get('record')}", rule["expr"], catalog, pending)
            checked += 1

    with open(os.path.join(lib.DEPLOY, "grafana", "provisioning", "datasources", "datasources.yaml")) as f:
        sources = {d["uid"]: d["type"] for d in yaml.safe_load(f)["datasources"]}
    uids = set()
    for file_name, dash in lib.dashboards():
        if dash.get("uid") in uids:
            fail(f"{file_name}: duplicate dashboard uid {dash.get('uid')}")
        uids.add(dash.get("uid"))
        for panel in lib.panels(dash):
            for obj in [panel] + panel.get("targets", []):
                ds = obj.get("datasource")
                if ds is None and panel.get("type") == "row":
                    continue
                if not isinstance(ds, dict) or sources.get(ds.get("uid")) != ds.get("type") or ds.get("type") != "prometheus":
                    fail(f"{file_name} '{panel.get('title')}': datasource {ds} is not the provisioned Prometheus")
        for var in dash.get("templating", {}).get("list", []):
            ds = var.get("datasource")
            if var.get("type") == "query" and (not isinstance(ds, dict) or sources.get(ds.get("uid")) != "prometheus"):
                fail(f"{file_name} variable {var.get('name')}: datasource {ds} is not the provisioned Prometheus")
        for name, query in lib.variables(dash):
            selector, _ = lib.parse_label_values(query)
            check_expr(f"{file_name} variable {name}", selector, catalog, pending)
        for title, ref, expr in lib.queries(dash):
            check_expr(f"{file_name} '{title}' {ref}", expr, catalog, pending)
            checked += 1

    print(f"# {checked} expressions checked against {len(catalog)} families, {len(pending)} pending")
    if failures:
        print(f"{len(failures)} failed")
        return 1
    print("ok   - every metric and label in alerts.yml and the dashboards exists")
    return 0


if __name__ == "__main__":
    sys.exit(main())
