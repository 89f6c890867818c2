"""The Dockerfile, checked without a Docker engine: what it copies exists and is in the build
context, its command is the CLI's, its runtime is non-root with a health check on /readyz, and
every third-party module the shipped code imports comes from requirements/run.lock (the only
dependencies the image installs)."""

from __future__ import annotations

import ast
import fnmatch
import importlib.metadata
import importlib.util
import json
import os
import re
import shlex
import subprocess
import sys
import sysconfig
import tomllib
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path

import pytest

from libs.common.settings import Settings
from oneapi.cli import build_parser
from oneapi.targets import build_registry
from tests.deploy.support import ROOT, tool

DOCKERFILE = ROOT / "Dockerfile"
DOCKERIGNORE = ROOT / ".dockerignore"
UI_DIR = "services/admin/web"


@dataclass
class Instruction:
    keyword: str
    arguments: str


@dataclass
class Stage:
    base: str
    name: str
    instructions: list[Instruction] = field(default_factory=list)

    def all(self, keyword: str) -> list[str]:
        return [i.arguments for i in self.instructions if i.keyword == keyword]

    def last(self, keyword: str) -> str:
        found = self.all(keyword)
        assert found, f"stage {self.name} has no {keyword}"
        return found[-1]


@cache
def stages() -> tuple[dict[str, str], list[Stage]]:
    """The global ARG defaults and the stages of the Dockerfile."""
    text = re.sub(r"\\\n", " ", DOCKERFILE.read_text())
    args: dict[str, str] = {}
    parsed: list[Stage] = []
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        keyword, _, arguments = line.partition(" ")
        keyword, arguments = keyword.upper(), arguments.strip()
        if keyword == "ARG" and not parsed:
            name, _, default = arguments.partition("=")
            args[name] = default
        elif keyword == "FROM":
            parts = arguments.split()
            base = re.sub(r"\$\{(\w+)\}", lambda m: args[m.group(1)], parts[0])
            name = parts[2] if len(parts) == 3 and parts[1].upper() == "AS" else str(len(parsed))
            parsed.append(Stage(base, name))
        else:
            assert parsed, f"{keyword} before the first FROM"
            parsed[-1].instructions.append(Instruction(keyword, arguments))
    return args, parsed


def final_stage() -> Stage:
    return stages()[1][-1]


def exec_form(arguments: str) -> list[str]:
    value = json.loads(arguments)
    assert isinstance(value, list), f"{arguments} is not the exec (JSON) form"
    return [str(item) for item in value]


def copies() -> list[tuple[str, str]]:
    """(stage, source) of every COPY from the build context."""
    found: list[tuple[str, str]] = []
    for stage in stages()[1]:
        for arguments in stage.all("COPY"):
            words = shlex.split(arguments)
            if any(word.startswith("--from=") for word in words):
                continue
            paths = [word for word in words if not word.startswith("--")]
            found.extend((stage.name, source) for source in paths[:-1])
    return found


# --- the build context ---------------------------------------------------------------------


def dockerignore_patterns() -> list[tuple[bool, str]]:
    patterns = []
    for raw in DOCKERIGNORE.read_text().splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        negated = line.startswith("!")
        patterns.append((negated, line.lstrip("!").strip("/")))
    return patterns


def _pattern_matches(pattern: str, path: str) -> bool:
    """Docker's rule: a pattern matches a path or any of its parent folders; `**` spans
    folders."""
    regex = re.escape(pattern).replace(r"\*\*/", "(.*/)?").replace(r"\*\*", ".*")
    regex = regex.replace(r"\*", "[^/]*").replace(r"\?", "[^/]")
    parts = path.split("/")
    return any(
        re.fullmatch(regex, "/".join(parts[:end])) is not None for end in range(1, len(parts) + 1)
    )


def in_context(path: str) -> bool:
    """Whether .dockerignore keeps `path` (relative to the repository) in the build context."""
    included = True
    for negated, pattern in dockerignore_patterns():
        if _pattern_matches(pattern, path):
            included = negated
    return included


@pytest.mark.parametrize(("stage", "source"), copies())
def test_copied_paths_exist_and_are_in_the_build_context(stage: str, source: str) -> None:
    path = ROOT / source
    if source.startswith(UI_DIR) and not (ROOT / UI_DIR).exists():
        pytest.skip(f"the web UI (issue 7) has not landed: stage {stage} copies {source}")
    assert path.exists(), f"stage {stage} copies {source}, which does not exist"
    assert in_context(source.rstrip("/")), f"{source} is excluded by .dockerignore"
    if path.is_dir():
        kept = [name for name in _source_files(path) if in_context(name)]
        assert kept, f"nothing of {source} reaches the build context"


def _source_files(folder: Path) -> list[str]:
    """Files below `folder` (relative to the repository), skipping installed and built ones."""
    found = []
    for parent, folders, files in os.walk(folder):
        folders[:] = [f for f in folders if f not in {"node_modules", "dist", "__pycache__"}]
        found += [str((Path(parent) / name).relative_to(ROOT)) for name in files]
    return found


def test_the_context_leaves_out_local_state_and_build_output() -> None:
    for path in (
        ".venv/bin/python",
        ".git/HEAD",
        ".env",
        "data/one-api.db",
        "tests/conftest.py",
        "libs/common/__pycache__/settings.cpython-311.pyc",
        "services/admin/web/node_modules/x/index.js",
        "services/admin/web/dist/index.html",
        "deploy/compose/docker-compose.yml",
    ):
        assert not in_context(path), f"{path} would be sent to the Docker engine"
    for path in ("libs/common/settings.py", "requirements/run.lock", "pyproject.toml"):
        assert in_context(path)


def test_dockerignore_rules_behave_like_dockers() -> None:
    assert _pattern_matches("**/__pycache__", "libs/__pycache__/x.pyc")
    assert _pattern_matches("**/__pycache__", "__pycache__")
    assert _pattern_matches("*", "anything/below")
    assert not _pattern_matches("services/admin/web/dist", "services/admin/webdist")


# --- the command -----------------------------------------------------------------------------


def test_entrypoint_is_the_oneapi_script() -> None:
    assert exec_form(final_stage().last("ENTRYPOINT")) == ["oneapi"]
    scripts = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["scripts"]
    assert scripts["oneapi"] == "oneapi.cli:main"


def test_default_command_runs_target_all() -> None:
    command = exec_form(final_stage().last("CMD"))
    args = build_parser().parse_args(command)
    assert args.command == "run"
    # No --target: TARGET, default "all", One API's single-container mode.
    assert getattr(args, "target", None) is None
    assert Settings.model_fields["target"].get_default(call_default_factory=True) == ["all"]


@pytest.mark.parametrize("target", ["admin", "relay", "billing", "health", "relay,billing"])
def test_docker_run_image_run_target_parses(target: str) -> None:
    args = build_parser().parse_args(["run", "--target", target])
    assert args.command == "run"
    build_registry().resolve(target.split(","))


def test_migrate_command_parses() -> None:
    assert build_parser().parse_args(["migrate"]).command == "migrate"


# --- the runtime -----------------------------------------------------------------------------


def test_runtime_runs_as_a_non_root_user() -> None:
    user = final_stage().last("USER")
    uid = user.split(":")[0]
    assert uid.isdigit(), "a numeric USER lets Kubernetes verify runAsNonRoot"
    assert int(uid) != 0
    assert f"--uid {uid}" in " ".join(final_stage().all("RUN"))
    k8s_users = {
        int(match)
        for path in (ROOT / "deploy/k8s/base").glob("*.yaml")
        for match in re.findall(r"runAsUser: (\d+)", path.read_text())
    }
    assert k8s_users == {int(uid)}


def test_runtime_keeps_data_in_the_data_volume() -> None:
    stage = final_stage()
    env = " ".join(stage.all("ENV"))
    assert re.search(r"\bDATA_DIR=/data\b", env)
    assert json.loads(stage.last("VOLUME")) == ["/data"]


def test_runtime_exposes_the_default_port() -> None:
    default_port = Settings.model_fields["port"].default
    assert final_stage().last("EXPOSE") == str(default_port)
    assert re.search(rf"\bPORT={default_port}\b", " ".join(final_stage().all("ENV")))


def test_health_check_asks_readyz_with_python() -> None:
    healthcheck = final_stage().last("HEALTHCHECK")
    options, _, command = healthcheck.partition(" CMD ")
    argv = exec_form(command.strip())
    assert argv[:2] == ["python", "-c"], "slim images have no curl: the check uses Python"
    assert "/readyz" in argv[2]
    compile(argv[2], "<healthcheck>", "exec")
    assert "--start-period" in options


def test_ui_is_copied_next_to_the_installed_admin_package() -> None:
    copy = next(c for c in final_stage().all("COPY") if "--from=web" in c)
    source, target = shlex.split(copy)[-2:]
    assert source == f"/src/{UI_DIR}/dist"
    match = re.fullmatch(r"/opt/venv/lib/python([\d.]+)/site-packages/(services/admin/.*)", target)
    assert match, target
    assert match.group(2) == f"{UI_DIR}/dist"
    python = re.search(r"python:(\d+\.\d+)", stages()[0]["PYTHON_IMAGE"])
    assert python is not None
    assert python.group(1) == match.group(1)


def test_base_images_are_pinned() -> None:
    args, parsed = stages()
    for stage in parsed:
        tag = stage.base.partition(":")[2]
        assert tag not in ("", "latest"), f"stage {stage.name} uses {stage.base}"
    requires = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["requires-python"]
    version = re.search(r"python:(\d+\.\d+)", args["PYTHON_IMAGE"])
    assert version is not None
    assert requires == f">={version.group(1)}"
    assert re.match(r"node:20\b", args["NODE_IMAGE"])


def test_builder_installs_the_run_lock_with_the_makefiles_uv() -> None:
    build = next(stage for stage in stages()[1] if stage.name == "build")
    runs = " ".join(build.all("RUN"))
    makefile_uv = re.search(r"uv==([\d.]+)", (ROOT / "Makefile").read_text())
    assert makefile_uv is not None
    assert f"uv=={makefile_uv.group(1)}" in runs
    assert "-r requirements/run.lock" in runs
    assert re.search(r"--no-deps \.(\s|$)", runs)


def test_hadolint_finds_nothing() -> None:
    result = subprocess.run(
        [tool("hadolint"), "--no-color", str(DOCKERFILE)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr


# --- the dependencies the image installs -----------------------------------------------------

FIRST_PARTY = frozenset({"oneapi", "libs", "services"})


def _guarded(node: ast.AST, parents: dict[ast.AST, ast.AST]) -> bool:
    """Inside `if TYPE_CHECKING:` or a `try` that handles ImportError."""
    while node in parents:
        parent = parents[node]
        if isinstance(parent, ast.If) and "TYPE_CHECKING" in ast.unparse(parent.test):
            return node in parent.body
        if isinstance(parent, ast.Try) and node in parent.body:
            for handler in parent.handlers:
                caught = ast.unparse(handler.type) if handler.type else "BaseException"
                if "ImportError" in caught or "ModuleNotFoundError" in caught:
                    return True
        node = parent
    return False


def shipped_imports() -> dict[str, str]:
    """Third-party modules the shipped packages import unconditionally -> one importer."""
    found: dict[str, str] = {}
    for package in sorted(FIRST_PARTY):
        for path in sorted((ROOT / package).rglob("*.py")):
            tree = ast.parse(path.read_text(), str(path))
            parents = {
                child: node for node in ast.walk(tree) for child in ast.iter_child_nodes(node)
            }
            for node in ast.walk(tree):
                names: list[str] = []
                if isinstance(node, ast.Import):
                    names = [alias.name for alias in node.names]
                elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                    names = [f"{node.module}.{alias.name}" for alias in node.names]
                for name in names:
                    top = name.split(".")[0]
                    if top in FIRST_PARTY or top in sys.stdlib_module_names:
                        continue
                    if _guarded(node, parents):
                        continue
                    found.setdefault(name, str(path.relative_to(ROOT)))
    return found


def _normalise(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


@cache
def _file_owners() -> dict[str, str]:
    """Files of every installed distribution (relative to site-packages) -> its name."""
    owners: dict[str, str] = {}
    for distribution in importlib.metadata.distributions():
        name = _normalise(distribution.metadata["Name"])
        for file in distribution.files or ():
            owners[file.as_posix()] = name
    return owners


def _distribution_of(module: str) -> str | None:
    """The installed distribution whose files hold `module` (or, for `from a import b`, `a`)."""
    site_packages = Path(sysconfig.get_paths()["purelib"]).resolve()
    for candidate in (module, module.rpartition(".")[0]):
        if not candidate:
            continue
        try:
            spec = importlib.util.find_spec(candidate)
        except (ImportError, ValueError):
            continue
        if spec is None:
            continue
        locations = [spec.origin] if spec.origin and spec.has_location else []
        locations += [str(Path(p) / "__init__.py") for p in spec.submodule_search_locations or []]
        for location in locations:
            path = Path(location).resolve()
            if path.is_relative_to(site_packages):
                owner = _file_owners().get(path.relative_to(site_packages).as_posix())
                if owner is not None:
                    return owner
    return None


def test_every_imported_module_is_pinned_in_run_lock() -> None:
    pinned = {
        _normalise(line.split("==")[0])
        for line in (ROOT / "requirements/run.lock").read_text().splitlines()
        if "==" in line and not line.startswith("#")
    }
    missing: dict[str, str] = {}
    for module, importer in sorted(shipped_imports().items()):
        owner = _distribution_of(module)
        if owner is None:
            missing.setdefault(f"{module} (not installed here)", importer)
        elif owner not in pinned:
            missing.setdefault(owner, f"{module} in {importer}")
    assert missing == {}, (
        "the image installs only requirements/run.lock; declare these in pyproject.toml and "
        "run `make lock`:\n" + "\n".join(f"  {dist}: {where}" for dist, where in missing.items())
    )


def test_import_scan_sees_through_guards() -> None:
    tree = ast.parse(
        "from typing import TYPE_CHECKING\n"
        "if TYPE_CHECKING:\n    import a\n"
        "try:\n    import b\nexcept ImportError:\n    b = None\n"
        "import c\n"
    )
    parents = {child: node for node in ast.walk(tree) for child in ast.iter_child_nodes(node)}
    imports = {
        alias.name: _guarded(node, parents)
        for node in ast.walk(tree)
        if isinstance(node, ast.Import)
        for alias in node.names
    }
    assert imports == {"a": True, "b": True, "c": False}


def test_fnmatch_is_not_what_docker_uses() -> None:
    # Docker's `*` stops at "/", fnmatch's does not: the matcher above is not fnmatch.
    assert fnmatch.fnmatch("a/b", "*")
    assert not _pattern_matches("a*", "b/a1")
