#!/usr/bin/env bash
# The GPU checks of issue 10 in one call of a lent device machine: the Triton kernel tests, the `gpu`-marked
# tokenize tests, and `mediatok tokenize --accelerator gpu` on the bundled examples compared token by token with
# the CPU's run.
#
#   bash scripts/gpu_check.sh fetch    # here, once (needs the package registry): wheels of the core
#                                      # dependencies the device image lacks, into .gpu-wheels/ (git-ignored, 17 MB)
#   then the device tool's run: command "bash scripts/gpu_check.sh run", carry [".gpu-wheels"], timeout_s 480
#
# Why wheels: the device image has PyTorch, Triton, Lightning, numba and scikit-image under its own python3 but
# cannot reach a registry; --no-deps keeps pip from replacing the image's torch with our pin.
set -euo pipefail
WHEELS=.gpu-wheels
PY=${PY:-python3}
DEPS=(compressai==1.2.8 soundfile==0.14.0 jsonargparse==4.53.0 docstring-parser typeshed-client pytorch-msssim==1.0.0
      trimesh==5.2.0 libigl==2.6.3)

case "${1:-}" in
  fetch)
    python -m pip download --quiet --dest "$WHEELS" --only-binary=:all: --no-deps --implementation cp \
      --python-version 3.12 --platform manylinux_2_34_x86_64 --platform manylinux_2_28_x86_64 \
      --platform manylinux2014_x86_64 --platform any "${DEPS[@]}"
    ls -la "$WHEELS"
    ;;
  run)
    OUT=${OUT:-/tmp/gpu-check}
    mkdir -p "$OUT"
    $PY -m pip install --quiet --no-index --no-deps --target /tmp/gpu-extra "$WHEELS"/*.whl
    export PYTHONPATH="$PWD:/tmp/gpu-extra" PYTHONUNBUFFERED=1
    nvidia-smi -L || true
    $PY -c "import torch, triton; print('torch', torch.__version__, 'triton', triton.__version__, torch.cuda.get_device_name())"
    status=0
    # The kernels in full (their CUDA paths are skipped on the CPU machines), then the gpu-marked tests elsewhere.
    $PY -m pytest -q -p no:cacheprovider tests/kernels 2>&1 | tee "$OUT/pytest-kernels.log" || status=1
    $PY -m pytest -q -p no:cacheprovider -m gpu tests/tokenize tests/codecs 2>&1 | tee "$OUT/pytest-gpu.log" || status=1
    # Tokenize the bundled photo and speech clip on the CPU and on the GPU; how many tokens agree.
    for model in image-vq speech-16k; do
      for where in cpu gpu; do
        $PY -m mediatok.tokenize examples -o "/tmp/tok-$model-$where" --model "$model" --accelerator "$where" \
          --no-progress 2>&1 | tee -a "$OUT/tokenize.log" || status=1
      done
      $PY - "$model" <<'PY' 2>&1 | tee -a "$OUT/tokenize.log" || status=1
import sys, torch
from mediatok.tokenize import TokenDataset
model = sys.argv[1]
cpu, gpu = TokenDataset(f"/tmp/tok-{model}-cpu", pattern=None), TokenDataset(f"/tmp/tok-{model}-gpu", pattern=None)
assert len(cpu) == len(gpu) > 0, (len(cpu), len(gpu))
for i in range(len(cpu)):
    a, b = cpu[i]["tokens"], gpu[i]["tokens"]
    assert a.shape == b.shape, (a.shape, b.shape)
    print(f"{model} {cpu[i]['path']}: {a.numel()} tokens, {100 * float((a == b).double().mean()):.2f} % equal on the GPU")
PY
    done
    exit $status
    ;;
  *)
    echo "usage: bash scripts/gpu_check.sh fetch|run" >&2
    exit 2
    ;;
esac
