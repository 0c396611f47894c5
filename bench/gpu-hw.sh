#!/usr/bin/env bash
# Packs bench/gpu-hw.ts for a GPU machine that has no Node (the device tool's):
# `bash bench/gpu-hw.sh pack` builds .gpu/ (ignored by git): the bundled script, Node and
# Dawn compressed, stub packages for transformers.js's unused native imports, and
# Debian's Vulkan/GL loader packages. There, `bash .gpu/go.sh` runs it and writes
# $OUT/gpu-hw.json. About 30 MB travels beside the working tree.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ "${1:-}" = pack ]; then
  rm -rf .gpu && mkdir -p .gpu/node_modules/webgpu/dist/linux-x64 .gpu/debs bench/tmp
  grep -q '^/.gpu/' .git/info/exclude || echo '/.gpu/' >> .git/info/exclude
  npx esbuild bench/gpu-hw.ts --bundle --platform=node --format=esm --target=node20 --outfile=.gpu/run.mjs \
    --external:webgpu --external:onnxruntime-node --external:sharp --log-level=warning \
    --banner:js="import { createRequire as __cr } from 'node:module'; const require = __cr(import.meta.url);"
  for m in onnxruntime-node sharp; do  # imported by transformers.js at load, never used by the tokenizer
    mkdir -p .gpu/node_modules/$m
    echo "{\"name\":\"$m\",\"main\":\"index.js\"}" > .gpu/node_modules/$m/package.json
    echo 'module.exports = { InferenceSession: {}, Tensor: class {}, env: {} };' > .gpu/node_modules/$m/index.js
  done
  cp node_modules/webgpu/package.json node_modules/webgpu/index.js .gpu/node_modules/webgpu/
  xz -T2 -6 -c node_modules/webgpu/dist/linux-x64/dawn.node > .gpu/node_modules/webgpu/dist/linux-x64/dawn.node.xz
  xz -T2 -6 -c "$(command -v node)" > .gpu/node.xz
  (cd .gpu/debs && apt-get download libvulkan1 libegl1 libglvnd0 libopengl0 libgl1 libglx0 libgles2 2>/dev/null)
  cp bench/gpu-hw.sh .gpu/go.sh
  du -sh .gpu
  exit 0
fi
# On the GPU machine (from the repository root): unpack and run.
cd .gpu
xz -dkf node.xz && chmod +x node
xz -dkf node_modules/webgpu/dist/linux-x64/dawn.node.xz
for f in debs/*.deb; do dpkg -x "$f" /; done
ldconfig
cd ..
nvidia-smi -L || true
for f in /usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json /usr/share/vulkan/icd.d/nvidia_icd.json; do
  if [ -f "$f" ]; then export VK_DRIVER_FILES=$f; break; fi
done
CRAYON_NODE_GPU=hardware OUT=${OUT:-bench/tmp} REPS=${REPS:-5} .gpu/node .gpu/run.mjs
