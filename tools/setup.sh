#!/usr/bin/env bash
# Installs the Debian 12 packages vkmind builds and runs with; does nothing when all are present.
# Run as root (or with sudo available).
set -euo pipefail

packages=(
  cmake ninja-build g++ pkg-config
  libvulkan-dev libvulkan-volk-dev glslc glslang-tools spirv-tools
  mesa-vulkan-drivers vulkan-validationlayers
  nlohmann-json3-dev libcli11-dev googletest libgtest-dev libpcre2-dev libutf8proc-dev
  python3 opencc
)

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0

echo "setup: installing ${missing[*]}"
sudo=""
[ "$(id -u)" -ne 0 ] && sudo="sudo"
export DEBIAN_FRONTEND=noninteractive
$sudo apt-get update -qq
$sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
