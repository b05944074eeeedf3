#!/usr/bin/env python3
"""Where `me` spends its time: runs the `me` case of bench/load.py against an already seeded
database (run bench/load.py once first) while `perf record` samples the server, then prints the
server's CPU time by stage of the request (STAGES below), as a share and in microseconds a
request.

    RUSTFLAGS="-C force-frame-pointers=yes" CARGO_TARGET_DIR=target/frame-pointers \
        cargo build --release --bin tandem --example raw_me
    python3 bench/profile_me.py --binary target/frame-pointers/release/tandem
    python3 bench/profile_me.py --binary target/frame-pointers/release/examples/raw_me

Needs `perf` (Debian's linux-perf). The stacks come from frame pointers, hence the separate
build; the profiled server runs a little slower than the plain release build.
"""
import argparse
import collections
import re
import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import load  # noqa: E402  (its server, token and wrk helpers)

# The stages of a request, each named by the frames that mark it. A sample belongs to the stage
# of the frame nearest its leaf that matches one of them (a send inside the database call is the
# database's; the same send inside actix's writer is HTTP's). Frame pointers make the stacks.
STAGES = [
    ("the statement: pool, sqlx, TLS and its socket calls",
     r"sqlx_core::pool|sqlx_postgres|sqlx_core::net|ConnectionTrait>::(query_one_raw|query_all_raw|execute_raw)"),
    ("reading the customer's row by column name (sea-orm)", r"FromQueryResult>::from_query_result"),
    ("resolvers of the fields (Customer, points, tier)",
     r"graphql::customers::.*for tandem::graphql::customers::Customer>|graphql::loyalty::|graphql::loaders::"),
    ("me's resolver (look-ahead, priming the loaders)", r"for tandem::graphql::customers::CustomerQuery>"),
    ("validation and complexity", r"async_graphql::validation"),
    ("execution (async-graphql's own work)", r"async_graphql::schema::Schema<.*>::execute"),
    ("response encoding", r"tandem::graphql::transport::(answer|respond|outcome_body|refused)"),
    ("operation metrics and span fields", r"^(metrics|metrics_util|metrics_exporter_prometheus)::|<metrics"),
    ("document cache, limits, request assembly, timeout", r"tandem::graphql::transport::Call::(run|execute)"),
    ("the token and the caller (JWT, visitor)",
     r"tandem::graphql::transport::Call::new|tandem::auth::|jsonwebtoken"),
    ("the body: read, nesting scan, JSON parse",
     r"tandem::graphql::transport::(parse_post_body|read_body|parse_params)|graphql::limits::check_nesting"),
    ("raw_me's handler (its token check, read and JSON)", r"^raw_me::"),
    ("request span, request id, HTTP metrics", r"tandem::server::telemetry|uuid::|tracing::"),
    ("HTTP: actix-web reading, routing and writing", r"actix_http|actix_web|actix_server|actix_service"),
    ("background workers (delivery, scheduler, live events)", r"tandem::jobs|tandem::delivery|tandem::live"),
    ("async runtime and idle polling (tokio, epoll)", r"tokio::|mio::|epoll_wait"),
]
# libc has no frame pointers, so a sample in a socket call or the allocator ends its stack there;
# those are told apart by what they are, not by whose they are.
UNATTRIBUTED = [
    ("socket sends, either side (libc: no stack above)", r"__send|sendto|__libc_send"),
    ("socket receives, either side (libc: no stack above)", r"__libc_recv|recvfrom"),
    ("waking other threads (futex, eventfd writes)", r"futex|__GI___libc_write|ksys_write"),
    ("allocator and memory copies (libc)", r"malloc|_int_free|cfree|realloc|memmove|memcpy|memcmp|memset|unlink_chunk"),
    ("scheduler and interrupts (kernel)", r"finish_task_switch|schedule|irqentry|asm_sysvec"),
]
OTHER = "other"


def samples(data):
    """Each sample's frames, leaf first, from `perf script`."""
    script = subprocess.run(["perf", "script", "-i", str(data), "-F", "ip,sym"],
                            capture_output=True, text=True, check=True).stdout
    for block in script.split("\n\n"):
        # Each line is "<address> <symbol>".
        frames = [line.split(None, 1)[-1] for line in block.splitlines() if line.strip()]
        if frames:
            yield frames


def stage_of(frames):
    for frame in frames:
        for stage, pattern in STAGES:
            if re.search(pattern, frame):
                return stage
    for frame in frames:
        for kind, pattern in UNATTRIBUTED:
            if re.search(pattern, frame):
                return kind
    return OTHER


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--database", default="postgres://postgres@127.0.0.1:5432/tandem_bench_load")
    parser.add_argument("--binary", default=str(load.ROOT / "target" / "frame-pointers" / "release" / "tandem"))
    parser.add_argument("--seconds", type=int, default=15)
    parser.add_argument("--connections", type=int, default=32)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="tandem-profile-"))
    (work / "customers").write_text("\n".join(load.jwt("customer", f"c{i}")
                                             for i in range(1, load.TOKENS + 1)))
    (work / "me.json").write_text(load.json.dumps({"query": load.ME}))
    env = dict(load.os.environ, DATABASE_URL=args.database, TANDEM_JWT_SECRET=load.SECRET,
               RUST_LOG="warn", TANDEM_MAIL_DIR=str(work / "mail"))
    binary = Path(args.binary).resolve()
    raw = binary.name == "raw_me"
    command = [str(binary)] if raw else [str(binary), "serve"]
    server = load.Server(command, env, None if raw else "/ready")
    try:
        body = {"BENCH_BODY": str(work / "me.json")}
        # Warm the pool, the prepared statements and the document cache first.
        load.wrk(server.url, "me", work / "customers", args, body, False, 3)
        data = work / "perf.data"
        perf = subprocess.Popen(["perf", "record", "-F", "999", "-g", "-o", str(data), "-p",
                                 str(server.process.pid)], stdout=subprocess.DEVNULL,
                                stderr=subprocess.DEVNULL)
        result = load.wrk(server.url, "me", work / "customers", args, body, False, args.seconds)
        perf.send_signal(load.signal.SIGINT)
        perf.wait()
    finally:
        server.stop()
    counts = collections.Counter(stage_of(frames) for frames in samples(data))
    total = sum(counts.values())
    # cpu-clock samples each thread at 999 Hz: a sample is about 1/999 s of CPU.
    per_request_us = 1e6 / 999 / result["requests"]
    print(f"{binary.name}: {result['rps']:,.0f} req/s, p50 {result['p50']:.1f} ms, "
          f"p99 {result['p99']:.1f} ms while sampled ({args.connections} connections); "
          f"{total} samples, {total * per_request_us:.0f} us of the server's CPU a request")
    print("\n| stage | share | us a request |\n| --- | ---: | ---: |")
    for stage in [name for name, _ in STAGES + UNATTRIBUTED] + [OTHER]:
        if counts[stage]:
            print(f"| {stage} | {100 * counts[stage] / total:.1f}% | "
                  f"{counts[stage] * per_request_us:.1f} |")


if __name__ == "__main__":
    main()
