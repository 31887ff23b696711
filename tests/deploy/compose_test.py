#!/usr/bin/env python3
"""deploy/docker-compose.yml against the repository and the README, without Docker.

usage: compose_test.py GATEWAYZ_BIN

Parses the compose file (PyYAML) and checks that:
  - it has the services of the stack, with pinned images;
  - every bind-mounted config path exists in the repository and is where the
    service's command (or Grafana's provisioning) reads it;
  - Prometheus scrapes the gatewayz service on the port it listens on, Tempo
    remote-writes to Prometheus (which accepts remote writes), Tempo's span
    metrics have the required dimensions, Grafana's data sources point at the
    services and at each other by uid, and the dashboards directory is the
    one the provisioning reads;
  - deploy/Dockerfile is multi-stage Debian 12, runs as a non-root user, has a
    HEALTHCHECK, and everything it COPYs exists and passes .dockerignore;
  - `gatewayz check-config deploy/gatewayz.yaml` accepts the file with no
    variable set and with the compose file's environment, and every
    ${GATEWAYZ_*} it reads is set by the compose file or documented in the README;
  - the README's "Run the full stack" table names the same services, images,
    ports and config paths as the compose file;
  - `docker compose config` accepts the file, when Docker Compose is installed
    (optional: skipped otherwise).
"""

import fnmatch
import os
import re
import shutil
import subprocess
import sys

import yaml

import deploy_lib as lib

check = lib.Checks()


def load_yaml(*parts):
    with open(os.path.join(lib.DEPLOY, *parts)) as f:
        return yaml.safe_load(f)


def mounts(service):
    """{container path: host path relative to the repository} of bind mounts."""
    out = {}
    for v in service.get("volumes", []):
        src, dst = v.split(":")[:2]
        if src.startswith("."):
            out[dst] = os.path.normpath(os.path.join("deploy", src))
    return out


def published_ports(service):
    return sorted(int(str(p).split(":")[-2] if str(p).count(":") else p) for p in service.get("ports", []))


def compose_env_value(value):
    """A compose ${VAR:-default} value with every variable unset."""
    return re.sub(r"\$\{[A-Za-z_][A-Za-z0-9_]*(?::?-([^}]*))?\}", lambda m: m.group(1) or "", str(value))


def readme_stack_table():
    with open(os.path.join(lib.REPO, "README.md")) as f:
        text = f.read()
    m = re.search(r"^## Run the full stack\n(.*?)(?=^## )", text, re.S | re.M)
    if not m:
        return None, ""
    rows = {}
    for line in m.group(1).splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) == 4 and cells[0] not in ("service", "---") and not cells[0].startswith("-"):
            image = re.search(r"`([^`]+)`", cells[1])
            ports = [int(p) for p in re.findall(r"\d+", cells[2])]
            configs = re.findall(r"`([^`]+)`", cells[3])
            rows[cells[0]] = (image.group(1) if image else "", ports, configs)
    return rows, m.group(1)


def main():
    gatewayz_bin = sys.argv[1]
    compose = load_yaml("docker-compose.yml")
    services = compose.get("services", {})
    expected = {"gatewayz", "mock", "redis", "postgres", "prometheus", "loki", "tempo", "grafana"}
    check("compose has the stack's services", expected <= set(services), sorted(expected - set(services)))

    for name, svc in services.items():
        image = svc.get("image", "")
        check(f"{name}: image pinned to a tag", ":" in image and not image.endswith(":latest"), image)
        for dst, src in mounts(svc).items():
            check(f"{name}: mounted {src} exists", os.path.exists(os.path.join(lib.REPO, src)))

    # --- gatewayz: image, config path, environment ----------------------------------
    gw = services["gatewayz"]
    build = gw.get("build", {})
    context = os.path.normpath(os.path.join(lib.DEPLOY, build.get("context", ".")))
    dockerfile = os.path.join(context, build.get("dockerfile", "Dockerfile"))
    check("gatewayz: build context is the repository root", context == lib.REPO, context)
    check("gatewayz: Dockerfile exists", os.path.isfile(dockerfile), dockerfile)
    check("mock: the same image and build as gatewayz",
          services["mock"].get("image") == gw.get("image") and services["mock"].get("build") == build)
    with open(dockerfile) as f:
        df = f.read()
    froms = re.findall(r"^FROM\s+(\S+)", df, re.M)
    check("Dockerfile: multi-stage, Debian 12", len(froms) >= 2 and all(f.startswith("debian:bookworm") for f in froms), froms)
    users = re.findall(r"^USER\s+(\S+)", df, re.M)
    check("Dockerfile: runs as a non-root user", bool(users) and users[-1].split(":")[0] not in ("root", "0"), users)
    check("Dockerfile: has a HEALTHCHECK on /health", re.search(r"^HEALTHCHECK .*\n?.*/health", df, re.M) is not None)
    with open(os.path.join(lib.REPO, ".dockerignore")) as f:
        ignore = [l.strip() for l in f if l.strip() and not l.startswith("#")]

    def ignored(path):
        result = False
        for pat in ignore:
            neg = pat.startswith("!")
            pat = pat.lstrip("!").rstrip("/")
            if fnmatch.fnmatch(path, pat) or path.startswith(pat + "/"):
                result = not neg
        return result

    for src in re.findall(r"^COPY\s+(?!--from)(.+)\s+\S+$", df, re.M):
        for s in src.split():
            check(f"Dockerfile: COPY {s} exists and is not in .dockerignore",
                  os.path.exists(os.path.join(context, s)) and not ignored(s))
    cmd_config = re.search(r'^CMD \[.*"--config", "([^"]+)"\]', df, re.M)
    gw_mounts = mounts(gw)
    check("gatewayz: deploy/gatewayz.yaml is mounted where the image's CMD reads it",
          cmd_config is not None and gw_mounts.get(cmd_config.group(1)) == "deploy/gatewayz.yaml", gw_mounts)

    env = {k: compose_env_value(v) for k, v in gw.get("environment", {}).items()}
    listen_port = int(env.get("GATEWAYZ_LISTEN", ":0").rsplit(":", 1)[1])
    check("gatewayz: publishes the port it listens on", listen_port in published_ports(gw), (listen_port, gw.get("ports")))
    with open(os.path.join(lib.DEPLOY, "gatewayz.yaml")) as f:
        config_vars = set(re.findall(r"\$\{(GATEWAYZ_[A-Z0-9_]+)", f.read()))
    check("compose sets only variables deploy/gatewayz.yaml reads",
          {k for k in env if k.startswith("GATEWAYZ_")} <= config_vars, sorted({k for k in env if k.startswith("GATEWAYZ_")} - config_vars))
    rows, section = readme_stack_table()
    undocumented = sorted(v for v in config_vars if f"`{v}`" not in section)
    check("README documents every variable deploy/gatewayz.yaml reads", not undocumented, undocumented)

    clean = {k: v for k, v in os.environ.items() if not k.startswith("GATEWAYZ_")}
    clean["ASAN_OPTIONS"] = "detect_leaks=0"
    for label, extra in (("no variable set", {}), ("the compose file's environment", env)):
        r = subprocess.run([gatewayz_bin, "check-config", os.path.join(lib.DEPLOY, "gatewayz.yaml")],
                           capture_output=True, text=True, env=dict(clean, **extra))
        check(f"gatewayz check-config accepts deploy/gatewayz.yaml with {label}", r.returncode == 0, r.stdout + r.stderr)

    # --- Prometheus ----------------------------------------------------------------------
    prom = services["prometheus"]
    prom_cmd = prom.get("command", [])
    cfg_path = next((c.split("=", 1)[1] for c in prom_cmd if c.startswith("--config.file=")), None)
    prom_mounts = mounts(prom)
    check("prometheus: reads deploy/prometheus/prometheus.yml", prom_mounts.get(cfg_path) == "deploy/prometheus/prometheus.yml", (cfg_path, prom_mounts))
    check("prometheus: accepts remote writes (Tempo's span metrics)", "--web.enable-remote-write-receiver" in prom_cmd)
    prom_cfg = load_yaml("prometheus", "prometheus.yml")
    for rule_file in prom_cfg.get("rule_files", []):
        in_container = os.path.normpath(os.path.join(os.path.dirname(cfg_path or "/"), rule_file))
        check(f"prometheus: rule file {rule_file} is mounted from deploy/prometheus/",
              prom_mounts.get(in_container, "").startswith("deploy/prometheus/"), (in_container, prom_mounts))
    check("prometheus: scrapes every 15 s", prom_cfg["global"]["scrape_interval"] == "15s")
    gw_job = next((j for j in prom_cfg["scrape_configs"] if j["job_name"] == "gatewayz"), None)
    targets = [t for sc in (gw_job or {}).get("static_configs", []) for t in sc["targets"]]
    check("prometheus: job gatewayz scrapes the gatewayz service's port", targets == [f"gatewayz:{listen_port}"], targets)
    for job in prom_cfg["scrape_configs"]:
        for sc in job.get("static_configs", []):
            for t in sc["targets"]:
                host = t.split(":")[0]
                check(f"prometheus: target {t} is a compose service", host in services or host == "localhost")

    # --- Tempo ---------------------------------------------------------------------------
    tempo = services["tempo"]
    tempo_cfg_path = next((c.split("=", 1)[1] for c in tempo.get("command", []) if c.startswith("-config.file=")), None)
    check("tempo: reads deploy/tempo/tempo.yaml", mounts(tempo).get(tempo_cfg_path) == "deploy/tempo/tempo.yaml")
    tempo_cfg = load_yaml("tempo", "tempo.yaml")
    gen = tempo_cfg["metrics_generator"]
    check("tempo: remote-writes to the prometheus service",
          [w["url"] for w in gen["storage"]["remote_write"]] == ["http://prometheus:9090/api/v1/write"])
    check("tempo: span-metrics and service-graphs processors on",
          set(tempo_cfg["overrides"]["defaults"]["metrics_generator"]["processors"]) == {"span-metrics", "service-graphs"})
    dims = ["gen_ai.request.model", "gen_ai.system", "gen_ai.provider.name", "customer.id", "http.route",
            "http.status_code", "error.type", "gen_ai.response.finish_reason"]
    check("tempo: span metrics dimensions", gen["processor"]["span_metrics"]["dimensions"] == dims,
          gen["processor"]["span_metrics"]["dimensions"])
    otlp_port = int(tempo_cfg["distributor"]["receivers"]["otlp"]["protocols"]["http"]["endpoint"].rsplit(":", 1)[1])
    check("tempo: OTLP/HTTP port published and what gatewayz exports to",
          otlp_port in published_ports(tempo) and env.get("OTEL_EXPORTER_OTLP_ENDPOINT") == f"http://tempo:{otlp_port}")

    # --- Loki ----------------------------------------------------------------------------
    loki = services["loki"]
    loki_cfg_path = next((c.split("=", 1)[1] for c in loki.get("command", []) if c.startswith("-config.file=")), None)
    check("loki: reads deploy/loki/loki.yaml", mounts(loki).get(loki_cfg_path) == "deploy/loki/loki.yaml")
    loki_port = load_yaml("loki", "loki.yaml")["server"]["http_listen_port"]

    # --- Grafana -------------------------------------------------------------------------
    graf = services["grafana"]
    gm = mounts(graf)
    check("grafana: provisioning mounted", gm.get("/etc/grafana/provisioning") == "deploy/grafana/provisioning", gm)
    prov = load_yaml("grafana", "provisioning", "dashboards", "dashboards.yaml")
    dash_path = prov["providers"][0]["options"]["path"]
    check("grafana: the dashboards provider reads the mounted deploy/grafana/dashboards",
          gm.get(dash_path) == "deploy/grafana/dashboards", (dash_path, gm))
    home = graf.get("environment", {}).get("GF_DASHBOARDS_DEFAULT_HOME_DASHBOARD_PATH", "")
    check("grafana: home dashboard is a shipped one",
          home.startswith(dash_path + "/") and os.path.isfile(os.path.join(lib.DASHBOARDS, os.path.basename(home))), home)
    sources = load_yaml("grafana", "provisioning", "datasources", "datasources.yaml")["datasources"]
    by_uid = {d["uid"]: d for d in sources}
    prom_port = 9090
    want_urls = {"prometheus": f"http://prometheus:{prom_port}", "tempo": f"http://tempo:{tempo_cfg['server']['http_listen_port']}",
                 "loki": f"http://loki:{loki_port}"}
    for uid, url in want_urls.items():
        check(f"grafana: data source {uid} points at {url}", by_uid.get(uid, {}).get("url") == url, by_uid.get(uid, {}).get("url"))
    refs = []

    def collect(obj):
        if isinstance(obj, dict):
            for k, v in obj.items():
                if k == "datasourceUid":
                    refs.append(v)
                collect(v)
        elif isinstance(obj, list):
            for v in obj:
                collect(v)

    collect(sources)
    check("grafana: every datasourceUid reference is a provisioned uid", refs and all(r in by_uid for r in refs), refs)
    check("grafana: Loki derives trace links from trace_id to Tempo",
          any(f.get("datasourceUid") == "tempo" and "trace_id" in f.get("matcherRegex", "")
              for f in by_uid["loki"]["jsonData"].get("derivedFields", [])))
    check("grafana: Tempo has trace-to-logs (Loki) and a service map (Prometheus)",
          by_uid["tempo"]["jsonData"].get("tracesToLogsV2", {}).get("datasourceUid") == "loki"
          and by_uid["tempo"]["jsonData"].get("serviceMap", {}).get("datasourceUid") == "prometheus")
    names = {d["title"] for _, d in lib.dashboards()}
    for want in ("Application Health", "Model usage and cost", "Redis and cache", "HTTP and overhead"):
        check(f"dashboard '{want}' shipped", any(want in n for n in names), names)

    # --- README table ----------------------------------------------------------------------
    check("README has the 'Run the full stack' table", bool(rows))
    if rows:
        check("README table lists exactly the compose services", set(rows) == set(services), (sorted(rows), sorted(services)))
        for name, svc in services.items():
            if name not in rows:
                continue
            image, ports, configs = rows[name]
            check(f"README: {name} image is {svc.get('image')}", image == svc.get("image"), image)
            check(f"README: {name} ports", sorted(ports) == published_ports(svc), (ports, published_ports(svc)))
            mounted = sorted(set(mounts(svc).values()))
            check(f"README: {name} config paths", sorted(configs) == mounted, (configs, mounted))
    check("README: the compose command is the one documented",
          "docker compose -f deploy/docker-compose.yml up" in section)

    # --- docker compose config, when available ---------------------------------------------
    docker = shutil.which("docker")
    if docker and subprocess.run([docker, "compose", "version"], capture_output=True).returncode == 0:
        r = subprocess.run([docker, "compose", "-f", os.path.join(lib.DEPLOY, "docker-compose.yml"), "config", "-q"],
                           capture_output=True, text=True)
        check("docker compose config accepts the file", r.returncode == 0, r.stderr)
    else:
        print("# docker compose not installed: `docker compose config` skipped")

    return check.finish()


if __name__ == "__main__":
    sys.exit(main())
