"""Markdown tables from the bench logs (criterion's median time and the peer lines)."""
import re, sys

def criterion(log):
    out, name = {}, None
    for line in open(log):
        m = re.match(r"^empirical_denoiser/(\w+)/(\S+)", line)
        if m:
            name = (m.group(1), m.group(2))
        m = re.search(r"time:\s+\[\S+ \S+ (\S+) (\S+)", line)
        if m and name:
            v, unit = float(m.group(1)), m.group(2)
            out[name] = v * {"s": 1e3, "ms": 1.0, "µs": 1e-3}[unit]
            name = None
    return out

def peers(log):
    out = {}
    for line in open(log):
        m = re.match(r"peer (\S+): crate (\S+) ms, numpy (\S+) ms", line)
        if m:
            out[m.group(1)] = (float(m.group(2)), float(m.group(3)))
    return out

def fmt(ms):
    return f"{ms:.3g} ms" if ms < 10 else f"{ms:.0f} ms"

def table(log):
    c, p = criterion(log), peers(log)
    print("| N, n, dtype | denoise | bare two GEMMs | bare / denoise | crate, median of 5 | numpy, median of 5 | numpy / crate |")
    print("| --- | --- | --- | --- | --- | --- | --- |")
    for id_, (crate, numpy) in p.items():
        d, b = c.get(("denoise", id_)), c.get(("bare_two_gemms", id_))
        print(f"| {id_} | {fmt(d)} | {fmt(b)} | {b / d:.2f} | {fmt(crate)} | {fmt(numpy)} | **{numpy / crate:.2f}** |")

def chunks(log):
    c, p = criterion(log), peers(log)
    print("| N, n, dtype, chunk | denoise (criterion) | crate, median of 5 | numpy / crate |")
    print("| --- | --- | --- | --- |")
    for id_, (crate, numpy) in p.items():
        print(f"| {id_} | {fmt(c[('denoise', id_)])} | {fmt(crate)} | {numpy / crate:.2f} |")

def kernels(log):
    print("| n, dtype | kernel | X Y^T (Y row-major) | X Y^T (Y^T stored) | P Y |")
    print("| --- | --- | --- | --- | --- |")
    for line in open(log):
        m = re.match(r"kernel n=(\d+) (\w+)\s+(\w+): (.*)", line)
        if not m or "skipped" in line:
            continue
        cells = re.findall(r"(\S+) ms \(\s*(\d+) GFLOP/s\)", m.group(4))
        print(f"| {m.group(1)}, {m.group(2)} | {m.group(3)} | " + " | ".join(f"{ms} ms ({g})" for ms, g in cells) + " |")

{"table": table, "chunks": chunks, "kernels": kernels}[sys.argv[1]](sys.argv[2])
