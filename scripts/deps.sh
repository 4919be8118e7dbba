#!/bin/sh
# Installs the Debian 12 packages stagegate needs, only those that are missing.
set -eu
PKGS="build-essential cmake pkg-config libopenblas-dev libhdf5-dev hdf5-tools zlib1g-dev libhwloc-dev hwloc
libcmocka-dev strace valgrind libssl-dev openssl libsqlite3-dev sqlite3 libpq-dev postgresql-15 libjansson-dev jq
libmicrohttpd-dev libgnutls28-dev libcurl4-openssl-dev curl
python3 python3-h5py python3-sklearn python3-numpy python3-scipy python3-xgboost libxgboost-dev
protobuf-c-compiler libprotobuf-c-dev libonnx-dev libonnx-testdata python3-torch python3-onnx python3-cryptography"
missing=""
for p in $PKGS; do
    if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
        missing="$missing $p"
    fi
done
if [ -n "$missing" ]; then
    echo "stagegate: installing:$missing" >&2
    SUDO=""
    if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq $missing >&2
fi
