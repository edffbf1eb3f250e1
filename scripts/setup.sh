#!/usr/bin/env bash
# Installs what building and testing Duet needs on a fresh Debian machine with
# a Rust toolchain: libclang for RocksDB's bindgen, the mariadb CLI and Python
# MySQL drivers for the protocol tests, sysbench (run unmodified against
# Duet in the tests), faketime (the fault suite steps a node's clock with it).
# Idempotent: does nothing that is already done.
set -euo pipefail

apt_packages=(libclang-dev mariadb-client sysbench faketime)
missing=()
for p in "${apt_packages[@]}"; do
  dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p")
done
if ((${#missing[@]})); then
  sudo=""
  [ "$(id -u)" -eq 0 ] || sudo="sudo"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${missing[@]}" >/dev/null
fi

if ! python3 -c 'import pymysql, mysql.connector, pytest' 2>/dev/null; then
  python3 -m pip install -q --disable-pip-version-check pymysql mysql-connector-python pytest
fi
