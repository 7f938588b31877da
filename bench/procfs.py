"""CPU and memory of a process tree, read from /proc (psutil is not a dependency)."""

import contextlib
import os
import threading
import time
from pathlib import Path

CLK_TCK = os.sysconf("SC_CLK_TCK")


def process_tree(root: int) -> list[int]:
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            with contextlib.suppress(OSError, IndexError, ValueError):
                stat = (entry / "stat").read_text()
                ppid = int(stat[stat.rindex(")") + 2 :].split()[1])
                children.setdefault(ppid, []).append(int(entry.name))
    tree, pending = [], [root]
    while pending:
        pid = pending.pop()
        tree.append(pid)
        pending.extend(children.get(pid, ()))
    return tree


def cpu_seconds(pids: list[int]) -> float:
    total = 0
    for pid in pids:
        with contextlib.suppress(OSError, IndexError, ValueError):
            stat = Path(f"/proc/{pid}/stat").read_text()
            fields = stat[stat.rindex(")") + 2 :].split()
            total += int(fields[11]) + int(fields[12])  # utime, stime
    return total / CLK_TCK


def rss_kib(pids: list[int]) -> int:
    total = 0
    for pid in pids:
        with contextlib.suppress(OSError, IndexError, ValueError):
            for line in Path(f"/proc/{pid}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1])
    return total


def machine_busy_seconds() -> float:
    """Busy CPU seconds of the whole machine since boot, from /proc/stat."""
    values = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:8]]
    return (sum(values) - values[3] - values[4]) / CLK_TCK  # less idle and iowait


class Sampler:
    """CPU and RSS of a process tree over a window; RSS polled on a thread so the peak is seen."""

    def __init__(self, root: int, interval_s: float = 0.5) -> None:
        self._root = root
        self._interval = interval_s
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._poll, daemon=True)
        self.rss_series: list[tuple[float, int]] = []
        self.rss_before = rss_kib(process_tree(root))

    def __enter__(self) -> "Sampler":
        self._pids = process_tree(self._root)
        self._cpu0, self._wall0 = cpu_seconds(self._pids), time.perf_counter()
        self._busy0 = machine_busy_seconds()
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join()
        self.wall_s = time.perf_counter() - self._wall0
        self.cpu_s = cpu_seconds(self._pids) - self._cpu0
        self.machine_percent = 100 * (machine_busy_seconds() - self._busy0) / self.wall_s

    def _poll(self) -> None:
        started = time.perf_counter()
        while not self._stop.wait(self._interval):
            self.rss_series.append((time.perf_counter() - started, rss_kib(self._pids)))

    @property
    def rss_peak(self) -> int:
        return max((rss for _, rss in self.rss_series), default=self.rss_before)
