#!/usr/bin/env python3
"""Times SmolLM2-135M-Instruct prefill and greedy decode in `sparsity generate` and its peers, in one
run, on the same model, prompt and thread count.

    /work/venv/py/bin/python scripts/bench_llm.py [--rounds 3] [--binary .build/release/sparsity]
        [--ours-weights '2:4=pruned24.safetensors' --ours-weights '50%=pruned50.safetensors']
        [--ours-weights 'int8=dense@int8' --ours-weights 'int8 2:4=pruned24.safetensors@int8']
        [--json results.json]

Workload: batch 1, prefill of exactly 512 tokens (the first 512 SmolLM2 tokens of the `heldout`
text of Sources/SparsityRecipes/Resources/llm-text.json; no BOS), then greedy decode of 128 tokens
(128 single-token steps, each feeding the argmax of the previous step; EOS ignored). Engines:

* torch: PyTorch + transformers, fp32 weights dequantized from the Q4_1 GGUF
  (AutoModelForCausalLM.from_pretrained(folder, gguf_file=..., dtype=torch.float32), eval,
  torch.set_num_threads(THREADS), inference_mode). Prefill = one forward over the 512 tokens
  (use_cache, logits_to_keep=1: only the last position's logits, like llama.cpp); decode = 128
  forwards of one token with past_key_values (a DynamicCache).
* llama.cpp (llama-cpp-python) at F32, Q8_0 and the native Q4_1: the F32 and Q8_0 files are made
  once from the Q4_1 file with llama_cpp.llama_model_quantize (allow_requantize; ftype ALL_F32 = 0,
  MOSTLY_Q8_0 = 7) next to it. Llama(n_threads=THREADS, n_threads_batch=THREADS, n_ctx=1024,
  n_batch=512, n_ubatch=512, logits_all=False); prefill = Llama.eval over the 512 ids (one
  llama_decode), decode = 128 Llama.eval calls of one token each, argmax of llama_get_logits.
  The KV cache is cleared (reset) before each prefill.
* ours: `BINARY generate --model GGUF [--weights FILE] --prompt-file PROMPT --max-tokens 128
  --ignore-eos --json` (SPARSITY_THREADS=THREADS), which prints one JSON object on stdout with
  prompt_tokens, prefill_seconds, prefill_tokens_per_second, decode_tokens, decode_seconds,
  decode_tokens_per_second. Dense (the Q4_1 GGUF's weights, `--dtype f32`: every tensor dequantized to
  fp32, the file's Q8_0 token embedding / tied LM head included), then each --ours-weights LABEL=FILE
  (FILE `dense`: the GGUF's own weights; FILE `gguf:Q8_0`: ours runs the Q8_0 file made for llama.cpp,
  its Q8_0 matrices kept in int8 with their block scales; a suffix `@int8` adds `--dtype int8`: every
  Linear, LM head included, quantized to int8 with dynamic int8 activations, W8A8; `@bf16` adds
  `--dtype bf16`).
  If the binary is missing or its first run fails, "ours" is skipped with a message.

Each engine gets one untimed warm-up (prefill + 8 decode steps; for ours, one full run); then
--rounds interleaved rounds run every engine once per round, and the table reports the median
over rounds. Python engines time with time.perf_counter around the calls (argmax and the Python
call overhead are inside the decode time). Every engine must see 512 prompt tokens (ours reports
prompt_tokens; llama.cpp's own tokenizer is also checked against the ids). OMP / MKL / OpenBLAS
thread variables are set to THREADS before torch is imported. The table's ratio columns are each
row's tokens/s divided by ours-dense tokens/s (above 1: faster than ours dense).
"""
import argparse
import ctypes
import json
import os
import pathlib
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = pathlib.Path(__file__).resolve().parent.parent
TEXT = ROOT / "Sources" / "SparsityRecipes" / "Resources" / "llm-text.json"
MODEL_DIR = pathlib.Path.home() / ".cache" / "swift-sparsity" / "models" / "SmolLM2-135M-Instruct"
Q4_1 = MODEL_DIR / "SmolLM2-135M-Instruct.Q4_1.gguf"
PREFILL_TOKENS, DECODE_TOKENS, N_CTX, N_BATCH = 512, 128, 1024, 512


def parse_args():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", type=pathlib.Path, default=Q4_1, help="the Q4_1 GGUF (default: %(default)s)")
    ap.add_argument("--binary", type=pathlib.Path, default=ROOT / ".build" / "release" / "sparsity")
    ap.add_argument("--ours-weights", action="append", default=[], metavar="LABEL=FILE",
                    help="an extra model for ours: `--weights FILE`, shown as LABEL (repeatable)")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--engines", default="torch,llama.cpp,ours",
                    help="comma-separated subset of torch, llama.cpp, ours (default: all)")
    ap.add_argument("--json", type=pathlib.Path, help="write all samples and settings here")
    return ap.parse_args()


ARGS = parse_args()
for var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS", "VECLIB_MAXIMUM_THREADS",
            "NUMEXPR_NUM_THREADS", "SPARSITY_THREADS"):
    os.environ[var] = str(ARGS.threads)
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

import numpy as np  # noqa: E402


def log(*a):
    print(*a, file=sys.stderr, flush=True)


def isolated_folder(gguf_path):
    """A temporary folder with only a symlink to the GGUF: transformers prefers tokenizer/config
    files lying beside a .gguf over the GGUF's own metadata."""
    import atexit
    folder = tempfile.mkdtemp(prefix="smollm2-gguf-")
    atexit.register(shutil.rmtree, folder, ignore_errors=True)
    os.symlink(gguf_path, os.path.join(folder, gguf_path.name))
    return folder


def cpu_model():
    try:
        out = subprocess.run(["lscpu"], capture_output=True, text=True).stdout
    except OSError:
        return platform.processor() or "unknown"
    fields = dict(line.split(":", 1) for line in out.splitlines() if ":" in line)
    fields = {k.strip(): v.strip() for k, v in fields.items()}
    return (f"{fields.get('Model name', '?')} ({fields.get('Architecture', '?')}, {fields.get('CPU(s)', '?')} CPUs, "
            f"flags: {' '.join(f for f in ('avx2', 'avx512f', 'avx512_bf16', 'avx512_vnni', 'fma', 'f16c') if f in fields.get('Flags', '').split())})")


def prompt_ids(tokenizer):
    heldout = json.loads(TEXT.read_text(encoding="utf-8"))["heldout"]
    ids = tokenizer(heldout, add_special_tokens=False)["input_ids"][:PREFILL_TOKENS]
    if len(ids) < PREFILL_TOKENS:
        sys.exit(f"the held-out text has only {len(ids)} tokens")
    text = tokenizer.decode(ids)
    again = tokenizer(text, add_special_tokens=False)["input_ids"]
    if again != ids:
        sys.exit("the decoded 512-token prefix does not re-tokenize to the same ids")
    return ids, text


# ---------------------------------------------------------------- engines

class TorchEngine:
    def __init__(self, gguf_path, threads):
        import torch
        import transformers
        from transformers import AutoModelForCausalLM
        torch.set_num_threads(threads)
        self.torch = torch
        self.name, self.weights = "PyTorch + transformers", "fp32 (dequantized Q4_1)"
        self.model = AutoModelForCausalLM.from_pretrained(isolated_folder(gguf_path), gguf_file=gguf_path.name,
                                                          dtype=torch.float32).eval()
        self.version = f"torch {torch.__version__}, transformers {transformers.__version__}"
        # transformers 5.25 renamed past_key_values to cache (the old name warns until 5.40).
        import inspect
        self.cache_kwarg = "cache" if "cache" in inspect.signature(self.model.forward).parameters else "past_key_values"

    @staticmethod
    def cache_of(out):
        cache = getattr(out, "cache", None)
        return cache if cache is not None else out.past_key_values

    def run(self, ids, n_decode):
        torch = self.torch
        with torch.inference_mode():
            x = torch.tensor([ids])
            t0 = time.perf_counter()
            out = self.model(x, use_cache=True, logits_to_keep=1)
            nxt = int(out.logits[0, -1].argmax())
            t1 = time.perf_counter()
            past = self.cache_of(out)
            generated = [nxt]
            t2 = time.perf_counter()
            for _ in range(n_decode):
                out = self.model(torch.tensor([[nxt]]), **{self.cache_kwarg: past}, use_cache=True)
                past = self.cache_of(out)
                nxt = int(out.logits[0, -1].argmax())
                generated.append(nxt)
            t3 = time.perf_counter()
        return {"prompt_tokens": len(ids), "prefill_seconds": t1 - t0, "decode_tokens": n_decode,
                "decode_seconds": t3 - t2, "generated": generated[:16]}


def make_gguf(src, ftype, label, threads):
    import llama_cpp
    dst = src.with_name(src.name.replace(".Q4_1.gguf", f".{label}.gguf"))
    if dst.is_file() and dst.stat().st_size > 0:
        return dst
    params = llama_cpp.llama_model_quantize_default_params()
    params.ftype = ftype
    params.allow_requantize = True
    params.nthread = threads
    tmp = dst.with_name(dst.name + ".partial")
    log(f"making {dst} (llama_model_quantize ftype {ftype})")
    sys.stderr.flush()
    saved = os.dup(2)
    with open(dst.with_name(dst.name + ".log"), "w") as quant_log:  # llama.cpp logs every tensor
        os.dup2(quant_log.fileno(), 2)
        try:
            rc = llama_cpp.llama_model_quantize(str(src).encode(), str(tmp).encode(), ctypes.byref(params))
        finally:
            os.dup2(saved, 2)
            os.close(saved)
    if rc != 0:
        sys.exit(f"llama_model_quantize to {label} failed ({rc})")
    tmp.replace(dst)
    return dst


class LlamaCppEngine:
    def __init__(self, path, label, threads):
        import llama_cpp
        self.llama_cpp = llama_cpp
        self.name, self.weights, self.path = "llama.cpp (llama-cpp-python)", label, path
        self.llm = llama_cpp.Llama(model_path=str(path), n_threads=threads, n_threads_batch=threads, n_ctx=N_CTX,
                                   n_batch=N_BATCH, n_ubatch=N_BATCH, logits_all=False, verbose=False)
        self.n_vocab = self.llm.n_vocab()
        self.version = f"llama-cpp-python {llama_cpp.__version__}"

    def argmax(self):
        logits = np.ctypeslib.as_array(self.llm._ctx.get_logits(), shape=(self.n_vocab,))
        return int(logits.argmax())

    def run(self, ids, n_decode):
        llm = self.llm
        llm.reset()
        t0 = time.perf_counter()
        llm.eval(ids)
        nxt = self.argmax()
        t1 = time.perf_counter()
        generated = [nxt]
        t2 = time.perf_counter()
        for _ in range(n_decode):
            llm.eval([nxt])
            nxt = self.argmax()
            generated.append(nxt)
        t3 = time.perf_counter()
        return {"prompt_tokens": len(ids), "prefill_seconds": t1 - t0, "decode_tokens": n_decode,
                "decode_seconds": t3 - t2, "generated": generated[:16], "n_tokens_in_context": llm.n_tokens}


class OursEngine:
    KEYS = ("prompt_tokens", "prefill_seconds", "prefill_tokens_per_second", "decode_tokens", "decode_seconds",
            "decode_tokens_per_second")

    def __init__(self, binary, gguf_path, prompt_file, label, weights_file, dtype=None):
        self.name, self.weights = "ours (sparsity generate)", label
        self.command = [str(binary), "generate", "--model", str(gguf_path)]
        if weights_file:
            self.command += ["--weights", str(weights_file)]
        if dtype:
            self.command += ["--dtype", dtype]
        self.command += ["--prompt-file", str(prompt_file), "--max-tokens", str(DECODE_TOKENS), "--ignore-eos", "--json"]
        self.version = str(binary)

    def run(self, ids, n_decode):
        result = subprocess.run(self.command, capture_output=True, text=True)
        if result.returncode != 0:
            raise RuntimeError(f"exit {result.returncode}: {(result.stderr or result.stdout).strip()[-800:]}")
        report = None
        for line in reversed(result.stdout.strip().splitlines()):
            try:
                report = json.loads(line)
                break
            except json.JSONDecodeError:
                continue
        if report is None:
            try:
                report = json.loads(result.stdout)
            except json.JSONDecodeError:
                raise RuntimeError(f"no JSON object on stdout: {result.stdout.strip()[-400:]!r}")
        missing = [k for k in self.KEYS if k not in report]
        if missing:
            raise RuntimeError(f"JSON lacks {missing}: {report}")
        return report


# ---------------------------------------------------------------- main

def rates(sample):
    pre = sample.get("prefill_tokens_per_second") or sample["prompt_tokens"] / sample["prefill_seconds"]
    dec = sample.get("decode_tokens_per_second") or sample["decode_tokens"] / sample["decode_seconds"]
    return pre, dec


def main():
    args = ARGS
    engines_wanted = {e.strip() for e in args.engines.split(",") if e.strip()}
    gguf_path = args.model.expanduser().resolve()
    from transformers import AutoTokenizer
    tokenizer = AutoTokenizer.from_pretrained(isolated_folder(gguf_path), gguf_file=gguf_path.name)
    ids, text = prompt_ids(tokenizer)
    workdir = pathlib.Path(tempfile.mkdtemp(prefix="bench-llm-"))
    prompt_file = workdir / "prompt.txt"
    prompt_file.write_text(text, encoding="utf-8")

    cpu = cpu_model()
    log(f"CPU: {cpu}")
    log(f"Python {platform.python_version()}, threads {args.threads}, rounds {args.rounds}; prompt {len(ids)} tokens "
        f"({len(text)} chars), decode {DECODE_TOKENS} tokens, batch 1")

    engines, skipped, notes = [], [], []
    if "torch" in engines_wanted:
        engines.append(TorchEngine(gguf_path, args.threads))
    if "llama.cpp" in engines_wanted:
        import llama_cpp
        f32 = make_gguf(gguf_path, llama_cpp.LLAMA_FTYPE_ALL_F32, "F32", args.threads)
        q8 = make_gguf(gguf_path, llama_cpp.LLAMA_FTYPE_MOSTLY_Q8_0, "Q8_0", args.threads)
        for path, label in ((f32, "F32"), (q8, "Q8_0"), (gguf_path, "Q4_1 (native)")):
            engines.append(LlamaCppEngine(path, label, args.threads))
        lc_ids = engines[-1].llm.tokenize(text.encode("utf-8"), add_bos=False, special=False)
        notes.append(f"llama.cpp tokenizer gives {len(lc_ids)} ids for the prompt text, "
                     f"{'identical to' if lc_ids == ids else 'DIFFERENT from'} transformers' (the engines get the ids)")
        log(notes[-1])
        notes.append("llama.cpp system info: " + llama_cpp.llama_print_system_info().decode().strip())
    if "ours" in engines_wanted:
        models = [("dense", None, "f32")]
        for item in args.ours_weights:
            if "=" not in item:
                sys.exit(f"--ours-weights {item!r}: expected LABEL=FILE[@int8|@bf16]")
            label, file = item.split("=", 1)
            file, _, dtype = file.partition("@")
            if file == "dense":
                models.append((label, None, dtype or "f32"))
                continue
            if file == "gguf:Q8_0":
                import llama_cpp
                models.append((label, ("model", make_gguf(gguf_path, llama_cpp.LLAMA_FTYPE_MOSTLY_Q8_0, "Q8_0", args.threads)),
                               dtype or None))
                continue
            path = pathlib.Path(file).expanduser().resolve()
            if not path.is_file():
                skipped.append(f"ours ({label}): skipped, no weights file {path}")
                continue
            models.append((label, path, dtype or "f32"))
        binary = args.binary.expanduser()
        if not binary.is_file():
            skipped.append(f"ours: skipped, no binary at {binary} (build with `swift build -c release`)")
        else:
            for label, file, dtype in models:
                if isinstance(file, tuple):  # ("model", GGUF): ours runs that GGUF file itself
                    engines.append(OursEngine(binary.resolve(), file[1], prompt_file, label, None, dtype))
                else:
                    engines.append(OursEngine(binary.resolve(), gguf_path, prompt_file, label, file, dtype))

    samples = {id(e): [] for e in engines}
    # Warm-up (untimed); an "ours" engine that fails here is skipped.
    for e in list(engines):
        try:
            r = e.run(ids, 8 if not isinstance(e, OursEngine) else DECODE_TOKENS)
        except (RuntimeError, OSError) as err:
            if isinstance(e, OursEngine):
                skipped.append(f"ours ({e.weights}): skipped, `{' '.join(e.command)}` failed: {err}")
                engines.remove(e)
                continue
            raise
        if r["prompt_tokens"] != PREFILL_TOKENS:
            sys.exit(f"{e.name} {e.weights} saw {r['prompt_tokens']} prompt tokens, not {PREFILL_TOKENS}")
        log(f"warm-up {e.name} [{e.weights}]: done")
    for msg in skipped:
        log(msg)

    load_before = os.getloadavg()
    for rnd in range(args.rounds):
        for e in engines:
            r = e.run(ids, DECODE_TOKENS)
            if r["prompt_tokens"] != PREFILL_TOKENS:
                sys.exit(f"{e.name} {e.weights} saw {r['prompt_tokens']} prompt tokens, not {PREFILL_TOKENS}")
            if r.get("decode_tokens") != DECODE_TOKENS:
                log(f"warning: {e.name} [{e.weights}] decoded {r.get('decode_tokens')} tokens, not {DECODE_TOKENS}")
            pre, dec = rates(r)
            r["prefill_tokens_per_second"], r["decode_tokens_per_second"] = pre, dec
            samples[id(e)].append(r)
            log(f"round {rnd + 1}: {e.name:30} {e.weights:24} prefill {pre:8.1f} tok/s  decode {dec:7.2f} tok/s")

    load_after = os.getloadavg()
    load = (f"load average (1 min) {load_before[0]:.2f} before the timed rounds, {load_after[0]:.2f} after, on "
            f"{os.cpu_count()} CPUs")
    log(load)
    rows = []
    for e in engines:
        s = samples[id(e)]
        rows.append({"engine": e.name, "weights": e.weights, "version": e.version,
                     "prefill_tokens_per_second": statistics.median(x["prefill_tokens_per_second"] for x in s),
                     "decode_tokens_per_second": statistics.median(x["decode_tokens_per_second"] for x in s),
                     "samples": s})
    dense = next((r for r in rows if r["engine"].startswith("ours") and r["weights"] == "dense"), None)

    def ratio(r, key):
        return f"{r[key] / dense[key]:.2f}" if dense else "n/a"

    print(f"CPU: {cpu}; {args.threads} threads; batch 1; prefill {PREFILL_TOKENS} tokens, greedy decode "
          f"{DECODE_TOKENS} tokens; median of {args.rounds} interleaved rounds; {load}\n")
    print("| engine | weights | prefill tok/s | decode tok/s | prefill ratio vs ours dense | decode ratio vs ours dense |")
    print("|---|---|---:|---:|---:|---:|")
    for r in rows:
        print(f"| {r['engine']} | {r['weights']} | {r['prefill_tokens_per_second']:.1f} | "
              f"{r['decode_tokens_per_second']:.2f} | {ratio(r, 'prefill_tokens_per_second')} | "
              f"{ratio(r, 'decode_tokens_per_second')} |")
    for msg in skipped:
        print(f"\n{msg}")
    greedy = {f"{r['engine']} [{r['weights']}]": r["samples"][0].get("generated") for r in rows
              if r["samples"] and r["samples"][0].get("generated")}
    if greedy:
        log("first 16 greedy ids per engine: " + json.dumps(greedy))

    if args.json:
        import transformers
        report = {
            "cpu": cpu, "threads": args.threads, "rounds": args.rounds, "prefill_tokens": PREFILL_TOKENS,
            "decode_tokens": DECODE_TOKENS, "model": str(gguf_path), "prompt_ids": ids, "prompt_text": text,
            "python": platform.python_version(), "transformers": transformers.__version__,
            "env": {k: os.environ[k] for k in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS",
                                                 "SPARSITY_THREADS")},
            "notes": notes, "skipped": skipped, "load": load, "results": rows,
        }
        args.json.write_text(json.dumps(report, indent=1) + "\n")
        log(f"wrote {args.json}")
    shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    main()
