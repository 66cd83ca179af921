"""The machine a run was measured on."""

from __future__ import annotations

import os
import platform
from dataclasses import dataclass
from pathlib import Path

from benchmarks.references import tool_versions
from pli import __version__


@dataclass(frozen=True)
class Machine:
    cpu: str
    cores: int
    memory_gib: float
    kernel: str
    python: str
    pli: str
    tools: dict[str, str]

    def markdown(self) -> str:
        lines = [
            f"- CPU: {self.cpu}, {self.cores} cores",
            f"- memory: {self.memory_gib:.1f} GiB",
            f"- kernel: Linux {self.kernel}",
            f"- Python {self.python}, pli {self.pli}",
        ]
        lines += [f"- {name}: {version}" for name, version in self.tools.items()]
        return "\n".join(lines)


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def _memory_gib() -> float:
    for line in Path("/proc/meminfo").read_text().splitlines():
        if line.startswith("MemTotal:"):
            return int(line.split()[1]) / (1 << 20)
    return 0.0


def this_machine() -> Machine:
    return Machine(
        cpu=_cpu_model(),
        cores=os.cpu_count() or 0,
        memory_gib=_memory_gib(),
        kernel=platform.release(),
        python=platform.python_version(),
        pli=__version__,
        tools=tool_versions(),
    )
