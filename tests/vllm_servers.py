"""Real vLLM OpenAI-compatible servers for tests: two replicas of the tiny test model on 127.0.0.1.

Import the `vllm_servers` fixture into a test module (`from vllm_servers import vllm_servers`). The servers
start once per session, in parallel (each takes 20 s to minutes on a small CPU machine), and are stopped by PID
at teardown: SIGTERM to the process group each one leads (the API server and its engine-core process), then
SIGKILL for what is left. Skipped when vLLM is not installed.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest

STARTUP_TIMEOUT_S = 900.0  # generous: two servers starting on two busy cores


@dataclass
class VllmServer:
    """One server process: its URL and the log its output goes to."""

    process: subprocess.Popen[bytes]
    url: str
    log: Path

    def alive(self) -> bool:
        return self.process.poll() is None

    def kill(self, sig: signal.Signals = signal.SIGKILL) -> None:
        """Send `sig` to the server's process group (the server was started as its leader, so pgid == pid)."""
        if self.alive():
            os.killpg(self.process.pid, sig)

    def stop(self) -> None:
        """SIGTERM, a grace period, then SIGKILL; the log stays for a failed test to show."""
        self.kill(signal.SIGTERM)
        try:
            self.process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.kill(signal.SIGKILL)
            self.process.wait(timeout=20)
        # The engine-core child may outlive the leader briefly; its group is ours, and empty groups raise.
        try:
            os.killpg(self.process.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass

    def count(self, metric: str = "vllm:request_success_total") -> float:
        """The sum of a Prometheus counter over its labels (from /metrics)."""
        with urllib.request.urlopen(f"{self.url}/metrics", timeout=10) as response:
            lines = response.read().decode().splitlines()
        return sum(float(line.rsplit(" ", 1)[1]) for line in lines if line.startswith(metric + "{"))


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def start_server(model_dir: Path, log: Path, cpu: int | None = None, env: dict[str, str] | None = None) -> VllmServer:
    """Start `python -m vllm.entrypoints.openai.api_server` for `model_dir` on a free port (not waiting);
    `env` adds to this process's environment."""
    port = _free_port()
    env = dict(os.environ, VLLM_CPU_KVCACHE_SPACE="1", **(env or {}))
    if cpu is not None:  # without it every replica binds its threads to the same first core
        env["VLLM_CPU_OMP_THREADS_BIND"] = str(cpu)
    command = [
        sys.executable,
        "-m",
        "vllm.entrypoints.openai.api_server",
        "--model",
        str(model_dir),
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--dtype",
        "float32",
        "--max-model-len",
        "1024",
        "--enforce-eager",
        # as the vllm engine does on CPU: a seeded request whose prompt is split over steps crashes vLLM
        # 0.32's CPU sampler with chunked prefill
        "--no-enable-chunked-prefill",
    ]
    with log.open("wb") as handle:
        process = subprocess.Popen(command, stdout=handle, stderr=subprocess.STDOUT, env=env, start_new_session=True)
    return VllmServer(process, f"http://127.0.0.1:{port}", log)


def wait_healthy(servers: list[VllmServer], timeout_s: float = STARTUP_TIMEOUT_S) -> None:
    """Wait until every server answers /health with 200; fail (with the log's tail) if one exits or times out."""
    deadline = time.monotonic() + timeout_s
    waiting = list(servers)
    while waiting:
        for server in list(waiting):
            if not server.alive():
                tail = server.log.read_text(errors="replace")[-3000:]
                raise RuntimeError(f"the vLLM server at {server.url} exited:\n{tail}")
            try:
                with urllib.request.urlopen(f"{server.url}/health", timeout=5) as response:
                    if response.status == 200:
                        waiting.remove(server)
            except OSError:
                pass
        if waiting and time.monotonic() > deadline:
            raise TimeoutError(f"vLLM servers not healthy after {timeout_s:.0f} s: {[s.url for s in waiting]}")
        time.sleep(1.0)


@contextmanager
def running_servers(
    model_dir: Path, logs: Path, count: int = 2, env: dict[str, str] | None = None
) -> Iterator[list[VllmServer]]:
    """`count` healthy replicas of `model_dir` (started in parallel, one core each where there are several),
    stopped on exit; their logs go to `logs`."""
    cores = sorted(os.sched_getaffinity(0))
    servers = [
        start_server(model_dir, logs / f"replica{i}.log", cores[i % len(cores)] if len(cores) > 1 else None, env)
        for i in range(count)
    ]
    try:
        wait_healthy(servers)
        yield servers
    finally:
        for server in servers:
            server.stop()


@pytest.fixture(scope="session")
def vllm_servers(tiny_model_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[list[VllmServer]]:
    """Two replicas of the tiny model, healthy; a test may kill one (later users must check `alive()`)."""
    pytest.importorskip("vllm")
    with running_servers(tiny_model_dir, tmp_path_factory.mktemp("vllm-servers")) as servers:
        yield servers
