#!/usr/bin/env python3
"""Figures for the hostile-input work, for a release build and, when given, a baseline build.

    cargo build --release
    python3 bench/hostile_input.py target/release/tandem [BASELINE_BINARY]

For each binary it starts `tandem serve` on a fresh SQLite file and prints:
- the time to answer a 30-level fragment fan-out (F0 spreads F1 twice, ... 2^30 fields once
  expanded; under 1 KB): median and worst of 20 tries, or the cap when it is not answered;
- the server's RSS before and after 100 requests with a 2 MB body;
- over the WebSocket, with no token: what a 2,000-level nested document gets, and whether the
  process still answers `/health` after it (the release build's stack is the one that matters);
- the socket soak: four admin tokens each holding the 100 subscriptions a token may hold
  (TANDEM_WS_MAX_SUBSCRIPTIONS_PER_TOKEN), in three rounds with every socket closed after each:
  the server's RSS idle, while holding them, and after closing.
Only loopback is used; every request and socket read has a timeout; the servers are stopped at
the end.
"""
import base64
import struct
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
# The database each started server uses, by its GraphQL URL (for minting its tokens).
server_database = {}


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
    server_database[f"http://127.0.0.1:{port}/graphql"] = env["DATABASE_URL"]
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


class Socket:
    """A minimal graphql-transport-ws client over a plain TCP socket (RFC 6455 framing)."""

    def __init__(self, url, payload):
        host, port = url.split("//")[1].split("/")[0].split(":")
        self.sock = socket.create_connection((host, int(port)), timeout=10)
        key = base64.b64encode(os.urandom(16)).decode()
        self.sock.sendall((f"GET /graphql HTTP/1.1\r\nHost: {host}:{port}\r\nUpgrade: websocket\r\n"
                           f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\n"
                           "Sec-WebSocket-Version: 13\r\nSec-WebSocket-Protocol: graphql-transport-ws\r\n\r\n").encode())
        head = b""
        while b"\r\n\r\n" not in head:
            chunk = self.sock.recv(4096)
            if not chunk:
                raise OSError("the upgrade was refused")
            head += chunk
        self.buffer = head.split(b"\r\n\r\n", 1)[1]
        if b" 101 " not in head.split(b"\r\n", 1)[0]:
            raise OSError(head.split(b"\r\n", 1)[0].decode())
        self.send({"type": "connection_init", "payload": payload})
        ack = self.receive()
        if ack.get("type") != "connection_ack":
            raise OSError(f"no connection_ack: {ack}")

    def send(self, message):
        data = json.dumps(message).encode()
        mask = os.urandom(4)
        length = len(data)
        if length < 126:
            header = struct.pack("!BB", 0x81, 0x80 | length)
        elif length < 1 << 16:
            header = struct.pack("!BBH", 0x81, 0x80 | 126, length)
        else:
            header = struct.pack("!BBQ", 0x81, 0x80 | 127, length)
        masked = bytes(b ^ mask[i % 4] for i, b in enumerate(data))
        self.sock.sendall(header + mask + masked)

    def _read(self, n):
        while len(self.buffer) < n:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise OSError("the connection was dropped")
            self.buffer += chunk
        data, self.buffer = self.buffer[:n], self.buffer[n:]
        return data

    def receive(self):
        """The next JSON message; {"closed": code} for a close frame."""
        while True:
            first, second = self._read(2)
            length = second & 0x7F
            if length == 126:
                length = struct.unpack("!H", self._read(2))[0]
            elif length == 127:
                length = struct.unpack("!Q", self._read(8))[0]
            payload = self._read(length)
            opcode = first & 0x0F
            if opcode == 0x8:
                return {"closed": struct.unpack("!H", payload[:2])[0] if len(payload) >= 2 else None}
            if opcode == 0x1:
                return json.loads(payload)

    def close(self):
        self.sock.close()


def health(url):
    try:
        with urllib.request.urlopen(url.replace("/graphql", "/health"), timeout=5) as response:
            return response.status
    except OSError as error:
        return type(error).__name__


def answer_code(answer):
    """The code of the first error in a socket's answer, or how the socket ended."""
    if "closed" in answer or "dropped" in answer:
        return json.dumps(answer)
    payload = answer.get("payload")
    errors = payload if isinstance(payload, list) else (payload or {}).get("errors") or [{}]
    return f"{answer.get('type')} {errors[0].get('extensions', {}).get('code', 'no code')}"


def deep_socket(binary):
    """A 2,000-level document over the socket, nested in each place a document can nest."""
    depth = 2_000
    documents = {
        "selection": "{ " + "a { " * depth + "}" * depth + " }",
        "input object": "{ referralCode(code: " + "{a:" * depth + "1" + "}" * depth + ") { code } }",
        "list default": "query($v: String = " + "[" * depth + "]" * depth + ") { __typename }",
        "directive argument": "{ __typename @include(if: " + "[" * depth + "true" + "]" * depth + ") }",
    }
    results = []
    for place, document in documents.items():
        server, url = start(binary)
        try:
            try:
                socket_ = Socket(url, {})
                socket_.send({"id": "deep", "type": "subscribe", "payload": {"query": document}})
                answer = socket_.receive()
                socket_.close()
            except OSError as error:
                answer = {"dropped": str(error)}
            time.sleep(0.5)
            alive = server.poll() is None
            results.append(f"{place}: {answer_code(answer)}, process "
                           f"{'alive' if alive else f'gone (exit {server.returncode})'}")
        finally:
            try:
                os.killpg(server.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
    return f"{depth}-level documents over the socket, no token: " + "; ".join(results)


def mint(binary, url, subject):
    env = dict(os.environ, DATABASE_URL=server_database[url], RUST_LOG="error")
    output = subprocess.run([binary, "token", "--role", "admin", "--sub", subject, "--ttl", "1h"],
                            env=env, capture_output=True, text=True, timeout=60, check=True)
    return output.stdout.strip().splitlines()[-1]


def socket_soak(binary):
    server, url = start(binary)
    try:
        tokens = [mint(binary, url, f"soak-{n}") for n in range(4)]
        idle = rss_kib(server.pid)
        rounds = []
        for _ in range(3):
            sockets = []
            for token in tokens:
                for s, count in enumerate([49, 49, 2]):
                    socket_ = Socket(url, {"authorization": f"Bearer {token}"})
                    for n in range(count):
                        socket_.send({"id": f"{s}-{n}", "type": "subscribe",
                                      "payload": {"query": "subscription { referralEvents { status reasons } }"}})
                    socket_.send({"id": "probe", "type": "subscribe", "payload": {"query": "{ __typename }"}})
                    socket_.receive()
                    sockets.append(socket_)
            holding = rss_kib(server.pid)
            for socket_ in sockets:
                socket_.close()
            time.sleep(0.5)
            rounds.append((holding, rss_kib(server.pid)))
        shown = ", ".join(f"{h / 1024:.1f} -> {c / 1024:.1f}" for h, c in rounds)
        return (f"socket soak (4 tokens x 100 subscriptions, 3 rounds): RSS idle {idle / 1024:.1f} MiB; "
                f"holding -> closed per round: {shown} MiB")
    finally:
        os.killpg(server.pid, signal.SIGKILL)


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
        print(f"  {deep_socket(binary)}")
        print(f"  {socket_soak(binary)}")


if __name__ == "__main__":
    main()
