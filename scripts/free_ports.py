#!/usr/bin/env python3
"""Free TCP ports on 127.0.0.1 for programs that take a port number and cannot
report the one they bound (nginx, twemproxy, a cluster's saved topology).

    scripts/free_ports.py N     prints N distinct ports, separated by spaces

The ports come from below the kernel's ephemeral range (ip_local_port_range):
there, neither an outgoing connection nor a server started with port 0 takes
one between the choice and the start of the program it is for."""

import random
import socket
import sys

LOWEST = 10000


def free_ports(n):
    try:
        with open("/proc/sys/net/ipv4/ip_local_port_range") as f:
            ephemeral = int(f.read().split()[0])
    except (OSError, ValueError, IndexError):
        ephemeral = LOWEST
    candidates = list(range(LOWEST, ephemeral))
    random.shuffle(candidates)
    socks = []
    try:
        for port in candidates:
            if len(socks) == n:
                break
            s = socket.socket()
            try:
                s.bind(("127.0.0.1", port))
                socks.append(s)
            except OSError:
                s.close()
        while len(socks) < n:  # no room below the ephemeral range
            s = socket.socket()
            s.bind(("127.0.0.1", 0))
            socks.append(s)
        return [s.getsockname()[1] for s in socks]
    finally:
        for s in socks:
            s.close()


if __name__ == "__main__":
    print(" ".join(str(p) for p in free_ports(int(sys.argv[1]))))
