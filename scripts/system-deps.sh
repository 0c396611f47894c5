#!/usr/bin/env bash
# Installs the system packages Crayon's tests and world builder need, if any
# are missing (Debian/Ubuntu, as root). Safe to run repeatedly: a fully
# provisioned machine costs one dpkg query.
#   chromium             e2e tests and browser benchmarks (also brings SwiftShader's Vulkan ICD)
#   libvulkan1           the Vulkan loader Dawn (the `webgpu` npm package) needs in Node
#   python3-torch, python3-numpy, libopenblas0-pthread
#                        the reference-world builder (training/); OpenBLAS makes torch ~10x faster here
#   python3-venv         the venv of scripts/real-model.sh (.cache/venv, on top of Debian's torch)
set -euo pipefail

PACKAGES=(chromium libvulkan1 python3-torch python3-numpy libopenblas0-pthread python3-venv)

missing=()
for p in "${PACKAGES[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done
[ ${#missing[@]} -eq 0 ] && exit 0

cmd="apt-get update && apt-get install -y --no-install-recommends ${missing[*]}"
if [ "$(id -u)" -ne 0 ] || ! command -v apt-get >/dev/null; then
  echo "Missing system packages: ${missing[*]}" >&2
  echo "Install them with: sudo sh -c '$cmd'" >&2
  exit 1
fi
echo "Installing system packages: ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
echo "Installed: ${missing[*]}"
