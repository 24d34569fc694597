#!/usr/bin/env bash
# Everything the two README commands need, idempotent and with progress:
# Debian packages (Prometheus, Alertmanager, Pushgateway, Chromium for the report test), a virtualenv with the project, and the sandbox binaries
# (found on PATH / $MNOPS_SANDBOX_BIN, else built from Go modules into ~/.cache/mnops, never into the repo).
set -euo pipefail
cd "$(dirname "$0")/.."
VENV=${VENV:-.venv}

step() { printf '\n==> %s\n' "$*"; }

step "Debian packages (prometheus, prometheus-alertmanager, prometheus-pushgateway, chromium; tmux for the trainee-terminal tests)"
missing=()
command -v prometheus >/dev/null || missing+=(prometheus)
command -v promtool >/dev/null || missing+=(prometheus)
command -v prometheus-alertmanager >/dev/null || command -v alertmanager >/dev/null || missing+=(prometheus-alertmanager)
command -v prometheus-pushgateway >/dev/null || command -v pushgateway >/dev/null || missing+=(prometheus-pushgateway)
# Headless Chromium renders report.html in the project's own tests and makes the docs' report screenshot.
# Any of the names pytest_mnops/reporting/browser.py looks for will do (CI images often ship Chrome).
command -v chromium >/dev/null || command -v chromium-browser >/dev/null || command -v google-chrome >/dev/null \
  || missing+=(chromium)
command -v tmux >/dev/null || missing+=(tmux)
if [ ${#missing[@]} -gt 0 ]; then
  sudo=""; [ "$(id -u)" -eq 0 ] || sudo="sudo"
  $sudo apt-get update -q
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -q --no-install-recommends "${missing[@]}"
  # Debian starts its own services on install; the sandbox runs its own instances on its own ports.
  for service in prometheus prometheus-alertmanager prometheus-pushgateway prometheus-node-exporter; do
    $sudo systemctl disable --now "$service" >/dev/null 2>&1 || true
  done
else
  echo "already installed"
fi
command -v go >/dev/null || { echo "Go >= 1.26 is required to build the sandbox (KWOK 0.8 needs it): https://go.dev/dl" >&2; exit 1; }

step "Python virtualenv $VENV with pytest-mnops and its dev extras"
if [ ! -x "$VENV/bin/python" ]; then python3 -m venv "$VENV"; fi
if [ ! -f "$VENV/.installed" ] || [ pyproject.toml -nt "$VENV/.installed" ]; then
  "$VENV/bin/pip" install --upgrade --progress-bar off pip >/dev/null
  "$VENV/bin/pip" install --progress-bar off -e ".[dev]"
  touch "$VENV/.installed"
else
  echo "up to date"
fi

step "Sandbox binaries (etcd, kube-apiserver, controller-manager, scheduler, kubectl, KWOK, Argo Rollouts + its kubectl plugin)"
"$VENV/bin/mnops" sandbox build
