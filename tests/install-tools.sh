#!/usr/bin/env bash
# Install the external tools the test suite uses, when they are missing:
#   promtool + prometheus (Debian package `prometheus`) for the PrometheusRule and live-Prometheus tests.
# Runs apt-get as root or through passwordless sudo; otherwise it says what to install and
# the tests that need the tool skip with that reason.
set -u
need_apt=()
command -v promtool >/dev/null 2>&1 || need_apt+=(prometheus)
if [ ${#need_apt[@]} -eq 0 ]; then
  echo "install-tools: promtool present: $(promtool --version 2>&1 | head -1)"
  exit 0
fi
if [ "$(id -u)" -eq 0 ]; then SUDO=""; elif sudo -n true 2>/dev/null; then SUDO="sudo -n"; else
  echo "install-tools: cannot install ${need_apt[*]} (not root, no passwordless sudo); the tests that need them will skip" >&2
  exit 0
fi
export DEBIAN_FRONTEND=noninteractive
# policy-rc.d keeps the package's service from starting; the tests start their own Prometheus.
$SUDO apt-get update -qq >/dev/null 2>&1 || true
if $SUDO apt-get install -y -qq --no-install-recommends "${need_apt[@]}" >/dev/null 2>&1; then
  echo "install-tools: installed ${need_apt[*]}: $(promtool --version 2>&1 | head -1)"
else
  echo "install-tools: apt-get could not install ${need_apt[*]}; the tests that need them will skip" >&2
fi
exit 0
