#!/usr/bin/env python3
"""ttft.py [-r N] COMMAND...: time to first token as a user sees it.

Runs COMMAND N times (default 5) and prints, for each run, the seconds from spawning
it to the first byte on its stdout (the first generated token: `nook run` does not
echo the prompt), then min / median / max. Example, page cache warm:

  bench/ttft.py -r 5 build/nook run MODEL.gguf "Summarize this paragraph in one short sentence." \\
      --raw -n 4 --temperature 0

(that prompt is 10 tokens for the Qwen3 and Llama 3 vocabularies). stderr is discarded;
the process is killed after its first byte.
"""
import os
import statistics
import subprocess
import sys
import time


def once(cmd):
    t0 = time.monotonic()
    p = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    first = os.read(p.stdout.fileno(), 1)
    t1 = time.monotonic()
    p.kill()
    p.wait()
    if not first:
        sys.exit(f"ttft.py: {cmd[0]} printed nothing (exit status {p.returncode})")
    return t1 - t0


def main():
    args = sys.argv[1:]
    reps = 5
    if len(args) >= 2 and args[0] == "-r":
        reps, args = int(args[1]), args[2:]
    if not args:
        sys.exit(__doc__)
    times = [once(args) for _ in range(reps)]
    for t in times:
        print(f"{t:.3f}")
    print(f"min {min(times):.3f}  median {statistics.median(times):.3f}  max {max(times):.3f} s")


if __name__ == "__main__":
    main()
