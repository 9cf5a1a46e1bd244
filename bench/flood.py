#!/usr/bin/env python3
"""Flood test for bench/conserver-vs-cloudcons.sh: the shared peers/bench.py `flood`
(same Target, same reader, same framing check), plus what bench.py cannot say when the
client's terminal output is not byte-exact:

  * if the received stream does not check out as sent, it is checked again with every
    "\\r\\n" turned back into "\\n" (undoing a terminal's ONLCR output processing, which
    turns each "\\n" the console sends into "\\r\\n"); the verdict is in `onlcr_undone`;
  * the delivery rate is computed from the payload bytes that arrived (after that undo
    when it was needed), so a mangled-but-complete stream still gets a MB/s figure.

usage: flood.py [--peers DIR] (--direct PTY | --cmd 'CLIENT ARGS' [--ready TEXT] [--quit SEQ])
                [--label L] [--bytes N] [--max-secs S]
Prints one JSON object.  Only the local pty and whatever the client connects to are used.
"""
import argparse
import importlib.util
import json
import os
import time

HERE = os.path.dirname(os.path.abspath(__file__))


def load_peer_bench(peers):
    path = os.path.join(peers, "bench.py")
    spec = importlib.util.spec_from_file_location("peer_bench", path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def first_difference(a, pb, buf):
    """Where the received payload first differs from what the device sent (regenerated with the
    device's own generator), with a little context: says what was inserted, dropped or changed."""
    spec = importlib.util.spec_from_file_location("peer_device", os.path.join(a.peers, "device.py"))
    dev = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(dev)
    want = dev.make_flood(a.bytes, a.seed)
    onlcr = not pb.BEGIN_RE.search(buf)
    got_buf = buf.replace(b"\r\n", b"\n") if onlcr else buf
    m = pb.BEGIN_RE.search(got_buf)
    if not m:
        return {"note": "no BEGIN marker even after undoing ONLCR"}
    got = got_buf[m.end():]
    n = min(len(got), len(want))
    i = 0
    step = 1 << 16
    while i < n and got[i:i + step] == want[i:i + step]:
        i += step
    while i < n and got[i] == want[i]:
        i += 1
    if i >= len(want):
        return {"offset": i, "note": "payload complete; extra bytes after it", "got": got[i:i + 200].decode("latin-1")}
    return {"offset": i, "onlcr_undone": onlcr, "want": want[max(0, i - 40):i + 120].decode("latin-1"),
            "got": got[max(0, i - 40):i + 240].decode("latin-1")}


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--peers", default=os.environ.get("PEERS", os.path.join(HERE, "..", "..", "shared", "peers")))
    ap.add_argument("--direct")
    ap.add_argument("--cmd")
    ap.add_argument("--ready", default="for help]")
    ap.add_argument("--attach-timeout", type=float, default=30)
    ap.add_argument("--settle", type=float, default=0.5)
    ap.add_argument("--preamble", default="")
    ap.add_argument("--quit", default="")
    ap.add_argument("--label", default="")
    ap.add_argument("--bytes", type=int, default=50_000_000)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--idle-timeout", type=float, default=10)
    ap.add_argument("--max-secs", type=float, default=120)
    ap.add_argument("--save", help="write the received stream here when it is not intact")
    a = ap.parse_args()
    if bool(a.direct) == bool(a.cmd):
        ap.error("give exactly one of --direct / --cmd")
    pb = load_peer_bench(a.peers)

    t = pb.Target(a)
    try:
        t0 = time.perf_counter()
        os.write(t.fd, b"\x02flood %d %d\n" % (a.bytes, a.seed))
        # 3x: a stream with every \n doubled to \r\n is ~1.0125x; anything far beyond that is a runaway
        buf, tf, tl = pb.read_emission(t, a.idle_timeout, max_bytes=3 * a.bytes + (1 << 20), max_secs=a.max_secs)
    finally:
        t.close(a.quit.encode("latin-1").decode("unicode_escape").encode("latin-1"))

    res, payload = pb.check_payload(buf)
    res["test"] = "flood"
    res["requested_bytes"] = a.bytes
    res["runaway"] = t.runaway
    res["stream_bytes"] = len(buf)
    res["crcrlf_count"] = buf.count(b"\r\r\n")
    # text a client or server put into the stream itself (cloudcons notices, node warnings on stderr)
    res["inserted_text"] = {"cloudcons_notices": buf.count(b"[cloudcons:"), "node_warnings": buf.count(b"(node:"),
                            "connection_closed": buf.count(b"[connection closed")}
    delivered = res.get("received_bytes", 0) if res.get("intact") else 0
    if not res.get("intact"):
        fixed = buf.replace(b"\r\n", b"\n")
        r2, p2 = pb.check_payload(fixed)
        res["onlcr_undone"] = {k: r2.get(k) for k in ("begin_seen", "end_seen", "intact", "received_bytes", "lost_bytes")}
        if r2.get("intact"):
            delivered = r2["received_bytes"]
        lines, missing = pb.seq_gaps(p2, rb"F")
    else:
        lines, missing = pb.seq_gaps(payload, rb"F")
    if not delivered:
        delivered = res.get("received_bytes", 0)
        if res.get("end_seen") or (res.get("onlcr_undone") or {}).get("end_seen"):
            res["first_difference"] = first_difference(a, pb, buf)
    if a.save and not res.get("intact"):
        with open(a.save, "wb") as f:
            f.write(buf)
        res["saved_stream"] = a.save
    res["lines_seen"] = lines
    res["lines_missing_by_seq"] = missing
    if tf and tl and tl > tf and delivered:
        res["elapsed_s_cmd_to_end"] = round(tl - t0, 3)
        res["elapsed_s_first_to_last"] = round(tl - tf, 3)
        res["rate_MBps"] = round(delivered / (tl - tf) / 1e6, 3)
    res["target"] = a.label or ("direct" if a.direct else a.cmd.split()[0])
    print(json.dumps(res))


if __name__ == "__main__":
    main()
