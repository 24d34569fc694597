"""Find the sandbox's binaries, or build them from Go modules into a versioned cache.

Lookup order for every binary: ``$MNOPS_SANDBOX_BIN``, ``PATH``, the build cache; only then a build.
A user with internet access can therefore drop official release binaries into one directory and skip
every build. Nothing built here ever lands inside a checkout.
"""

from __future__ import annotations

import json
import os
import shlex
import shutil
import subprocess
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pytest_mnops.errors import SandboxError
from pytest_mnops.sandbox.layout import cache_dir

KUBE_VERSION = "1.34.1"
# 1.10 stopped writing its own (possibly stale) copy of a Rollout back into its cache: in 1.9 a promote or abort
# landing during a reconcile was overwritten there and ignored until the next event (argo-rollouts#4694, #4786).
ROLLOUTS_VERSION = "1.10.2"
KWOK_VERSION = "0.8.0"
# Debian's etcd 3.4.23 lacks the progress notifications the 1.34 apiserver needs for RequestWatchProgress;
# without them watch-list clients (KWOK's client-go) stall for seconds. 3.6.4 is what 1.34 is tested with.
ETCD_VERSION = "3.6.4"

Progress = Callable[[str], None]


def _version_ldflags(version: str) -> str:
    """Kubernetes binaries report a real server version, which Argo Rollouts parses at start."""
    major, minor, _ = version.split(".")
    flags = ["-s", "-w"]
    for pkg in ("k8s.io/component-base/version", "k8s.io/client-go/pkg/version"):
        flags += [
            f"-X {pkg}.gitMajor={major}",
            f"-X {pkg}.gitMinor={minor}",
            f"-X {pkg}.gitVersion=v{version}",
            f"-X {pkg}.gitTreeState=clean",
            f"-X {pkg}.gitCommit=0000000000000000000000000000000000000000",
            f"-X {pkg}.buildDate=1970-01-01T00:00:00Z",
        ]
    return " ".join(flags)


def _rollouts_ldflags(version: str) -> str:
    """A tagged, clean build reports its tag: `kubectl argo rollouts version` says v1.10.2 (without the tag
    and a commit, Argo Rollouts prints "v" + version + "+unknown")."""
    pkg = "github.com/argoproj/argo-rollouts/utils/version"
    return (
        f"-s -w -X {pkg}.version={version} -X {pkg}.gitTag=v{version} -X {pkg}.gitTreeState=clean "
        f"-X {pkg}.gitCommit=0000000000000000000000000000000000000000"
    )


@dataclass(frozen=True)
class GoModule:
    """A group of binaries built from one Go module version through the module proxy.

    ``replaces`` derives the wrapper module's replace block from the upstream go.mod: Kubernetes pins its
    staging modules at v0.0.0 (so ``go install`` fails), Argo Rollouts carries its own replace block.
    """

    name: str
    module: str
    version: str
    binaries: dict[str, str]
    replaces: Callable[[dict[str, Any]], Iterable[tuple[str, str, str]]] | None = None
    ldflags: str = "-s -w"
    env: dict[str, str] = field(default_factory=dict)
    # A binary found on PATH is used only if its check here accepts it (e.g. a new enough version).
    accepts: dict[str, Callable[[Path], bool]] = field(default_factory=dict)

    def accepted(self, binary: str, path: Path) -> bool:
        check = self.accepts.get(binary)
        return check is None or check(path)

    @property
    def bin_dir(self) -> Path:
        return cache_dir() / "bin" / self.name / self.version


def _local_replaces(version: str) -> Callable[[dict[str, Any]], Iterable[tuple[str, str, str]]]:
    """Directory replaces (Kubernetes' staging/, etcd's sibling modules) become those modules at ``version``."""

    def replaces(gomod: dict[str, Any]) -> Iterable[tuple[str, str, str]]:
        # Only modules the upstream requires: etcd also "replaces" forbidden imports with a dummy directory.
        required = {req["Path"] for req in gomod.get("Require") or []}
        for rep in gomod.get("Replace") or []:
            old = rep["Old"]["Path"]
            if rep["New"]["Path"].startswith(("./", "../")) and old in required:
                yield old, old, version

    return replaces


def _version_at_least(
    minimum: tuple[int, ...], args: list[str], prefix: str, below: tuple[int, ...] | None = None
) -> Callable[[Path], bool]:
    """Accept a binary whose ``args`` output has a line ``<prefix>: [v]X.Y.Z`` at least ``minimum``
    (and under ``below``, if given)."""

    def accepts(path: Path) -> bool:
        try:
            out = subprocess.run([str(path), *args], capture_output=True, text=True, timeout=10).stdout
        except (OSError, subprocess.SubprocessError):
            return False
        found = next((line.split(":", 1)[1].strip() for line in out.splitlines() if line.startswith(prefix)), "")
        try:
            version = tuple(int(p) for p in found.lstrip("v").split("-")[0].split(".")[: len(minimum)])
        except ValueError:
            return False
        return version >= minimum and (below is None or version < below)

    return accepts


def _declared_replaces(gomod: dict[str, Any]) -> Iterable[tuple[str, str, str]]:
    for rep in gomod.get("Replace") or []:
        if rep["New"].get("Version"):
            yield rep["Old"]["Path"], rep["New"]["Path"], rep["New"]["Version"]


_KUBE_MINOR = int(KUBE_VERSION.split(".")[1])
KUBE = GoModule(
    name="kubernetes",
    module="k8s.io/kubernetes",
    version=KUBE_VERSION,
    binaries={
        "kube-apiserver": "k8s.io/kubernetes/cmd/kube-apiserver",
        "kube-controller-manager": "k8s.io/kubernetes/cmd/kube-controller-manager",
        "kube-scheduler": "k8s.io/kubernetes/cmd/kube-scheduler",
        # The trainees' and operators' client. From the same wrapper module: it shares every client-go and
        # apimachinery package the control plane already compiled, so it costs little more than its link.
        "kubectl": "k8s.io/kubernetes/cmd/kubectl",
    },
    replaces=_local_replaces("v0." + KUBE_VERSION.split(".", 1)[1]),
    ldflags=_version_ldflags(KUBE_VERSION),
    # kubectl supports one minor version of skew; Debian's 1.20 (kubernetes-client) is passed over.
    accepts={
        "kubectl": _version_at_least(
            (1, _KUBE_MINOR - 1), ["version", "--client"], "Client Version", below=(1, _KUBE_MINOR + 2)
        )
    },
)
ROLLOUTS = GoModule(
    name="argo-rollouts",
    module="github.com/argoproj/argo-rollouts",
    version=ROLLOUTS_VERSION,
    binaries={
        "rollouts-controller": "github.com/argoproj/argo-rollouts/cmd/rollouts-controller",
        # `kubectl argo rollouts ...`: kubectl runs a plugin named kubectl-<words joined by dashes> from PATH.
        "kubectl-argo-rollouts": "github.com/argoproj/argo-rollouts/cmd/kubectl-argo-rollouts",
    },
    replaces=_declared_replaces,
    ldflags=_rollouts_ldflags(ROLLOUTS_VERSION),
    # Its go.mod asks for a newer Go than Debian's: the go command fetches that toolchain from the Go proxy.
    env={"GOTOOLCHAIN": "auto"},
)
KWOK = GoModule(
    name="kwok",
    module="sigs.k8s.io/kwok",
    version=KWOK_VERSION,
    binaries={"kwok": "sigs.k8s.io/kwok/cmd/kwok"},
)
ETCD = GoModule(
    name="etcd",
    module="go.etcd.io/etcd/server/v3",
    version=ETCD_VERSION,
    binaries={"etcd": "go.etcd.io/etcd/server/v3"},
    replaces=_local_replaces(f"v{ETCD_VERSION}"),
    accepts={"etcd": _version_at_least((3, 5, 13), ["--version"], "etcd Version")},
)

GO_MODULES = (ETCD, KUBE, ROLLOUTS, KWOK)
# What an operator or trainee types; `mnops sandbox env` puts their directories on PATH.
CLIENT_TOOLS = ("kubectl", "kubectl-argo-rollouts")

# Debian packages providing the rest; (binary candidates, package).
DEBIAN_BINARIES: dict[str, tuple[tuple[str, ...], str]] = {
    "prometheus": (("prometheus",), "prometheus"),
    "promtool": (("promtool",), "prometheus"),
    "alertmanager": (("alertmanager", "prometheus-alertmanager"), "prometheus-alertmanager"),
    "amtool": (("amtool",), "prometheus-alertmanager"),
    "pushgateway": (("pushgateway", "prometheus-pushgateway"), "prometheus-pushgateway"),
}


def _search_dirs() -> list[Path]:
    dirs = []
    if os.environ.get("MNOPS_SANDBOX_BIN"):
        dirs.append(Path(os.environ["MNOPS_SANDBOX_BIN"]))
    dirs += [Path(p) for p in os.environ.get("PATH", "").split(os.pathsep) if p]
    return dirs


def _find_on_path(names: Iterable[str]) -> Path | None:
    for directory in _search_dirs():
        for name in names:
            candidate = directory / name
            if candidate.is_file() and os.access(candidate, os.X_OK):
                return candidate
    return None


def find(binary: str) -> Path | None:
    """The path of ``binary`` if it is already available, without building anything."""
    if binary in DEBIAN_BINARIES:
        return _find_on_path(DEBIAN_BINARIES[binary][0])
    for module in GO_MODULES:
        if binary in module.binaries:
            found = _find_on_path([binary])
            if found is not None and module.accepted(binary, found):
                return found
            cached = module.bin_dir / binary
            return cached if cached.is_file() else None
    raise KeyError(binary)


def require(binary: str) -> Path:
    """Like :func:`find`, but a missing binary is an error that says how to get it."""
    path = find(binary)
    if path is not None:
        return path
    if binary in DEBIAN_BINARIES:
        package = DEBIAN_BINARIES[binary][1]
        raise SandboxError(
            f"sandbox component {binary!r}: no executable found in $MNOPS_SANDBOX_BIN or PATH. "
            f"Fix: apt-get install {package} (Debian), or put a {binary} binary into $MNOPS_SANDBOX_BIN."
        )
    raise SandboxError(f"sandbox component {binary!r}: not on PATH and not built yet. Fix: run `mnops sandbox build`.")


class _GoProgress:
    """Counts packages `go build -v` reports, so a 10-minute build shows it is alive."""

    def __init__(self, label: str, progress: Progress) -> None:
        self.label, self.progress = label, progress
        self.started = time.monotonic()
        self.packages = 0
        self._stop = threading.Event()
        self._ticker = threading.Thread(target=self._tick, daemon=True)

    def __enter__(self) -> _GoProgress:
        self._ticker.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._ticker.join()

    def elapsed(self) -> str:
        seconds = int(time.monotonic() - self.started)
        return f"{seconds // 60}m{seconds % 60:02d}s"

    def _tick(self) -> None:
        while not self._stop.wait(20):
            self.progress(f"[build] {self.label}: {self.packages} packages compiled, {self.elapsed()}")


def _go(args: list[str], *, cwd: Path, env: dict[str, str], log: Path, ticker: _GoProgress | None = None) -> None:
    with log.open("a") as out:
        out.write(f"$ go {' '.join(args)}\n")
        out.flush()
        proc = subprocess.Popen(
            [_go_binary(), *args], cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
        )
        assert proc.stdout is not None
        for line in proc.stdout:
            out.write(line)
            if ticker is not None and not line.startswith(("go: ", "#")):
                ticker.packages += 1
        if proc.wait() != 0:
            out.flush()
            tail = "".join(log.read_text().splitlines(keepends=True)[-15:])
            raise SandboxError(
                f"building {env.get('MNOPS_COMPONENT', 'a sandbox component')}: `go {' '.join(args)}` "
                f"failed (exit {proc.returncode}) in {cwd}. Full log: {log}\n{tail}"
            )


def _go_binary() -> str:
    go = shutil.which("go")
    if go is None:
        raise SandboxError(
            "building the sandbox needs Go >= 1.26 on PATH (KWOK 0.8 requires it), and none was "
            "found. Fix: install Go, or put prebuilt binaries into $MNOPS_SANDBOX_BIN."
        )
    return go


def _go_json(args: list[str], *, cwd: Path, env: dict[str, str]) -> dict[str, Any]:
    proc = subprocess.run([_go_binary(), *args], cwd=cwd, env=env, capture_output=True, text=True)
    if proc.returncode != 0:
        raise SandboxError(
            f"building {env.get('MNOPS_COMPONENT')}: `go {' '.join(args)}` failed: {proc.stderr.strip()}. "
            "Fix: make the Go module proxy reachable (GOPROXY) or put the binaries into $MNOPS_SANDBOX_BIN."
        )
    return json.loads(proc.stdout)


def source_dir(module: GoModule) -> Path:
    """The module's source in the local module cache (downloaded through the proxy if absent): CRDs, stages."""
    env = {k: v for k, v in os.environ.items() if k != "GOFLAGS"}
    return Path(
        _go_json(
            ["mod", "download", "-json", f"{module.module}@v{module.version}"],
            cwd=Path.home(),
            env={**env, "MNOPS_COMPONENT": module.name, **module.env},
        )["Dir"]
    )


def _wrapper_gomod(module: GoModule, work: Path, env: dict[str, str]) -> str:
    """go.mod of a wrapper module requiring ``module`` with the replace block its own go.mod implies."""
    lines = [
        f"module mnops.sandbox/{module.name}-build",
        "",
        "go 1.24.0",
        "",
        f"require {module.module} v{module.version}",
    ]
    if module.replaces is not None:
        # Outside the wrapper module: -mod=mod is refused there.
        plain = {k: v for k, v in env.items() if k != "GOFLAGS"}
        info = _go_json(["mod", "download", "-json", f"{module.module}@v{module.version}"], cwd=work.parent, env=plain)
        upstream = _go_json(["mod", "edit", "-json", info["GoMod"]], cwd=work.parent, env=plain)
        lines += ["", "replace ("]
        lines += [f"\t{old} => {new} {version}" for old, new, version in module.replaces(upstream)]
        lines.append(")")
    return "\n".join(lines) + "\n"


def build(module: GoModule, progress: Progress = print) -> Path:
    """Build the binaries of ``module`` missing from its versioned cache directory; a no-op when all are there.

    A cache from before a binary joined its module (kubectl, the Rollouts plugin) keeps what it has: only
    the new binary is compiled, from the same wrapper module and Go build cache.
    """
    target = module.bin_dir
    missing = {b: pkg for b, pkg in module.binaries.items() if not (target / b).is_file()}
    if not missing:
        return target
    work = cache_dir() / "work" / f"{module.name}-{module.version}"
    work.mkdir(parents=True, exist_ok=True)
    log = cache_dir() / "logs" / f"build-{module.name}-{module.version}.log"
    log.parent.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, "GOFLAGS": "-mod=mod", "CGO_ENABLED": "0", "MNOPS_COMPONENT": module.name, **module.env}
    staging = work / "bin.partial"
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir()
    progress(f"[build] {module.name} v{module.version}: preparing wrapper module in {work}")
    with _GoProgress(f"{module.name} v{module.version}", progress) as ticker:
        (work / "go.mod").write_text(_wrapper_gomod(module, work, env))
        packages = [f"{pkg}@v{module.version}" for pkg in missing.values()]
        progress(f"[build] {module.name}: resolving dependencies ({ticker.elapsed()})")
        _go(["get", *packages], cwd=work, env=env, log=log)
        progress(f"[build] {module.name}: compiling {', '.join(missing)} ({ticker.elapsed()})")
        for binary, pkg in missing.items():
            _go(
                ["build", "-v", "-trimpath", "-ldflags", module.ldflags, "-o", str(staging / binary), pkg],
                cwd=work,
                env=env,
                log=log,
                ticker=ticker,
            )
        target.mkdir(parents=True, exist_ok=True)
        for binary in missing:
            (staging / binary).rename(target / binary)
        staging.rmdir()
        progress(f"[build] {module.name} v{module.version}: done in {ticker.elapsed()} -> {target}")
    return target


def ensure_all(progress: Progress = print) -> dict[str, Path]:
    """Every binary the sandbox runs: found where it already is, else built (cached)."""
    missing_debian = sorted({pkg for b, (_, pkg) in DEBIAN_BINARIES.items() if find(b) is None})
    if missing_debian:
        raise SandboxError(
            "sandbox: Debian packages missing: "
            + ", ".join(missing_debian)
            + f". Fix: apt-get install -y {' '.join(missing_debian)}"
        )
    for module in GO_MODULES:
        if any(find(b) is None for b in module.binaries):
            build(module, progress)
    return {b: require(b) for m in GO_MODULES for b in m.binaries} | {b: require(b) for b in DEBIAN_BINARIES}


def client_tool_dirs() -> list[Path]:
    """The directories of kubectl and the Argo Rollouts plugin, for PATH (each once, in lookup order)."""
    dirs: list[Path] = []
    for tool in CLIENT_TOOLS:
        path = find(tool)
        if path is not None and path.parent not in dirs:
            dirs.append(path.parent)
    return dirs


def path_export(dirs: list[Path]) -> str:
    """kubectl and `kubectl argo rollouts` first on PATH; the shell expands the rest of PATH itself."""
    prefix = "".join(f"{shlex.quote(str(d))}:" for d in dirs)
    return f'export PATH={prefix}"$PATH"'
