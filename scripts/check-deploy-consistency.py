#!/usr/bin/env python3
"""Checks that the deployment files ask the herald binary for nothing it does not have.

    HERALD_BIN=.build/debug/herald scripts/check-deploy-consistency.py [--rendered DIR]
    HERALD_BIN=.build/debug/herald scripts/check-deploy-consistency.py --self-test

The deployment files are the Dockerfile, deploy/compose, deploy/k8s, deploy/nginx, .github/workflows/ and
docs/DEPLOYMENT.md. It checks

1. every herald command line in them (the Dockerfile's ENTRYPOINT and CMD, the commands of compose's Herald
   services, the args of every Kubernetes container running the Herald image, init containers included) against
   `$HERALD_BIN <subcommand> --help`: the subcommands exist, every flag exists, flags that take a value have one
   and flags that do not have none; --services names only services Herald has (from Sources/), --port is a port.
   Without HERALD_BIN this part is skipped, saying so;
2. every HERALD_* name written anywhere in those files against the HERALD_* strings in Sources/, so a misspelt
   variable (which Herald would silently ignore) fails; names that are not Herald's settings are listed below
   with the reason;
3. every Prometheus metric named in them (herald_*, process_*) against the metric names in Sources/;
4. that the gateway's address rewrites (compose's nginx command, the Kubernetes gateway's args) turn each upstream
   of deploy/nginx/herald.conf into the address of the process that runs that very service, and leave none
   behind; with nginx and openssl installed, `nginx -t` also reads each rewritten file;
5. that the same numbers agree everywhere: the API port (probes, Services, EXPOSE), the metrics port
   (HERALD_METRICS_PORT, the container port, the prometheus.io/port annotation, EXPOSE), the data directory
   (HERALD_DATA_DIR, the volume, the mount), the image's user (USER, runAsUser);
6. that compose's services start in order: Herald's services wait for the migration, which waits for PostgreSQL.

--self-test breaks a copy of the files in memory in each of these ways and fails unless every one is caught.
Needs PyYAML and, unless --rendered names a directory of rendered manifests (check-k8s-manifests.py --out), kubectl.
"""
import argparse
import copy
import glob
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile

import yaml

ROOT = os.path.normpath(os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
OVERLAYS = {"base": "deploy/k8s/base", "staging": "deploy/k8s/overlays/staging", "production": "deploy/k8s/overlays/production"}
COMPOSE = "deploy/compose/compose.yaml"
HERALD_CONF = "deploy/nginx/herald.conf"
DOCKERFILE = "Dockerfile"
# The files these checks own. deploy/prometheus and deploy/grafana have their own check (scripts/check-observability.py).
SCANNED = [DOCKERFILE, ".dockerignore", ".hadolint.yaml", "docs/DEPLOYMENT.md", "deploy/compose/**/*", "deploy/k8s/**/*",
           "deploy/nginx/**/*", ".github/workflows/*"]

# HERALD_* names in the deployment files that are not Herald's settings, so not in Sources/.
NOT_HERALD_SETTINGS = {
    # Variables `docker compose` substitutes into compose.yaml (${...}); Herald never sees them.
    "HERALD_IMAGE": "compose: the image to run instead of building one",
    "HERALD_SUBNET": "compose: the network's subnet (also HERALD_TRUSTED_PROXIES' value)",
    "HERALD_HTTPS_PORT": "compose: the host port nginx publishes",
    # Tooling: the binary scripts/test.sh builds, read by tests-e2e and by this script.
    "HERALD_BIN": "tooling: the herald binary the black-box tests and this check run",
}
# Settings that are being added to Sources/ while these files are written. An entry is allowed only while the
# name is still missing from Sources/; once it appears there, the entry fails the check and must be removed.
PENDING_SETTINGS = {}

HERALD_NAME = re.compile(r"(?<![A-Za-z0-9_])HERALD_[A-Z0-9_]*[A-Z0-9](?![A-Za-z0-9_])")
METRIC_BODY = r"(?:herald|process)_[a-z0-9_]*[a-z0-9]"
# Any name, for PromQL; in prose and YAML only names followed by `{` or ending like a metric.
METRIC_NAME = re.compile(rf"(?<![A-Za-z0-9_:]){METRIC_BODY}(?![A-Za-z0-9_])")
METRIC_IN_TEXT = re.compile(rf"(?<![A-Za-z0-9_:])(?:{METRIC_BODY}(?=\{{)|(?:herald|process)_[a-z0-9_]*(?:_total|_seconds|_bytes|_info)(?![A-Za-z0-9_]))")
METRIC_SUFFIXES = ("_bucket", "_sum", "_count")
SED_EXPRESSION = re.compile(r"-e\s+'s/((?:[^'/\\]|\\.)*)/((?:[^'/\\]|\\.)*)/'")
UPSTREAM = re.compile(r"upstream\s+herald_([a-z]+)\s*\{\s*server\s+([0-9.]+:[0-9]+);")


class Problems(list):
    def add(self, where, message):
        self.append(f"{where}: {message}")


# --- the files -------------------------------------------------------------------------------------------------

class Files:
    """The deployment files' texts, the compose file and the rendered Kubernetes objects, as one copyable value."""

    def __init__(self, rendered_dir=None):
        self.texts = {}
        for pattern in SCANNED:
            for path in sorted(glob.glob(os.path.join(ROOT, pattern), recursive=True)):
                if os.path.isfile(path) and not path.endswith((".json", ".pyc")):
                    rel = os.path.relpath(path, ROOT)
                    with open(path, encoding="utf-8", errors="replace") as f:
                        self.texts[rel] = f.read()
        self.rendered = {}
        for name, path in OVERLAYS.items():
            if rendered_dir:
                with open(os.path.join(rendered_dir, f"{name}.yaml")) as f:
                    text = f.read()
            else:
                kubectl = os.environ.get("KUBECTL") or shutil.which("kubectl")
                if not kubectl:
                    sys.exit("check-deploy-consistency: kubectl not found; pass --rendered DIR or install scripts/requirements-deploy.txt")
                text = subprocess.run([kubectl, "kustomize", os.path.join(ROOT, path)], check=True, capture_output=True, text=True).stdout
            self.rendered[name] = [d for d in yaml.safe_load_all(text) if d]

    @property
    def compose(self):
        return yaml.safe_load(self.texts[COMPOSE])

    def copy(self):
        return copy.deepcopy(self)


def sources_text():
    chunks = []
    for path in glob.glob(os.path.join(ROOT, "Sources", "**", "*.swift"), recursive=True):
        with open(path, encoding="utf-8") as f:
            chunks.append(f.read())
    return "\n".join(chunks)


def service_names(sources):
    match = re.search(r"enum ServiceName\b[^{]*\{(.*?)\n\}", sources, re.S)
    if not match:
        sys.exit("check-deploy-consistency: cannot find `enum ServiceName` in Sources/")
    return re.findall(r"^\s*case\s+(\w+)\s*$", match.group(1), re.M)


# --- 1. command lines against the binary ---------------------------------------------------------------------

class HelpTree:
    """What `herald [path] --help` says: subcommands, the default one, options and whether they take a value."""

    def __init__(self, binary):
        self.binary = binary
        self.cache = {}

    def node(self, path):
        key = tuple(path)
        if key not in self.cache:
            result = subprocess.run([self.binary, *path, "--help"], capture_output=True, text=True, timeout=60)
            if result.returncode != 0:
                raise RuntimeError(f"`herald {' '.join(path)} --help` failed: {result.stderr.strip()}")
            self.cache[key] = parse_help(result.stdout)
        return self.cache[key]


def parse_help(text):
    sections, current = {}, None
    for line in text.splitlines():
        header = re.match(r"^([A-Z][A-Z ]+):\s*(.*)$", line)
        if header:
            current = header.group(1)
            sections.setdefault(current, [])
            if header.group(2):
                sections[current].append(header.group(2))
        elif current:
            sections[current].append(line)
    options = {}
    for line in sections.get("OPTIONS", []):
        m = re.match(r"^\s{1,4}((?:-[A-Za-z], )?(--[a-z0-9][a-z0-9-]*(?:/--[a-z0-9-]+)?))(\s+<[^>]+>)?", line)
        if m:
            takes_value = bool(m.group(3))
            for flag in m.group(2).split("/"):
                options[flag] = takes_value
    subcommands, default = [], None
    for line in sections.get("SUBCOMMANDS", []):
        m = re.match(r"^\s{1,4}([a-z][a-z0-9-]*)(\s+\(default\))?(\s|$)", line)
        if m:
            subcommands.append(m.group(1))
            if m.group(2):
                default = m.group(1)
    positionals = any(l.strip() for l in sections.get("ARGUMENTS", []))
    return {"options": options, "subcommands": subcommands, "default": default, "positionals": positionals}


def check_invocation(args, where, problems, help_tree, services):
    """One herald command line (without the program name)."""
    if help_tree is not None:
        path, rest = [], list(args)
        node = help_tree.node(path)
        while True:
            if rest and rest[0] in node["subcommands"]:
                path.append(rest.pop(0))
                node = help_tree.node(path)
            elif node["subcommands"] and (not rest or not rest[0].startswith("-")) and rest:
                problems.add(where, f"`herald {' '.join(args)}`: {rest[0]!r} is not a subcommand of `{' '.join(['herald', *path])}`"
                             f" ({', '.join(node['subcommands'])})")
                return
            elif node["subcommands"] and node["default"]:
                path.append(node["default"])
                node = help_tree.node(path)
            else:
                break
        i = 0
        while i < len(rest):
            token = rest[i]
            if token.startswith("-"):
                flag, _, inline = token.partition("=")
                if flag not in node["options"]:
                    problems.add(where, f"`herald {' '.join(args)}`: `{' '.join(['herald', *path])}` has no option {flag}")
                elif node["options"][flag]:
                    if not inline and (i + 1 >= len(rest) or rest[i + 1].startswith("--")):
                        problems.add(where, f"`herald {' '.join(args)}`: {flag} needs a value")
                    elif not inline:
                        i += 1
                elif inline:
                    problems.add(where, f"`herald {' '.join(args)}`: {flag} takes no value")
            elif not node["positionals"]:
                problems.add(where, f"`herald {' '.join(args)}`: unexpected argument {token!r}")
            i += 1
    # Values the help cannot check: the services and the port.
    for i, token in enumerate(args):
        flag, _, inline = token.partition("=")
        value = inline or (args[i + 1] if i + 1 < len(args) else "")
        if flag == "--services":
            unknown = [s for s in value.split(",") if s.strip() not in services + ["all"]]
            if unknown or not value:
                problems.add(where, f"`herald {' '.join(args)}`: --services names {unknown or value!r}; Herald has {', '.join(services)} (or all)")
        if flag == "--port" and not (value.isdigit() and 1 <= int(value) <= 65535):
            problems.add(where, f"`herald {' '.join(args)}`: --port {value!r} is not a port")


def is_herald_image(image):
    return image == "herald" or bool(re.search(r"(^|/)herald(:[^/]*)?$", image or "")) or "HERALD_IMAGE" in (image or "")


def invocations(files):
    """(where, args) for every herald command line in the files."""
    found = []
    dockerfile = files.texts[DOCKERFILE]
    entry = re.findall(r"^ENTRYPOINT\s+(\[.*\])\s*$", dockerfile, re.M)
    cmd = re.findall(r"^CMD\s+(\[.*\])\s*$", dockerfile, re.M)
    entrypoint = json.loads(entry[-1]) if entry else []
    if entrypoint != ["herald"]:
        found.append((DOCKERFILE, None))  # reported by check_invocations
    found.append((f"{DOCKERFILE} CMD", json.loads(cmd[-1]) if cmd else []))
    for name, service in (files.compose.get("services") or {}).items():
        if is_herald_image(service.get("image", "")):
            command = service.get("command", json.loads(cmd[-1]) if cmd else [])
            if isinstance(command, str):
                command = command.split()
            found.append((f"{COMPOSE} services.{name}.command", command))
    for overlay, objects in files.rendered.items():
        for obj in objects:
            template = obj.get("spec", {}).get("template") if obj.get("kind") in ("Deployment", "Rollout", "Job") else None
            if not template:
                continue
            spec = template.get("spec", {})
            for container in spec.get("initContainers", []) + spec.get("containers", []):
                if is_herald_image(container.get("image")):
                    where = f"{OVERLAYS[overlay]}: {obj['kind']}/{obj['metadata']['name']} container {container['name']}"
                    if container.get("command") not in (None, ["herald"]):
                        found.append((where, None))
                    found.append((where, container.get("args", [])))
    return found


def check_invocations(files, problems, help_tree, services):
    count = 0
    for where, args in invocations(files):
        if args is None:
            problems.add(where, "the Herald image's entrypoint must stay [\"herald\"] (flags are checked against it)")
            continue
        check_invocation(args, where, problems, help_tree, services)
        count += 1
    return count


# --- 2. HERALD_* names ---------------------------------------------------------------------------------------

def check_settings(files, problems, sources):
    known = set(HERALD_NAME.findall(sources))
    for name in PENDING_SETTINGS:
        if name in known:
            problems.add("scripts/check-deploy-consistency.py", f"{name} is in Sources/ now: remove it from PENDING_SETTINGS")
    allowed = known | set(NOT_HERALD_SETTINGS) | set(PENDING_SETTINGS)
    used = set()
    for path, text in files.texts.items():
        for lineno, line in enumerate(text.splitlines(), 1):
            for name in HERALD_NAME.findall(line):
                used.add(name)
                if name not in allowed:
                    close = sorted(k for k in known if k.split("_")[1:2] == name.split("_")[1:2])[:4]
                    hint = f" (Sources/ has {', '.join(close)})" if close else ""
                    problems.add(f"{path}:{lineno}", f"{name} is not a variable Herald reads{hint}")
    compose_only = [n for n, why in NOT_HERALD_SETTINGS.items() if why.startswith("compose:")]
    compose = files.compose
    for service in (compose.get("services") or {}).values():
        environment = service.get("environment") or {}
        keys = environment.keys() if isinstance(environment, dict) else [e.split("=", 1)[0] for e in environment]
        for key in keys:
            if key in compose_only:
                problems.add(COMPOSE, f"{key} is a compose substitution variable, not one of Herald's settings")
    return used


# --- 3. metric names -----------------------------------------------------------------------------------------

def check_metrics(files, problems, sources):
    """PromQL in the rendered AnalysisTemplates: every name in it. Other text: names followed by `{` or ending like
    a metric (_total, _seconds, _bytes, _info), so that words such as herald_users (an nginx upstream) are not taken
    for metrics."""
    known = set(re.findall(r'"((?:herald|process)_[a-z0-9_]+)"', sources))
    used = set()

    def check(name, where):
        base = name
        for suffix in METRIC_SUFFIXES:
            if name.endswith(suffix) and name[: -len(suffix)] in known:
                base = name[: -len(suffix)]
        used.add(base)
        if base not in known:
            problems.add(where, f"{base} is not a metric Herald exports (Sources/ has {', '.join(sorted(known))})")

    for overlay, objects in files.rendered.items():
        for obj in objects:
            if obj.get("kind") != "AnalysisTemplate":
                continue
            for metric in obj["spec"].get("metrics", []):
                for provider in (metric.get("provider") or {}).values():
                    query = (provider or {}).get("query", "")
                    for name in set(METRIC_NAME.findall(query)):
                        check(name, f"{OVERLAYS[overlay]}: {obj['kind']}/{obj['metadata']['name']} metric {metric.get('name')}")
    for path, text in files.texts.items():
        for lineno, line in enumerate(text.splitlines(), 1):
            for match in METRIC_IN_TEXT.finditer(line):
                check(match.group(0), f"{path}:{lineno}")
    return used


# --- 4. the gateway's rewrites -------------------------------------------------------------------------------

def rewrites(files):
    """(where, command text, {address: host:port of the process}, runs_service(host) -> service or None)."""
    result = []
    compose = files.compose
    services = compose.get("services") or {}
    nginx = next(((n, s) for n, s in services.items() if "nginx" in str(s.get("image", ""))), None)
    if nginx:
        command = " ".join(nginx[1].get("command") or [])

        def compose_runs(host, services=services):
            service = services.get(host)
            if not service or not is_herald_image(service.get("image", "")):
                return None
            args = service.get("command") or []
            return args[args.index("--services") + 1] if "--services" in args else None
        result.append((f"{COMPOSE} services.{nginx[0]}.command", command, compose_runs))
    for overlay, objects in files.rendered.items():
        gateway = next((o for o in objects if o["kind"] == "Deployment" and o["metadata"]["name"] == "herald-gateway"), None)
        if not gateway:
            continue
        container = gateway["spec"]["template"]["spec"]["containers"][0]
        command = " ".join((container.get("command") or []) + (container.get("args") or []))

        def k8s_runs(host, objects=objects):
            service = next((o for o in objects if o["kind"] == "Service" and o["metadata"]["name"] == host), None)
            if not service:
                return None
            selector = service["spec"].get("selector", {})
            for obj in objects:
                if obj["kind"] != "Deployment":
                    continue
                labels = obj["spec"]["template"]["metadata"].get("labels", {})
                if all(labels.get(k) == v for k, v in selector.items()):
                    args = obj["spec"]["template"]["spec"]["containers"][0].get("args") or []
                    if "--services" in args:
                        return args[args.index("--services") + 1]
            return None
        result.append((f"{OVERLAYS[overlay]}: Deployment/herald-gateway", command, k8s_runs))
    return result


def apply_sed(expressions, text):
    out = []
    for line in text.splitlines(keepends=True):
        for pattern, replacement in expressions:
            line = re.sub(pattern, replacement.replace("\\", "\\\\"), line, count=1)
        out.append(line)
    return "".join(out)


def check_gateway(files, problems, services):
    conf = files.texts[HERALD_CONF]
    upstreams = dict(UPSTREAM.findall(conf))  # service -> 127.0.0.1:8081
    if sorted(upstreams) != sorted(services):
        problems.add(HERALD_CONF, f"upstreams herald_{{{', '.join(sorted(upstreams))}}} are not Herald's services {services}")
    rendered = []
    for where, command, runs in rewrites(files):
        expressions = [(p, r) for p, r in SED_EXPRESSION.findall(command)]
        if not expressions:
            problems.add(where, "no sed rewrite of herald.conf's upstream addresses")
            continue
        for service, address in upstreams.items():
            matching = [(p, r) for p, r in expressions if re.search(p, f"server {address};")]
            if not matching:
                problems.add(where, f"herald.conf's upstream herald_{service} ({address}) is not rewritten")
                continue
            target = matching[0][1].rstrip(";")
            host = target.rsplit(":", 1)[0]
            runs_service = runs(host)
            if runs_service != service:
                problems.add(where, f"upstream herald_{service} is rewritten to {target}, which runs "
                                    f"{'--services ' + runs_service if runs_service else 'no Herald service'}")
            if not target.endswith(":8080"):
                problems.add(where, f"upstream herald_{service} is rewritten to {target}, not port 8080 (HERALD_PORT's default)")
        for p, _ in expressions:
            if not re.search(p, conf):
                problems.add(where, f"the rewrite s/{p}/ matches nothing in {HERALD_CONF}")
        result = apply_sed(expressions, conf)
        if "127.0.0.1:808" in result:
            problems.add(where, "the rewritten herald.conf still holds a 127.0.0.1:808x address")
        rendered.append((where, result))
    return rendered


def nginx_test(rendered, problems):
    """nginx -t on each rewritten herald.conf, names resolved to 127.0.0.1 (nothing resolves names here)."""
    nginx, openssl = shutil.which("nginx") or "/usr/sbin/nginx", shutil.which("openssl")
    if not os.path.exists(nginx) or not openssl:
        return "skipped (nginx or openssl not installed)"
    with tempfile.TemporaryDirectory() as work:
        subprocess.run([openssl, "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
                        "-days", "1", "-subj", "/CN=localhost", "-keyout", f"{work}/server.key", "-out", f"{work}/server.pem"],
                       check=True, capture_output=True)
        for i, (where, conf) in enumerate(rendered):
            conf = re.sub(r"server\s+[a-z][a-z0-9-]*:(\d+);", r"server 127.0.0.1:\1;", conf)
            conf = (conf.replace("/etc/herald/tls/", f"{work}/").replace("/var/cache/nginx/herald", f"{work}/cache{i}")
                    .replace("listen 443 ", "listen 127.0.0.1:443 ").replace("listen 8443 ", "listen 127.0.0.1:8443 "))
            with open(f"{work}/herald{i}.conf", "w") as f:
                f.write(conf)
            with open(f"{work}/nginx{i}.conf", "w") as f:
                f.write(f"pid {work}/nginx{i}.pid;\nerror_log stderr;\nevents {{}}\n"
                        f"http {{\n  client_body_temp_path {work}/body; proxy_temp_path {work}/proxy;\n"
                        f"  fastcgi_temp_path {work}/fcgi; uwsgi_temp_path {work}/uwsgi; scgi_temp_path {work}/scgi;\n"
                        f"  access_log off;\n  include {work}/herald{i}.conf;\n}}\n")
            result = subprocess.run([nginx, "-t", "-q", "-p", work, "-c", f"{work}/nginx{i}.conf"], capture_output=True, text=True)
            if result.returncode != 0:
                problems.add(where, f"nginx -t rejects the rewritten herald.conf: {result.stderr.strip()[-400:]}")
    return f"nginx -t accepted {len(rendered)} rewritten herald.conf"


# --- 5. numbers that must agree ------------------------------------------------------------------------------

def check_numbers(files, problems):
    dockerfile = files.texts[DOCKERFILE]
    exposed = set(re.findall(r"\d+", " ".join(re.findall(r"^EXPOSE\s+(.*)$", dockerfile, re.M))))
    volumes = re.findall(r'^VOLUME\s+\["([^"]+)"\]', dockerfile, re.M)
    user = re.findall(r"^USER\s+(\d+)(?::(\d+))?\s*$", dockerfile, re.M)
    data_dir = re.findall(r"HERALD_DATA_DIR=(\S+)", dockerfile)
    if "8080" not in exposed:
        problems.add(DOCKERFILE, "EXPOSE does not list the API port 8080")
    if not user:
        problems.add(DOCKERFILE, "USER is not a numeric uid (Kubernetes' runAsNonRoot needs one)")
    if not data_dir or data_dir[-1] not in volumes:
        problems.add(DOCKERFILE, f"HERALD_DATA_DIR {data_dir} is not the VOLUME {volumes}")
    compose_env = {}
    for name, service in (files.compose.get("services") or {}).items():
        if is_herald_image(service.get("image", "")):
            environment = service.get("environment") or {}
            compose_env[name] = {str(k): str(v) for k, v in environment.items()}
    for name, env in compose_env.items():
        port = env.get("HERALD_METRICS_PORT")
        if port and port not in exposed:
            problems.add(COMPOSE, f"services.{name}: HERALD_METRICS_PORT {port} is not EXPOSEd by the Dockerfile ({sorted(exposed)})")
    for overlay, objects in files.rendered.items():
        config = {}
        for obj in objects:
            if obj["kind"] == "ConfigMap" and obj["metadata"]["name"].startswith("herald-config"):
                config = obj.get("data") or {}
        for obj in objects:
            if obj["kind"] != "Deployment":
                continue
            pod = obj["spec"]["template"]
            for container in pod["spec"].get("containers", []):
                if not is_herald_image(container.get("image")):
                    continue
                where = f"{OVERLAYS[overlay]}: Deployment/{obj['metadata']['name']}"
                env = dict(config)
                env.update({e["name"]: e.get("value") for e in container.get("env", []) if "value" in e})
                ports = {p.get("name"): str(p["containerPort"]) for p in container.get("ports", [])}
                metrics = env.get("HERALD_METRICS_PORT")
                annotation = pod["metadata"].get("annotations", {}).get("prometheus.io/port")
                if metrics is None:
                    problems.add(where, "HERALD_METRICS_PORT is not set: the pods would serve no /metrics port")
                elif not (metrics == ports.get("metrics") == annotation) or metrics not in exposed:
                    problems.add(where, f"HERALD_METRICS_PORT {metrics}, the container port 'metrics' {ports.get('metrics')},"
                                        f" the prometheus.io/port annotation {annotation} and EXPOSE {sorted(exposed)} disagree")
                api_port = env.get("HERALD_PORT", "8080")
                if ports.get("http") != api_port:
                    problems.add(where, f"the container port 'http' {ports.get('http')} is not the port Herald listens on ({api_port})")
                for probe, path in (("livenessProbe", "/healthz"), ("readinessProbe", "/readyz")):
                    get = (container.get(probe) or {}).get("httpGet") or {}
                    if get.get("path") != path or str(get.get("port")) not in (api_port, "http"):
                        problems.add(where, f"{probe} is not GET {path} on port {api_port}")
                mounts = {m["mountPath"] for m in container.get("volumeMounts", [])}
                if env.get("HERALD_DATA_DIR", data_dir[-1] if data_dir else None) not in mounts:
                    problems.add(where, f"HERALD_DATA_DIR {env.get('HERALD_DATA_DIR')} is not a mounted volume (the root file system is read-only)")
                run_as = (pod["spec"].get("securityContext") or {}).get("runAsUser")
                if user and str(run_as) != user[-1][0]:
                    problems.add(where, f"runAsUser {run_as} is not the image's USER {user[-1][0]}")


# --- 6. compose's order --------------------------------------------------------------------------------------

def check_compose(files, problems):
    compose = files.compose
    services = compose.get("services") or {}
    declared_secrets = set((compose.get("secrets") or {}).keys())
    declared_volumes = set((compose.get("volumes") or {}).keys())
    for name, service in services.items():
        where = f"{COMPOSE} services.{name}"
        depends = service.get("depends_on") or {}
        if isinstance(depends, list):
            depends = {d: {"condition": "service_started"} for d in depends}
        for target in depends:
            if target not in services:
                problems.add(where, f"depends_on names {target!r}, which is no service")
        for secret in service.get("secrets") or []:
            secret_name = secret if isinstance(secret, str) else secret.get("source")
            if secret_name not in declared_secrets:
                problems.add(where, f"uses secret {secret_name!r}, which is not declared")
        for volume in service.get("volumes") or []:
            source = volume.split(":", 1)[0] if isinstance(volume, str) else volume.get("source")
            if source and not source.startswith((".", "/")) and source not in declared_volumes:
                problems.add(where, f"mounts volume {source!r}, which is not declared")
            elif source and source.startswith(".") and not os.path.exists(os.path.join(ROOT, "deploy/compose", source)) \
                    and source.rstrip("/") not in ("./tls", "./secrets"):
                problems.add(where, f"mounts {source}, which does not exist")
        for env_file in service.get("env_file") or []:
            path = env_file if isinstance(env_file, str) else env_file.get("path")
            example = os.path.join(ROOT, "deploy/compose", path) + ".example"
            if f"deploy/compose/{os.path.normpath(path)}.example" not in files.texts and not os.path.exists(example):
                problems.add(where, f"env_file {path} has no {os.path.basename(path)}.example to start from")
        if not is_herald_image(service.get("image", "")):
            continue
        command = service.get("command") or []
        if "serve" in command:
            if "--no-migrate" not in command:
                problems.add(where, "a split deployment's services start with --no-migrate (the migrate service migrates)")
            if depends.get("migrate", {}).get("condition") != "service_completed_successfully":
                problems.add(where, "does not wait for the migrate service to complete successfully")
            for store in ("postgres", "redis"):
                if depends.get(store, {}).get("condition") != "service_healthy":
                    problems.add(where, f"does not wait for {store} to be healthy")
            if (service.get("healthcheck") or {}).get("disable"):
                problems.add(where, "has no healthcheck")
        if "migrate" in command and depends.get("postgres", {}).get("condition") != "service_healthy":
            problems.add(where, "the migration does not wait for postgres to be healthy")
    for store in ("postgres", "redis"):
        if store not in services or "healthcheck" not in services[store]:
            problems.add(COMPOSE, f"services.{store} is missing or has no healthcheck")


# --- running -------------------------------------------------------------------------------------------------

def check_all(files, help_tree, sources, services, nginx=True):
    problems = Problems()
    count = check_invocations(files, problems, help_tree, services)
    used = check_settings(files, problems, sources)
    metrics = check_metrics(files, problems, sources)
    rendered_confs = check_gateway(files, problems, services)
    check_numbers(files, problems)
    check_compose(files, problems)
    note = nginx_test(rendered_confs, problems) if nginx and not problems else "nginx -t not run"
    return problems, {"invocations": count, "settings": len(used), "metrics": sorted(metrics), "nginx": note}


def self_test(files, help_tree, sources, services):
    problems, _ = check_all(files, help_tree, sources, services, nginx=False)
    if problems:
        print("self-test: the files themselves have problems:\n  " + "\n  ".join(problems))
        return False

    def compose_edit(old, new):
        def edit(f):
            assert old in f.texts[COMPOSE], old
            f.texts[COMPOSE] = f.texts[COMPOSE].replace(old, new, 1)
        return edit

    def text_edit(path, old, new):
        def edit(f):
            assert old in f.texts[path], (path, old)
            f.texts[path] = f.texts[path].replace(old, new, 1)
        return edit

    def k8s_container(overlay, deployment, fn, init=False):
        def edit(f):
            obj = next(o for o in f.rendered[overlay] if o["kind"] == "Deployment" and o["metadata"]["name"] == deployment)
            fn(obj["spec"]["template"]["spec"]["initContainers" if init else "containers"][0])
        return edit

    def config_edit(overlay, fn):
        def edit(f):
            fn(next(o for o in f.rendered[overlay] if o["kind"] == "ConfigMap" and o["metadata"]["name"].startswith("herald-config"))["data"])
        return edit

    def analysis_edit(fn):
        def edit(f):
            template = next(o for o in f.rendered["production"] if o["kind"] == "AnalysisTemplate")
            prometheus = template["spec"]["metrics"][0]["provider"]["prometheus"]
            prometheus["query"] = fn(prometheus["query"])
        return edit

    cases = [
        ("a misspelt variable in compose (HERALD_METRICS_PROT)", "HERALD_METRICS_PROT",
         compose_edit("HERALD_METRICS_PORT:", "HERALD_METRICS_PROT:")),
        ("a misspelt variable in a Kubernetes manifest (HERALD_REDIS_URI)", "HERALD_REDIS_URI",
         text_edit("deploy/k8s/base/users.yaml", "- name: HERALD_REDIS_URL", "- name: HERALD_REDIS_URI")),
        ("a misspelt variable in the Dockerfile (HERALD_DATADIR)", "HERALD_DATADIR",
         text_edit(DOCKERFILE, "HERALD_DATA_DIR=/var/lib/herald", "HERALD_DATADIR=/var/lib/herald")),
        ("a compose substitution variable used as a setting", "compose substitution variable",
         compose_edit("HERALD_LOG_FORMAT: json", "HERALD_LOG_FORMAT: json\n    HERALD_SUBNET: 10.0.0.0/8")),
        ("an unknown service in --services (Kubernetes)", "--services names",
         k8s_container("production", "herald-billing", lambda c: c.__setitem__("args", ["serve", "--services", "bill", "--host", "0.0.0.0", "--no-migrate"]))),
        ("an unknown metric in the rendered AnalysisTemplate's query", "herald_http_errors_total is not a metric",
         analysis_edit(lambda q: q.replace("herald_http_requests_total{status", "herald_http_errors_total{status"))),
        ("an unknown metric in a manifest's text", "herald_http_request_total is not a metric",
         text_edit("deploy/k8s/overlays/production/analysis-template.yaml", "herald_http_requests_total{status", "herald_http_request_total{status")),
        ("crossed gateway upstreams (users sent to billing)", "upstream herald_users",
         compose_edit("s/127\\.0\\.0\\.1:8081;/herald-users:8080;/", "s/127\\.0\\.0\\.1:8081;/herald-billing:8080;/")),
        ("an upstream left out of the gateway's rewrite", "is not rewritten",
         k8s_container("staging", "herald-gateway", lambda c: c.__setitem__("args", [c["args"][0].replace("-e 's/127\\.0\\.0\\.1:8083;/herald-analytics:8080;/'", "")]))),
        ("a metrics port that disagrees with the container port", "disagree",
         config_edit("staging", lambda d: d.__setitem__("HERALD_METRICS_PORT", "9465"))),
        ("a readiness probe on /healthz", "readinessProbe",
         k8s_container("base", "herald-users", lambda c: c["readinessProbe"]["httpGet"].__setitem__("path", "/healthz"))),
        ("a service started without waiting for the migration", "migrate service",
         compose_edit("""  herald-users:
    <<: *herald
    command: ["serve", "--services", "users", "--host", "0.0.0.0", "--no-migrate"]
    depends_on: *herald-service-dependencies""", """  herald-users:
    <<: *herald
    command: ["serve", "--services", "users", "--host", "0.0.0.0", "--no-migrate"]
    depends_on:
      postgres:
        condition: service_healthy
      redis:
        condition: service_healthy""")),
    ]
    if help_tree is not None:
        cases += [
            ("a misspelt flag in compose (--no-migrat)", "no option --no-migrat",
             compose_edit('"users", "--host", "0.0.0.0", "--no-migrate"]', '"users", "--host", "0.0.0.0", "--no-migrat"]')),
            ("a misspelt flag in Kubernetes (--service)", "no option --service",
             k8s_container("production", "herald-analytics", lambda c: c.__setitem__("args", ["serve", "--service", "analytics", "--host", "0.0.0.0", "--no-migrate"]))),
            ("a flag missing its value", "--host needs a value",
             k8s_container("staging", "herald-users", lambda c: c.__setitem__("args", ["serve", "--services", "users", "--no-migrate", "--host"]))),
            ("a flag of another subcommand (migrate --services)", "no option --services",
             k8s_container("base", "herald-users", lambda c: c.__setitem__("args", ["migrate", "--services", "users"]), init=True)),
            ("an unknown subcommand in the Dockerfile (server)", "'server' is not a subcommand",
             text_edit(DOCKERFILE, 'CMD ["serve", "--host", "0.0.0.0"]', 'CMD ["server", "--host", "0.0.0.0"]')),
        ]
    else:
        print("self-test: HERALD_BIN is not set: the cases for misspelt flags and subcommands are skipped")
    ok = True
    for description, expected, edit in cases:
        broken = files.copy()
        edit(broken)
        problems, _ = check_all(broken, help_tree, sources, services, nginx=False)
        caught = [p for p in problems if expected in p]
        if caught:
            print(f"self-test: caught {description}: {caught[0][:170]}")
        else:
            ok = False
            print(f"self-test: NOT CAUGHT: {description}; problems: {problems[:3]}")
    return ok


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rendered", help="directory with base.yaml, staging.yaml, production.yaml (check-k8s-manifests.py --out)")
    parser.add_argument("--self-test", action="store_true", help="prove that each kind of mistake is caught")
    args = parser.parse_args()
    sources = sources_text()
    services = service_names(sources)
    binary = os.environ.get("HERALD_BIN")
    help_tree = None
    if binary:
        if not os.access(binary, os.X_OK):
            print(f"check-deploy-consistency: HERALD_BIN={binary} is not an executable", file=sys.stderr)
            return 1
        help_tree = HelpTree(binary)
    else:
        print("check-deploy-consistency: HERALD_BIN is not set: herald subcommands and flags are NOT checked against the "
              "binary (set HERALD_BIN=.build/debug/herald after `swift build --product herald`)")
    files = Files(args.rendered)
    try:
        if args.self_test:
            return 0 if self_test(files, help_tree, sources, services) else 1
        problems, summary = check_all(files, help_tree, sources, services)
    except RuntimeError as e:
        print(f"check-deploy-consistency: {e}", file=sys.stderr)
        return 1
    if problems:
        print("check-deploy-consistency: problems:\n  " + "\n  ".join(problems), file=sys.stderr)
        return 1
    flags = f"{summary['invocations']} herald command lines checked against {binary}" if binary else \
        f"{summary['invocations']} herald command lines (services only; flags not checked)"
    print(f"check-deploy-consistency: ok ({flags}; {summary['settings']} HERALD_* names, all known; "
          f"metrics {', '.join(summary['metrics'])}; {summary['nginx']})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
