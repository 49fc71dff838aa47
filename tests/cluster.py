"""A real 3-master Redis Cluster on loopback for tests and the bench: three `redis-server --cluster-enabled yes`
processes, slots assigned by `redis-cli --cluster create` (or CLUSTER ADDSLOTSRANGE + MEET when that tool is
missing). `with RedisCluster3() as c: c.url` -> `redis+cluster://127.0.0.1:P1,127.0.0.1:P2,127.0.0.1:P3/0`."""

from __future__ import annotations

import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path


def _free_port(taken: set[int]) -> int:
    # cluster bus ports are port + 10000: keep both free, under 65535 and clear of the other nodes' two ports
    while True:
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        if port + 10000 < 65535 and not {port, port + 10000} & taken:
            with socket.socket() as s:
                try:
                    s.bind(("127.0.0.1", port + 10000))
                except OSError:
                    continue
            taken.update((port, port + 10000))
            return port


def _binary(name: str) -> str:
    found = shutil.which(name, path="/usr/bin:/usr/local/bin") or shutil.which(name)
    if not found:
        raise RuntimeError(f"{name} not found (scripts/setup-system.sh installs redis-server)")
    return found


class RedisCluster3:
    """Three masters, no replicas, no persistence."""

    def __init__(self, masters: int = 3):
        self.n = masters
        self.ports: list[int] = []
        self.procs: list[subprocess.Popen] = []
        self.cmds: list[list[str]] = []
        self.dir = Path(tempfile.mkdtemp(prefix="dvci-cluster-"))

    @property
    def nodes(self) -> list[str]:
        return [f"127.0.0.1:{p}" for p in self.ports]

    @property
    def url(self) -> str:
        return "redis+cluster://" + ",".join(self.nodes) + "/0"

    def cli(self, port: int, *args: str) -> str:
        out = subprocess.run([_binary("redis-cli"), "-h", "127.0.0.1", "-p", str(port), *args],
                             capture_output=True, text=True, timeout=30, check=True)
        return out.stdout

    def start(self) -> RedisCluster3:
        server = _binary("redis-server")
        taken: set[int] = set()
        for i in range(self.n):
            port = _free_port(taken)
            node_dir = self.dir / str(i)
            node_dir.mkdir()
            self.cmds.append([server, "--port", str(port), "--bind", "127.0.0.1", "--cluster-enabled", "yes",
                              "--cluster-config-file", str(node_dir / "nodes.conf"), "--cluster-node-timeout",
                              "5000", "--save", "", "--appendonly", "no", "--dir", str(node_dir)])
            self.procs.append(self._spawn(i))
            self.ports.append(port)
        for port, proc in zip(self.ports, self.procs, strict=True):
            self._wait(lambda p=port: self.cli(p, "PING").strip() == "PONG", proc)
        if self._has_cluster_tool():
            subprocess.run([_binary("redis-cli"), "--cluster", "create", *self.nodes, "--cluster-replicas", "0",
                            "--cluster-yes"], capture_output=True, text=True, timeout=60, check=True)
        else:
            self._assign_slots()
        for port in self.ports:
            self._wait(lambda p=port: "cluster_state:ok" in self.cli(p, "CLUSTER", "INFO"))
        return self

    def _spawn(self, i: int) -> subprocess.Popen:
        with (self.dir / str(i) / "redis.log").open("ab") as log:
            return subprocess.Popen(self.cmds[i], stdout=log, stderr=log, start_new_session=True)

    def kill(self, i: int) -> None:
        """A master dies (SIGKILL): its slots are unserved until it is back."""
        self.procs[i].kill()
        self.procs[i].wait()

    def restart(self, i: int) -> None:
        """The master comes back with its nodes.conf (same id, same slots; empty: no persistence)."""
        self.procs[i] = self._spawn(i)
        self._wait(lambda: self.cli(self.ports[i], "PING").strip() == "PONG", self.procs[i])
        for port in self.ports:
            self._wait(lambda p=port: "cluster_state:ok" in self.cli(p, "CLUSTER", "INFO"))

    def _has_cluster_tool(self) -> bool:
        out = subprocess.run([_binary("redis-cli"), "--cluster", "help"], capture_output=True, text=True, check=False)
        return "create" in (out.stdout + out.stderr)

    def _assign_slots(self) -> None:
        per = 16384 // self.n
        for i, port in enumerate(self.ports):
            last = 16383 if i == self.n - 1 else (i + 1) * per - 1
            self.cli(port, "CLUSTER", "ADDSLOTSRANGE", str(i * per), str(last))
        for port in self.ports[1:]:
            self.cli(self.ports[0], "CLUSTER", "MEET", "127.0.0.1", str(port))

    @staticmethod
    def _wait(ready, proc: subprocess.Popen | None = None, timeout: float = 30.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if proc is not None and proc.poll() is not None:
                raise RuntimeError(f"redis-server exited with {proc.returncode}")
            try:
                if ready():
                    return
            except (subprocess.SubprocessError, OSError):
                pass
            time.sleep(0.05)
        raise RuntimeError("Redis Cluster did not come up")

    def keys_per_node(self, pattern: str = "*") -> dict[str, int]:
        """Keys matching `pattern` on each master (SCAN on every node)."""
        import redis

        counts: dict[str, int] = {}
        for node, port in zip(self.nodes, self.ports, strict=True):
            r = redis.Redis(host="127.0.0.1", port=port)
            counts[node] = sum(1 for _ in r.scan_iter(match=pattern, count=1000))
            r.close()
        return counts

    def flush(self) -> None:
        for port in self.ports:
            self.cli(port, "FLUSHALL")

    def stop(self) -> None:
        for p in self.procs:
            if p.poll() is None:
                p.terminate()
        for p in self.procs:
            try:
                p.wait(10)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()
        self.procs.clear()
        shutil.rmtree(self.dir, ignore_errors=True)

    def __enter__(self) -> RedisCluster3:
        try:
            return self.start()
        except BaseException:
            self.stop()
            raise

    def __exit__(self, *exc: object) -> None:
        self.stop()


if __name__ == "__main__":  # `python -m tests.cluster`: start one and keep it up until Ctrl-C (or SIGTERM)
    import signal

    signal.signal(signal.SIGTERM, lambda *_: (_ for _ in ()).throw(KeyboardInterrupt()))
    with RedisCluster3() as c:
        print(c.url, flush=True)
        try:
            while True:
                time.sleep(3600)
        except KeyboardInterrupt:
            pass
