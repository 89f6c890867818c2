"""deploy/k8s: every overlay renders (tests/deploy/kustomize.py, checked against `kubectl
kustomize` where kubectl exists), every object validates offline against the Kubernetes schemas
(kubernetes-validate, strict: unknown fields are errors) or, for the Prometheus Operator's
CRDs, against tests/deploy/schemas; and the objects fit together and fit the code."""

from __future__ import annotations

import copy
import importlib.resources
import json
import re
import shutil
import subprocess
from collections.abc import Iterator
from functools import cache
from importlib.resources.abc import Traversable
from pathlib import Path
from typing import Any

import jsonschema  # type: ignore[import-untyped]
import kubernetes_validate  # type: ignore[import-untyped]
import pytest
import yaml
from referencing import Registry, Resource

from oneapi.cli import build_parser
from oneapi.targets import SERVICES, build_registry
from tests.deploy.kustomize import KustomizeError, Object, build, identity
from tests.deploy.support import (
    COMPOSE_DIR,
    K8S,
    OVERLAYS,
    RULES,
    load_yaml,
    load_yaml_all,
    setting_names,
)

# The oldest Kubernetes these manifests claim to support, and the newest schemas bundled.
KUBERNETES_VERSIONS = ("1.29.0", kubernetes_validate.utils.latest_version())
K8S_SCHEMAS = importlib.resources.files("kubernetes_validate") / "kubernetes-json-schema"
SCHEMAS = Path(__file__).parent / "schemas"
CRD_SCHEMAS = {
    ("monitoring.coreos.com/v1", "ServiceMonitor"): "servicemonitor-monitoring-v1.json",
    ("monitoring.coreos.com/v1", "PrometheusRule"): "prometheusrule-monitoring-v1.json",
}
SECRET_TEMPLATE = K8S / "secret.example.yaml"
RELAY_DRAIN_FLUSH_SECONDS = 10  # UsagePublisher.stop's default flush budget
PRESTOP_SECONDS = 5
WRITABLE_PATHS = frozenset({"/data", "/" + "tmp"})

BUILDS = [K8S / "base", *OVERLAYS]


def build_id(path: Path) -> str:
    return str(path.relative_to(K8S))


@cache
def rendered(directory: Path) -> tuple[Object, ...]:
    return tuple(build(directory))


def objects_of(directory: Path, kind: str) -> list[Object]:
    return [obj for obj in rendered(directory) if obj["kind"] == kind]


def named(directory: Path, kind: str, name: str) -> Object:
    (found,) = [obj for obj in objects_of(directory, kind) if obj["metadata"]["name"] == name]
    return found


def pod_specs(directory: Path) -> Iterator[tuple[Object, dict[str, Any]]]:
    for obj in rendered(directory):
        if obj["kind"] in ("Deployment", "Job"):
            yield obj, obj["spec"]["template"]["spec"]


def containers(directory: Path) -> Iterator[tuple[Object, dict[str, Any]]]:
    for obj, spec in pod_specs(directory):
        for container in spec.get("initContainers", []) + spec["containers"]:
            yield obj, container


def target_of(deployment: Object) -> str:
    (container,) = deployment["spec"]["template"]["spec"]["containers"]
    args = build_parser().parse_args(container["args"])
    assert args.command == "run"
    assert isinstance(args.target, str)
    return args.target


def deployments_by_target(directory: Path) -> dict[str, Object]:
    return {target_of(d): d for d in objects_of(directory, "Deployment")}


def selects(selector: dict[str, str], labels: dict[str, str]) -> bool:
    return all(labels.get(key) == value for key, value in selector.items())


# --- rendering and schemas -------------------------------------------------------------------


@pytest.mark.parametrize("directory", BUILDS, ids=build_id)
def test_kubectl_kustomize_renders_the_same(directory: Path) -> None:
    kubectl = shutil.which("kubectl")
    if kubectl is None:
        pytest.skip("kubectl is not installed: only the Python renderer ran")
    result = subprocess.run(
        [kubectl, "kustomize", str(directory)], capture_output=True, text=True, check=True
    )
    theirs = {identity(obj): obj for obj in yaml.safe_load_all(result.stdout) if obj}
    mine = {identity(obj): obj for obj in rendered(directory)}
    assert mine == theirs


def test_renderer_refuses_what_it_does_not_implement(tmp_path: Path) -> None:
    (tmp_path / "kustomization.yaml").write_text(
        "resources: []\nconfigMapGenerator:\n  - name: x\n    literals: [A=1]\n"
    )
    with pytest.raises(KustomizeError, match="configMapGenerator"):
        build(tmp_path)


@cache
def crd_validator(api_version: str, kind: str) -> jsonschema.Draft202012Validator:
    schema = json.loads((SCHEMAS / CRD_SCHEMAS[(api_version, kind)]).read_text())
    jsonschema.Draft202012Validator.check_schema(schema)
    return jsonschema.Draft202012Validator(schema)


@cache
def _k8s_schemas(version: str) -> Traversable:
    directory = K8S_SCHEMAS / f"v{version}-local-strict"
    assert directory.is_dir(), f"kubernetes-validate has no schemas of {version}"
    return directory


@cache
def _k8s_definitions(version: str) -> Resource[Any]:
    text = _k8s_schemas(version).joinpath("_definitions.json").read_text()
    return Resource.from_contents(json.loads(text))


@cache
def k8s_validator(version: str, api_version: str, kind: str) -> jsonschema.Draft202012Validator:
    """What `kubernetes_validate.validate(obj, version, strict=True)` checks, with the schemas
    read once (it reads 2 MB of definitions per object)."""
    # rbac.authorization.k8s.io/v1 -> rbac-v1, as kubernetes-validate names its files
    name = re.sub(r"^([^./]*)(?:\.[^/]*)?/", r"\1-", api_version)
    path = _k8s_schemas(version).joinpath(f"{kind.lower()}-{name}.json")
    if not path.is_file():
        raise LookupError(f"no schema of {kind} {api_version} in Kubernetes {version}")
    schema = json.loads(path.read_text())
    registry: Registry[Any] = Resource.from_contents(schema) @ Registry()
    registry = _k8s_definitions(version) @ registry
    return jsonschema.Draft202012Validator(schema, registry=registry)


def validate(obj: Object, version: str) -> None:
    """Raise when `obj` does not validate; every kind must have a schema."""
    key = (obj["apiVersion"], obj["kind"])
    if key in CRD_SCHEMAS:
        crd_validator(*key).validate(obj)
        return
    k8s_validator(version, *key).validate(obj)


def every_object() -> list[tuple[str, Object]]:
    found = [(build_id(d), obj) for d in BUILDS for obj in rendered(d)]
    found += [("secret.example.yaml", obj) for obj in load_yaml_all(SECRET_TEMPLATE)]
    return found


@pytest.mark.parametrize("version", KUBERNETES_VERSIONS)
def test_every_object_validates_against_its_schema(version: str) -> None:
    problems = []
    for where, obj in every_object():
        try:
            validate(obj, version)
        except jsonschema.ValidationError as exc:
            path = ".".join(str(part) for part in exc.path)
            name = f"{obj['kind']}/{obj['metadata']['name']}"
            problems.append(f"{where} {name} {path}: {exc.message}")
        except LookupError as exc:
            problems.append(f"{where}: {exc}")
    assert problems == []


@pytest.mark.parametrize(
    ("kind", "mistake"),
    [
        ("Deployment", ("spec", "template", "spec", "containers", 0, "readinesProbe")),
        ("ServiceMonitor", ("spec", "endpoints", 0, "intervall")),
        ("PrometheusRule", ("spec", "groups", 0, "rules", 0, "severity")),
    ],
)
def test_validation_refuses_a_misspelt_field(kind: str, mistake: tuple[str | int, ...]) -> None:
    obj = copy.deepcopy(objects_of(K8S / "base", kind)[0])
    node: Any = obj
    for part in mistake[:-1]:
        node = node[part]
    node[mistake[-1]] = {"periodSeconds": 5} if kind == "Deployment" else "5s"
    with pytest.raises(jsonschema.ValidationError):
        validate(obj, KUBERNETES_VERSIONS[-1])
    if kind == "Deployment":  # the same verdict as kubernetes-validate's own entry point
        with pytest.raises(kubernetes_validate.ValidationError):
            kubernetes_validate.validate(obj, KUBERNETES_VERSIONS[-1], strict=True)


# --- the workloads -----------------------------------------------------------------------------


@pytest.mark.parametrize("directory", BUILDS, ids=build_id)
def test_one_deployment_per_target(directory: Path) -> None:
    by_target = deployments_by_target(directory)
    assert sorted(by_target) == sorted(SERVICES)
    for target, deployment in by_target.items():
        build_registry().resolve([target])
        assert deployment["metadata"]["name"] == f"oneapi-{target}"


@pytest.mark.parametrize("directory", BUILDS, ids=build_id)
def test_probes_ask_livez_and_readyz(directory: Path) -> None:
    for deployment in objects_of(directory, "Deployment"):
        (container,) = deployment["spec"]["template"]["spec"]["containers"]
        assert container["ports"] == [{"name": "http", "containerPort": 3000, "protocol": "TCP"}]
        assert container["livenessProbe"]["httpGet"] == {"path": "/livez", "port": "http"}
        assert container["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": "http"}


@pytest.mark.parametrize("directory", BUILDS, ids=build_id)
def test_every_container_has_requests_and_limits(directory: Path) -> None:
    for obj, container in containers(directory):
        for bound in ("requests", "limits"):
            assert set(container["resources"][bound]) == {"cpu", "memory"}, obj["metadata"]


@pytest.mark.parametrize("directory", BUILDS, ids=build_id)
def test_pods_run_as_non_root_with_a_read_only_root(directory: Path) -> None:
    for obj, spec in pod_specs(directory):
        name = obj["metadata"]["name"]
        assert spec["securityContext"]["runAsNonRoot"] is True, name
        assert spec["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
        assert spec["automountServiceAccountToken"] is False
        writable = {volume["name"] for volume in spec["volumes"] if "emptyDir" in volume}
        for container in spec["containers"]:
            context = container["securityContext"]
            assert context["allowPrivilegeEscalation"] is False, name
            assert context["readOnlyRootFilesystem"] is True, name
            assert context["capabilities"]["drop"] == ["ALL"], name
            mounts = {m["mountPath"]: m["name"] for m in container["volumeMounts"]}
            # The data directory and a temporary one stay writable.
            assert mounts.keys() >= WRITABLE_PATHS, name
            assert {mounts[path] for path in WRITABLE_PATHS} <= writable, name


@pytest.mark.parametrize("directory", OVERLAYS, ids=build_id)
def test_every_container_runs_the_same_image(directory: Path) -> None:
    images = {container["image"] for _, container in containers(directory)}
    assert len(images) == 1
    if directory.name == "prod":
        (image,) = images
        assert ":" in image
        assert not image.endswith(":latest")


@pytest.mark.parametrize("directory", BUILDS, ids=build_id)
def test_settings_are_real_oneapi_settings(directory: Path) -> None:
    known = setting_names()
    for config in objects_of(directory, "ConfigMap"):
        assert set(config["data"]) <= known, config["data"].keys() - known
    for secret in objects_of(directory, "Secret"):
        assert set(secret["stringData"]) <= known
    for obj, container in containers(directory):
        names = {variable["name"] for variable in container.get("env", [])}
        assert names <= known, obj["metadata"]["name"]
        sources = {
            (kind, source[key]["name"])
            for source in container["envFrom"]
            for kind, key in (("ConfigMap", "configMapRef"), ("Secret", "secretRef"))
            if key in source
        }
        assert sources == {("ConfigMap", "oneapi-config"), ("Secret", "oneapi-secrets")}
    assert set(load_yaml(SECRET_TEMPLATE)["stringData"]) <= known


@pytest.mark.parametrize("directory", OVERLAYS, ids=build_id)
def test_the_secret_comes_with_the_overlay_or_the_template(directory: Path) -> None:
    secrets = objects_of(directory, "Secret")
    if not secrets:
        assert load_yaml(SECRET_TEMPLATE)["metadata"]["name"] == "oneapi-secrets"
        return
    (secret,) = secrets
    assert secret["metadata"]["name"] == "oneapi-secrets"
    required = {"SQL_DSN", "SESSION_SECRET", "CRYPTO_SECRET"}
    assert required <= set(secret["stringData"])
    assert required <= set(load_yaml(SECRET_TEMPLATE)["stringData"])


@pytest.mark.parametrize("directory", BUILDS, ids=build_id)
def test_only_the_admin_is_a_master_node(directory: Path) -> None:
    for target, deployment in deployments_by_target(directory).items():
        (container,) = deployment["spec"]["template"]["spec"]["containers"]
        env = {variable["name"]: variable.get("value") for variable in container.get("env", [])}
        assert (env.get("NODE_TYPE") == "master") == (target == "admin"), target


@pytest.mark.parametrize("directory", BUILDS, ids=build_id)
def test_relay_grace_covers_prestop_drain_and_flush(directory: Path) -> None:
    (config,) = objects_of(directory, "ConfigMap")
    drain = int(config["data"]["SHUTDOWN_GRACE_SECONDS"])
    relay = deployments_by_target(directory)["relay"]["spec"]["template"]["spec"]
    needed = PRESTOP_SECONDS + drain + RELAY_DRAIN_FLUSH_SECONDS
    assert relay["terminationGracePeriodSeconds"] >= needed
    (container,) = relay["containers"]
    assert container["lifecycle"]["preStop"]["exec"]["command"] == ["sleep", str(PRESTOP_SECONDS)]


@pytest.mark.parametrize("directory", BUILDS, ids=build_id)
def test_rollouts_wait_for_ready_pods(directory: Path) -> None:
    for deployment in objects_of(directory, "Deployment"):
        assert deployment["spec"]["strategy"]["rollingUpdate"]["maxUnavailable"] == 0


@pytest.mark.parametrize("directory", BUILDS, ids=build_id)
def test_migration_job_runs_oneapi_migrate_before_the_sync(directory: Path) -> None:
    (job,) = objects_of(directory, "Job")
    spec = job["spec"]["template"]["spec"]
    (container,) = spec["containers"]
    assert build_parser().parse_args(container["args"]).command == "migrate"
    assert spec["restartPolicy"] == "Never"
    assert job["metadata"]["annotations"]["argocd.argoproj.io/hook"] == "PreSync"
    (config,) = objects_of(directory, "ConfigMap")
    # The other targets must outwait a migration rather than crash-loop through it.
    assert int(config["data"]["SCHEMA_WAIT_SECONDS"]) >= 600


# --- scaling -------------------------------------------------------------------------------------


@pytest.mark.parametrize("directory", BUILDS, ids=build_id)
def test_relay_scales_with_an_hpa_and_a_disruption_budget(directory: Path) -> None:
    relay = deployments_by_target(directory)["relay"]
    assert "replicas" not in relay["spec"], "the HPA owns the relay's replica count"
    (hpa,) = objects_of(directory, "HorizontalPodAutoscaler")
    assert hpa["spec"]["scaleTargetRef"] == {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "name": relay["metadata"]["name"],
    }
    assert 1 <= hpa["spec"]["minReplicas"] <= hpa["spec"]["maxReplicas"]
    (budget,) = objects_of(directory, "PodDisruptionBudget")
    pod_labels = relay["spec"]["template"]["metadata"]["labels"]
    assert selects(budget["spec"]["selector"]["matchLabels"], pod_labels)
    others = [d for t, d in deployments_by_target(directory).items() if t != "relay"]
    for other in others:
        labels = other["spec"]["template"]["metadata"]["labels"]
        assert not selects(budget["spec"]["selector"]["matchLabels"], labels)


# --- networking and monitoring ---------------------------------------------------------------


@pytest.mark.parametrize("directory", BUILDS, ids=build_id)
def test_each_service_selects_exactly_its_deployment(directory: Path) -> None:
    deployments = objects_of(directory, "Deployment")
    for service in objects_of(directory, "Service"):
        chosen = [
            d
            for d in deployments
            if selects(service["spec"]["selector"], d["spec"]["template"]["metadata"]["labels"])
        ]
        assert [d["metadata"]["name"] for d in chosen] == [service["metadata"]["name"]]
        assert service["spec"]["ports"][0]["targetPort"] == "http"
    assert len(objects_of(directory, "Service")) == len(deployments)


def nginx_relay_prefixes() -> set[str]:
    conf = (COMPOSE_DIR / "nginx.conf").read_text()
    match = re.search(r"location ~ \^/\(([^)]*)\)\(/\|\$\)", conf)
    assert match, "the relay location of nginx.conf changed shape"
    return {"/" + prefix for prefix in match.group(1).split("|")}


@pytest.mark.parametrize("directory", BUILDS, ids=build_id)
def test_ingress_routes_like_the_compose_nginx(directory: Path) -> None:
    routes: dict[str, str] = {}
    hosts = set()
    for ingress in objects_of(directory, "Ingress"):
        for rule in ingress["spec"]["rules"]:
            hosts.add(rule["host"])
            for path in rule["http"]["paths"]:
                assert path["pathType"] == "Prefix"
                routes[path["path"]] = path["backend"]["service"]["name"]
    assert len(hosts) == 1
    relay_prefixes = {path for path, service in routes.items() if service == "oneapi-relay"}
    assert relay_prefixes == nginx_relay_prefixes()
    assert {path: s for path, s in routes.items() if s != "oneapi-relay"} == {"/": "oneapi-admin"}
    relay = named(directory, "Ingress", "oneapi-relay")["metadata"]["annotations"]
    assert relay["nginx.ingress.kubernetes.io/proxy-buffering"] == "off"
    assert int(relay["nginx.ingress.kubernetes.io/proxy-read-timeout"]) >= 600
    assert "non_idempotent" not in relay["nginx.ingress.kubernetes.io/proxy-next-upstream"]


@pytest.mark.parametrize("directory", BUILDS, ids=build_id)
def test_service_monitor_scrapes_every_service(directory: Path) -> None:
    (monitor,) = objects_of(directory, "ServiceMonitor")
    selector = monitor["spec"]["selector"]["matchLabels"]
    chosen = [
        service
        for service in objects_of(directory, "Service")
        if selects(selector, service["metadata"]["labels"])
    ]
    assert len(chosen) == len(SERVICES)
    (endpoint,) = monitor["spec"]["endpoints"]
    assert endpoint["path"] == "/metrics"
    for service in chosen:
        assert endpoint["port"] in {port["name"] for port in service["spec"]["ports"]}


@pytest.mark.parametrize("directory", BUILDS, ids=build_id)
def test_prometheus_rule_carries_the_compose_rules(directory: Path) -> None:
    (rule,) = objects_of(directory, "PrometheusRule")
    assert rule["spec"]["groups"] == load_yaml(RULES)["groups"]


@pytest.mark.parametrize("directory", OVERLAYS, ids=build_id)
def test_overlays_set_a_namespace(directory: Path) -> None:
    namespaces = {obj["metadata"].get("namespace") for obj in rendered(directory)}
    assert len(namespaces) == 1
    assert None not in namespaces
