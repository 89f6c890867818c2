"""Render the kustomizations of deploy/k8s without a kustomize binary.

Only the subset of kustomize that deploy/k8s uses, implemented as kustomize v5 does it:
`resources` (files and directories with their own kustomization), `namespace`, `images`,
`replicas` and `patches` made of JSON 6902 operations (inline `patch` or `path`, selected by
`target` kind / name / group / version). Anything else raises `KustomizeError`, so a
kustomization that starts using another feature fails here loudly instead of being rendered
wrong. `test_k8s.py` compares the result with `kubectl kustomize` where kubectl exists.
"""

from __future__ import annotations

import copy
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import yaml

Object = dict[str, Any]

SUPPORTED_KEYS = frozenset(
    {"apiVersion", "kind", "resources", "namespace", "images", "replicas", "patches"}
)
CLUSTER_SCOPED = frozenset(
    {"Namespace", "ClusterRole", "ClusterRoleBinding", "CustomResourceDefinition", "PriorityClass"}
)


class KustomizeError(Exception):
    """The kustomization uses something this renderer does not implement, or is invalid."""


def load_documents(path: Path) -> list[Object]:
    """Every non-empty YAML document of a file."""
    documents = [doc for doc in yaml.safe_load_all(path.read_text()) if doc is not None]
    for doc in documents:
        if not isinstance(doc, dict):
            raise KustomizeError(f"{path}: a document is not a mapping")
    return documents


def build(directory: Path) -> list[Object]:
    """The objects `kustomize build directory` prints (in resource order)."""
    kustomization_file = directory / "kustomization.yaml"
    if not kustomization_file.is_file():
        raise KustomizeError(f"{directory} has no kustomization.yaml")
    (spec,) = load_documents(kustomization_file)
    unknown = set(spec) - SUPPORTED_KEYS
    if unknown:
        raise KustomizeError(f"{kustomization_file}: unsupported fields {sorted(unknown)}")
    if spec.get("kind", "Kustomization") != "Kustomization":
        raise KustomizeError(f"{kustomization_file}: kind must be Kustomization")

    objects: list[Object] = []
    for entry in spec.get("resources", []):
        resource = (directory / entry).resolve()
        if resource.is_dir():
            objects.extend(build(resource))
        elif resource.is_file():
            objects.extend(load_documents(resource))
        else:
            raise KustomizeError(f"{kustomization_file}: resource {entry} does not exist")

    for patch in spec.get("patches", []):
        _apply_patch(objects, patch, directory)
    if "namespace" in spec:
        for obj in objects:
            if obj["kind"] not in CLUSTER_SCOPED:
                obj.setdefault("metadata", {})["namespace"] = spec["namespace"]
    for image in spec.get("images", []):
        _set_image(objects, image)
    for replica in spec.get("replicas", []):
        _set_replicas(objects, replica)
    _refuse_duplicates(objects)
    return objects


def identity(obj: Object) -> tuple[str, str, str, str]:
    metadata = obj.get("metadata", {})
    return (obj["apiVersion"], obj["kind"], metadata.get("namespace", ""), metadata["name"])


def _refuse_duplicates(objects: list[Object]) -> None:
    seen: set[tuple[str, str, str, str]] = set()
    for obj in objects:
        key = identity(obj)
        if key in seen:
            raise KustomizeError(f"{key} is defined twice")
        seen.add(key)


# --- patches ---------------------------------------------------------------------------------


def _matches(obj: Object, target: dict[str, Any]) -> bool:
    unknown = set(target) - {"group", "version", "kind", "name"}
    if unknown:
        raise KustomizeError(f"unsupported patch target fields {sorted(unknown)}")
    group, _, version = obj["apiVersion"].rpartition("/")
    checks = {
        "group": group,
        "version": version,
        "kind": obj["kind"],
        "name": obj["metadata"]["name"],
    }
    return all(checks[field] == wanted for field, wanted in target.items())


def _apply_patch(objects: list[Object], patch: dict[str, Any], directory: Path) -> None:
    unknown = set(patch) - {"target", "patch", "path"}
    if unknown or "target" not in patch or ("patch" in patch) == ("path" in patch):
        raise KustomizeError(f"unsupported patch {patch!r}: need target and patch or path")
    text = patch["patch"] if "patch" in patch else (directory / patch["path"]).read_text()
    operations = yaml.safe_load(text)
    if not isinstance(operations, list):
        raise KustomizeError("only JSON 6902 patches (a list of operations) are supported")
    targets = [obj for obj in objects if _matches(obj, patch["target"])]
    if not targets:
        raise KustomizeError(f"patch target {patch['target']!r} matches nothing")
    for obj in targets:
        for operation in operations:
            _json_patch(obj, operation)


def _pointer(path: str) -> list[str]:
    if not path.startswith("/"):
        raise KustomizeError(f"JSON pointer {path!r} must start with /")
    return [part.replace("~1", "/").replace("~0", "~") for part in path[1:].split("/")]


def _json_patch(obj: Object, operation: dict[str, Any]) -> None:
    op = operation.get("op")
    if op not in ("add", "replace", "remove"):
        raise KustomizeError(f"unsupported JSON patch operation {op!r}")
    *parents, last = _pointer(operation["path"])
    node: Any = obj
    for part in parents:
        node = node[int(part)] if isinstance(node, list) else node[part]
    value = copy.deepcopy(operation.get("value"))
    if isinstance(node, list):
        if op == "add":
            node.insert(len(node) if last == "-" else int(last), value)
        elif op == "replace":
            node[int(last)] = value
        else:
            del node[int(last)]
        return
    if op in ("replace", "remove") and last not in node:
        raise KustomizeError(f"{op} {operation['path']}: no such field")
    if op == "remove":
        del node[last]
    else:
        node[last] = value


# --- images and replicas ---------------------------------------------------------------------


def _containers(node: Any) -> Iterator[dict[str, Any]]:
    if isinstance(node, dict):
        for key, value in node.items():
            if key in ("containers", "initContainers") and isinstance(value, list):
                yield from (c for c in value if isinstance(c, dict))
            else:
                yield from _containers(value)
    elif isinstance(node, list):
        for item in node:
            yield from _containers(item)


def split_image(image: str) -> tuple[str, str, str]:
    """name, tag, digest of an image reference (a registry port is part of the name)."""
    name, _, digest = image.partition("@")
    slash = name.rfind("/")
    colon = name.rfind(":")
    tag = ""
    if colon > slash:
        name, tag = name[:colon], name[colon + 1 :]
    return name, tag, digest


def _set_image(objects: list[Object], image: dict[str, Any]) -> None:
    unknown = set(image) - {"name", "newName", "newTag", "digest"}
    if unknown:
        raise KustomizeError(f"unsupported image fields {sorted(unknown)}")
    for obj in objects:
        for container in _containers(obj):
            name, tag, digest = split_image(str(container.get("image", "")))
            if name != image["name"]:
                continue
            name = image.get("newName", name)
            if "digest" in image:
                container["image"] = f"{name}@{image['digest']}"
                continue
            tag = str(image.get("newTag", tag))
            reference = f"{name}:{tag}" if tag else name
            container["image"] = f"{reference}@{digest}" if digest and not tag else reference


def _set_replicas(objects: list[Object], replica: dict[str, Any]) -> None:
    matched = False
    for obj in objects:
        if obj["metadata"]["name"] == replica["name"] and obj["kind"] in (
            "Deployment",
            "StatefulSet",
            "ReplicaSet",
            "ReplicationController",
        ):
            obj.setdefault("spec", {})["replicas"] = int(replica["count"])
            matched = True
    if not matched:
        raise KustomizeError(f"replicas: no workload named {replica['name']!r}")
