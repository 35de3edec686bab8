#!/usr/bin/env python3
"""Writes the hand-made seed inputs of the fuzz targets into corpus/.
The fuzzers grow the corpus from these; `cargo fuzz cmin` keeps it small."""
import os
import struct

here = os.path.dirname(os.path.abspath(__file__))


def put(target, name, data):
    d = os.path.join(here, "corpus", target)
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, "seed-" + name), "wb") as f:
        f.write(data)


# vhost_rings: 8 parameter bytes, then the guest memory image
# (descriptors at 0, avail ring at 0x1000, used ring at 0x2000).
def ring_image(descs, heads, size_log2=3, base=0, flags=1, lens=(4, 10, 100)):
    mem = bytearray(0x9000)
    for i, (addr, ln, fl, nxt) in enumerate(descs):
        struct.pack_into("<QIHH", mem, 16 * i, addr, ln, fl, nxt)
    for i, h in enumerate(heads):
        struct.pack_into("<H", mem, 0x1004 + 2 * ((base + i) % (1 << size_log2)), h)
    struct.pack_into("<H", mem, 0x1002, (base + len(heads)) & 0xFFFF)
    struct.pack_into("<H", mem, 0x2002, base & 0xFFFF)
    params = bytes([size_log2]) + struct.pack("<H", base) + bytes([flags]) + bytes(lens) + b"\0"
    return params + bytes(mem)


NEXT, WRITE, INDIRECT = 1, 2, 4
# Two good chains: header + frame, and one descriptor with both.
put("vhost_rings", "good", ring_image(
    [(0x4000, 12, NEXT, 1), (0x5000, 60, 0, 0), (0x6000, 1500, 0, 0)], [0, 2]))
# Device-writable buffers for the RX side, mergeable.
put("vhost_rings", "rx-mrg", ring_image(
    [(0x4000 + 0x200 * i, 256, WRITE, 0) for i in range(8)], list(range(8)), flags=1))
# A loop, an out-of-memory address, an indirect table.
put("vhost_rings", "loop", ring_image([(0x4000, 12, NEXT, 0)], [0]))
put("vhost_rings", "oob", ring_image([(1 << 40, 100, 0, 0)], [0]))
mem_ind = ring_image([(0x8000, 32, INDIRECT, 0)], [0])
ind = bytearray(mem_ind)
struct.pack_into("<QIHH", ind, 8 + 0x8000, 0x4000, 12, NEXT, 1)
struct.pack_into("<QIHH", ind, 8 + 0x8010, 0x5000, 64, 0, 0)
put("vhost_rings", "indirect", bytes(ind))
# Wrap-around indexes with EVENT_IDX.
put("vhost_rings", "wrap", ring_image(
    [(0x4000, 80, 0, 0)] * 8, list(range(8)), base=0xFFFC, flags=3))


# vhost_messages: the byte stream of a frontend (QEMU's order).
def msg(req, payload=b"", flags=0x1):
    return struct.pack("<III", req, flags, len(payload)) + payload


u64 = lambda v: struct.pack("<Q", v)
state = lambda i, n: struct.pack("<II", i, n)
addr = lambda i: struct.pack("<IIQQQQ", i, 0, 0x1000, 0x2000, 0x3000, 0)
features = (1 << 32) | (1 << 30) | (1 << 15) | (1 << 29) | (1 << 28)
qemu = (msg(1) + msg(15) + msg(16, u64(0x10003)) + msg(17) + msg(3) + msg(1)
        + msg(18, state(0, 1), 0x9) + msg(18, state(1, 1), 0x9)
        + msg(2, u64(features)) + msg(8, state(0, 256)) + msg(10, state(0, 0))
        + msg(9, addr(0)) + msg(8, state(1, 256)) + msg(10, state(1, 7))
        + msg(9, addr(1)) + msg(11, state(0, 0)) + msg(11, state(1, 0)) + msg(20))
put("vhost_messages", "qemu-order", qemu)
put("vhost_messages", "get-config", msg(1) + msg(2, u64(features)) + msg(16, u64(0x201))
    + msg(24, struct.pack("<III", 0, 12, 0) + bytes(12)))
put("vhost_messages", "lying-size", struct.pack("<III", 8, 1, 4000) + state(0, 256))
put("vhost_messages", "ring-num-huge", msg(1) + msg(2, u64(features)) + msg(8, state(0, 65535))
    + msg(8, state(7, 256)) + msg(10, state(0, 0xFFFF)))


# With guest memory: the fuzz harness attaches a memfd per SET_MEM_TABLE
# region (as large as the region asks) and an eventfd per kick/call, so
# both rings start on a real mapping; then a live memory-table swap.
VA = 0x7F00_0000_0000
mem_table = lambda regions: struct.pack("<II", len(regions), 0) + b"".join(
    struct.pack("<QQQQ", *r) for r in regions)
def ring_at(q):
    base = VA + 0x4000 * q
    return struct.pack("<IIQQQQ", q, 0, base, base + 0x2000, base + 0x1000, 0)
with_mem = msg(3) + msg(2, u64(1 << 32)) + msg(5, mem_table([(0, 0x10000, VA, 0)]))
for q in (0, 1):
    with_mem += (msg(8, state(q, 256)) + msg(9, ring_at(q)) + msg(10, state(q, 0))
                 + msg(13, u64(q)) + msg(12, u64(q)))
with_mem += msg(5, mem_table([(0, 0x10000, VA, 0)])) + msg(11, state(0, 0)) + msg(11, state(1, 0))
put("vhost_messages", "with-memory", with_mem)
put("vhost_messages", "memory-past-eof", msg(3) + msg(2, u64(1 << 32))
    + msg(5, mem_table([(0, 64 << 20, VA, 0)])))


# frames: (port, length, bytes)*
def eth(dst, src, tags, payload=b"\x08\x00" + bytes(46)):
    out = bytes(dst) + bytes(src)
    for tpid, tci in tags:
        out += struct.pack(">HH", tpid, tci)
    return out + payload


def fr(port, frame):
    frame = frame[:255]
    return bytes([port, len(frame)]) + frame


a = [2, 0, 0, 0, 0, 1]
b = [2, 0, 0, 0, 0, 2]
bc = [0xFF] * 6
put("frames", "learn-and-forward", fr(0, eth(b, a, [])) + fr(2, eth(a, b, [(0x8100, 10)]))
    + fr(0, eth(b, a, [])))
put("frames", "double-tag-hop", fr(2, eth(bc, a, [(0x8100, 1), (0x8100, 20)]))
    + fr(3, eth(bc, b, [(0x8100, 10), (0x8100, 20)])))
put("frames", "tagged-on-access", fr(0, eth(bc, a, [(0x8100, 20)])) + fr(1, eth(bc, b, [(0x8100, 0)])))
put("frames", "qinq-runt", fr(2, eth(bc, a, [(0x88A8, 10)])) + fr(2, bytes(13)) + fr(3, bytes(16)))

# config_yaml: text
put("config_yaml", "full", open(os.path.join(here, "..", "config", "README.md")).read()
    .split("## Full example, annotated")[1].split("```yaml")[1].split("```")[0].encode())
put("config_yaml", "minimal", b"switches:\n  - name: sw0\n    ports:\n      - name: vm0\n      - name: vm1\n")
put("config_yaml", "typo", b"switches:\n  - name: sw0\n    ports:\n      - name: vm0\n        vlna: 10\n")

# team_flow: frames (Ethernet, VLAN, IPv4/IPv6, TCP/UDP)
ipv4_tcp = (bytes(a) + bytes(b) + b"\x08\x00" + bytes([0x45, 0, 0, 40, 0, 0, 0x40, 0, 64, 6, 0, 0])
            + bytes([10, 0, 0, 1, 10, 0, 0, 2]) + struct.pack(">HH", 1234, 80) + bytes(16))
put("team_flow", "ipv4-tcp", ipv4_tcp)
put("team_flow", "vlan-ipv6-udp", bytes(a) + bytes(b) + b"\x81\x00\x00\x0a\x86\xdd"
    + bytes([0x60, 0, 0, 0, 0, 8, 17, 64]) + bytes(15) + b"\x01" + bytes(15) + b"\x02"
    + struct.pack(">HHHH", 53, 5353, 8, 0))
