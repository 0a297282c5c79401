#!/bin/sh
# Makes a DEVELOPMENT silo CA for the hub with openssl: certs/out/ca.crt and certs/out/ca.key.
#
#   certs/make-dev-ca.sh [--env-file FILE] [--out DIR] [--force]
#
# The hub loads it through TESSERA_CA_CERT_FILE / TESSERA_CA_KEY_FILE (docker-compose.yml does) instead of making
# its own CA on first boot. It signs every silo's client certificate and the hub's own TLS certificate, so agents
# pin its fingerprint (printed at the end, and carried in every enrollment bundle).
#
# What the hub requires (apps/hub/src/pki/hub-pki.service.ts, libs/pki):
#   - an RSA key (the CA signs with node-forge, RSA only), here 3072 bits;
#   - the key as an ENCRYPTED PKCS#8 PEM (PBKDF2 + AES-256-CBC), decrypted with TESSERA_CA_KEY_PASSPHRASE
#     (at least 16 characters), taken from the environment or else from the env file (default: ./.env);
#   - a CA certificate: basicConstraints critical CA:TRUE (pathlen 0: it signs end-entity certificates only) and
#     keyUsage critical keyCertSign, cRLSign (RFC 5280 sections 4.2.1.9 and 4.2.1.3).
#
# The private key is never written unencrypted, and *.key / *.pem never enter git (certs/.gitignore) nor an image
# (.dockerignore). ca.key is made readable by others (0644) because the hub container runs as uid 10001 and reads it
# through a bind mount; it is useless without the passphrase. For production use your organisation's CA and keep
# the key file readable by the hub's user only (docs/operator-guide.md).
set -eu

here=$(cd "$(dirname "$0")" && pwd)
out="$here/out"
env_file="$here/../.env"
force=no
while [ "$#" -gt 0 ]; do
  case "$1" in
    --out) out=$2; shift 2 ;;
    --env-file) env_file=$2; shift 2 ;;
    --force) force=yes; shift ;;
    -h|--help) sed -n '2,20p' "$0"; exit 0 ;;
    *) echo "make-dev-ca: unknown argument $1" >&2; exit 2 ;;
  esac
done

if [ -z "${TESSERA_CA_KEY_PASSPHRASE:-}" ] && [ -f "$env_file" ]; then
  TESSERA_CA_KEY_PASSPHRASE=$(sed -n 's/^TESSERA_CA_KEY_PASSPHRASE=//p' "$env_file" | tail -n 1)
fi
if [ "${#TESSERA_CA_KEY_PASSPHRASE}" -lt 16 ]; then
  echo "make-dev-ca: set TESSERA_CA_KEY_PASSPHRASE (at least 16 characters) in the environment or in $env_file" >&2
  exit 2
fi
export TESSERA_CA_KEY_PASSPHRASE

if [ -e "$out/ca.key" ] && [ "$force" != yes ]; then
  echo "make-dev-ca: $out/ca.key exists; keep it (silos enrolled under it trust it) or pass --force" >&2
  exit 1
fi
mkdir -p "$out"

config=$(mktemp)
trap 'rm -f "$config"' EXIT
cat > "$config" <<'CNF'
[req]
distinguished_name = dn
prompt = no
x509_extensions = ca_ext
[dn]
CN = Tessera development silo CA
[ca_ext]
basicConstraints = critical, CA:TRUE, pathlen:0
keyUsage = critical, keyCertSign, cRLSign
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid:always
CNF

umask 077
# genpkey with a cipher writes PKCS#8 "ENCRYPTED PRIVATE KEY" (PBES2: PBKDF2-HMAC-SHA256 + AES-256-CBC).
openssl genpkey -quiet -algorithm RSA -pkeyopt rsa_keygen_bits:3072 -aes-256-cbc \
  -pass env:TESSERA_CA_KEY_PASSPHRASE -out "$out/ca.key.tmp"
openssl req -x509 -new -config "$config" -key "$out/ca.key.tmp" -passin env:TESSERA_CA_KEY_PASSPHRASE \
  -sha256 -days 3650 -out "$out/ca.crt.tmp"
mv "$out/ca.key.tmp" "$out/ca.key"
mv "$out/ca.crt.tmp" "$out/ca.crt"
chmod 0644 "$out/ca.key" "$out/ca.crt"

fingerprint=$(openssl x509 -in "$out/ca.crt" -noout -fingerprint -sha256 | sed 's/.*=//; s/://g' | tr 'A-F' 'a-f')
echo "CA certificate: $out/ca.crt"
echo "CA key (encrypted PKCS#8): $out/ca.key"
echo "SHA-256 fingerprint (agents pin it): $fingerprint"
