#!/usr/bin/env python3
"""Checks Herald's Prometheus rules and Grafana dashboards against each other and against Herald's metrics.

    scripts/check-observability.py                          rules, rule tests, dashboards, metric names
    scripts/check-observability.py --metrics-file FILE      … and every metric they use is in FILE, a scrape of a
                                                             live Herald (Prometheus text format)
    scripts/check-observability.py --self-test              prove that the checks catch what they should

Run from anywhere; paths are the repository's. What it checks:

  (a) `promtool check rules deploy/prometheus/alerts.yml`, `promtool test rules deploy/prometheus/alerts_test.yml`,
      `promtool check config --syntax-only deploy/prometheus/prometheus.yml`; every alert has a `severity` of page or
      ticket and the annotations summary, description and runbook_url, whose file exists. Without promtool (Debian's
      `prometheus` package; scripts/test.sh installs it) the script says so and exits 2.
  (b) each dashboard in deploy/grafana/ is JSON with panels, each panel (rows aside) has targets with a non-empty
      `expr`, on the `${DS_PROMETHEUS}` data source variable; every expr parses (promtool, with Grafana's variables
      replaced).
  (c) every metric name used by the rules and dashboards (PromQL identifiers that are not functions, keywords,
      label names, strings or durations; `_bucket`, `_sum`, `_count` folded into their histogram; recording rules
      defined in alerts.yml, `up` and `ALERTS` left out) is one of Herald's metrics (METRICS below, the contract with
      the /metrics endpoint), used with that metric's labels and documented values; a `route` is an OpenAPI path.
      With --metrics-file, every one of them must also appear in the scrape, with the labels the contract gives it
      and the histogram buckets the rules read spelled the same; no `route` may be a concrete path; and the scrape
      must parse (`promtool check metrics`: its lint findings, such as a missing HELP text, are printed only).

Exit status: 0 when everything holds, 1 when something does not (each problem is printed), 2 when a tool is missing.
"""
import argparse
import glob
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
RULES = ROOT / "deploy/prometheus/alerts.yml"
RULE_TESTS = ROOT / "deploy/prometheus/alerts_test.yml"
PROMETHEUS_CONFIG = ROOT / "deploy/prometheus/prometheus.yml"
DASHBOARDS = ROOT / "deploy/grafana"
OPENAPI = ROOT / "Sources/HeraldApp/Resources/openapi.json"
OBSERVABILITY_DOC = ROOT / "docs/OBSERVABILITY.md"

# `none`: a request no route answered (route="unmatched").
SERVICES = {"users", "notifications", "analytics", "integrations", "billing", "operational", "none"}
# The histogram's bucket boundaries, compared as numbers here; a scrape spells them as Swift prints them ("1.0"), and
# Prometheus 2 matches `le` as text, so --metrics-file checks the spelling the rules use is the scrape's.
BUCKETS = {0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, float("inf")}

# The metrics Herald's /metrics endpoint exposes: type, labels, and the values a label may take (None: any).
METRICS = {
    "herald_http_requests_total": ("counter", {"service": SERVICES, "method": None, "route": None, "status": None}),
    "herald_http_request_duration_seconds": ("histogram", {"service": SERVICES, "method": None, "route": None}),
    "herald_bus_lag_events": ("gauge", {"group": None}),
    "herald_bus_dead_letters": ("gauge", {"group": None}),
    "herald_webhook_deliveries_total": ("counter", {"outcome": {"delivered", "failed"}}),
    "herald_beacon_events_total": ("counter", {"outcome": {"accepted", "bot", "refused", "failed"}}),
    "herald_db_pool_connections": ("gauge", {"state": {"in_use", "waiting", "capacity"}}),
    "herald_build_info": ("gauge", {"version": None}),
    "process_resident_memory_bytes": ("gauge", {}),
    "process_cpu_seconds_total": ("counter", {}),
    "process_open_fds": ("gauge", {}),
    "process_start_time_seconds": ("gauge", {}),
}
# Labels Prometheus adds to every scraped series.
TARGET_LABELS = {"job", "instance"}
# Series Prometheus makes itself.
SYNTHETIC = {"up", "ALERTS", "ALERTS_FOR_STATE", "scrape_duration_seconds", "scrape_samples_scraped",
             "scrape_samples_post_metric_relabeling", "scrape_series_added"}
HISTOGRAM_SUFFIXES = ("_bucket", "_sum", "_count")

AGGREGATIONS = {"sum", "min", "max", "avg", "group", "stddev", "stdvar", "count", "count_values", "bottomk", "topk",
                "quantile", "limitk", "limit_ratio"}
FUNCTIONS = {
    "abs", "absent", "absent_over_time", "acos", "acosh", "asin", "asinh", "atan", "atanh", "avg_over_time", "ceil",
    "changes", "clamp", "clamp_max", "clamp_min", "cos", "cosh", "count_over_time", "day_of_month", "day_of_week",
    "day_of_year", "days_in_month", "deg", "delta", "deriv", "exp", "floor", "histogram_avg", "histogram_count",
    "histogram_fraction", "histogram_quantile", "histogram_stddev", "histogram_stdvar", "histogram_sum", "holt_winters",
    "double_exponential_smoothing", "hour", "idelta", "increase", "irate", "label_join", "label_replace",
    "last_over_time", "ln", "log10", "log2", "mad_over_time", "max_over_time", "min_over_time", "minute", "month", "pi",
    "predict_linear", "present_over_time", "quantile_over_time", "rad", "rate", "resets", "round", "scalar", "sgn",
    "sin", "sinh", "sort", "sort_by_label", "sort_by_label_desc", "sort_desc", "sqrt", "stddev_over_time",
    "stdvar_over_time", "sum_over_time", "tan", "tanh", "time", "timestamp", "vector", "year",
}
# Keywords whose parenthesised argument is a list of label names.
LABEL_LIST_KEYWORDS = {"by", "without", "on", "ignoring", "group_left", "group_right"}
KEYWORDS = LABEL_LIST_KEYWORDS | {"and", "or", "unless", "bool", "offset", "atan2", "inf", "nan", "start", "end"}

IDENT = re.compile(r"[A-Za-z_:][A-Za-z0-9_:]*")
NUMBER = re.compile(r"0[xX][0-9a-fA-F]+|[0-9]*\.?[0-9]+(?:[eE][+-]?[0-9]+)?[A-Za-z0-9_.]*")
MATCHER = re.compile(r'\s*([A-Za-z_][A-Za-z0-9_]*)\s*(=~|!~|!=|=)\s*("(?:[^"\\]|\\.)*"|\'(?:[^\'\\]|\\.)*\'|`[^`]*`)\s*,?')


# --- PromQL ------------------------------------------------------------------------------------------------------
class Selector:
    """A metric name as used in an expression, with its label matchers [(label, op, value)]."""

    def __init__(self, name, matchers):
        self.name = name
        self.matchers = matchers

    def __repr__(self):
        return f"{self.name}{{{', '.join(f'{l}{o}{v!r}' for l, o, v in self.matchers)}}}"


def unquote(text):
    if text[0] == "`":
        return text[1:-1]
    body = text[1:-1]
    return re.sub(r"\\(.)", lambda m: {"n": "\n", "t": "\t"}.get(m.group(1), m.group(1)), body)


def parse_matchers(body):
    matchers = []
    position = 0
    while position < len(body):
        if body[position:].strip() == "":
            break
        match = MATCHER.match(body, position)
        if not match:
            raise ValueError(f"cannot read the label matchers {{{body}}}")
        matchers.append((match.group(1), match.group(2), unquote(match.group(3))))
        position = match.end()
    return matchers


def skip_string(expr, i):
    quote = expr[i]
    i += 1
    while i < len(expr) and expr[i] != quote:
        i += 2 if expr[i] == "\\" and quote != "`" else 1
    return i + 1


def skip_group(expr, i, opening, closing):
    """The index after the bracket closing the one at i (strings inside are skipped)."""
    depth = 0
    while i < len(expr):
        char = expr[i]
        if char in "\"'`":
            i = skip_string(expr, i)
            continue
        if char == opening:
            depth += 1
        elif char == closing:
            depth -= 1
            if depth == 0:
                return i + 1
        i += 1
    raise ValueError(f"unbalanced {opening}{closing} in {expr!r}")


def next_significant(expr, i):
    while i < len(expr) and expr[i].isspace():
        i += 1
    return i


def selectors(expr):
    """Every metric selector in a PromQL expression (Grafana's $variables allowed), and the functions it calls.

    Returns (selectors, functions): identifiers followed by `(` are functions or aggregations; `by (…)` and the other
    label-list keywords skip their list; strings, `[…]` ranges, numbers, durations and `$variables` are not names."""
    found, functions = [], []
    i = 0
    while i < len(expr):
        char = expr[i]
        if char.isspace():
            i += 1
        elif char == "#":
            newline = expr.find("\n", i)
            i = len(expr) if newline < 0 else newline
        elif char in "\"'`":
            i = skip_string(expr, i)
        elif char == "[":
            i = skip_group(expr, i, "[", "]")
        elif char == "$":
            i += 1
            if i < len(expr) and expr[i] == "{":
                i = skip_group(expr, i, "{", "}")
            else:
                while i < len(expr) and (expr[i].isalnum() or expr[i] == "_"):
                    i += 1
        elif char == "{":
            # A selector without a name: {__name__="…", …}.
            end = skip_group(expr, i, "{", "}")
            matchers = parse_matchers(expr[i + 1:end - 1])
            names = [v for l, o, v in matchers if l == "__name__" and o == "="]
            if names:
                found.append(Selector(names[0], [m for m in matchers if m[0] != "__name__"]))
            i = end
        elif char.isdigit() or (char == "." and i + 1 < len(expr) and expr[i + 1].isdigit()):
            i = NUMBER.match(expr, i).end()
        elif IDENT.match(expr, i):
            word = IDENT.match(expr, i).group(0)
            i += len(word)
            after = next_significant(expr, i)
            if word.lower() in LABEL_LIST_KEYWORDS:
                if after < len(expr) and expr[after] == "(":
                    i = skip_group(expr, after, "(", ")")
            elif word.lower() in KEYWORDS:
                pass
            elif after < len(expr) and expr[after] == "(":
                functions.append(word)
            elif word in AGGREGATIONS and after < len(expr) and expr[after:].split(None, 1)[0].lower().startswith(("by", "without")):
                functions.append(word)
            else:
                matchers = []
                if after < len(expr) and expr[after] == "{":
                    end = skip_group(expr, after, "{", "}")
                    matchers = parse_matchers(expr[after + 1:end - 1])
                    i = end
                found.append(Selector(word, matchers))
        else:
            i += 1
    return found, functions


def family(name):
    """The metric family a series name belongs to: a histogram's _bucket, _sum and _count fold into it."""
    for suffix in HISTOGRAM_SUFFIXES:
        if name.endswith(suffix):
            base = name[: -len(suffix)]
            if base in METRICS or suffix == "_bucket":
                return base
    return name


# --- reading the rules and dashboards ----------------------------------------------------------------------------
def load_yaml(path):
    try:
        import yaml
    except ImportError:
        print("PyYAML is needed to read the rules (apt-get install python3-yaml, or pip install pyyaml)")
        sys.exit(2)
    with open(path) as f:
        return yaml.safe_load(f)


def rule_expressions(rules):
    """(where, expr) of every rule, and the names of the recording rules."""
    exprs, recorded = [], set()
    for group in rules.get("groups", []):
        for rule in group.get("rules", []):
            name = rule.get("record") or rule.get("alert")
            exprs.append((f"alerts.yml {group['name']}/{name}", str(rule.get("expr", ""))))
            if rule.get("record"):
                recorded.add(rule["record"])
    return exprs, recorded


def dashboard_panels(dashboard):
    """Every panel, rows' nested panels included."""
    for panel in dashboard.get("panels", []):
        yield panel
        for inner in panel.get("panels", []) or []:
            yield inner


def check_dashboard(path, dashboard):
    """Problems with one dashboard's structure, and (where, expr) of its targets."""
    problems, exprs = [], []
    name = os.path.basename(path)
    variables = {v.get("name"): v for v in dashboard.get("templating", {}).get("list", [])}
    ds = variables.get("DS_PROMETHEUS")
    if not ds or ds.get("type") != "datasource" or ds.get("query") != "prometheus":
        problems.append(f"{name}: no DS_PROMETHEUS data source variable (type datasource, query prometheus)")
    if not isinstance(dashboard.get("schemaVersion"), int) or dashboard["schemaVersion"] < 36:
        problems.append(f"{name}: schemaVersion should be 36 or later (got {dashboard.get('schemaVersion')})")
    if not dashboard.get("uid") or not dashboard.get("title"):
        problems.append(f"{name}: a dashboard needs a uid and a title")
    panels = list(dashboard_panels(dashboard))
    if not [p for p in panels if p.get("type") != "row"]:
        problems.append(f"{name}: no panels")
    ids = [p.get("id") for p in panels]
    if len(ids) != len(set(ids)):
        problems.append(f"{name}: panel ids repeat")
    for panel in panels:
        if panel.get("type") in ("row", "text"):
            continue
        title = panel.get("title") or f"panel {panel.get('id')}"
        if "gridPos" not in panel:
            problems.append(f"{name}: {title}: no gridPos")
        if (panel.get("datasource") or {}).get("uid") != "${DS_PROMETHEUS}":
            problems.append(f"{name}: {title}: its datasource is not ${{DS_PROMETHEUS}}")
        targets = panel.get("targets") or []
        if not targets:
            problems.append(f"{name}: {title}: no targets")
        for target in targets:
            expr = target.get("expr")
            if not isinstance(expr, str) or not expr.strip():
                problems.append(f"{name}: {title}: target {target.get('refId')} has no expr")
                continue
            if (target.get("datasource") or panel.get("datasource") or {}).get("uid") != "${DS_PROMETHEUS}":
                problems.append(f"{name}: {title}: target {target.get('refId')} is not on ${{DS_PROMETHEUS}}")
            exprs.append((f"{name} {title} ({target.get('refId')})", expr))
    return problems, exprs


def load_dashboards():
    problems, exprs = [], []
    paths = sorted(glob.glob(str(DASHBOARDS / "*.json")))
    if not paths:
        problems.append(f"no dashboards in {DASHBOARDS.relative_to(ROOT)}")
    for path in paths:
        try:
            with open(path) as f:
                dashboard = json.load(f)
        except (OSError, ValueError) as error:
            problems.append(f"{os.path.basename(path)}: not JSON: {error}")
            continue
        found, targets = check_dashboard(path, dashboard)
        problems += found
        exprs += targets
    return problems, exprs


def openapi_paths():
    try:
        with open(OPENAPI) as f:
            return set(json.load(f).get("paths", {}))
    except (OSError, ValueError):
        return None


def template_regex(path):
    """A regex matching concrete paths of an OpenAPI template (/sites/{siteId} matches /sites/0193…)."""
    return re.compile("^" + re.sub(r"\\\{[^}]*\\\}", "[^/]+", re.escape(path)) + "$")


# --- (c): metric names ---------------------------------------------------------------------------------------------
def check_names(exprs, recorded, routes):
    """Problems with the metrics a set of expressions uses, and the families they use."""
    problems, used = [], {}
    for where, expr in exprs:
        try:
            found, functions = selectors(expr)
        except ValueError as error:
            problems.append(f"{where}: {error}")
            continue
        for function in functions:
            if function not in FUNCTIONS and function not in AGGREGATIONS:
                problems.append(f"{where}: {function}() is not a PromQL function")
        for selector in found:
            name = selector.name
            if name in recorded or name in SYNTHETIC:
                continue
            base = family(name)
            used.setdefault(base, set()).add(where)
            spec = METRICS.get(base)
            if spec is None:
                problems.append(f"{where}: {name} is not one of Herald's metrics")
                continue
            kind, labels = spec
            if kind == "histogram" and name == base:
                problems.append(f"{where}: {name} is a histogram: use {name}_bucket, _sum or _count")
            if kind != "histogram" and name != base:
                problems.append(f"{where}: {name}: {base} is a {kind}, not a histogram")
            allowed = set(labels) | TARGET_LABELS | ({"le"} if name.endswith("_bucket") else set())
            for label, op, value in selector.matchers:
                if label not in allowed:
                    problems.append(f"{where}: {name} has no label {label} (it has {', '.join(sorted(labels)) or 'none'})")
                    continue
                if "$" in value:
                    continue
                known = labels.get(label)
                if label == "le":
                    if op in ("=", "!=") and _float(value) not in BUCKETS:
                        problems.append(f"{where}: {name}{{le{op}\"{value}\"}}: no such bucket (the buckets are "
                                        f"{', '.join(f'{b:g}' for b in sorted(BUCKETS))})")
                    continue
                if op in ("=", "!="):
                    values = [value]
                elif known is not None and label != "le" and re.fullmatch(r"\w+(\|\w+)*", value):
                    values = value.split("|")  # a regex that is a list of literal alternatives
                else:
                    continue
                for one in values:
                    if known is not None and one not in known:
                        problems.append(f"{where}: {name}{{{label}{op}\"{value}\"}}: {label} is one of {', '.join(sorted(known))}")
                    if label == "route" and routes is not None and one not in routes and one != "":
                        problems.append(f"{where}: route \"{one}\" is not a path of the OpenAPI document")
                    if label == "status" and op in ("=", "!=") and not re.fullmatch(r"[1-5][0-9][0-9]", one):
                        problems.append(f"{where}: status \"{one}\" is not an HTTP status code")
    return problems, used


# --- --metrics-file ------------------------------------------------------------------------------------------------
SAMPLE = re.compile(r"^([A-Za-z_:][A-Za-z0-9_:]*)(?:\{(.*)\})?\s+(\S+)(?:\s+-?\d+)?\s*$")
LABEL_PAIR = re.compile(r'\s*([A-Za-z_][A-Za-z0-9_]*)="((?:[^"\\]|\\.)*)"\s*,?')


def parse_exposition(text):
    """({family: type}, [(name, {label: value}, value)]) from the Prometheus text format."""
    types, samples = {}, []
    for number, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        if line.startswith("#"):
            parts = line.split(None, 3)
            if len(parts) >= 4 and parts[1] == "TYPE":
                types[parts[2]] = parts[3].strip()
            continue
        match = SAMPLE.match(line)
        if not match:
            raise ValueError(f"line {number} is not a sample: {line!r}")
        labels = {}
        body = match.group(2) or ""
        position = 0
        while position < len(body):
            pair = LABEL_PAIR.match(body, position)
            if not pair:
                raise ValueError(f"line {number}: cannot read the labels {{{body}}}")
            labels[pair.group(1)] = re.sub(r"\\(.)", lambda m: "\n" if m.group(1) == "n" else m.group(1), pair.group(2))
            position = pair.end()
        samples.append((match.group(1), labels, match.group(3)))
    return types, samples


def check_scrape(text, used, exprs, routes):
    """Problems with a scrape: metrics the rules and dashboards use that it lacks, labels, buckets, route values."""
    try:
        types, samples = parse_exposition(text)
    except ValueError as error:
        return [f"metrics file: {error}"]
    problems = []
    names = {name for name, _, _ in samples}
    present = set(types) | names | {family(n) for n in names}
    for base in sorted(used):
        if base not in present:
            problems.append(f"metrics file: {base} is missing (used by {', '.join(sorted(used[base])[:3])})")
    # Every label the contract gives a metric is on its samples.
    for name, spec_labels in ((n, s[1]) for n, s in METRICS.items()):
        series = [labels for sample, labels, _ in samples if family(sample) == name]
        for labels in series:
            missing = set(spec_labels) - set(labels)
            if missing:
                problems.append(f"metrics file: {name} has a series without {', '.join(sorted(missing))}: {labels}")
                break
        kind = types.get(name) or types.get(name + "_total")
        if series and kind and kind != "untyped" and kind != METRICS[name][0]:
            problems.append(f"metrics file: {name} is a {kind}, expected a {METRICS[name][0]}")
    # The buckets the rules and dashboards read exist, spelled the same (Prometheus compares label values as strings).
    for where, expr in exprs:
        try:
            found, _ = selectors(expr)
        except ValueError:
            continue
        for selector in found:
            if not selector.name.endswith("_bucket"):
                continue
            for label, op, value in selector.matchers:
                if label != "le" or op != "=":
                    continue
                les = {labels.get("le") for sample, labels, _ in samples if sample == selector.name}
                if les and value not in les:
                    same = [le for le in les if le and _float(le) == _float(value)]
                    hint = f" (the scrape spells it {same[0]!r}: Prometheus matches le as text)" if same else ""
                    problems.append(f"metrics file: {selector.name} has no le=\"{value}\" bucket{hint}; {where}")
    # Routes are templates: a concrete path in the label is a cardinality leak.
    if routes:
        templates = [(path, template_regex(path)) for path in routes if "{" in path]
        for sample, labels, _ in samples:
            route = labels.get("route")
            if family(sample) not in ("herald_http_requests_total", "herald_http_request_duration_seconds") or route is None:
                continue
            if route not in routes:
                concrete = [path for path, regex in templates if regex.match(route)]
                if concrete:
                    problems.append(f"metrics file: route=\"{route}\" is a concrete path; label it {concrete[0]!r}")
    return problems


def _float(text):
    try:
        return float(text.replace("Inf", "inf")) if isinstance(text, str) else float(text)
    except (TypeError, ValueError):
        return None


# --- (a) and (b) with promtool ------------------------------------------------------------------------------------
def run(command):
    result = subprocess.run(command, capture_output=True, text=True, cwd=ROOT)
    return result.returncode, (result.stdout + result.stderr).strip()


def check_rule_conventions(rules):
    problems = []
    for group in rules.get("groups", []):
        for rule in group.get("rules", []):
            if "alert" not in rule:
                continue
            name = rule["alert"]
            severity = (rule.get("labels") or {}).get("severity")
            if severity not in ("page", "ticket"):
                problems.append(f"alerts.yml {name}: severity must be page or ticket (got {severity!r})")
            annotations = rule.get("annotations") or {}
            for key in ("summary", "description", "runbook_url"):
                if not str(annotations.get(key, "")).strip():
                    problems.append(f"alerts.yml {name}: no {key} annotation")
            runbook = str(annotations.get("runbook_url", ""))
            if runbook and not re.fullmatch(r"docs/runbooks/[a-z0-9-]+\.md", runbook):
                problems.append(f"alerts.yml {name}: runbook_url {runbook!r} is not docs/runbooks/<file>.md")
            elif runbook and not (ROOT / runbook).is_file():
                problems.append(f"alerts.yml {name}: runbook {runbook} does not exist")
    return problems


def grafana_to_promql(expr):
    """A dashboard's expr with Grafana's variables replaced, so promtool can parse it."""
    expr = re.sub(r"\$(?:__rate_interval|__interval|__range|\{__rate_interval\}|\{__interval\}|\{__range\})", "5m", expr)
    expr = re.sub(r"\$\{[^}]*\}|\$[A-Za-z_][A-Za-z0-9_]*", ".*", expr)
    return expr


def check_with_promtool(dashboard_exprs):
    problems = []
    for command in (
        ["promtool", "check", "rules", str(RULES.relative_to(ROOT))],
        ["promtool", "test", "rules", str(RULE_TESTS.relative_to(ROOT))],
        ["promtool", "check", "config", "--syntax-only", str(PROMETHEUS_CONFIG.relative_to(ROOT))],
    ):
        code, output = run(command)
        print(f"$ {' '.join(command)}\n{output}")
        if code != 0:
            problems.append(f"{' '.join(command)} failed")
    # Parse every dashboard expression: as recording rules in a scratch file.
    import yaml
    rules = {"groups": [{"name": "dashboards", "rules": [
        {"record": f"dashboard:expr_{index}", "expr": grafana_to_promql(expr)} for index, (_, expr) in enumerate(dashboard_exprs)
    ]}]}
    with tempfile.NamedTemporaryFile("w", suffix=".yml", delete=False) as scratch:
        yaml.safe_dump(rules, scratch)
    try:
        code, output = run(["promtool", "check", "rules", "--lint=none", scratch.name])
    finally:
        os.unlink(scratch.name)
    if code != 0:
        for match in re.finditer(r"dashboard:expr_(\d+)", output):
            where, expr = dashboard_exprs[int(match.group(1))]
            problems.append(f"{where}: promtool cannot parse {expr!r}")
        problems.append("dashboard expressions: " + output.replace("\n", " "))
    else:
        print(f"promtool parsed the {len(dashboard_exprs)} dashboard expressions")
    return problems


def check_metrics_lint(path):
    """`promtool check metrics`: the scrape parses, and follows Prometheus's naming and HELP conventions."""
    with open(path) as scrape:
        result = subprocess.run(["promtool", "check", "metrics"], stdin=scrape, capture_output=True, text=True)
    code, output = result.returncode, (result.stdout + result.stderr).strip()
    if code == 3:
        # Lint findings only (a missing HELP text, a unit suffix): the scrape parses. Worth fixing, not failing on.
        print("promtool check metrics (lint, not failing the check):\n  " + output.replace("\n", "\n  "))
        return []
    if code != 0:
        return [f"promtool check metrics: {line}" for line in output.splitlines() if line.strip()] or ["promtool check metrics failed"]
    return []


def check_documented(used):
    try:
        text = OBSERVABILITY_DOC.read_text()
    except OSError:
        return [f"{OBSERVABILITY_DOC.relative_to(ROOT)} is missing"]
    return [f"docs/OBSERVABILITY.md does not describe {name}" for name in sorted(METRICS) if name not in text]


# --- main --------------------------------------------------------------------------------------------------------
def check(metrics_file=None, use_promtool=True):
    rules = load_yaml(RULES)
    rule_exprs, recorded = rule_expressions(rules)
    problems = check_rule_conventions(rules)
    dashboard_problems, dashboard_exprs = load_dashboards()
    problems += dashboard_problems
    if use_promtool:
        problems += check_with_promtool(dashboard_exprs)
    routes = openapi_paths()
    if routes is None:
        problems.append(f"cannot read {OPENAPI.relative_to(ROOT)} for the routes")
    exprs = rule_exprs + dashboard_exprs
    name_problems, used = check_names(exprs, recorded, routes)
    problems += name_problems
    problems += check_documented(used)
    print(f"\n{len(rule_exprs)} rule expressions and {len(dashboard_exprs)} dashboard expressions use these metrics:")
    for name in sorted(used):
        print(f"  {name}{'' if name in METRICS else '   <- not one of Herald metrics'}")
    unused = sorted(set(METRICS) - set(used))
    if unused:
        print(f"(not used by any rule or dashboard: {', '.join(unused)})")
    if metrics_file:
        try:
            text = Path(metrics_file).read_text()
        except OSError as error:
            problems.append(f"cannot read {metrics_file}: {error}")
        else:
            problems += check_scrape(text, used, exprs, routes)
            if use_promtool:
                problems += check_metrics_lint(metrics_file)
            if not any(p.startswith("metrics file") for p in problems):
                print(f"every metric used is in {metrics_file}")
    return problems


def self_test():
    failures = []

    def expect(condition, message):
        if not condition:
            failures.append(message)

    # Names: functions, keywords, label lists, strings, ranges, numbers, durations and Grafana variables are not names.
    found, functions = selectors(
        'sum by (route, le) (rate(herald_http_request_duration_seconds_bucket{route="/x", le="0.1"}[5m] offset 1h))'
        ' / on (job) group_left (version) herald_build_info > 1e3 and herald_made_up_total unless absent(up)'
        ' or label_replace(vector(1), "dst", "$1", "src", "(.*)") or max without (instance) (foo:bar:rate5m)'
        ' or rate(process_cpu_seconds_total{job=~"$job"}[$__rate_interval]) or {__name__="herald_bus_lag_events"}'
        ' or sum(rate(herald_beacon_events_total[${__range}])) by (outcome) or avg(x @ end())'
    )
    names = {s.name for s in found}
    expected = {"herald_http_request_duration_seconds_bucket", "herald_build_info", "herald_made_up_total", "up",
                "foo:bar:rate5m", "process_cpu_seconds_total", "herald_bus_lag_events", "herald_beacon_events_total", "x"}
    expect(names == expected, f"selectors found {sorted(names)}, expected {sorted(expected)}")
    expect({"sum", "rate", "absent", "label_replace", "vector", "max", "avg"} <= set(functions), f"functions {functions}")

    # An unknown metric, a misspelt label, a wrong value and a bare histogram are problems; recording rules and `up` are not.
    problems, used = check_names([
        ("t1", 'rate(herald_made_up_total[5m])'),
        ("t2", 'sum(rate(herald_http_requests_total{code="500"}[5m]))'),
        ("t3", 'herald_webhook_deliveries_total{outcome="dropped"}'),
        ("t4", 'herald_http_request_duration_seconds{route="/widget/v1/{publicKey}/feed"}'),
        ("t5", 'herald_http_requests_total{route="/widget/v1/{publicKey}/fed"}'),
        ("t6", 'herald:slo_errors:ratio_rate5m > 0 and up == 1'),
        ("t7", 'herald_http_request_duration_seconds_bucket{le="0.15"}'),
        ("t8", 'rat(herald_bus_lag_events[5m])'),
        ("t9", 'herald_http_requests_total{service=~"users|notifications", status=~"5.."}'),
    ], {"herald:slo_errors:ratio_rate5m"}, {"/widget/v1/{publicKey}/feed"})
    text = "\n".join(problems)
    for needle, why in (
        ("t1: herald_made_up_total is not one of Herald's metrics", "an unknown metric"),
        ("t2: herald_http_requests_total has no label code", "a misspelt label"),
        ("t3: herald_webhook_deliveries_total{outcome=\"dropped\"}", "an undocumented label value"),
        ("t4: herald_http_request_duration_seconds is a histogram", "a bare histogram name"),
        ("t5: route \"/widget/v1/{publicKey}/fed\" is not a path", "a route that is not an OpenAPI path"),
        ("t7: herald_http_request_duration_seconds_bucket{le=\"0.15\"}", "a bucket that does not exist"),
        ("t8: rat() is not a PromQL function", "a misspelt function"),
    ):
        expect(needle in text, f"{why} was not caught; problems: {problems}")
    expect(not any(p.startswith(("t6", "t9")) for p in problems), f"false alarm: {problems}")
    expect("herald_made_up_total" in used and "herald:slo_errors:ratio_rate5m" not in used and "up" not in used,
           f"used families {sorted(used)}")

    # The real rules with one more alert on an unknown metric: the check catches it.
    rules = load_yaml(RULES)
    rules["groups"].append({"name": "self-test", "rules": [{"alert": "SelfTest", "expr": "herald_unknown_metric > 0"}]})
    rule_exprs, recorded = rule_expressions(rules)
    problems, _ = check_names(rule_exprs, recorded, openapi_paths())
    expect(any("herald_unknown_metric is not one of Herald's metrics" in p for p in problems),
           f"an unknown metric added to alerts.yml was not caught: {problems}")
    expect(len(problems) == 1, f"the real rules have problems besides the planted one: {problems}")

    # A scrape without a metric the rules use, a bucket spelt differently, a missing label and a concrete route.
    scrape = "\n".join([
        "# TYPE herald_http_requests_total counter",
        'herald_http_requests_total{service="notifications",method="GET",route="/widget/v1/{publicKey}/feed",status="200"} 3',
        'herald_http_requests_total{service="notifications",method="GET",route="/widget/v1/pk_123/feed",status="200"} 1',
        "# TYPE herald_http_request_duration_seconds histogram",
        'herald_http_request_duration_seconds_bucket{service="notifications",method="GET",route="/widget/v1/{publicKey}/feed",le="0.10"} 3',
        'herald_http_request_duration_seconds_bucket{service="notifications",method="GET",route="/widget/v1/{publicKey}/feed",le="+Inf"} 3',
        'herald_http_request_duration_seconds_count{service="notifications",method="GET",route="/widget/v1/{publicKey}/feed"} 3',
        "# TYPE herald_bus_lag_events gauge",
        "herald_bus_lag_events 0",
    ]) + "\n"
    exprs = [("r1", 'rate(herald_http_request_duration_seconds_bucket{le="0.1"}[5m])'),
             ("r2", "herald_webhook_deliveries_total"), ("r3", "herald_http_requests_total"), ("r4", "herald_bus_lag_events")]
    _, used = check_names(exprs, set(), None)
    problems = check_scrape(scrape, used, exprs, {"/widget/v1/{publicKey}/feed"})
    text = "\n".join(problems)
    for needle, why in (
        ("herald_webhook_deliveries_total is missing", "a metric missing from the scrape"),
        ("has no le=\"0.1\" bucket (the scrape spells it '0.10'", "a bucket spelt differently"),
        ("herald_bus_lag_events has a series without group", "a missing label"),
        ("route=\"/widget/v1/pk_123/feed\" is a concrete path", "a concrete path as route"),
    ):
        expect(needle in text, f"{why} was not caught; problems: {problems}")
    expect(not any("herald_http_requests_total is missing" in p for p in problems), f"false alarm: {problems}")

    # Dashboards: a panel without expr, and one on another data source.
    problems, _ = check_dashboard("x.json", {"uid": "x", "title": "X", "schemaVersion": 39,
                                             "templating": {"list": [{"name": "DS_PROMETHEUS", "type": "datasource", "query": "prometheus"}]},
                                             "panels": [{"id": 1, "type": "timeseries", "title": "A", "gridPos": {},
                                                         "datasource": {"uid": "${DS_PROMETHEUS}"}, "targets": [{"refId": "A"}]},
                                                        {"id": 2, "type": "stat", "title": "B", "gridPos": {},
                                                         "datasource": {"uid": "prom"}, "targets": [{"refId": "A", "expr": "up"}]}]})
    expect(any("A: target A has no expr" in p for p in problems), f"a target without expr was not caught: {problems}")
    expect(any("B: its datasource is not" in p for p in problems), f"a fixed data source was not caught: {problems}")
    expect(grafana_to_promql('rate(x{job=~"$job"}[$__rate_interval])') == 'rate(x{job=~".*"}[5m])', "grafana_to_promql")

    if failures:
        print("self-test FAILED:\n  " + "\n  ".join(failures))
        return 1
    print("self-test passed: unknown metrics, labels, values, buckets, functions and missing scrape series are caught")
    return 0


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--metrics-file", help="a scrape of a live Herald's /metrics (Prometheus text format)")
    parser.add_argument("--self-test", action="store_true", help="prove that the checks catch what they should")
    args = parser.parse_args()
    if args.self_test:
        return self_test()
    if not shutil.which("promtool"):
        print("promtool not found: it comes with Debian's prometheus package (apt-get install --no-install-recommends "
              "prometheus); scripts/test.sh installs it")
        return 2
    problems = check(args.metrics_file)
    if problems:
        print(f"\n{len(problems)} problems:")
        for problem in problems:
            print(f"  {problem}")
        return 1
    print("\nobservability checks passed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
