#!/usr/bin/env python3
"""Figures for the hostile-input work, for a release build and, when given, a baseline build.

    cargo build --release
    python3 bench/hostile_input.py target/release/tandem [BASELINE_BINARY]

For each binary it starts `tandem serve` on a fresh SQLite file and prints:
- the time to answer a 30-level fragment fan-out (F0 spreads F1 twice, ... 2^30 fields once
  expanded; under 1 KB): median and worst of 20 tries, or the cap when it is not answered;
- the server's RSS before and after 100 requests with a 2 MB body.
Only loopback is used; every request has a timeout; the servers are stopped at the end.
"""
import json
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request

FAN_OUT_CAP_S = 20.0


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def fan_out(levels):
    parts = ["query { activeCampaign { ...F0 } }"]
    for level in range(levels):
        parts.append(f"fragment F{level} on Campaign {{ ...F{level + 1} ...F{level + 1} }}")
    parts.append(f"fragment F{levels} on Campaign {{ id }}")
    return "\n".join(parts)


def post(url, body, timeout):
    request = urllib.request.Request(url, data=body, headers={"content-type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as error:
        return error.code, error.read()


def rss_kib(pid):
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return -1


def start(binary):
    """Starts `tandem serve` on a fresh SQLite file; returns the process and the GraphQL URL."""
    work = tempfile.mkdtemp(prefix="tandem-bench-")
    port = free_port()
    env = dict(os.environ, DATABASE_URL=f"sqlite://{work}/bench.db", TANDEM_BIND=f"127.0.0.1:{port}",
               TANDEM_MAIL_DIR=f"{work}/mail", RUST_LOG="error")
    server = subprocess.Popen([binary, "serve"], env=env, stdout=subprocess.DEVNULL,
                              stderr=subprocess.DEVNULL, start_new_session=True)
    for _ in range(150):
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=1)
            break
        except OSError:
            time.sleep(0.2)
    url = f"http://127.0.0.1:{port}/graphql"
    normal = json.dumps({"query": "{ activeCampaign { id } }"}).encode()
    for _ in range(20):
        post(url, normal, 5)
    return server, url


def fan_out_time(binary):
    server, url = start(binary)
    try:
        body = json.dumps({"query": fan_out(30)}).encode()
        times = []
        for _ in range(20):
            started = time.perf_counter()
            try:
                post(url, body, FAN_OUT_CAP_S)
            except OSError:
                return f"not answered within {FAN_OUT_CAP_S:.0f} s ({len(body)} bytes)"
            times.append(time.perf_counter() - started)
        return (f"median {statistics.median(times) * 1000:.2f} ms, worst {max(times) * 1000:.2f} ms "
                f"({len(times)} tries, {len(body)} bytes)")
    finally:
        os.killpg(server.pid, signal.SIGKILL)


def memory(binary):
    # A fresh process, so the fan-out does not colour it.
    server, url = start(binary)
    try:
        before = rss_kib(server.pid)
        padding = " " * (2 * 1024 * 1024)
        big = ('{"query": "{ activeCampaign { id } }"' + padding + "}").encode()
        statuses = {}
        for _ in range(100):
            try:
                status, _ = post(url, big, 30)
            except OSError as error:
                status = type(error).__name__
            statuses[status] = statuses.get(status, 0) + 1
        time.sleep(0.5)
        after = rss_kib(server.pid)
        return (f"RSS {before / 1024:.1f} MiB before, {after / 1024:.1f} MiB after "
                f"100 bodies of 2 MiB (answers: {statuses})")
    finally:
        os.killpg(server.pid, signal.SIGKILL)


def main():
    if len(sys.argv) < 2:
        sys.exit(__doc__)
    for label, binary in zip(["this build", "baseline"], sys.argv[1:3]):
        print(f"{label} ({binary})")
        print(f"  30-level fragment fan-out: {fan_out_time(binary)}")
        print(f"  {memory(binary)}")


if __name__ == "__main__":
    main()
