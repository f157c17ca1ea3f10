#!/usr/bin/env bash
# Install what the gateway benchmark needs; safe to run again (it only installs what is missing).
#   nginx, wrk        Debian packages (apt-get; needs root)
#   bench/.venv-litellm   LiteLLM's proxy in its own venv, pinned (see LITELLM_SPEC)
# LiteLLM 1.108.7 is the newest release whose `proxy` extra installs from the package registry this
# project uses (1.108.8+ pin litellm-proxy-extras / litellm-proxy versions it does not serve); it is also
# the version of the peer figures in docs/sources.md ("Gateways, clients and protocols").
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
LITELLM_SPEC="${LITELLM_SPEC:-litellm[proxy]==1.108.7}"
PYTHON="${PYTHON:-python3}"

missing=()
command -v nginx >/dev/null 2>&1 || missing+=(nginx)
command -v wrk >/dev/null 2>&1 || missing+=(wrk)
if ((${#missing[@]})); then
    sudo=""
    if [ "$(id -u)" -ne 0 ]; then sudo="sudo"; fi
    echo "setup: installing ${missing[*]} (apt-get)"
    $sudo apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -q --no-install-recommends "${missing[@]}"
fi

venv="$here/.venv-litellm"
stamp="$venv/.installed-$(echo "$LITELLM_SPEC" | tr -c 'A-Za-z0-9.=' '_')"
if [ ! -f "$stamp" ]; then
    echo "setup: installing $LITELLM_SPEC into $venv"
    [ -x "$venv/bin/python" ] || "$PYTHON" -m venv "$venv"
    "$venv/bin/pip" install -q --disable-pip-version-check "$LITELLM_SPEC"
    touch "$stamp"
fi
echo "setup: nginx $(nginx -v 2>&1 | sed 's/.*\///'), wrk $(wrk -v 2>&1 | head -1 | awk '{print $2}'), $("$venv/bin/python" -c 'import importlib.metadata as m; print("litellm", m.version("litellm"))')"
