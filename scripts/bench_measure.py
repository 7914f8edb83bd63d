"""Times whole processes for the scale benchmark (scripts/bench-fleet.sh).

Reads one command per line on stdin, `LABEL<TAB>COMMAND` (COMMAND run by bash, in the current
directory), runs each RUNS times, and prints per command: the median wall time, the process's
own peak memory (VmHWM of the top process, sampled while it runs: helm's and kubectl's memory
is their own), the median CPU time of it and the processes it started, and for helm-envs commands the helm and kubectl processes started (from one
extra run with -v). Exit codes are shown when not 0 or 2 (2 is "differences found").
"""

import os
import statistics
import subprocess
import sys
import time


def peak_kib(pid):
    try:
        with open(f"/proc/{pid}/status") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


def run(command):
    """Wall seconds, peak KiB, exit code, and CPU seconds (user + system, the process and the
    helm and kubectl processes it waited for)."""
    start = time.monotonic()
    # exec: the timed process is the command itself, not a shell around it.
    process = subprocess.Popen(["bash", "-c", "exec " + command], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    peak = 0
    while True:
        pid, status, usage = os.wait4(process.pid, os.WNOHANG)
        if pid:
            break
        peak = max(peak, peak_kib(process.pid))
        time.sleep(0.01)
    wall = time.monotonic() - start
    return wall, peak, os.waitstatus_to_exitcode(status), usage.ru_utime + usage.ru_stime


def processes(command):
    """helm and kubectl processes a helm-envs command starts, from its -v log."""
    if "helm-envs" not in command.split()[0]:
        return ""
    out = subprocess.run(["bash", "-c", command + " -v"], capture_output=True, text=True)
    lines = [l for l in out.stderr.splitlines() if l.startswith("helm-envs: running ")]
    helm = sum(1 for l in lines if l.split()[2].endswith("helm"))
    kubectl = sum(1 for l in lines if l.split()[2].endswith("kubectl"))
    return f"{helm} + {kubectl}"


def main():
    runs = int(sys.argv[1])
    print(f"{'command':58} {'median':>9} {'CPU':>8} {'peak MiB':>9} {'helm + kubectl':>15}")
    for line in sys.stdin:
        if not line.strip():
            continue
        if line.startswith("#"):
            print(line.rstrip())
            continue
        label, command = line.rstrip("\n").split("\t", 1)
        samples = [run(command) for _ in range(runs)]
        wall = statistics.median(s[0] for s in samples)
        cpu = statistics.median(s[3] for s in samples)
        peak = max(s[1] for s in samples) / 1024
        codes = sorted({s[2] for s in samples} - {0, 2})
        note = f"  (exit {', '.join(map(str, codes))})" if codes else ""
        print(f"{label:58} {wall:8.2f}s {cpu:7.2f}s {peak:9.1f} {processes(command):>15}{note}", flush=True)


main()
