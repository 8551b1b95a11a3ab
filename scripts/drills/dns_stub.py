#!/usr/bin/env python3
"""A DNS server for the rebinding drill, standard library only.

Answers A queries for one name: the first FIRST_ANSWERS queries with the allowed address, every
later one with the refused address (TTL 0, so nothing may cache it). AAAA queries for the name
get an empty answer, every other name NXDOMAIN. Each A answer is logged as one line
"<n> <address>" to the log file, so the drill can count the lookups.

    dns_stub.py LISTEN_ADDR PORT NAME ALLOWED REFUSED FIRST_ANSWERS LOG
"""
import socket
import struct
import sys


def question(packet):
    """The query's name (lowercase, no trailing dot), type, and where the question ends."""
    labels, at = [], 12
    while packet[at] != 0:
        size = packet[at]
        labels.append(packet[at + 1 : at + 1 + size].decode("ascii", "replace").lower())
        at += 1 + size
    qtype, _qclass = struct.unpack("!HH", packet[at + 1 : at + 5])
    return ".".join(labels), qtype, at + 5


def main():
    listen, port, name, allowed, refused, first, log_path = sys.argv[1:8]
    first = int(first)
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind((listen, int(port)))
    answered = 0
    with open(log_path, "a", buffering=1) as log:
        while True:
            packet, peer = sock.recvfrom(512)
            if len(packet) < 17:
                continue
            try:
                qname, qtype, end = question(packet)
            except (IndexError, struct.error):
                continue
            qid = packet[:2]
            echo = packet[12:end]
            if qname != name:
                # NXDOMAIN
                sock.sendto(qid + struct.pack("!HHHHH", 0x8183, 1, 0, 0, 0) + echo, peer)
                continue
            if qtype != 1:
                # No records of that type.
                sock.sendto(qid + struct.pack("!HHHHH", 0x8580, 1, 0, 0, 0) + echo, peer)
                continue
            answered += 1
            address = allowed if answered <= first else refused
            log.write(f"{answered} {address}\n")
            record = struct.pack("!HHHIH", 0xC00C, 1, 1, 0, 4) + socket.inet_aton(address)
            sock.sendto(qid + struct.pack("!HHHHH", 0x8580, 1, 1, 0, 0) + echo + record, peer)


if __name__ == "__main__":
    main()
