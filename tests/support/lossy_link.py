"""A lossy wire between two network namespaces, in user space (this kernel has no sch_netem).

    python -m tests.support.lossy_link NS_A NS_B --drop 0.15 --port 8123

Makes a TUN device in each namespace (``ovlossa`` 10.77.0.1 in NS_A, ``ovlossb``
10.77.0.2 in NS_B, a point-to-point pair) and copies every IP packet from one to the
other, dropping the given share of the RTP packets (UDP whose payload starts like
RTP, RFC 7983, and is not RTCP, RFC 5761) in both directions; everything else
(TCP, STUN, DTLS, RTCP) goes through. So whatever talks across it from NS_B has that
much media loss both ways, and nothing else.

``--port P`` also forwards TCP 127.0.0.1:P in NS_B to 10.77.0.1:P (across the wire):
a browser in NS_B opens the server as http://127.0.0.1:P, a secure context with the
same origin as the server's own.

It prints "ready" once both ends are up, and counts what it dropped on stderr when it
stops (SIGTERM). Run as root.
"""

from __future__ import annotations

import argparse
import contextlib
import ctypes
import fcntl
import os
import random
import selectors
import signal
import socket
import struct
import subprocess
import sys
import threading

TUNSETIFF = 0x400454CA
IFF_TUN = 0x0001
IFF_NO_PI = 0x1000
CLONE_NEWNET = 0x40000000
ADDRESS = {"a": "10.77.0.1", "b": "10.77.0.2"}
DEVICE = {"a": "ovlossa", "b": "ovlossb"}
_libc = ctypes.CDLL(None, use_errno=True)


def enter(namespace: str) -> None:
    """Move this (single-threaded) process into ``namespace``: sockets and devices opened
    from now on belong to it; those opened before keep theirs."""
    fd = os.open(f"/var/run/netns/{namespace}", os.O_RDONLY)
    try:
        if _libc.setns(fd, CLONE_NEWNET) != 0:
            raise OSError(ctypes.get_errno(), f"setns {namespace}")
    finally:
        os.close(fd)


def open_tun(name: str) -> int:
    fd = os.open("/dev/net/tun", os.O_RDWR)
    fcntl.ioctl(fd, TUNSETIFF, struct.pack("16sH", name.encode(), IFF_TUN | IFF_NO_PI))
    return fd


def is_rtp(packet: bytes) -> bool:
    """An IPv4 UDP packet carrying RTP (not RTCP, STUN or DTLS)."""
    if len(packet) < 20 or packet[0] >> 4 != 4 or packet[9] != 17:
        return False
    payload = packet[(packet[0] & 0x0F) * 4 + 8 :]
    return len(payload) >= 12 and 128 <= payload[0] <= 191 and not 192 <= payload[1] <= 223


def _ip(namespace: str, *args: str) -> None:
    subprocess.run(["ip", "-n", namespace, *args], check=True)


def _pipe(src: socket.socket, dst: socket.socket) -> None:
    try:
        while data := src.recv(65536):
            dst.sendall(data)
    except OSError:
        pass
    finally:
        for s in (src, dst):
            with contextlib.suppress(OSError):
                s.shutdown(socket.SHUT_RDWR)


def _forward_tcp(listener: socket.socket, port: int) -> None:
    """Each connection to 127.0.0.1:port in NS_B, to the server across the wire."""
    while True:
        client, _ = listener.accept()
        server = socket.create_connection((ADDRESS["a"], port))
        for a, b in ((client, server), (server, client)):
            threading.Thread(target=_pipe, args=(a, b), daemon=True).start()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("ns_a")
    parser.add_argument("ns_b")
    parser.add_argument("--drop", type=float, required=True)
    parser.add_argument("--port", type=int)
    parser.add_argument("--seed", type=int, default=15)
    args = parser.parse_args()
    rng = random.Random(args.seed)

    enter(args.ns_a)
    tun_a = open_tun(DEVICE["a"])
    enter(args.ns_b)
    tun_b = open_tun(DEVICE["b"])
    listener = None
    if args.port:
        listener = socket.create_server(("127.0.0.1", args.port))  # in NS_B
    for side, ns, peer in (("a", args.ns_a, "b"), ("b", args.ns_b, "a")):
        _ip(ns, "addr", "add", ADDRESS[side], "peer", ADDRESS[peer], "dev", DEVICE[side])
        _ip(ns, "link", "set", DEVICE[side], "up")
    # Threads only now: setns above must run while the process has one thread.
    if listener is not None:
        threading.Thread(target=_forward_tcp, args=(listener, args.port), daemon=True).start()

    counts = {"rtp": 0, "dropped": 0, "other": 0}
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    selector = selectors.DefaultSelector()
    selector.register(tun_a, selectors.EVENT_READ, tun_b)
    selector.register(tun_b, selectors.EVENT_READ, tun_a)
    print("ready", flush=True)
    while not stop.is_set():
        for key, _ in selector.select(0.2):
            packet = os.read(key.fd, 65536)
            if is_rtp(packet):
                counts["rtp"] += 1
                if rng.random() < args.drop:
                    counts["dropped"] += 1
                    continue
            else:
                counts["other"] += 1
            os.write(key.data, packet)
    print(f"lossy_link {counts}", file=sys.stderr, flush=True)


if __name__ == "__main__":
    main()
