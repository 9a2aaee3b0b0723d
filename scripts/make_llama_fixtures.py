#!/usr/bin/env python3
"""Writes Tests/SparsityModelsTests/Fixtures/smollm2/: transformers reference outputs of
SmolLM2-135M-Instruct (the Q4_1 GGUF of scripts/fetch_smollm2.py) for the Swift Llama decoder.

    /work/venv/py/bin/python scripts/make_llama_fixtures.py [--model GGUF] [--out DIR]

The model is loaded the way transformers loads a GGUF: every tensor dequantized to fp32 by
`gguf.quants.dequantize`, the rows of attn_q / attn_k un-permuted back to the HF order (see
README.md in the output folder), the LM head tied to token_embd:

    AutoModelForCausalLM.from_pretrained(folder, gguf_file=NAME, dtype=torch.float32)
    AutoTokenizer.from_pretrained(folder, gguf_file=NAME)

where folder is a temporary folder holding only a symlink to the GGUF (files that other tools save
beside the .gguf, such as tokenizer.json / tokenizer_config.json, would otherwise be preferred to
the GGUF's own metadata); eval mode, torch.set_num_threads(2), CPU, batch 1 (no padding). Four prompts (PROMPTS below; the
last is the chat template rendering, with add_generation_prompt, of one user message).

Files:
* smollm2_reference.json - per prompt: text, input_ids, per position the argmax id and the top-10
  ids and logits; the 256 vocabulary ids (`subset_ids`, seeded, sorted) whose logits at every
  position are in the safetensors file; greedy generations (generate(do_sample=False,
  max_new_tokens=32), KV cache on) of the first and the chat prompt; for the first prompt the L2
  norm per position of the hidden state after the embedding, after each of the 30 decoder layers
  and after the final norm; versions and the GGUF's sha256.
* smollm2_logits.safetensors - f32: `last_logits.<prompt>` [49152] (the full last-position
  logits), `subset_logits.<prompt>` [T, 256] (logits of `subset_ids` at every position),
  `subset_ids` (i32 [256]).

It also prints (nothing of it is written) the largest |difference| between the weights
transformers loaded and `gguf.quants.dequantize` of the same GGUF tensors, with and without the
q/k un-permutation, and some consistency checks (generation with and without the KV cache; the
output_hidden_states convention).
"""
import argparse
import hashlib
import json
import os
import pathlib
import sys

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
for var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
    os.environ.setdefault(var, "2")

import numpy as np  # noqa: E402
import torch  # noqa: E402

ROOT = pathlib.Path(__file__).resolve().parent.parent
DEFAULT_MODEL = (pathlib.Path.home() / ".cache" / "swift-sparsity" / "models" / "SmolLM2-135M-Instruct"
                 / "SmolLM2-135M-Instruct.Q4_1.gguf")
DEFAULT_OUT = ROOT / "Tests" / "SparsityModelsTests" / "Fixtures" / "smollm2"
PINNED_SHA256 = "b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53"
SUBSET_SEED = 20250601
N_SUBSET, TOP_K, MAX_NEW_TOKENS = 256, 10, 32
MAX_BYTES = 1_500_000

PARAGRAPH = (
    "The lighthouse stood at the edge of the cliff for more than 150 years. Every night, the keeper "
    "climbed 117 steps to light the lamp, and every morning he wrote a short note in the logbook: "
    "the weather, the ships he had seen, and whether the fog had rolled in from the sea. When the "
    "lamp was finally automated in 1987, the logbooks were moved to the town library, where anyone "
    "can still read them. Most entries are dull, but a few describe storms so violent that the "
    "windows shook and the keeper feared the tower itself might fall."
)
CODE = (
    "def fibonacci(n):\n"
    "    \"\"\"Return the first n Fibonacci numbers.\"\"\"\n"
    "    a, b = 0, 1\n"
    "    result = []\n"
    "    for _ in range(n):\n"
    "        result.append(a)\n"
    "        a, b = b, a + b\n"
    "    return result\n"
)
CHAT_MESSAGE = "What is the capital of France?"
PROMPTS = [  # (name, kind, text or chat message)
    ("sentence", "plain", "The quick brown fox jumps over the lazy dog, and then it"),
    ("code", "plain", CODE),
    ("paragraph", "plain", PARAGRAPH),
    ("chat", "chat", CHAT_MESSAGE),
]
GENERATE = ("sentence", "chat")
HIDDEN_NORMS = "sentence"


def sha256_file(path):
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def isolated_folder(gguf_path):
    """A temporary folder holding only a symlink to the GGUF: transformers prefers a tokenizer.json /
    tokenizer_config.json / config.json lying beside the .gguf over the GGUF's own metadata (and such
    a tokenizer_config.json can lack the chat template), so nothing else may be in the folder."""
    import atexit
    import shutil
    import tempfile
    folder = tempfile.mkdtemp(prefix="smollm2-gguf-")
    atexit.register(shutil.rmtree, folder, ignore_errors=True)
    os.symlink(gguf_path, os.path.join(folder, gguf_path.name))
    return folder


def write_safetensors(path, tensors, metadata):
    """A safetensors file with its header keys and tensors in sorted order (safetensors' own
    save_file orders the header through a hash map, so the bytes differ between runs)."""
    dtypes = {np.dtype(np.float32): "F32", np.dtype(np.int32): "I32"}
    header, blobs, offset = {"__metadata__": dict(sorted(metadata.items()))}, [], 0
    for name in sorted(tensors):
        a = np.ascontiguousarray(tensors[name]).astype(tensors[name].dtype.newbyteorder("<"), copy=False)
        raw = a.tobytes()
        header[name] = {"dtype": dtypes[a.dtype], "shape": list(a.shape), "data_offsets": [offset, offset + len(raw)]}
        blobs.append(raw)
        offset += len(raw)
    head = json.dumps(header, separators=(",", ":")).encode("utf-8")
    head += b" " * (-len(head) % 8)
    with open(path, "wb") as f:
        f.write(len(head).to_bytes(8, "little"))
        f.write(head)
        for raw in blobs:
            f.write(raw)


def f9(x):
    """An f32 value as a JSON number that round-trips to the same f32 (9 significant digits)."""
    return float(f"{float(x):.9g}")


def hf_rows_from_gguf(w, n_head):
    """transformers' LlamaTensorProcessor._reverse_permute_weights: GGUF row h*d + 2i + j holds
    HF row h*d + j*(d/2) + i."""
    d2 = w.shape[0] // n_head // 2
    return w.reshape(n_head, d2, 2, *w.shape[1:]).swapaxes(2, 1).reshape(w.shape)


def check_weights(model, gguf_path, config):
    """Prints max |transformers weight - gguf.quants.dequantize| for a few tensors."""
    from gguf import GGUFReader
    from gguf.quants import dequantize
    reader = GGUFReader(str(gguf_path))
    tensors = {t.name: t for t in reader.tensors}
    state = model.state_dict()
    n_head, n_kv = config.num_attention_heads, config.num_key_value_heads
    checks = [
        ("token_embd.weight", "model.embed_tokens.weight", None),
        ("token_embd.weight", "lm_head.weight", None),
        ("blk.0.attn_q.weight", "model.layers.0.self_attn.q_proj.weight", n_head),
        ("blk.0.attn_k.weight", "model.layers.0.self_attn.k_proj.weight", n_kv),
        ("blk.0.attn_v.weight", "model.layers.0.self_attn.v_proj.weight", None),
        ("blk.0.attn_output.weight", "model.layers.0.self_attn.o_proj.weight", None),
        ("blk.0.ffn_down.weight", "model.layers.0.mlp.down_proj.weight", None),
        ("blk.17.ffn_gate.weight", "model.layers.17.mlp.gate_proj.weight", None),
        ("blk.29.attn_q.weight", "model.layers.29.self_attn.q_proj.weight", n_head),
        ("blk.29.attn_k.weight", "model.layers.29.self_attn.k_proj.weight", n_kv),
        ("blk.29.ffn_up.weight", "model.layers.29.mlp.up_proj.weight", None),
        ("blk.3.attn_norm.weight", "model.layers.3.input_layernorm.weight", None),
        ("blk.3.ffn_norm.weight", "model.layers.3.post_attention_layernorm.weight", None),
        ("output_norm.weight", "model.norm.weight", None),
    ]
    print("weights: max |transformers - gguf.quants.dequantize| (HF order; raw GGUF order for q/k)",
          file=sys.stderr)
    for gname, hname, heads in checks:
        t = tensors[gname]
        raw = np.asarray(dequantize(t.data, t.tensor_type), dtype=np.float32).reshape(
            [int(x) for x in reversed(t.shape)])
        ours = state[hname].detach().cpu().numpy()
        line = f"  {gname:26} {t.tensor_type.name:5} -> {hname:45} shape {tuple(ours.shape)}"
        if heads is None:
            line += f"  max|d| {np.abs(ours - raw).max():.3g}"
        else:
            line += (f"  max|d| un-permuted {np.abs(ours - hf_rows_from_gguf(raw, heads)).max():.3g},"
                     f" raw GGUF order {np.abs(ours - raw).max():.3g}")
        print(line, file=sys.stderr)
    tied = model.lm_head.weight.data_ptr() == model.model.embed_tokens.weight.data_ptr()
    print(f"  lm_head tied to embed_tokens (same storage): {tied}; config.tie_word_embeddings="
          f"{model.config.tie_word_embeddings}; output.weight in GGUF: {'output.weight' in tensors}",
          file=sys.stderr)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", type=pathlib.Path, default=DEFAULT_MODEL, help="the Q4_1 .gguf file")
    parser.add_argument("--out", type=pathlib.Path, default=DEFAULT_OUT)
    args = parser.parse_args()
    gguf_path = args.model.expanduser().resolve()
    digest = sha256_file(gguf_path)
    if digest != PINNED_SHA256:
        print(f"make_llama_fixtures: warning: {gguf_path} has sha256 {digest}, expected {PINNED_SHA256}",
              file=sys.stderr)

    import gguf
    import safetensors
    import tokenizers
    import transformers
    from safetensors.numpy import load_file
    from transformers import AutoModelForCausalLM, AutoTokenizer

    torch.set_num_threads(2)
    torch.manual_seed(0)
    folder, name = isolated_folder(gguf_path), gguf_path.name
    tokenizer = AutoTokenizer.from_pretrained(folder, gguf_file=name)
    model = AutoModelForCausalLM.from_pretrained(folder, gguf_file=name, dtype=torch.float32)
    model.eval()
    config = model.config
    vocab = config.vocab_size
    print(f"config: layers {config.num_hidden_layers}, hidden {config.hidden_size}, heads "
          f"{config.num_attention_heads}/{config.num_key_value_heads}, rope_theta "
          f"{getattr(config, 'rope_theta', None) or config.rope_parameters}, eps {config.rms_norm_eps}, "
          f"vocab {vocab}, tie {config.tie_word_embeddings}, bos {config.bos_token_id}, "
          f"eos {config.eos_token_id}; generation eos {model.generation_config.eos_token_id}",
          file=sys.stderr)
    check_weights(model, gguf_path, config)

    subset_ids = np.sort(np.random.default_rng(SUBSET_SEED).choice(vocab, N_SUBSET, replace=False)).astype(np.int32)
    tensors = {"subset_ids": subset_ids}
    prompts, generations = [], []
    hidden = None
    for pname, kind, text in PROMPTS:
        if kind == "chat":
            messages = [{"role": "user", "content": text}]
            rendered = tokenizer.apply_chat_template(messages, add_generation_prompt=True, tokenize=False)
            ids = tokenizer(rendered, add_special_tokens=False)["input_ids"]
            templ = tokenizer.apply_chat_template(messages, add_generation_prompt=True, tokenize=True)
            templ = templ["input_ids"] if hasattr(templ, "keys") else templ
            if templ and isinstance(templ[0], list):
                templ = templ[0]
            assert list(templ) == ids, "apply_chat_template(tokenize=True) differs from tokenizing its text"
        else:
            rendered = text
            ids = tokenizer(rendered, add_special_tokens=False)["input_ids"]
        default_ids = tokenizer(rendered)["input_ids"]
        assert default_ids == ids, f"{pname}: the tokenizer adds special tokens by default"
        input_ids = torch.tensor([ids])
        with torch.no_grad():
            out = model(input_ids, output_hidden_states=(pname == HIDDEN_NORMS), use_cache=False)
        logits = out.logits[0].float()  # [T, V]
        top = torch.topk(logits, TOP_K, dim=-1)
        argmax = logits.argmax(dim=-1)
        assert torch.equal(argmax, top.indices[:, 0]), "argmax differs from top-1"
        tensors[f"last_logits.{pname}"] = logits[-1].numpy().astype(np.float32)
        tensors[f"subset_logits.{pname}"] = logits[:, torch.from_numpy(subset_ids.astype(np.int64))].numpy().astype(np.float32)
        prompts.append({
            "name": pname,
            "kind": kind,
            **({"chat_messages": [{"role": "user", "content": text}]} if kind == "chat" else {}),
            "text": rendered,
            "n_tokens": len(ids),
            "input_ids": ids,
            "argmax": argmax.tolist(),
            "top10_ids": top.indices.tolist(),
            "top10_logits": [[f9(v) for v in row] for row in top.values.tolist()],
            "last_logits_tensor": f"last_logits.{pname}",
            "subset_logits_tensor": f"subset_logits.{pname}",
        })
        print(f"prompt {pname}: {len(ids)} tokens, last argmax {argmax[-1].item()} "
              f"{tokenizer.decode([argmax[-1].item()])!r}, last max logit {top.values[-1, 0].item():.4f}",
              file=sys.stderr)

        if pname == HIDDEN_NORMS:
            captured = {}
            hooks = [model.model.embed_tokens.register_forward_hook(
                lambda m, i, o: captured.__setitem__("embedding", o.detach()))]
            for li, layer in enumerate(model.model.layers):
                hooks.append(layer.register_forward_hook(
                    lambda m, i, o, li=li: captured.__setitem__(li, (o[0] if isinstance(o, tuple) else o).detach())))
            hooks.append(model.model.norm.register_forward_hook(
                lambda m, i, o: captured.__setitem__("norm", o.detach())))
            with torch.no_grad():
                out2 = model(input_ids, use_cache=False)
            for h in hooks:
                h.remove()
            assert torch.equal(out2.logits, out.logits)
            hs = out.hidden_states
            n_layers = config.num_hidden_layers
            assert len(hs) == n_layers + 1
            d_emb = (hs[0] - captured["embedding"]).abs().max().item()
            d_mid = max((hs[i] - captured[i - 1]).abs().max().item() for i in range(1, n_layers))
            d_last_norm = (hs[-1] - captured["norm"]).abs().max().item()
            d_last_raw = (hs[-1] - captured[n_layers - 1]).abs().max().item()
            print(f"output_hidden_states: {len(hs)} states; [0] vs embedding {d_emb:.3g}, [1..{n_layers - 1}] vs "
                  f"layer outputs {d_mid:.3g}, [{n_layers}] vs final norm {d_last_norm:.3g} / vs raw last layer "
                  f"{d_last_raw:.3g}", file=sys.stderr)
            norms = lambda t: [f9(v) for v in t[0].norm(dim=-1).tolist()]  # noqa: E731
            hidden = {
                "prompt": pname,
                "note": ("L2 norm over the 576 features of the hidden state at each position: `embedding` = "
                         "embed_tokens output; `layers[i]` = output of decoder layer i (0-based, residual "
                         "stream after its MLP; layers[29] is before the final norm); `final_norm` = after "
                         "model.norm (what the LM head sees). transformers' output_hidden_states has 31 "
                         "entries: [0] = embedding, [i] = layers[i-1] for i = 1..29, and [30] = final_norm "
                         "(not layers[29])."),
                "embedding": norms(captured["embedding"]),
                "layers": [norms(captured[i]) for i in range(n_layers)],
                "final_norm": norms(captured["norm"]),
            }

        if pname in GENERATE:
            with torch.no_grad():
                gen = model.generate(input_ids, attention_mask=torch.ones_like(input_ids), do_sample=False,
                                     max_new_tokens=MAX_NEW_TOKENS, pad_token_id=tokenizer.pad_token_id
                                     if tokenizer.pad_token_id is not None else config.eos_token_id)
                gen_nocache = model.generate(input_ids, attention_mask=torch.ones_like(input_ids), do_sample=False,
                                             max_new_tokens=MAX_NEW_TOKENS, use_cache=False,
                                             pad_token_id=config.eos_token_id)
                new = gen[0, len(ids):].tolist()
                # Teacher-forced check: the argmax of one forward over prompt + generation.
                full = model(gen, use_cache=False).logits[0].argmax(-1)[len(ids) - 1:-1].tolist()
            eos = model.generation_config.eos_token_id
            eos_set = set(eos if isinstance(eos, list) else [eos])
            stopped = bool(new) and new[-1] in eos_set
            print(f"generate {pname}: {len(new)} new tokens (stopped at EOS: {stopped}); no-cache equal: "
                  f"{gen_nocache[0].tolist() == gen[0].tolist()}; teacher-forced argmax equal: {full == new}; "
                  f"{tokenizer.decode(new)!r}", file=sys.stderr)
            generations.append({
                "prompt": pname,
                "settings": f"generate(do_sample=False, max_new_tokens={MAX_NEW_TOKENS}), KV cache on, "
                            f"stops at eos_token_id {sorted(eos_set)}",
                "new_ids": new,
                "n_new": len(new),
                "stopped_at_eos": stopped,
                "text": tokenizer.decode(new),
                "text_skip_special": tokenizer.decode(new, skip_special_tokens=True),
                "same_without_kv_cache": gen_nocache[0].tolist() == gen[0].tolist(),
            })

    doc = {
        "description": ("transformers reference outputs of SmolLM2-135M-Instruct (Q4_1 GGUF dequantized to fp32), "
                        "made by scripts/make_llama_fixtures.py; see README.md"),
        "model": {"file": gguf_path.name, "sha256": digest, "bytes": gguf_path.stat().st_size},
        "versions": {"python": ".".join(map(str, sys.version_info[:3])), "torch": torch.__version__,
                     "transformers": transformers.__version__, "tokenizers": tokenizers.__version__,
                     "gguf": getattr(gguf, "__version__", None) or _dist_version("gguf"),
                     "numpy": np.__version__, "safetensors": safetensors.__version__},
        "settings": {"dtype": "float32", "device": "cpu", "torch_threads": 2, "batch": 1,
                     "add_special_tokens": False, "bos_added": False,
                     "loading": "AutoModelForCausalLM.from_pretrained(folder, gguf_file=NAME, dtype=torch.float32)"},
        "config": {"num_hidden_layers": config.num_hidden_layers, "hidden_size": config.hidden_size,
                   "intermediate_size": config.intermediate_size,
                   "num_attention_heads": config.num_attention_heads,
                   "num_key_value_heads": config.num_key_value_heads, "rms_norm_eps": config.rms_norm_eps,
                   "rope_theta": _rope_theta(config), "vocab_size": vocab,
                   "tie_word_embeddings": config.tie_word_embeddings,
                   "bos_token_id": config.bos_token_id, "eos_token_id": config.eos_token_id},
        "logits_file": "smollm2_logits.safetensors",
        "subset_seed": SUBSET_SEED,
        "subset_ids": subset_ids.tolist(),
        "prompts": prompts,
        "generations": generations,
        "hidden_norms": hidden,
    }
    args.out.mkdir(parents=True, exist_ok=True)
    data = (json.dumps(doc, ensure_ascii=False, indent=None, separators=(",", ":")) + "\n").encode("utf-8")
    json_path = args.out / "smollm2_reference.json"
    st_path = args.out / "smollm2_logits.safetensors"
    json_path.write_bytes(data)
    write_safetensors(st_path, tensors, metadata={"source": "scripts/make_llama_fixtures.py",
                                               "gguf_sha256": digest,
                                               "transformers": transformers.__version__})
    back = load_file(str(st_path))  # the file reads back with the safetensors library, bit for bit
    assert sorted(back) == sorted(tensors) and all(np.array_equal(back[k], tensors[k]) for k in tensors)
    total = sum(p.stat().st_size for p in args.out.iterdir() if p.is_file())
    for p in (json_path, st_path):
        print(f"{p.relative_to(ROOT) if p.is_relative_to(ROOT) else p}: {p.stat().st_size} bytes, "
              f"sha256 {sha256_file(p)}", file=sys.stderr)
    if total > MAX_BYTES:
        sys.exit(f"fixtures total {total} bytes, over {MAX_BYTES}")
    print(args.out)


def _rope_theta(config):
    theta = getattr(config, "rope_theta", None)
    if theta is None:
        params = getattr(config, "rope_parameters", None) or {}
        theta = params.get("rope_theta")
    return theta


def _dist_version(name):
    from importlib.metadata import version
    return version(name)


if __name__ == "__main__":
    main()
