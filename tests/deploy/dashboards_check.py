#!/usr/bin/env python3
"""Every query of every shipped dashboard returns data from a real Prometheus.

usage: dashboards_check.py PROMETHEUS_URL

Run by stack_test.sh once Prometheus has scraped a gatewayz under traffic.
For each dashboard: resolves its query variables (label_values(...)) through
Prometheus' label API, each to the regex of every value it has (so a filter
on a misspelt label matches nothing), substitutes $__rate_interval (1m),
$__range (5m) and $__interval, and requires a non-empty instant-query result
from each expression. Expressions that select only families listed in
deploy/grafana/pending-families.txt are skipped; a listed family that has
data (a series with labels, or a non-zero value) fails the test, so the list
is shrunk when the feature lands.
"""

import json
import sys
import urllib.parse
import urllib.request

import deploy_lib as lib

check = lib.Checks()


def api(prom, path, params):
    url = f"{prom}/api/v1/{path}?" + urllib.parse.urlencode(params, doseq=True)
    with urllib.request.urlopen(url, timeout=10) as r:
        body = json.load(r)
    if body.get("status") != "success":
        raise RuntimeError(f"{path}: {body}")
    return body["data"]


def main():
    prom = sys.argv[1]
    pending = lib.load_pending()

    # --- pending families must have no data yet ------------------------------------------
    for family in sorted(pending):
        names = "|".join([family] + [family + s for s in lib.HISTOGRAM_SUFFIXES])
        selector = f'{{__name__=~"{names}"}}'
        series = api(prom, "series", {"match[]": selector})
        labelled = [s for s in series if set(s) - {"__name__", "job", "instance", "le", "env"}]
        nonzero = api(prom, "query", {"query": f"{selector} != 0"})["result"]
        check(f"pending family {family} ({pending[family]}) has no data yet", not labelled and not nonzero,
              f"it has series now ({(labelled or nonzero)[:2]}): remove it from deploy/grafana/pending-families.txt")

    def only_pending(names):
        return names and all(lib.family_of(n, pending) is not None for n in names)

    total = skipped = 0
    for file_name, dash in lib.dashboards():
        values = {}
        for name, query in lib.variables(dash):
            selector, label = lib.parse_label_values(query)
            selector = lib.substitute(selector, values)
            found = sorted(api(prom, f"label/{label}/values", {"match[]": selector}))
            check(f"{file_name}: variable ${name} = label_values({selector}, {label}) has values", bool(found), selector)
            values[name] = "|".join(found) if found else "no-value"
        for title, ref, expr in lib.queries(dash):
            total += 1
            names = lib.metric_names(expr)
            if only_pending(names):
                skipped += 1
                print(f"skip - {file_name} '{title}' {ref}: only pending families ({', '.join(sorted(names))})")
                continue
            q = lib.substitute(expr, values)
            try:
                result = api(prom, "query", {"query": q})
                ok = result["resultType"] == "scalar" or bool(result["result"])
                detail = "empty result"
            except Exception as e:  # a bad query: Prometheus answers 400
                ok, detail = False, str(e)
            check(f"{file_name} '{title}' {ref} returns data", ok, f"{detail}: {q}")
    print(f"# {total} dashboard expressions, {skipped} skipped (pending families)")
    return check.finish()


if __name__ == "__main__":
    sys.exit(main())
