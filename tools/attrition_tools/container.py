"""The serving image run as the production Deployment (or its inference log compaction CronJob) runs
it: the rendered overlay (``kubectl kustomize kustomize/overlays/production``) turned into ``podman
run`` flags, so that the container test and the benchmark never restate the manifest.

From the manifest: the user and group (``runAsUser``/``runAsGroup``/``fsGroup``), the read-only root
filesystem (and no other writable path than the ``emptyDir`` mounts, which become tmpfs mounts of the
same size; a projected ServiceAccount token becomes a read-only folder with a stand-in token),
``capabilities.drop``, ``allowPrivilegeEscalation: false`` (no-new-privileges), the CPU and memory
limits, the environment (the ConfigMap of ``envFrom`` and ``env``), the container ports and the
termination grace period. Ports are published on 127.0.0.1 only.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import requests
import yaml

from attrition_tools.image import PRODUCTION_OVERLAY, podman

#: Kubernetes quantity suffixes as tmpfs/podman understand them.
_BINARY_SUFFIXES = {"Ki": "k", "Mi": "m", "Gi": "g"}


def kubectl() -> str:
    """kubectl from the dev extras (beside this interpreter), else the one on PATH."""
    beside = Path(sys.executable).parent / "kubectl"
    return str(beside) if beside.exists() else (shutil.which("kubectl") or "kubectl")


def _size(quantity: str) -> str:
    for suffix, short in _BINARY_SUFFIXES.items():
        if quantity.endswith(suffix):
            return quantity.removesuffix(suffix) + short
    return quantity


def _cpus(quantity: str) -> str:
    """A Kubernetes CPU quantity ("2", "500m") as podman's ``--cpus`` takes it ("2", "0.5")."""
    return str(int(quantity.removesuffix("m")) / 1000) if quantity.endswith("m") else quantity


@dataclass
class Deployment:
    """What ``podman run`` needs to run the image as the manifest's only container."""

    flags: list[str]
    env: dict[str, str]
    ports: dict[str, int]  # port name -> containerPort
    grace_s: int
    readiness_path: str


def _security_flags(pod: dict, container: dict) -> list[str]:
    pod_sc, sc = pod.get("securityContext", {}), container.get("securityContext", {})
    user = sc.get("runAsUser", pod_sc.get("runAsUser"))
    group = sc.get("runAsGroup", pod_sc.get("runAsGroup"))
    flags = ["--user", f"{user}:{group}"]
    if "fsGroup" in pod_sc:
        flags += ["--group-add", str(pod_sc["fsGroup"])]
    if sc.get("readOnlyRootFilesystem"):
        # Only the manifest's emptyDirs are writable: no tmpfs of podman's own on /tmp, /run, /var/tmp.
        flags += ["--read-only", "--read-only-tmpfs=false"]
    if sc.get("allowPrivilegeEscalation") is False:
        flags += ["--security-opt", "no-new-privileges"]
    for cap in sc.get("capabilities", {}).get("drop", []):
        flags += ["--cap-drop", cap]
    for cap in sc.get("capabilities", {}).get("add", []):
        flags += ["--cap-add", cap]
    profile = sc.get("seccompProfile", pod_sc.get("seccompProfile", {})).get("type")
    if profile != "RuntimeDefault":  # podman applies its default profile; anything else is not modelled
        raise ValueError(f"seccompProfile {profile!r}: only RuntimeDefault is run by the container test")
    return flags


def _projected_token(mount: dict, volume: dict) -> list[str]:
    """A projected ServiceAccount token, as the kubelet mounts it: a read-only folder with the token
    file. No cluster issues one here, so the file holds a stand-in; the container test reaches its
    registry without it (a local MLflow store), as the overlay's other identity settings stay unused."""
    (source,) = volume["projected"]["sources"]
    if "serviceAccountToken" not in source:
        raise ValueError(f"volume {mount['name']!r}: only projected ServiceAccount tokens are modelled")
    folder = Path(tempfile.mkdtemp(prefix="attrition-sa-token-"))
    (folder / source["serviceAccountToken"]["path"]).write_text("stand-in: no cluster issued a token\n")
    folder.chmod(0o755)
    return ["--volume", f"{folder}:{mount['mountPath']}:ro"]


def _volume_flags(pod: dict, container: dict) -> list[str]:
    volumes = {v["name"]: v for v in pod.get("volumes", [])}
    flags = []
    for mount in container.get("volumeMounts", []):
        volume = volumes[mount["name"]]
        if "projected" in volume:
            flags += _projected_token(mount, volume)
            continue
        if "emptyDir" not in volume:
            raise ValueError(f"volume {mount['name']!r} is neither an emptyDir nor a token: not modelled")
        # exec: an emptyDir is not mounted noexec (podman's tmpfs default is).
        options = ["rw", "exec", "nosuid", "nodev", "mode=1777"]
        if "sizeLimit" in volume["emptyDir"]:
            options.append(f"size={_size(volume['emptyDir']['sizeLimit'])}")
        flags += ["--tmpfs", f"{mount['mountPath']}:{','.join(options)}"]
    return flags


def _rendered(overlay: Path) -> list[dict]:
    command = [kubectl(), "kustomize", str(overlay)]
    rendered = subprocess.run(command, capture_output=True, text=True, check=True)
    return [d for d in yaml.safe_load_all(rendered.stdout) if d]


def _run_flags(docs: list[dict], pod: dict) -> tuple[list[str], dict[str, str]]:
    """The podman flags and the environment of the pod's only container."""
    (container,) = pod["containers"]
    config_maps = {d["metadata"]["name"]: d.get("data", {}) for d in docs if d["kind"] == "ConfigMap"}
    env: dict[str, str] = {}
    for source in container.get("envFrom", []):
        if "configMapRef" in source:
            env.update(config_maps[source["configMapRef"]["name"]])
        # secretRef: optional credentials created out of band; none exist here.
    env.update({e["name"]: e["value"] for e in container.get("env", []) if "value" in e})
    limits = container.get("resources", {}).get("limits", {})
    flags = _security_flags(pod, container) + _volume_flags(pod, container)
    if "cpu" in limits:
        flags += ["--cpus", _cpus(str(limits["cpu"]))]
    if "memory" in limits:
        flags += ["--memory", _size(limits["memory"])]
    return flags, env


def production_deployment(overlay: Path = PRODUCTION_OVERLAY) -> Deployment:
    """The overlay rendered with kubectl, read back as podman flags."""
    docs = _rendered(overlay)
    (deployment,) = [d for d in docs if d["kind"] == "Deployment"]
    pod = deployment["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    flags, env = _run_flags(docs, pod)
    return Deployment(
        flags=flags,
        env=env,
        ports={p["name"]: p["containerPort"] for p in container["ports"]},
        grace_s=int(pod.get("terminationGracePeriodSeconds", 30)),
        readiness_path=container["readinessProbe"]["httpGet"]["path"],
    )


@dataclass
class Job:
    """What ``podman run`` needs to run the image once as the overlay's CronJob runs it."""

    flags: list[str]
    env: dict[str, str]
    command: list[str]  # the container's command and args: the entrypoint first

    def run_args(self, image: str, env: dict[str, str] | None = None, *extra_flags: str) -> list[str]:
        """``podman run`` arguments; ``env`` overrides the manifest's."""
        args = ["run", "--rm", *self.flags, *extra_flags, "--entrypoint", self.command[0]]
        args += [f"--env={key}={value}" for key, value in {**self.env, **(env or {})}.items()]
        return [*args, image, *self.command[1:]]


def production_job(overlay: Path = PRODUCTION_OVERLAY) -> Job:
    """The overlay's one CronJob (the inference log's compaction), read back as podman flags."""
    docs = _rendered(overlay)
    (cronjob,) = [d for d in docs if d["kind"] == "CronJob"]
    pod = cronjob["spec"]["jobTemplate"]["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    flags, env = _run_flags(docs, pod)
    return Job(flags=flags, env=env, command=[*container["command"], *container.get("args", [])])


def publish_args(container_ports: dict[str, int], host_ports: dict[str, int]) -> list[str]:
    """``--publish`` on 127.0.0.1 for each named port."""
    return [f"--publish=127.0.0.1:{host_ports[name]}:{port}" for name, port in container_ports.items()]


@dataclass
class Container:
    """One container of ``image`` run with the Deployment's flags, its ports published on 127.0.0.1, or
    in the network namespace of another container (``network_of``, like a pod's containers), which
    published them. ``env`` overrides the manifest's; a None value unsets. Removed by :meth:`remove`."""

    image: str
    deployment: Deployment
    host_ports: dict[str, int]
    env: dict[str, str | None] = field(default_factory=dict)
    network_of: str | None = None
    name: str = field(default_factory=lambda: f"attrition-{uuid.uuid4().hex[:10]}")

    @property
    def http_url(self) -> str:
        return f"http://127.0.0.1:{self.host_ports['http']}"

    @property
    def grpc_address(self) -> str:
        return f"127.0.0.1:{self.host_ports['grpc']}"

    @property
    def metrics_url(self) -> str:
        return f"http://127.0.0.1:{self.host_ports['metrics']}/metrics"

    def run_args(self) -> list[str]:
        args = ["run", "--detach", "--name", self.name, *self.deployment.flags]
        args += ["--stop-timeout", str(self.deployment.grace_s)]
        if self.network_of:
            args += ["--network", f"container:{self.network_of}"]
        else:
            args += publish_args(self.deployment.ports, self.host_ports)
        for key, value in {**self.deployment.env, **self.env}.items():
            if value is not None:
                args += ["--env", f"{key}={value}"]
        return [*args, self.image]

    def start(self, timeout: float = 180) -> float:
        """Run the container; returns seconds from ``podman run`` to the readiness probe's 200."""
        began = time.monotonic()
        podman(*self.run_args())
        url = self.http_url + self.deployment.readiness_path
        while time.monotonic() - began < timeout:
            if not self.running():
                raise RuntimeError(f"container exited before ready:\n{self.logs()[:6000]}")
            try:
                if requests.get(url, timeout=2).status_code == 200:
                    return time.monotonic() - began
            except requests.RequestException:
                pass
            time.sleep(0.25)
        raise TimeoutError(f"not ready after {timeout:.0f}s:\n{self.logs()[-4000:]}")

    def running(self) -> bool:
        state = podman("inspect", "--format", "{{.State.Running}}", self.name, check=False).stdout
        return state.strip() == "true"

    def exit_code(self) -> int:
        return int(podman("inspect", "--format", "{{.State.ExitCode}}", self.name).stdout.strip())

    def logs(self) -> str:
        done = podman("logs", self.name, check=False)
        return done.stdout + done.stderr

    def stdout(self) -> str:
        return podman("logs", self.name, check=False).stdout

    def exec(self, *command: str) -> subprocess.CompletedProcess:
        return podman("exec", self.name, *command, check=False)

    def stop(self) -> float:
        """``podman stop`` (SIGTERM, SIGKILL after the grace period); returns the seconds it took."""
        began = time.monotonic()
        podman("stop", "--time", str(self.deployment.grace_s), self.name)
        return time.monotonic() - began

    def remove(self) -> None:
        podman("rm", "--force", "--time", "0", self.name, check=False)
