#!/usr/bin/env python3
"""Times the dense (and sparse) peers of `sparsity bench` on the same shapes: PyTorch CPU
`torch.nn.functional.linear` (dense, CSR and BSR weights) and OpenBLAS `cblas_sgemm` /
`cblas_sgemv` through ctypes, all with the same thread count, and writes one JSON file that
`sparsity bench --peers FILE` merges.

    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE /work/venv/bin/python scripts/bench_peers.py -o peers.json

Timing: two warm-ups, then the median of --runs runs (more, up to 50, while a case takes under
0.3 s in all), y = x · Wᵀ with x [M, K] and W [N, K] fp32, like the Swift side. Sparse weights
have the same sparsity statistics as the bench (exact count of kept blocks/elements at random
positions), not the same positions. The script refuses to run with OPENBLAS_CORETYPE or
OPENBLAS_L2_SIZE set (they force slower kernels on this machine); it records which OpenBLAS
kernel ran (openblas_get_corename, threadpoolctl) in each record's `detail`.
"""
import argparse
import ctypes
import ctypes.util
import json
import os
import statistics
import sys
import time

VIT = [(4096, 1024), (1024, 4096)]
SEMI = [(3072, 768), (768, 3072)] + VIT + [(11008, 4096), (4096, 11008)]
BSR_M = [1, 16, 128, 1024, 4096]
SEMI_M = [1, 16, 128, 512, 2048]
CSR_M = [1, 128, 1024]


def parse_list(text, kind):
    return None if text is None else [kind(v) for v in text.split(",") if v.strip()]


def measure(fn, runs):
    fn()
    fn()
    times = []
    total = 0.0
    while len(times) < runs or (total < 0.3 and len(times) < 50):
        t0 = time.perf_counter()
        fn()
        t = time.perf_counter() - t0
        times.append(t * 1e3)
        total += t
    return statistics.median(times)


class OpenBLAS:
    def __init__(self, threads):
        path = ctypes.util.find_library("openblas") or "libopenblas.so.0"
        self.lib = ctypes.CDLL(path)
        self.lib.openblas_set_num_threads(threads)
        self.lib.openblas_get_corename.restype = ctypes.c_char_p
        self.lib.openblas_get_config.restype = ctypes.c_char_p
        self.detail = "%s (%s), core %s" % (
            path, self.lib.openblas_get_config().decode(), self.lib.openblas_get_corename().decode())
        f, i, p = ctypes.c_float, ctypes.c_int, ctypes.c_void_p
        self.lib.cblas_sgemm.argtypes = [i, i, i, i, i, i, f, p, i, p, i, f, p, i]
        self.lib.cblas_sgemv.argtypes = [i, i, i, i, f, p, i, p, i, f, p, i]

    def sgemm(self, x, w, y):
        m, k = x.shape
        n = w.shape[0]
        # RowMajor (101), NoTrans (111) x, Trans (112) W: y = x · Wᵀ.
        self.lib.cblas_sgemm(101, 111, 112, m, n, k, 1.0, x.ctypes.data, k, w.ctypes.data, k, 0.0, y.ctypes.data, n)

    def sgemv(self, x, w, y):
        n, k = w.shape
        self.lib.cblas_sgemv(101, 111, n, k, 1.0, w.ctypes.data, k, x.ctypes.data, 1, 0.0, y.ctypes.data, 1)


def exact_mask(rng, count, kept):
    import numpy as np
    flags = np.zeros(count, dtype=bool)
    flags[rng.choice(count, size=kept, replace=False)] = True
    return flags


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("-o", "--output", required=True)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--formats", default="dense,2:4,bsr,csr",
                    help="which bench tables to cover (their shapes and M get dense peers; bsr/csr also PyTorch sparse)")
    ap.add_argument("--shapes", help="OUTxIN,... (default: each table's own)")
    ap.add_argument("--m", help="token counts (default: each table's own)")
    ap.add_argument("--sparsities", help="for BSR/CSR (default 0.5,0.8,0.9,0.95,0.99; CSR adds 0.6,0.7)")
    ap.add_argument("--blocks", help="BSR blocks (default 8,16,32,64)")
    ap.add_argument("--no-torch-sparse", action="store_true", help="skip PyTorch's CSR/BSR kernels")
    ap.add_argument("--torch-sparse-max-m", type=int, default=128,
                    help="largest M for PyTorch's sparse kernels (they are slow)")
    args = ap.parse_args()

    for var in ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE"):
        if os.environ.get(var):
            sys.exit("%s is set; run with `env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE` so the native kernels run" % var)
    os.environ.setdefault("OMP_NUM_THREADS", str(args.threads))
    os.environ.setdefault("OPENBLAS_NUM_THREADS", str(args.threads))
    import numpy as np
    import torch
    import torch.nn.functional as F
    torch.set_num_threads(args.threads)
    torch_detail = "torch %s (%s, BLAS %s)" % (
        torch.__version__, torch.backends.cpu.get_cpu_capability(),
        "MKL" if torch.backends.mkl.is_available() else "other")

    try:
        blas = OpenBLAS(args.threads)
    except OSError as e:
        print("OpenBLAS not found (%s): skipping it" % e, file=sys.stderr)
        blas = None
    if blas is not None:
        try:
            from threadpoolctl import threadpool_info
            infos = [i for i in threadpool_info() if i.get("internal_api") == "openblas"]
            if infos:
                blas.detail += "; threadpoolctl: " + ", ".join(
                    "%s %s %s threads" % (i.get("filepath"), i.get("architecture"), i.get("num_threads")) for i in infos)
        except ImportError:
            pass

    formats = set(args.formats.split(","))
    shapes = parse_list(args.shapes, lambda s: tuple(int(v) for v in s.lower().split("x")))
    ms = parse_list(args.m, int)
    blocks = parse_list(args.blocks, int) or [8, 16, 32, 64]
    sparsities = parse_list(args.sparsities, float)

    dense_cases = set()
    sparse_cases = []
    if "dense" in formats or "2:4" in formats:
        for s in shapes or SEMI:
            for m in ms or SEMI_M:
                dense_cases.add((s, m))
    if "bsr" in formats:
        for s in shapes or VIT:
            for m in ms or BSR_M:
                dense_cases.add((s, m))
                for b in blocks:
                    for sp in sparsities or [0.5, 0.8, 0.9, 0.95, 0.99]:
                        sparse_cases.append(("bsr", s, m, sp, b))
    int8_cases = []
    if any(f.startswith("w8a8") for f in formats):
        for s in shapes or SEMI:
            for m in ms or SEMI_M:
                int8_cases.append((s, m))
    if "csr" in formats:
        for s in shapes or VIT:
            for m in ms or CSR_M:
                dense_cases.add((s, m))
                for sp in sparsities or [0.5, 0.6, 0.7, 0.8, 0.9, 0.95, 0.99]:
                    sparse_cases.append(("csr", s, m, sp, None))

    records = []
    rng = np.random.default_rng(7)
    done = 0
    total = len(dense_cases) + (0 if args.no_torch_sparse else len(sparse_cases))
    started = time.time()

    def progress(text):
        print("[%d/%d %.0fs] %s" % (done, total, time.time() - started, text), file=sys.stderr, flush=True)

    weights = {}
    for (n, k), m in sorted(dense_cases, key=lambda c: (c[0], c[1])):
        if (n, k) not in weights:
            weights.clear()
            weights[(n, k)] = rng.uniform(-1, 1, size=(n, k)).astype(np.float32)
        w = weights[(n, k)]
        x = rng.uniform(-1, 1, size=(m, k)).astype(np.float32)
        tw, tx = torch.from_numpy(w), torch.from_numpy(x)
        t = measure(lambda: F.linear(tx, tw), args.runs)
        records.append(dict(library="torch", kernel="F.linear", format="dense", m=m, n=n, k=k, median_ms=t,
                            threads=args.threads, detail=torch_detail))
        if blas is not None:
            y = np.empty((m, n), dtype=np.float32)
            t = measure(lambda: blas.sgemm(x, w, y), args.runs)
            records.append(dict(library="openblas", kernel="sgemm", format="dense", m=m, n=n, k=k, median_ms=t,
                                threads=args.threads, detail=blas.detail))
            if m == 1:
                yv = np.empty(n, dtype=np.float32)
                xv = np.ascontiguousarray(x[0])
                t = measure(lambda: blas.sgemv(xv, w, yv), args.runs)
                records.append(dict(library="openblas", kernel="sgemv", format="dense", m=m, n=n, k=k, median_ms=t,
                                    threads=args.threads, detail=blas.detail))
        done += 1
        progress("dense %dx%d m=%d" % (n, k, m))

    # Int8 peers (W8A8): PyTorch's dynamic quantization (fbgemm) and torchao's int8 dynamic recipe.
    for (n, k), m in int8_cases:
        w = rng.uniform(-1, 1, size=(n, k)).astype(np.float32)
        x = torch.from_numpy(rng.uniform(-1, 1, size=(m, k)).astype(np.float32))
        linear = torch.nn.Linear(k, n, bias=False)
        linear.weight.data = torch.from_numpy(w)
        fbgemm = torch.ao.quantization.quantize_dynamic(torch.nn.Sequential(linear), {torch.nn.Linear}, dtype=torch.qint8)
        with torch.inference_mode():
            t = measure(lambda: fbgemm(x), args.runs)
        records.append(dict(library="torch-fbgemm", kernel="quantize_dynamic", format="w8a8+dense", m=m, n=n, k=k, median_ms=t,
                            threads=args.threads, detail=torch_detail))
        try:
            from torchao.quantization import Int8DynamicActivationInt8WeightConfig, quantize_
            ao = torch.nn.Sequential(torch.nn.Linear(k, n, bias=False))
            ao[0].weight.data = torch.from_numpy(w)
            quantize_(ao, Int8DynamicActivationInt8WeightConfig())
            with torch.inference_mode():
                t2 = measure(lambda: ao(x), args.runs)
            records.append(dict(library="torchao", kernel="int8_dynamic", format="w8a8+dense", m=m, n=n, k=k, median_ms=t2,
                                threads=args.threads, detail=torch_detail))
        except ImportError:
            t2 = float("nan")
        tw16, tx16 = torch.from_numpy(w).bfloat16(), x.bfloat16()
        t3 = measure(lambda: F.linear(tx16, tw16), args.runs)
        records.append(dict(library="torch-bf16", kernel="F.linear", format="bf16+dense", m=m, n=n, k=k, median_ms=t3,
                            threads=args.threads, detail=torch_detail))
        progress("int8 %dx%d m=%d: fbgemm %.3f ms, torchao %.3f ms; bf16 %.3f ms" % (n, k, m, t, t2, t3))

    if not args.no_torch_sparse:
        cache = {}
        for fmt, (n, k), m, sp, b in sparse_cases:
            done += 1
            if m > args.torch_sparse_max_m:
                continue
            key = (fmt, n, k, sp, b)
            if key not in cache:
                cache.clear()
                w = rng.uniform(-1, 1, size=(n, k)).astype(np.float32)
                if fmt == "bsr":
                    gr, gc = n // b, k // b
                    keep = exact_mask(rng, gr * gc, int(round((1 - sp) * gr * gc))).reshape(gr, gc)
                    w *= np.kron(keep, np.ones((b, b), dtype=bool))
                    cache[key] = torch.from_numpy(w).to_sparse_bsr((b, b))
                else:
                    keep = exact_mask(rng, n * k, int(round((1 - sp) * n * k))).reshape(n, k)
                    w *= keep
                    cache[key] = torch.from_numpy(w).to_sparse_csr()
            tw = cache[key]
            tx = torch.from_numpy(rng.uniform(-1, 1, size=(m, k)).astype(np.float32))
            if fmt == "bsr":
                fn = lambda: (tw @ tx.t()).t()
            else:
                fn = lambda: F.linear(tx, tw)
            try:
                t = measure(fn, args.runs)
            except RuntimeError as e:
                progress("%s %dx%d m=%d s=%.2f: unsupported (%s)" % (fmt, n, k, m, sp, str(e).splitlines()[0]))
                continue
            records.append(dict(library="torch", kernel="sparse_" + fmt, format=fmt, m=m, n=n, k=k, sparsity=sp,
                                block=b, median_ms=t, threads=args.threads, detail=torch_detail))
            progress("torch %s %dx%d m=%d s=%.2f b=%s: %.3f ms" % (fmt, n, k, m, sp, b, t))

    out = dict(generated=time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), threads=args.threads,
               load_average_at_end=os.getloadavg(), records=records)
    tmp = args.output + ".tmp"
    with open(tmp, "w") as f:
        json.dump(out, f, indent=1)
    os.replace(tmp, args.output)
    print("wrote %s (%d records)" % (args.output, len(records)), file=sys.stderr)


if __name__ == "__main__":
    import warnings
    warnings.filterwarnings("ignore", message=".*Sparse.*beta.*")
    main()
