#!/usr/bin/env bash
# pki.sh: a vendor's certificate authority for Edgelink's client <-> basestation mutual TLS,
# driven entirely by the `openssl` CLI (OpenSSL 3.0). See tools/pki/README.md.
#
#   pki.sh init-ca DIR [--name NAME] [--server-names SANS]
#   pki.sh issue-server DIR [--server-names SANS] [--days N]
#   pki.sh issue-client DIR NAME [--days N | --not-before T --not-after T]
#   pki.sh sign-csr DIR CSR_FILE NAME [--days N | --not-before T --not-after T]
#   pki.sh revoke DIR CERT_FILE
#   pki.sh crl DIR
#   pki.sh fingerprint CERT_FILE
#
# Two CAs live in DIR: the client CA signs client certificates (the basestation trusts it and
# checks its CRL); a separate server CA signs the basestation's certificate (clients trust it).
# Keeping them apart means no client certificate can ever pass as a basestation, and either CA
# can be rotated alone. T is a UTC time YYYYMMDDHHMMSSZ (or YYMMDDHHMMSSZ).
set -euo pipefail

readonly PROG=pki.sh
readonly CA_KEY_BITS=3072
readonly LEAF_KEY_BITS=2048
readonly CA_DAYS=3650
readonly SERVER_DAYS=825
readonly CLIENT_DAYS=365
readonly CRL_DAYS=30

die() {
  echo "$PROG: $*" >&2
  exit 1
}

usage_error() {
  echo "$PROG: $1" >&2
  echo "usage: $PROG {init-ca|issue-server|issue-client|sign-csr|revoke|crl|fingerprint} ... (see $PROG help)" >&2
  exit 2
}

usage() {
  sed -n '5,16p' "$0" | sed 's/^# \{0,1\}//'
}

command -v openssl >/dev/null 2>&1 || die "the openssl command is not installed"

# run_openssl WHAT ARGS...: runs openssl quietly; on failure dies with WHAT and openssl's last
# meaningful line (openssl never prints key material in its diagnostics).
run_openssl() {
  local what=$1
  shift
  local log
  log=$(mktemp)
  if ! openssl "$@" >"$log" 2>&1; then
    local why
    why=$(grep -v '^\s*$' "$log" | grep -iv '^using configuration' | tail -n 1 || true)
    rm -f "$log"
    die "$what failed: ${why:-openssl exited with an error}"
  fi
  rm -f "$log"
}

abs_dir() {
  local dir=$1
  [[ -d $dir ]] || die "$dir: no such directory"
  (cd "$dir" && pwd)
}

check_name() {
  [[ $1 =~ ^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$ ]] ||
    die "invalid name '$1': use 1-64 letters, digits, '.', '_' or '-', starting with a letter or digit"
}

check_days() {
  [[ $1 =~ ^[1-9][0-9]{0,4}$ ]] || die "invalid --days '$1': expected a positive whole number"
}

check_time() {
  [[ $1 =~ ^([0-9]{2})?[0-9]{12}Z$ ]] || die "invalid time '$1': expected YYYYMMDDHHMMSSZ (UTC)"
}

check_sans() {
  [[ -n $1 && $1 != *$'\n'* ]] || die "invalid --server-names: expected e.g. \"DNS:localhost,IP:127.0.0.1\""
  local entry
  IFS=',' read -r -a entries <<<"$1"
  for entry in "${entries[@]}"; do
    [[ $entry =~ ^(DNS:[A-Za-z0-9*][A-Za-z0-9.*-]*|IP:[0-9A-Fa-f:.]+)$ ]] ||
      die "invalid --server-names entry '$entry': expected DNS:name or IP:address"
  done
}

# fingerprint_of CERT: SHA-256 of the DER certificate, lower-case hex without colons.
fingerprint_of() {
  local cert=$1 out
  [[ -f $cert ]] || die "$cert: no such file"
  out=$(openssl x509 -in "$cert" -noout -fingerprint -sha256 2>/dev/null) ||
    die "$cert: not a PEM certificate"
  out=${out#*=}
  out=${out//:/}
  echo "${out,,}"
}

# The CA state under DIR (all paths below DIR; the config reads DIR from the environment so the
# directory can be moved).
layout() {
  DIR=$(abs_dir "$1")
  CNF=$DIR/openssl.cnf
  export EDGELINK_PKI_DIR=$DIR
}

require_ca() {
  [[ -f $CNF && -f $DIR/client-ca.pem && -f $DIR/private/client-ca.key && -f $DIR/server-ca.pem &&
    -f $DIR/private/server-ca.key ]] || die "$DIR: no CA here (run: $PROG init-ca $DIR)"
}

write_config() {
  cat >"$CNF.tmp" <<'EOF'
# Written by tools/pki/pki.sh. Paths come from EDGELINK_PKI_DIR, which pki.sh sets.
HOME = .
dir = $ENV::EDGELINK_PKI_DIR

[ req ]
distinguished_name = req_dn
prompt = no
utf8 = yes
string_mask = utf8only

[ req_dn ]
CN = unused

[ ca ]
default_ca = client_ca

[ client_ca ]
database = $dir/db/client/index.txt
new_certs_dir = $dir/db/client/newcerts
serial = $dir/db/client/serial
crlnumber = $dir/db/client/crlnumber
certificate = $dir/client-ca.pem
private_key = $dir/private/client-ca.key
default_md = sha256
default_days = 365
default_crl_days = 30
policy = policy_cn
unique_subject = no
copy_extensions = none
email_in_dn = no
name_opt = ca_default
cert_opt = ca_default
x509_extensions = client_cert
crl_extensions = crl_ext

[ server_ca ]
database = $dir/db/server/index.txt
new_certs_dir = $dir/db/server/newcerts
serial = $dir/db/server/serial
crlnumber = $dir/db/server/crlnumber
certificate = $dir/server-ca.pem
private_key = $dir/private/server-ca.key
default_md = sha256
default_days = 825
policy = policy_cn
unique_subject = no
copy_extensions = none
email_in_dn = no
name_opt = ca_default
cert_opt = ca_default

[ policy_cn ]
commonName = supplied

[ v3_ca ]
basicConstraints = critical, CA:true, pathlen:0
keyUsage = critical, keyCertSign, cRLSign
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid:always

[ client_cert ]
basicConstraints = critical, CA:false
keyUsage = critical, digitalSignature, keyEncipherment
extendedKeyUsage = clientAuth
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid, issuer

[ crl_ext ]
authorityKeyIdentifier = keyid:always
EOF
  mv "$CNF.tmp" "$CNF"
}

new_key() {  # new_key FILE BITS: an unencrypted RSA key, mode 0600 from birth.
  local file=$1 bits=$2
  (umask 077 && run_openssl "generating an RSA-$bits key" genpkey -algorithm RSA \
    -pkeyopt "rsa_keygen_bits:$bits" -out "$file.tmp")
  chmod 0600 "$file.tmp"
  mv "$file.tmp" "$file"
}

new_ca() {  # new_ca KIND COMMON_NAME
  local kind=$1 cn=$2
  mkdir -p "$DIR/db/$kind/newcerts"
  : >"$DIR/db/$kind/index.txt"
  [[ -f $DIR/db/$kind/crlnumber ]] || echo 1000 >"$DIR/db/$kind/crlnumber"
  new_key "$DIR/private/$kind-ca.key" "$CA_KEY_BITS"
  run_openssl "creating the $kind CA certificate" req -config "$CNF" -new -x509 -sha256 \
    -key "$DIR/private/$kind-ca.key" -subj "/CN=$cn" -days "$CA_DAYS" -extensions v3_ca \
    -out "$DIR/$kind-ca.pem.tmp"
  mv "$DIR/$kind-ca.pem.tmp" "$DIR/$kind-ca.pem"
}

# sign CA_SECTION EXTENSIONS(section|@file) CSR OUT CN VALIDITY...
sign() {
  local section=$1 ext=$2 csr=$3 out=$4 cn=$5
  shift 5
  local ext_args=(-extensions "$ext")
  [[ $ext == @* ]] && ext_args=(-extfile "${ext#@}" -extensions server_cert)
  run_openssl "signing the certificate for $cn" ca -config "$CNF" -name "$section" -batch -notext \
    -rand_serial -md sha256 -subj "/CN=$cn" "${ext_args[@]}" "$@" -in "$csr" -out "$out.tmp"
  mv "$out.tmp" "$out"
}

gen_crl() {
  run_openssl "generating the CRL" ca -config "$CNF" -name client_ca -gencrl -crldays "$CRL_DAYS" \
    -out "$DIR/crl.pem.tmp"
  mv "$DIR/crl.pem.tmp" "$DIR/crl.pem"
}

issue_server() {  # issue_server SANS DAYS
  local sans=$1 days=$2 extfile cn
  cn=${sans%%,*}
  cn=${cn#*:}
  extfile=$(mktemp)
  cat >"$extfile" <<EOF
[ server_cert ]
basicConstraints = critical, CA:false
keyUsage = critical, digitalSignature, keyEncipherment
extendedKeyUsage = serverAuth
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid, issuer
subjectAltName = $sans
EOF
  new_key "$DIR/server.key" "$LEAF_KEY_BITS"
  run_openssl "creating the server CSR" req -config "$CNF" -new -key "$DIR/server.key" \
    -subj "/CN=$cn" -out "$DIR/server.csr"
  sign server_ca "@$extfile" "$DIR/server.csr" "$DIR/server.pem" "$cn" -days "$days"
  rm -f "$extfile" "$DIR/server.csr"
  echo "$PROG: server certificate $DIR/server.pem for $sans" >&2
}

# Parses --days / --not-before / --not-after into VALIDITY (openssl ca arguments).
parse_validity() {
  local default_days=$1
  shift
  local days="" not_before="" not_after=""
  while (($#)); do
    case $1 in
      --days) (($# >= 2)) || usage_error "--days needs a value"; days=$2; shift 2 ;;
      --not-before) (($# >= 2)) || usage_error "--not-before needs a value"; not_before=$2; shift 2 ;;
      --not-after) (($# >= 2)) || usage_error "--not-after needs a value"; not_after=$2; shift 2 ;;
      *) usage_error "unknown option '$1'" ;;
    esac
  done
  VALIDITY=()
  EXPLICIT_VALIDITY=0
  if [[ -n $not_before || -n $not_after ]]; then
    [[ -z $days ]] || usage_error "--days cannot be combined with --not-before/--not-after"
    [[ -n $not_after ]] || usage_error "--not-before needs --not-after"
    check_time "$not_after"
    VALIDITY+=(-enddate "$not_after")
    if [[ -n $not_before ]]; then
      check_time "$not_before"
      VALIDITY+=(-startdate "$not_before")
    fi
    EXPLICIT_VALIDITY=1
  else
    [[ -z $days ]] || EXPLICIT_VALIDITY=1
    days=${days:-$default_days}
    check_days "$days"
    VALIDITY+=(-days "$days")
  fi
}

serial_of() {
  local s
  s=$(openssl x509 -in "$1" -noout -serial 2>/dev/null) || die "$1: not a PEM certificate"
  echo "${s#serial=}"
}

# status_of CERT: the client CA database's view of CERT (Valid, Revoked, Expired, ...).
status_of() {
  local serial line
  serial=$(serial_of "$1")
  line=$(openssl ca -config "$CNF" -name client_ca -status "$serial" 2>&1 || true)
  line=${line##*=}
  line=${line%% (*}
  echo "$line"
}

# existing_client NAME PUBKEY_SOURCE: if NAME already has a certificate, prints its fingerprint
# and returns 0 when reissuing would give the same identity (same key, still valid, no explicit
# dates asked for); dies otherwise. Returns 1 when NAME is free.
existing_client() {
  local name=$1 pubkey=$2 cert=$DIR/clients/$1.pem status
  [[ -e $cert ]] || return 1
  status=$(status_of "$cert")
  if [[ $status == Valid && $EXPLICIT_VALIDITY == 0 ]] &&
    { [[ -z $pubkey ]] || [[ $(openssl x509 -in "$cert" -noout -pubkey) == "$pubkey" ]]; }; then
    echo "$PROG: $cert already issued; not reissued" >&2
    fingerprint_of "$cert"
    return 0
  fi
  die "client '$name' already has a certificate ($cert, status ${status:-unknown}); choose another name or remove it"
}

cmd_init_ca() {
  (($# >= 1)) || usage_error "init-ca needs DIR"
  local dir=$1 name=Edgelink sans="DNS:localhost,IP:127.0.0.1"
  shift
  while (($#)); do
    case $1 in
      --name) (($# >= 2)) || usage_error "--name needs a value"; name=$2; shift 2 ;;
      --server-names) (($# >= 2)) || usage_error "--server-names needs a value"; sans=$2; shift 2 ;;
      *) usage_error "unknown option '$1'" ;;
    esac
  done
  [[ $name =~ ^[A-Za-z0-9][A-Za-z0-9\ ._-]{0,47}$ ]] ||
    die "invalid --name '$name': use letters, digits, spaces, '.', '_' or '-'"
  check_sans "$sans"
  mkdir -p "$dir"
  layout "$dir"
  (umask 077 && mkdir -p "$DIR/private")
  chmod 0700 "$DIR/private"
  mkdir -p "$DIR/clients"
  [[ -f $CNF ]] || write_config

  local kind
  for kind in client server; do
    if [[ -f $DIR/$kind-ca.pem && -f $DIR/private/$kind-ca.key ]]; then
      echo "$PROG: $kind CA exists in $DIR; kept" >&2
    elif [[ -e $DIR/$kind-ca.pem || -e $DIR/private/$kind-ca.key ]]; then
      die "$DIR: half a $kind CA (certificate or key missing); refusing to overwrite"
    else
      local label=Client
      [[ $kind == server ]] && label=Server
      new_ca "$kind" "$name $label CA"
      echo "$PROG: created $kind CA $DIR/$kind-ca.pem" >&2
    fi
  done
  if [[ -f $DIR/server.pem && -f $DIR/server.key ]]; then
    echo "$PROG: server certificate exists; kept (reissue with: $PROG issue-server $DIR)" >&2
  else
    issue_server "$sans" "$SERVER_DAYS"
  fi
  [[ -f $DIR/crl.pem ]] || gen_crl
}

cmd_issue_server() {
  (($# >= 1)) || usage_error "issue-server needs DIR"
  local dir=$1 sans="DNS:localhost,IP:127.0.0.1" days=$SERVER_DAYS
  shift
  while (($#)); do
    case $1 in
      --server-names) (($# >= 2)) || usage_error "--server-names needs a value"; sans=$2; shift 2 ;;
      --days) (($# >= 2)) || usage_error "--days needs a value"; days=$2; shift 2 ;;
      *) usage_error "unknown option '$1'" ;;
    esac
  done
  check_sans "$sans"
  check_days "$days"
  layout "$dir"
  require_ca
  issue_server "$sans" "$days"
}

cmd_issue_client() {
  (($# >= 2)) || usage_error "issue-client needs DIR and NAME"
  local dir=$1 name=$2
  shift 2
  check_name "$name"
  parse_validity "$CLIENT_DAYS" "$@"
  layout "$dir"
  require_ca
  existing_client "$name" "" && return 0
  local base=$DIR/clients/$name
  new_key "$base.key" "$LEAF_KEY_BITS"
  run_openssl "creating the CSR for $name" req -config "$CNF" -new -key "$base.key" \
    -subj "/CN=$name" -out "$base.csr"
  sign client_ca client_cert "$base.csr" "$base.pem" "$name" "${VALIDITY[@]}"
  echo "$PROG: issued $base.pem (key $base.key)" >&2
  fingerprint_of "$base.pem"
}

cmd_sign_csr() {
  (($# >= 3)) || usage_error "sign-csr needs DIR, CSR_FILE and NAME"
  local dir=$1 csr=$2 name=$3
  shift 3
  check_name "$name"
  parse_validity "$CLIENT_DAYS" "$@"
  [[ -f $csr ]] || die "$csr: no such file"
  layout "$dir"
  require_ca
  # The CSR must be self-consistent (signed by its own key) and carry an RSA key of 2048+ bits.
  run_openssl "checking $csr" req -in "$csr" -noout -verify
  local text bits
  text=$(openssl req -in "$csr" -noout -text 2>/dev/null) || die "$csr: not a PEM CSR"
  grep -q 'Public Key Algorithm: rsaEncryption' <<<"$text" || die "$csr: the key is not RSA"
  bits=$(sed -n 's/.*Public-Key: (\([0-9]*\) bit).*/\1/p' <<<"$text" | head -n 1)
  ((${bits:-0} >= 2048)) || die "$csr: RSA key of ${bits:-unknown} bits; at least 2048 required"
  local pubkey
  pubkey=$(openssl req -in "$csr" -noout -pubkey)
  existing_client "$name" "$pubkey" && return 0
  local base=$DIR/clients/$name
  cp "$csr" "$base.csr"
  sign client_ca client_cert "$base.csr" "$base.pem" "$name" "${VALIDITY[@]}"
  echo "$PROG: issued $base.pem" >&2
  fingerprint_of "$base.pem"
}

cmd_revoke() {
  (($# == 2)) || usage_error "revoke needs DIR and CERT_FILE"
  local dir=$1 cert=$2
  [[ -f $cert ]] || die "$cert: no such file"
  layout "$dir"
  require_ca
  # Only certificates this CA signed (openssl ca -revoke would record any certificate).
  openssl verify -no_check_time -CAfile "$DIR/client-ca.pem" "$cert" >/dev/null 2>&1 ||
    die "$cert: not signed by the client CA in $DIR"
  local status
  status=$(status_of "$cert")
  if [[ $status == Revoked ]]; then
    echo "$PROG: $cert is already revoked" >&2
  else
    run_openssl "revoking $cert" ca -config "$CNF" -name client_ca -revoke "$cert" \
      -crl_reason unspecified
    echo "$PROG: revoked $cert (serial $(serial_of "$cert"))" >&2
  fi
  gen_crl
  echo "$PROG: wrote $DIR/crl.pem" >&2
}

cmd_crl() {
  (($# == 1)) || usage_error "crl needs DIR"
  layout "$1"
  require_ca
  gen_crl
  echo "$PROG: wrote $DIR/crl.pem" >&2
}

cmd_fingerprint() {
  (($# == 1)) || usage_error "fingerprint needs CERT_FILE"
  fingerprint_of "$1"
}

main() {
  umask 022
  # `bazel run //tools/pki -- ...` starts in the runfiles tree; paths are the caller's.
  if [[ -n ${BUILD_WORKING_DIRECTORY:-} ]]; then cd "$BUILD_WORKING_DIRECTORY"; fi
  (($# >= 1)) || usage_error "missing command"
  local cmd=$1
  shift
  case $cmd in
    init-ca) cmd_init_ca "$@" ;;
    issue-server) cmd_issue_server "$@" ;;
    issue-client) cmd_issue_client "$@" ;;
    sign-csr) cmd_sign_csr "$@" ;;
    revoke) cmd_revoke "$@" ;;
    crl) cmd_crl "$@" ;;
    fingerprint) cmd_fingerprint "$@" ;;
    help | -h | --help) usage ;;
    *) usage_error "unknown command '$cmd'" ;;
  esac
}

main "$@"
