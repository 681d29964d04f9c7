"""Memory of a Backstride web process (`backstride serve`'s gunicorn worker) at rest and under webhook load.

Starts the sandbox host and the real `backstride serve` on loopback (embedded defaults, one gunicorn worker
with 4 threads, as `backstride demo` runs it), connects a made-up athlete, finds the gunicorn worker process
(the child of the gunicorn master, itself a child of the `serve` supervisor), and prints its RSS, USS (the
memory only it holds: private clean + private dirty pages) and PSS (its fair share of pages shared with the
master and others), read from /proc/PID/smaps_rollup (psutil is used to walk the process tree when it is
installed, /proc otherwise). It does so after start, then after each checkpoint of webhook deliveries posted
straight to /webhooks/strava over keep-alive connections (distinct activity events for the connected athlete:
each is stored, enqueued and answered; the queue worker then spends one host call on it). Between checkpoints
it waits until the queue worker has settled every event, so each reading is of a quiet process. The point is
the steady state: after a warm-up, the figures should not grow with the number of requests served.

    python benchmarks/web_memory.py [--checkpoints 1000,5000] [--connections 1]
        [--backend embedded|postgres-redis]
"""

from __future__ import annotations

import argparse
import os
import time
from dataclasses import dataclass
from pathlib import Path

from machine import describe
from plugin_stack import backend_env, connect_athlete
from webhook_ack import ATHLETE, post_events

from plugin.sandbox.stack import Stack
from plugin.sandbox.state import SandboxConfig

try:
    import psutil
except ImportError:  # /proc is enough on Linux
    psutil = None


@dataclass(frozen=True)
class Memory:
    rss_kib: int
    pss_kib: int | None
    uss_kib: int | None

    def __str__(self) -> str:
        def mib(kib: int | None) -> str:
            return "n/a" if kib is None else f"{kib / 1024:.1f} MiB"

        return f"RSS {mib(self.rss_kib)}  USS {mib(self.uss_kib)}  PSS {mib(self.pss_kib)}"


def memory(pid: int) -> Memory:
    """RSS, PSS and USS of one process from /proc/PID/smaps_rollup (VmRSS from status without it)."""
    fields: dict[str, int] = {}
    try:
        for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
            name, _, value = line.partition(":")
            if value.strip().endswith("kB"):
                fields[name.strip()] = int(value.split()[0])
    except OSError:
        pass
    if "Rss" in fields:
        uss = fields.get("Private_Clean", 0) + fields.get("Private_Dirty", 0)
        return Memory(fields["Rss"], fields.get("Pss"), uss)
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return Memory(int(line.split()[1]), None, None)
    raise RuntimeError(f"no memory figures for process {pid}")


def command_line(pid: int) -> list[str]:
    if psutil is not None:
        return psutil.Process(pid).cmdline()
    return Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace").split("\0")[:-1]


def children(pid: int) -> list[int]:
    """Direct children of a process."""
    if psutil is not None:
        return [child.pid for child in psutil.Process(pid).children()]
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
        except OSError:
            continue
        # The command name in parentheses may hold spaces: the parent id is the 2nd field after it.
        if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
            found.append(int(entry))
    return sorted(found)


def web_processes(supervisor: int) -> tuple[int, list[int], list[int]]:
    """The gunicorn master, its workers, and the queue worker(s), under `backstride serve`'s supervisor."""
    master, queue_workers = None, []
    for child in children(supervisor):
        args = command_line(child)
        # gunicorn renames its master ("gunicorn: master [...]") only when setproctitle is installed.
        if "--no-worker" in args or any(arg.startswith("gunicorn") for arg in args):
            master = child
        else:
            queue_workers.append(child)
    if master is None:
        raise RuntimeError(f"no gunicorn master under process {supervisor}")
    deadline = time.monotonic() + 30
    while not (workers := children(master)) and time.monotonic() < deadline:
        time.sleep(0.2)
    if not workers:
        raise RuntimeError(f"the gunicorn master {master} has no worker")
    return master, workers, queue_workers


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--checkpoints", default="1000,5000", help="total deliveries after which to measure")
    parser.add_argument("--connections", type=int, default=1, help="keep-alive connections posting at once")
    parser.add_argument("--backend", choices=["embedded", "postgres-redis"], default="embedded")
    args = parser.parse_args()
    checkpoints = sorted(int(n) for n in args.checkpoints.split(","))
    print(describe())
    print(
        f"command: python benchmarks/web_memory.py --checkpoints {','.join(map(str, checkpoints))} "
        f"--connections {args.connections} --backend {args.backend}"
    )
    print(f"process figures from: {'psutil ' + psutil.__version__ if psutil else '/proc'} and smaps_rollup")
    with (
        backend_env(args.backend) as extra_env,
        Stack(SandboxConfig(seed=False), extra_env=extra_env) as stack,
    ):
        subscription_id = connect_athlete(stack, ATHLETE)
        assert stack.plugin is not None
        master, workers, queue_workers = web_processes(stack.plugin.pid)
        print(f"gunicorn master {master}, gunicorn worker(s) {workers}, queue worker(s) {queue_workers}")
        url = f"{stack.plugin_url}/webhooks/strava"

        readings: list[tuple[int, dict[int, Memory]]] = []

        def measure(delivered: int) -> None:
            figures = {pid: memory(pid) for pid in (*workers, master, *queue_workers)}
            readings.append((delivered, figures))
            label = "after start" if delivered == 0 else f"after {delivered} deliveries"
            for pid in workers:
                print(f"gunicorn worker {pid} {label}: {figures[pid]}")
            print(f"gunicorn master {master} {label}: {figures[master]}")
            for pid in queue_workers:
                print(f"queue worker {pid} {label}: {figures[pid]}")

        measure(0)
        delivered = 0
        for checkpoint in checkpoints:
            started = time.monotonic()
            post_events(url, 1_000 + delivered, checkpoint - delivered, args.connections, subscription_id)
            posted = time.monotonic() - started
            print(f"posted {checkpoint - delivered} deliveries in {posted:.1f} s")
            delivered = checkpoint
            stack.wait_settled(timeout=600)
            now_workers = web_processes(stack.plugin.pid)[1]
            if now_workers != workers:
                print(f"the gunicorn worker changed: {workers} -> {now_workers} (restarted)")
                workers = now_workers
            measure(delivered)

        if len(readings) >= 3 and all(pid in readings[-1][1] for pid in workers):
            (first_n, first), (last_n, last) = readings[1], readings[-1]
            for pid in workers:
                for name in ("rss_kib", "uss_kib"):
                    before, after = getattr(first[pid], name), getattr(last[pid], name)
                    if before is None or after is None:
                        continue
                    per_request = (after - before) * 1024 / (last_n - first_n)
                    print(
                        f"gunicorn worker {pid} {name[:3].upper()} growth from {first_n} to {last_n} "
                        f"deliveries: {(after - before) / 1024:+.2f} MiB ({per_request:+.1f} bytes per "
                        "delivery)"
                    )


if __name__ == "__main__":
    main()
