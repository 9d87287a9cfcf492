#!/bin/sh
# Makes the secrets compose.yaml mounts: random passwords for restic and PostgreSQL, the SSH key backupctl logs in to
# the sftp service with, and that server's host key with the known_hosts line that pins it.
#   sh docker/make-secrets.sh [DIR]        (default: docker/secrets next to this script)
# Files that exist are kept, never replaced: a new restic password would lock you out of the repository made with the
# old one. To start over, remove the folder and the compose volumes (docker compose down -v).
# Modes: the folder 0700 (other users of this host cannot reach the files), the files 0644 because compose
# bind-mounts them as they are and the containers read them as their own users (backupctl 10001, postgres 999).
set -eu

here=$(cd "$(dirname "$0")" && pwd)
out=${1:-"$here/secrets"}

for program in ssh-keygen od tr; do
  if ! command -v "$program" >/dev/null 2>&1; then
    echo "make-secrets: $program is missing (ssh-keygen: apt-get install openssh-client)" >&2
    exit 1
  fi
done

mkdir -p "$out"
chmod 0700 "$out"

# 32 random bytes as 64 hex characters, without a newline.
password() {
  if [ -e "$out/$1" ]; then
    echo "kept      $out/$1"
    return
  fi
  (umask 077 && od -An -tx1 -N32 /dev/urandom | tr -d ' \n' >"$out/$1")
  chmod 0644 "$out/$1"
  echo "created   $out/$1"
}

# An ed25519 key pair without a passphrase (the container has no one to type it).
keypair() {
  if [ -e "$out/$1" ]; then
    echo "kept      $out/$1"
  else
    rm -f "$out/$1.pub"
    ssh-keygen -q -t ed25519 -N '' -C "$2" -f "$out/$1"
    echo "created   $out/$1 (+ .pub)"
  fi
  if [ ! -e "$out/$1.pub" ]; then
    ssh-keygen -y -f "$out/$1" >"$out/$1.pub"
  fi
  chmod 0644 "$out/$1" "$out/$1.pub"
}

password restic_password
password postgres_password
keypair ssh_key "backupctl@compose"
keypair sftp_host_ed25519_key "sftp host key"

# Variables for env("…") references (compose.yaml env_file, which must exist): comments only until you add one.
if [ -e "$out/backupctl.env" ]; then
  echo "kept      $out/backupctl.env"
else
  (umask 077 && cat >"$out/backupctl.env" <<'ENV'
# Variables for env("…") references in docker/backup.config.ts, one NAME=value per line, e.g. a notifier's URL:
# HC_PING_URL=https://hc-ping.com/…
ENV
  )
  echo "created   $out/backupctl.env"
fi

# Docker creates a missing bind source as an empty folder: one left by an earlier `compose up` is replaced.
[ -d "$out/sftp_known_hosts" ] && rmdir "$out/sftp_known_hosts"

# The compose service "sftp" on port 22 presents that host key; backupctl trusts only it (docker/backup.config.ts).
printf 'sftp %s\n' "$(cut -d ' ' -f 1,2 "$out/sftp_host_ed25519_key.pub")" >"$out/sftp_known_hosts"
chmod 0644 "$out/sftp_known_hosts"
echo "wrote     $out/sftp_known_hosts"
