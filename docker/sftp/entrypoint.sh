#!/bin/sh
# Starts the demo's SFTP server (docker/sftp/Dockerfile): installs the host key and the client's public key from the
# Docker secrets sftp_host_key and ssh_key_pub (made by docker/make-secrets.sh), then runs sshd in the foreground.
# Runs as root (sshd needs it); the only login is the user "backup", by key, into internal-sftp.
set -eu

host_key=${SFTP_HOST_KEY_FILE:-/run/secrets/sftp_host_key}
authorized_key=${SFTP_AUTHORIZED_KEY_FILE:-/run/secrets/ssh_key_pub}
config=/etc/ssh/sshd_config_sftp

for secret in "$host_key" "$authorized_key"; do
  if [ ! -s "$secret" ]; then
    echo "sftp: $secret is missing or empty: run docker/make-secrets.sh, then docker compose up" >&2
    exit 1
  fi
done

# Compose bind-mounts secrets with the host file's mode (0644); sshd wants its host key readable by root only.
install -m 0600 "$host_key" /etc/ssh/ssh_host_ed25519_key
# Outside the home and owned by root: the account cannot change who may log in.
install -d -m 0755 /etc/ssh/authorized_keys
install -m 0644 "$authorized_key" /etc/ssh/authorized_keys/backup
# A fresh volume gets the image's empty home; an old one keeps the repository. sshd insists on a home that only its
# owner can write.
chown backup:backup /home/backup
chmod 0750 /home/backup
mkdir -p /run/sshd

cat > "$config" <<'CONFIG'
Port 22
HostKey /etc/ssh/ssh_host_ed25519_key
PidFile /run/sshd.pid
AuthorizedKeysFile /etc/ssh/authorized_keys/%u
AllowUsers backup
PermitRootLogin no
PubkeyAuthentication yes
PasswordAuthentication no
KbdInteractiveAuthentication no
UsePAM no
AllowTcpForwarding no
AllowAgentForwarding no
X11Forwarding no
PermitTTY no
Subsystem sftp internal-sftp
ForceCommand internal-sftp
CONFIG

/usr/sbin/sshd -t -f "$config"
echo "sftp: serving sftp:backup@$(hostname):/home/backup for the key $(cut -d ' ' -f 1,3 "$authorized_key")"
exec /usr/sbin/sshd -D -e -f "$config"
