"""CPU steal on a VM: the share of CPU time the hypervisor gave to other guests while a
measurement ran. A burst that saw much of it is not comparable with one that saw none."""

from __future__ import annotations

from pathlib import Path

STAT = Path("/proc/stat")
STEAL_FIELD = 7  # user nice system idle iowait irq softirq steal (guest time is in user)


def cpu_times(stat: str | None = None) -> tuple[int, int]:
    """(all CPU time, stolen time) in ticks since boot, from the `cpu` line of /proc/stat."""
    text = STAT.read_text() if stat is None else stat
    fields = [int(value) for value in text.splitlines()[0].split()[1:]]
    return sum(fields[: STEAL_FIELD + 1]), fields[STEAL_FIELD] if len(fields) > STEAL_FIELD else 0


class StealMeter:
    """`stop()` gives the percentage of CPU time stolen since the meter started."""

    def __init__(self) -> None:
        self.start = cpu_times()

    def stop(self) -> float:
        total, stolen = cpu_times()
        elapsed = total - self.start[0]
        return 100.0 * (stolen - self.start[1]) / elapsed if elapsed > 0 else 0.0
