"""Time `ctpipe --help` (must answer in well under a second) against a bare interpreter.

Run from the repository root with the virtual environment active:

    python benchmarks/bench_cli_startup.py [--repeats 15]
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time

COMMANDS = {
    "python -c pass (reference)": [sys.executable, "-c", "pass"],
    "ctpipe --help": [sys.executable, "-m", "ctpipe", "--help"],
    "ctpipe data --help": [sys.executable, "-m", "ctpipe", "data", "--help"],
    "python -c 'import monai' (what --help avoids)": [sys.executable, "-c", "import monai"],
}


def time_command(command: list[str]) -> float:
    started = time.perf_counter()
    subprocess.run(command, check=True, stdout=subprocess.DEVNULL)
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=15)
    args = parser.parse_args()
    times: dict[str, list[float]] = {name: [] for name in COMMANDS}
    for command in COMMANDS.values():
        time_command(command)  # warm-up: page cache, .pyc files
    for _ in range(args.repeats):
        for name, command in COMMANDS.items():
            times[name].append(time_command(command))
    reference = statistics.median(times["python -c pass (reference)"])
    print(f"{args.repeats} interleaved runs each\n")
    print("| command | median s | max s | ratio vs bare python |")
    print("|---|---:|---:|---:|")
    for name, values in times.items():
        median = statistics.median(values)
        print(f"| {name} | {median:.3f} | {max(values):.3f} | {median / reference:.1f} |")


if __name__ == "__main__":
    main()
