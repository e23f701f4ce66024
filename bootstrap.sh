#!/usr/bin/env bash
# Set up this machine (Debian packages, the pinned Python venv) and run the toolchain.
#   ./bootstrap.sh main    builds and packages everything for the embedded default model
#   ./bootstrap.sh test    runs the test suite
#   ./bootstrap.sh ARGS    runs `invoke ARGS` in the venv
# Idempotent: packages already installed and an up-to-date venv are left alone.
set -euo pipefail
cd "$(dirname "$0")"

PYTHON=${PYTHON:-python3.11}
VENV=${VENV:-.venv}
export PIP_DISABLE_PIP_VERSION_CHECK=1

install_debian_packages() {
    local missing=()
    while read -r pkg; do
        [[ -z "$pkg" || "$pkg" == \#* ]] && continue
        dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
    done < requirements-debian.txt
    if ((${#missing[@]})); then
        echo "bootstrap: installing Debian packages: ${missing[*]}" >&2
        local sudo=""
        [[ $(id -u) -ne 0 ]] && sudo="sudo"
        $sudo apt-get update -qq
        DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >&2
    fi
}

install_python_venv() {
    local want have=""
    want=$(sha256sum requirements.lock | cut -d' ' -f1)
    [[ -f "$VENV/.requirements.sha256" ]] && have=$(cat "$VENV/.requirements.sha256")
    if [[ "$want" != "$have" ]]; then
        echo "bootstrap: installing pinned Python packages into $VENV" >&2
        [[ -x "$VENV/bin/python" ]] || "$PYTHON" -m venv "$VENV"
        "$VENV/bin/pip" install -q --require-hashes -r requirements.lock
        echo "$want" > "$VENV/.requirements.sha256"
    fi
}

install_debian_packages
install_python_venv

case "${1:-}" in
    main) set -- build package ;;
    test) set -- test ;;
    "") echo "usage: $0 main | test | <invoke arguments>" >&2; exit 2 ;;
esac
exec "$VENV/bin/invoke" "$@"
