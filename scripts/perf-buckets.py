#!/usr/bin/env python3
"""Split a server profile into the buckets of BENCHMARKS.md ("Where the time goes").

Usage: perf script -i perf.data | python3 scripts/perf-buckets.py [US_PER_PACKET]

Each sample goes to the first bucket whose keys appear in its call stack (so
order matters: the loopback receive softirq runs inside sendmmsg, SRTP
inside the rtc pipeline). With US_PER_PACKET (the load tool's server CPU per
forwarded packet for the same run) each share is also given in us/packet.
"""
import sys, collections
rules = [
 ("kernel: loopback delivery to the players' sockets (softirq)", ["net_rx_action"]),
 ("kernel: sendmmsg (socket, route, skb, GSO split)", ["__sys_sendmmsg", "__x64_sys_sendmmsg"]),
 ("rtc egress: SRTP encrypt", ["encrypt_rtp"]),
 ("fast path: our SRTP (AES-GCM / AES-CM + HMAC)", ["Protector::protect", "seal_in_place", "ring::aead", "ring_core", "aes_hw", "gcm_", "sha1", "Hmac"]),
 ("fast path: header + payload into the send queue", ["FastLeg::send", "SendQueue::push_with"]),
 ("rtc egress: pipeline (endpoint→interceptors→srtp→ice, moves)", ["flush_writes"]),
 ("kernel: recvmmsg", ["__sys_recvmmsg", "__x64_sys_recvmmsg"]),
 ("rtc ingress (handle_read: SRTP decrypt, RTCP, STUN)", ["handle_read"]),
 ("rtc timers (handle_timeout / poll_timeout)", ["handle_timeout", "poll_timeout"]),
 ("router (stream_router)", ["stream_router::"]),
 ("worker glue (pump_router, to_rtc, flush)", ["Worker::pump_router", "convert::to_rtc", "Worker::flush", "batch::send_many", "egress::"]),
 ("tokio / epoll / scheduling", ["epoll_wait", "schedule", "tokio::runtime"]),
]
counts = collections.Counter(); total = 0
stack = []
def flush():
    global total
    if not stack: return
    total += 1
    text = "\n".join(stack)
    for name, keys in rules:
        if any(k in text for k in keys):
            counts[name] += 1; return
    counts["other"] += 1
for line in sys.stdin:
    if not line.strip():
        flush(); stack = []
    elif line.startswith((" ", "\t")):
        stack.append(line.strip())
    else:
        flush(); stack = []
flush()
per = float(sys.argv[1]) if len(sys.argv) > 1 else None
for name, c in counts.most_common():
    extra = f"  ≈ {per*c/total:.2f} µs/pkt" if per else ""
    print(f"{100*c/total:5.1f} %  {name}{extra}")
print(f"samples: {total}")
