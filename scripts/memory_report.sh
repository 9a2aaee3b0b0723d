#!/usr/bin/env bash
# Peak memory and load time of the `sparsity` tool on all-MiniLM-L6-v2 in three forms (dense,
# 2:4 and 90%-BSR32) and on the digits demo models, measured with GNU `/usr/bin/time -v`
# ("Maximum resident set size"), printed as a Markdown report on stdout. The measurement behind
# the memory targets:
#   * peak RSS of `sparsity embed --model F --json -- "hello world"` <= 1.25 x the model's packed
#     weight bytes + 40 MiB per form; a sparse form's peak RSS below the dense one's by >= 80% of
#     the bytes its packed weights save; the same for `sparsity eval` (which loads two models,
#     the dense one and the sparse one) and for the digits models;
#   * loading a model file takes <= 1.2 x the time to `cat` its bytes (page cache warm); loading
#     a compressed file is faster than loading its dense original.
#
#   scripts/memory_report.sh [--binary PATH] [--baseline PATH] [--work DIR] [--model DIR]
#                            [--json FILE] [--repeats N] [--digits-cmd TEMPLATE]
#
#   --binary PATH     the `sparsity` measured (default .build/release/sparsity, built with
#                     `swift build -c release --product sparsity` when missing); it also prunes.
#   --baseline PATH   a second binary (an older build) measured the same way in the same run,
#                     interleaved A, B, A, B, ... so the tables show before/after side by side.
#   --work DIR        where the pruned model folders go (default: a temp dir, removed at exit);
#                     never the repository.
#   --model DIR       the dense all-MiniLM-L6-v2 folder (default: `python3 scripts/fetch_minilm.py`).
#   --json FILE       also write every raw sample and derived number as JSON.
#   --repeats N       runs per command and binary, median reported (default 3).
#   --digits-cmd T    a command that loads a saved digits model and runs it, with {bin},
#                     {model} (mlp or vit) and {weights} (a .safetensors file) substituted.
#                     Default: '{bin} classify --model {model} --weights {weights}' for the
#                     binaries that have `classify`; without one the digits rows are skipped.
#
# Weight bytes: when `embed` takes --verbose and prints on stderr
#   weights: N bytes (K packed layers …); loaded in S s
# N and S are used (the measured runs then pass --verbose); otherwise the size of the form's
# model.safetensors stands in for N and the load time is "–".
# Total runtime: about 1 minute per binary on 2 cores (eval is most of it).
set -euo pipefail
cd "$(dirname "$0")/.."
repo=$(pwd)

die() { echo "memory_report: error: $*" >&2; exit 2; }
usage() { sed -n '13,29p' "$0" | sed 's/^# \{0,1\}//'; }

binary="" baseline="" work="" model="" json="" repeats=3 digits_cmd=""
while [ $# -gt 0 ]; do
  case "$1" in
    --binary) binary=${2:?--binary needs a path}; shift ;;
    --baseline) baseline=${2:?--baseline needs a path}; shift ;;
    --work) work=${2:?--work needs a folder}; shift ;;
    --model) model=${2:?--model needs a folder}; shift ;;
    --json) json=${2:?--json needs a file}; shift ;;
    --repeats) repeats=${2:?--repeats needs a number}; shift ;;
    --digits-cmd) digits_cmd=${2:?--digits-cmd needs a template}; shift ;;
    -h|--help) usage; exit 0 ;;
    *) echo "memory_report: error: unknown option $1" >&2; usage >&2; exit 2 ;;
  esac
  shift
done
[[ "$repeats" =~ ^[1-9][0-9]*$ ]] || die "--repeats must be a positive integer, got '$repeats'"
[ -x /usr/bin/time ] || die "/usr/bin/time (GNU time) is missing; install it (apt-get install time)"
time_check=$(/usr/bin/time -v true 2>&1) || true
[[ "$time_check" == *"Maximum resident set size"* ]] ||
  die "/usr/bin/time does not support -v (GNU time needed)"
command -v python3 > /dev/null || die "python3 is missing"

if [ -z "$binary" ]; then
  binary=.build/release/sparsity
  if [ ! -x "$binary" ]; then
    echo "memory_report: $binary missing; building it (swift build -c release --product sparsity)" >&2
    swift build -c release --product sparsity >&2 || die "swift build failed"
    binary=$(swift build -c release --show-bin-path)/sparsity
  fi
fi
abspath() { python3 -c 'import os,sys; print(os.path.abspath(sys.argv[1]))' "$1"; }
[ -f "$binary" ] && [ -x "$binary" ] || die "binary '$binary' not found or not executable"
binary=$(abspath "$binary")
if [ -n "$baseline" ]; then
  [ -f "$baseline" ] && [ -x "$baseline" ] || die "baseline binary '$baseline' not found or not executable"
  baseline=$(abspath "$baseline")
fi

if [ -z "$model" ]; then
  model=$(python3 scripts/fetch_minilm.py | tail -n 1) || die "scripts/fetch_minilm.py failed (pass --model DIR)"
fi
[ -d "$model" ] || die "model folder '$model' not found"
model=$(abspath "$model")
for f in model.safetensors config.json vocab.txt; do
  [ -f "$model/$f" ] || die "model folder '$model' has no $f (run scripts/fetch_minilm.py)"
done

if [ -z "$work" ]; then
  work=$(mktemp -d "${TMPDIR:-/tmp}/memory_report.XXXXXX")
  trap 'rm -rf "$work"' EXIT
else
  work=$(abspath "$work")
  case "$work/" in "$repo"/*) die "--work must be outside the repository ($repo)" ;; esac
  mkdir -p "$work" || die "cannot create work folder '$work'"
fi

# The two sparse MiniLM folders: the pruned model.safetensors plus symlinks to every other file.
make_form() { # name, prune options...
  local name=$1 dir="$work/$1"
  shift
  rm -rf "$dir"
  mkdir -p "$dir"
  local entry
  for entry in "$model"/* "$model"/.[!.]*; do
    [ -e "$entry" ] || continue
    [ "$(basename "$entry")" = model.safetensors ] && continue
    ln -s "$entry" "$dir/$(basename "$entry")"
  done
  "$binary" prune "$model/model.safetensors" -o "$dir/model.safetensors" \
    --include 'encoder.*(query|key|value|dense).weight' "$@" > "$work/$name.prune.log" 2>&1 ||
    { tail -n 5 "$work/$name.prune.log" >&2; die "sparsity prune failed for $name (log: $work/$name.prune.log)"; }
}
echo "memory_report: pruning MiniLM (2:4, 90% BSR32) into $work" >&2
make_form minilm-2of4 --pattern 2:4 --compress auto
make_form minilm-bsr32-90 --pattern block:32x32 --sparsity 0.9 --compress bsr:32x32

# The digits models: train dense quickly, save, prune 2:4 (compress auto).
echo "memory_report: training and pruning the digits models" >&2
mkdir -p "$work/digits"
for m in mlp vit; do
  "$binary" train --model "$m" --pattern none --epochs 1 --output "$work/digits/$m-dense.safetensors" \
    > "$work/digits/$m.train.log" 2>&1 || { tail -n 5 "$work/digits/$m.train.log" >&2; die "sparsity train --model $m failed"; }
  include='weight$'
  [ "$m" = vit ] && include='(attention|mlp|patch_embed|head)\..*weight$'
  "$binary" prune "$work/digits/$m-dense.safetensors" -o "$work/digits/$m-2of4.safetensors" \
    --include "$include" --pattern 2:4 --compress auto > "$work/digits/$m.prune.log" 2>&1 ||
    { tail -n 5 "$work/digits/$m.prune.log" >&2; die "sparsity prune of the $m digits model failed"; }
done

echo "memory_report: measuring (repeats $repeats per command and binary)" >&2
export MR_BINARY="$binary" MR_BASELINE="$baseline" MR_WORK="$work" MR_MODEL="$model" MR_JSON="$json" \
  MR_REPEATS="$repeats" MR_DIGITS_CMD="$digits_cmd"
python3 - <<'PY'
import json, os, re, shlex, statistics, subprocess, sys, tempfile, time, datetime, platform

MiB = 1024 * 1024
binary, baseline = os.environ["MR_BINARY"], os.environ["MR_BASELINE"]
work, model = os.environ["MR_WORK"], os.environ["MR_MODEL"]
json_out, repeats = os.environ["MR_JSON"], int(os.environ["MR_REPEATS"])
digits_cmd = os.environ["MR_DIGITS_CMD"]
bins = [("A", binary)] + ([("B", baseline)] if baseline else [])
label = {"A": "binary", "B": "baseline"}
forms = [("dense", model), ("2:4 (csr)", f"{work}/minilm-2of4"), ("bsr32 90%", f"{work}/minilm-bsr32-90")]
WEIGHTS_RE = re.compile(r"^weights:\s*(\d+)\s*bytes\s*\((\d+)\s*packed layers?.*;\s*loaded in\s*([0-9.eE+-]+)\s*s$")


def fail(msg):
    print(f"memory_report: error: {msg}", file=sys.stderr)
    sys.exit(1)


def help_text(b, *sub):
    r = subprocess.run([b, *sub, "--help"], capture_output=True, text=True)
    return r.stdout + r.stderr


verbose = {k: {"embed": "--verbose" in help_text(b, "embed"), "eval": "--verbose" in help_text(b, "eval")}
           for k, b in bins}
version = {k: subprocess.run([b, "--version"], capture_output=True, text=True).stdout.strip() for k, b in bins}


def timed(cmd):
    """Runs cmd under /usr/bin/time -v; returns peak RSS (bytes), wall (s), weights lines."""
    with tempfile.NamedTemporaryFile("r", suffix=".time") as tf, tempfile.TemporaryFile("w+") as err:
        r = subprocess.run(["/usr/bin/time", "-v", "-o", tf.name, *cmd], stdout=subprocess.DEVNULL, stderr=err)
        err.seek(0)
        stderr = err.read()
        report = open(tf.name).read()
    if r.returncode != 0:
        fail(f"`{shlex.join(cmd)}` exited with {r.returncode}:\n{stderr[-2000:]}")
    rss = int(re.search(r"Maximum resident set size \(kbytes\):\s*(\d+)", report).group(1)) * 1024
    wall = re.search(r"Elapsed \(wall clock\) time \(h:mm:ss or m:ss\):\s*(\S+)", report).group(1)
    seconds = 0.0
    for part in wall.split(":"):
        seconds = seconds * 60 + float(part)
    weights = [(int(m.group(1)), int(m.group(2)), float(m.group(3)))
               for m in (WEIGHTS_RE.match(line.strip()) for line in stderr.splitlines()) if m]
    return {"rss": rss, "wall": seconds, "weights": weights}


def med(xs):
    xs = [x for x in xs if x is not None]
    return statistics.median(xs) if xs else None


samples = {}  # (binary key, measurement) -> list of runs


def measure(name, make_cmd, keys=None):
    """Interleaved A, B, A, B ... repeats; make_cmd(key, path) -> argv; only the binaries in `keys` (default all)."""
    for _ in range(repeats):
        for k, b in bins:
            if keys is None or k in keys:
                samples.setdefault((k, name), []).append(timed(make_cmd(k, b)))


t0 = time.time()
measure("help", lambda k, b: [b, "--help"])
for fname, fdir in forms:
    measure(f"embed:{fname}", lambda k, b, fdir=fdir: [b, "embed", "--model", fdir, "--json"]
            + (["--verbose"] if verbose[k]["embed"] else []) + ["--", "hello world"])
for fname, fdir in forms:
    measure(f"eval:{fname}", lambda k, b, fdir=fdir: [b, "eval", "--model", model, "--weights",
            f"{fdir}/model.safetensors", "--skip-speed"] + (["--verbose"] if verbose[k]["eval"] else []))

# Read time of each form's model.safetensors: one warm-up read, then the median of 5 `cat`s.
read = {}
for fname, fdir in forms:
    path = f"{fdir}/model.safetensors"
    subprocess.run(["cat", path], stdout=subprocess.DEVNULL, check=True)
    ts = []
    for _ in range(5):
        s = time.perf_counter()
        subprocess.run(["cat", path], stdout=subprocess.DEVNULL, check=True)
        ts.append(time.perf_counter() - s)
    # For context: reading the bytes into freshly allocated memory (page faults included), which
    # a loader that copies the weights cannot beat; `cat` reuses one small buffer.
    fresh = []
    for _ in range(5):
        s = time.perf_counter()
        with open(path, "rb") as fh:
            data = fh.read()
        fresh.append(time.perf_counter() - s)
        del data
    read[fname] = {"file_bytes": os.path.getsize(path), "samples": ts, "median": statistics.median(ts),
                   "fresh_samples": fresh, "fresh_median": statistics.median(fresh)}

# Digits: `sparsity classify` loads a saved digits model and runs it; older builds lack it.
def subcommands(b):
    top = help_text(b)
    return re.findall(r"^\s{2}([a-z][a-z0-9-]*)\s", top.split("SUBCOMMANDS:")[-1], re.M) if "SUBCOMMANDS:" in top else []
digits_keys = None
if not digits_cmd:
    digits_keys = [k for k, b in bins if "classify" in subcommands(b)]
    if digits_keys:
        digits_cmd = "{bin} classify --model {model} --weights {weights}"
top = help_text(binary)
subs = re.findall(r"^\s{2}([a-z][a-z0-9-]*)\s", top.split("SUBCOMMANDS:")[-1], re.M) if "SUBCOMMANDS:" in top else []
candidates = [s for s in subs if s not in ("demo", "train", "help") and "digit" in help_text(binary, s).lower()]
train_help = help_text(binary, "train")
for opt in ("--weights", "--load", "--input", "--from"):
    if re.search(rf"(^|\s){opt}\b", train_help):
        candidates.append(f"train {opt}")
digits = []
for m in ("mlp", "vit"):
    for form in ("dense", "2of4"):
        path = f"{work}/digits/{m}-{form}.safetensors"
        row = {"model": m, "form": form, "file_bytes": os.path.getsize(path)}
        if digits_cmd:
            name = f"digits:{m}:{form}"
            measure(name, lambda k, b, m=m, path=path: shlex.split(
                digits_cmd.format(bin=shlex.quote(b), model=m, weights=shlex.quote(path))), keys=digits_keys)
        digits.append(row)
elapsed = time.time() - t0


# ---- derived numbers
def weights_of(k, fname):
    runs = samples[(k, f"embed:{fname}")]
    lines = [r["weights"][-1] for r in runs if r["weights"]]
    if lines:
        return {"bytes": lines[-1][0], "layers": lines[-1][1], "load_s": med([l[2] for l in lines]), "source": "weights: line"}
    return {"bytes": read[fname]["file_bytes"], "layers": None, "load_s": None, "source": "file size"}


def limit(nbytes):
    return 1.25 * nbytes + 40 * MiB


res = {}
for k, _ in bins:
    res[k] = {"help_rss": med([r["rss"] for r in samples[(k, "help")]]), "forms": {}}
    for fname, _ in forms:
        w = weights_of(k, fname)
        e = samples[(k, f"embed:{fname}")]
        v = samples[(k, f"eval:{fname}")]
        ev_lines = [r["weights"] for r in v if r["weights"]]
        res[k]["forms"][fname] = {
            "weights": w,
            "embed_rss": med([r["rss"] for r in e]), "embed_wall": med([r["wall"] for r in e]),
            "eval_rss": med([r["rss"] for r in v]), "eval_wall": med([r["wall"] for r in v]),
            # one `weights:` line per model loaded (dense, then F) when eval prints them
            "eval_weight_bytes_printed": sum(x[0] for x in ev_lines[-1]) if ev_lines and len(ev_lines[-1]) == 2 else None,
        }
    d = res[k]["forms"]["dense"]
    for fname, f in res[k]["forms"].items():
        f["embed_limit"] = limit(f["weights"]["bytes"])
        f["embed_ok"] = f["embed_rss"] <= f["embed_limit"]
        ev_bytes = f["eval_weight_bytes_printed"] or (d["weights"]["bytes"] + f["weights"]["bytes"])
        f["eval_weight_bytes"] = ev_bytes
        f["eval_limit"] = limit(ev_bytes)
        f["eval_ok"] = f["eval_rss"] <= f["eval_limit"]
        lt, rt = f["weights"]["load_s"], read[fname]["median"]
        f["load_read_ratio"] = lt / rt if lt is not None else None
        f["load_ok"] = (f["load_read_ratio"] <= 1.2) if lt is not None else None
        if fname != "dense":
            saved = d["weights"]["bytes"] - f["weights"]["bytes"]
            f["weight_saving"] = saved
            f["embed_rss_saving"] = d["embed_rss"] - f["embed_rss"]
            f["embed_saving_ok"] = f["embed_rss_saving"] >= 0.8 * saved
            f["eval_rss_saving"] = d["eval_rss"] - f["eval_rss"]
            f["eval_saving_ok"] = f["eval_rss_saving"] >= 0.8 * saved
            dl = d["weights"]["load_s"]
            f["loads_faster_than_dense"] = (lt < dl) if (lt is not None and dl is not None) else None
for k, _ in bins:
    for row in digits:
        name = f"digits:{row['model']}:{row['form']}"
        if (k, name) in samples:
            row.setdefault("rss", {})[k] = med([r["rss"] for r in samples[(k, name)]])

# ---- report
mib = lambda x: "–" if x is None else f"{x / MiB:.1f}"
ms = lambda x: "–" if x is None else f"{x * 1000:.1f}"
yn = lambda x: "–" if x is None else ("yes" if x else "**no**")
signed = lambda x: "–" if x is None else f"{x / MiB:+.1f}"
who = lambda k: f"{label[k]} ({k})"

out = []
p = out.append
p("# sparsity memory report (all-MiniLM-L6-v2, digits)")
p("")
p(f"{datetime.datetime.now().strftime('%Y-%m-%d %H:%M')}, {platform.machine()}, {os.cpu_count()} CPUs, "
  f"SPARSITY_THREADS={os.environ.get('SPARSITY_THREADS', 'unset')}; peak RSS = `/usr/bin/time -v` "
  f"\"Maximum resident set size\"; every number is the median of {repeats} run(s)"
  + (", binary and baseline interleaved (A, B, A, B, …)" if baseline else "") + f"; measuring took {elapsed:.0f} s.")
p("")
for k, b in bins:
    vflag = "yes" if verbose[k]["embed"] else "no (weight bytes = file size, load time –)"
    p(f"- {who(k)}: `{b}` (version {version[k] or '?'}, {os.path.getsize(b) / MiB:.1f} MiB); `embed --verbose`: {vflag}")
p(f"- dense model: `{model}`; sparse forms pruned (magnitude) from it by the binary into `{work}`: "
  "`--include 'encoder.*(query|key|value|dense).weight'`, 2:4 with `--compress auto` (f32 2:4 is stored as CSR), "
  "block:32x32 at 90% with `--compress bsr:32x32`")
p("- MiB = 2^20 bytes; limit = 1.25 × weight bytes + 40 MiB")
p("")
p("## `sparsity embed --model F --json -- \"hello world\"`")
p("")
p("| form | binary | weight MiB (source) | peak RSS MiB | limit MiB | RSS ≤ limit | wall s |")
p("|---|---|---|---:|---:|---|---:|")
for fname, _ in forms:
    for k, _ in bins:
        f = res[k]["forms"][fname]
        p(f"| {fname} | {who(k)} | {mib(f['weights']['bytes'])} ({f['weights']['source']}) | {mib(f['embed_rss'])} | "
          f"{mib(f['embed_limit'])} | {yn(f['embed_ok'])} | {f['embed_wall']:.2f} |")
p("")
p("### Sparse forms: RSS saving vs dense ≥ 0.8 × weight-byte saving (embed)")
p("")
p("| form | binary | weight bytes saved MiB | needed RSS saving MiB | RSS saving MiB | met |")
p("|---|---|---:|---:|---:|---|")
for fname, _ in forms[1:]:
    for k, _ in bins:
        f = res[k]["forms"][fname]
        note = " (no weight saving)" if f["weight_saving"] <= 0 else ""
        p(f"| {fname} | {who(k)} | {signed(f['weight_saving'])}{note} | {signed(0.8 * f['weight_saving'])} | "
          f"{signed(f['embed_rss_saving'])} | {yn(f['embed_saving_ok'])} |")
p("")
p("## `sparsity eval --model DENSE --weights F/model.safetensors --skip-speed`")
p("")
p("eval loads two models, the dense one and the one with F's weights: its limit is "
  "1.25 × (dense + F weight bytes) + 40 MiB; the dense row (F = the dense weights) is the reference for the saving.")
p("")
p("| weights F | binary | weight MiB (dense + F) | peak RSS MiB | limit MiB | RSS ≤ limit | RSS saving vs dense MiB | needed MiB | saving met | wall s |")
p("|---|---|---:|---:|---:|---|---:|---:|---|---:|")
for fname, _ in forms:
    for k, _ in bins:
        f = res[k]["forms"][fname]
        if fname == "dense":
            sv, nd, ok = "–", "–", "–"
        else:
            sv, nd, ok = signed(f["eval_rss_saving"]), signed(0.8 * f["weight_saving"]), yn(f["eval_saving_ok"])
        p(f"| {fname} | {who(k)} | {mib(f['eval_weight_bytes'])} | {mib(f['eval_rss'])} | {mib(f['eval_limit'])} | "
          f"{yn(f['eval_ok'])} | {sv} | {nd} | {ok} | {f['eval_wall']:.2f} |")
p("")
p("## Load time vs read time (page cache warm)")
p("")
p("read = `cat model.safetensors > /dev/null` after one warm-up read, median of 5; load = the `weights:` line's "
  "time (median over the embed runs); target load ≤ 1.2 × read, and a compressed form loads faster than dense. "
  "read includes starting `cat` (about 1 ms); \"read into new memory\" (Python `read()` of the whole file into "
  "a fresh buffer, median of 5, page faults included) is for context only.")
p("")
p("| form | binary | file MiB | read ms | read into new memory ms | load ms | load/read | ≤ 1.2 | faster than dense |")
p("|---|---|---:|---:|---:|---:|---:|---|---|")
for fname, _ in forms:
    for k, _ in bins:
        f = res[k]["forms"][fname]
        ratio = "–" if f["load_read_ratio"] is None else f"{f['load_read_ratio']:.2f}"
        faster = "–" if fname == "dense" else yn(f["loads_faster_than_dense"])
        p(f"| {fname} | {who(k)} | {mib(read[fname]['file_bytes'])} | {ms(read[fname]['median'])} | "
          f"{ms(read[fname]['fresh_median'])} | "
          f"{ms(f['weights']['load_s'])} | {ratio} | {yn(f['load_ok'])} | {faster} |")
p("")
p("## Floor: `sparsity --help`")
p("")
p("| binary | peak RSS MiB |")
p("|---|---:|")
for k, _ in bins:
    p(f"| {who(k)} | {mib(res[k]['help_rss'])} |")
p("")
if baseline:
    p("## Before → after (baseline B → binary A), peak RSS MiB")
    p("")
    p("| command | form | baseline (B) | binary (A) | change |")
    p("|---|---|---:|---:|---:|")
    for cmd in ("embed", "eval"):
        for fname, _ in forms:
            a, b_ = res["A"]["forms"][fname][f"{cmd}_rss"], res["B"]["forms"][fname][f"{cmd}_rss"]
            p(f"| {cmd} | {fname} | {mib(b_)} | {mib(a)} | {signed(a - b_)} ({(a - b_) / b_ * 100:+.0f}%) |")
    p(f"| --help | – | {mib(res['B']['help_rss'])} | {mib(res['A']['help_rss'])} | "
      f"{signed(res['A']['help_rss'] - res['B']['help_rss'])} |")
    p("")
p("## Digits demo models (MLP, ViT; trained 1 epoch, 2:4 by magnitude with `--compress auto`)")
p("")
if digits_cmd:
    p(f"Measured command: `{digits_cmd}`"
      + ("" if digits_keys is None else f" (binaries that have it: {', '.join(who(k) for k in digits_keys)})")
      + "; weight bytes = file size.")
else:
    found = ", ".join(candidates) if candidates else "none"
    p("**Skipped:** no binary has a command that loads a saved digits model for inference (`classify`; "
      f"other candidates found in the help texts: {found}). Pass `--digits-cmd TEMPLATE`. File sizes and limits:")
p("")
p("| model | form | file KiB | limit MiB | " + " | ".join(f"peak RSS MiB {who(k)} | ≤ limit" for k, _ in bins) + " |")
p("|---|---|---:|---:|" + "---:|---|" * len(bins))
for row in digits:
    cells = []
    for k, _ in bins:
        r = row.get("rss", {}).get(k)
        cells += [mib(r), "–" if r is None else yn(r <= limit(row["file_bytes"]))]
    p(f"| {row['model']} | {row['form']} | {row['file_bytes'] / 1024:.1f} | {mib(limit(row['file_bytes']))} | " + " | ".join(cells) + " |")
print("\n".join(out))

if json_out:
    raw = {
        "binaries": {k: {"path": b, "version": version[k], "verbose": verbose[k]} for k, b in bins},
        "model": model, "work": work, "repeats": repeats, "elapsed_s": elapsed,
        "samples": {f"{k}:{name}": runs for (k, name), runs in samples.items()},
        "read": read, "results": res, "digits": digits, "digits_loader_candidates": candidates,
    }
    with open(json_out, "w") as fh:
        json.dump(raw, fh, indent=1)
    print(f"memory_report: wrote {json_out}", file=sys.stderr)
PY
