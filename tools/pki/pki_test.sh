#!/usr/bin/env bash
# Tests tools/pki/pki.sh against the openssl CLI: what it creates, that it is idempotent, that
# fingerprints match openssl's, that revocation reaches the CRL, and that misuse fails clearly.
#   pki_test.sh PATH_TO_PKI_SH
set -uo pipefail

PKI=${1:?usage: pki_test.sh PATH_TO_PKI_SH}
WORK=$(mktemp -d "${TEST_TMPDIR:-/tmp}/pki_test.XXXXXX")
ALL_OUTPUT=$WORK/all-output.log
failures=0

fail() {
  echo "FAIL: $*" >&2
  failures=$((failures + 1))
}

# pki ARGS...: runs pki.sh, keeping its stdout in $OUT, stderr in $ERR and exit code in $RC.
pki() {
  OUT=$(bash "$PKI" "$@" 2>"$WORK/stderr")
  RC=$?
  ERR=$(cat "$WORK/stderr")
  printf '%s\n%s\n' "$OUT" "$ERR" >>"$ALL_OUTPUT"
}

expect_ok() {
  pki "$@"
  ((RC == 0)) || fail "pki.sh $* exited $RC: $ERR"
}

# expect_error CODE PATTERN ARGS...: exits CODE with one "pki.sh: ..." line matching PATTERN.
expect_error() {
  local code=$1 pattern=$2
  shift 2
  pki "$@"
  ((RC == code)) || fail "pki.sh $* exited $RC, want $code"
  grep -q -- "$pattern" <<<"$ERR" || fail "pki.sh $*: stderr lacks '$pattern': $ERR"
  [[ $(head -n 1 <<<"$ERR") == "pki.sh: "* ]] || fail "pki.sh $*: error is not a 'pki.sh: ' line: $ERR"
}

openssl_fingerprint() {
  local out
  out=$(openssl x509 -in "$1" -noout -fingerprint -sha256)
  out=${out#*=}
  out=${out//:/}
  echo "${out,,}"
}

mode_of() { stat -c %a "$1"; }

DIR=$WORK/ca

# --- argument errors -------------------------------------------------------------------------
expect_error 2 "missing command"
expect_error 2 "unknown command 'frobnicate'" frobnicate
expect_error 2 "init-ca needs DIR" init-ca
expect_error 2 "issue-client needs DIR and NAME" issue-client "$DIR"
expect_error 2 "sign-csr needs DIR, CSR_FILE and NAME" sign-csr "$DIR" x.csr
expect_error 2 "revoke needs DIR and CERT_FILE" revoke "$DIR"
expect_error 2 "fingerprint needs CERT_FILE" fingerprint
expect_error 2 "unknown option '--bogus'" init-ca "$DIR" --bogus
expect_error 1 "no CA here" issue-client "$WORK" alice
expect_error 1 "invalid --server-names entry" init-ca "$WORK/bad" --server-names "localhost"

# --- init-ca ---------------------------------------------------------------------------------
expect_ok init-ca "$DIR" --name "Test Vendor" --server-names "DNS:localhost,DNS:bs.example.com,IP:127.0.0.1"
for f in client-ca.pem server-ca.pem server.pem server.key crl.pem private/client-ca.key \
  private/server-ca.key; do
  [[ -s $DIR/$f ]] || fail "init-ca did not create $f"
done
for key in server.key private/client-ca.key private/server-ca.key; do
  [[ $(mode_of "$DIR/$key") == 600 ]] || fail "$key has mode $(mode_of "$DIR/$key"), want 600"
done
[[ $(mode_of "$DIR/private") == 700 ]] || fail "private/ has mode $(mode_of "$DIR/private")"

ca_text=$(openssl x509 -in "$DIR/client-ca.pem" -noout -text)
grep -q "Subject: CN = Test Vendor Client CA" <<<"$ca_text" || fail "client CA subject: $ca_text"
grep -q "Public-Key: (3072 bit)" <<<"$ca_text" || fail "client CA is not RSA 3072"
grep -q "CA:TRUE" <<<"$ca_text" || fail "client CA lacks CA:TRUE"
grep -q "Certificate Sign, CRL Sign" <<<"$ca_text" || fail "client CA keyUsage"
openssl x509 -in "$DIR/client-ca.pem" -noout -checkend $((9 * 365 * 86400)) >/dev/null ||
  fail "client CA expires within 9 years"
! openssl x509 -in "$DIR/client-ca.pem" -noout -checkend $((11 * 365 * 86400)) >/dev/null ||
  fail "client CA outlives 11 years"
cmp -s "$DIR/client-ca.pem" "$DIR/server-ca.pem" && fail "client and server CA are the same"

server_text=$(openssl x509 -in "$DIR/server.pem" -noout -text)
grep -q "DNS:localhost, DNS:bs.example.com, IP Address:127.0.0.1" <<<"$server_text" ||
  fail "server SAN: $(grep -A1 'Alternative Name' <<<"$server_text")"
grep -q "TLS Web Server Authentication" <<<"$server_text" || fail "server EKU lacks serverAuth"
grep -q "Public-Key: (2048 bit)" <<<"$server_text" || fail "server key is not RSA 2048"
openssl verify -purpose sslserver -CAfile "$DIR/server-ca.pem" "$DIR/server.pem" >/dev/null 2>&1 ||
  fail "server certificate does not verify against the server CA"
openssl verify -CAfile "$DIR/client-ca.pem" "$DIR/server.pem" >/dev/null 2>&1 &&
  fail "server certificate verifies against the client CA"

ca_before=$(sha256sum <"$DIR/client-ca.pem")
server_before=$(sha256sum <"$DIR/server.pem")
expect_ok init-ca "$DIR"
[[ $(sha256sum <"$DIR/client-ca.pem") == "$ca_before" ]] || fail "a second init-ca replaced the CA"
[[ $(sha256sum <"$DIR/server.pem") == "$server_before" ]] ||
  fail "a second init-ca replaced the server certificate"

expect_ok issue-server "$DIR" --server-names "DNS:other.example"
grep -q "DNS:other.example" <<<"$(openssl x509 -in "$DIR/server.pem" -noout -ext subjectAltName)" ||
  fail "issue-server did not reissue with the new name"

# --- issue-client / fingerprint ----------------------------------------------------------------
expect_ok issue-client "$DIR" alice
alice_fp=$OUT
[[ $alice_fp =~ ^[0-9a-f]{64}$ ]] || fail "issue-client printed '$alice_fp', want 64 hex digits"
[[ $alice_fp == "$(openssl_fingerprint "$DIR/clients/alice.pem")" ]] ||
  fail "issue-client fingerprint differs from openssl's"
expect_ok fingerprint "$DIR/clients/alice.pem"
[[ $OUT == "$alice_fp" ]] || fail "fingerprint printed '$OUT', want $alice_fp"
[[ $(mode_of "$DIR/clients/alice.key") == 600 ]] || fail "client key mode"
alice_text=$(openssl x509 -in "$DIR/clients/alice.pem" -noout -text)
grep -q "Subject: CN = alice" <<<"$alice_text" || fail "client subject"
grep -q "TLS Web Client Authentication" <<<"$alice_text" || fail "client EKU lacks clientAuth"
grep -q "Public-Key: (2048 bit)" <<<"$alice_text" || fail "client key is not RSA 2048"
openssl verify -purpose sslclient -CAfile "$DIR/client-ca.pem" "$DIR/clients/alice.pem" \
  >/dev/null 2>&1 || fail "client certificate does not verify against the client CA"
openssl verify -purpose sslserver -CAfile "$DIR/client-ca.pem" "$DIR/clients/alice.pem" \
  >/dev/null 2>&1 && fail "client certificate is usable as a server certificate"

expect_ok issue-client "$DIR" alice
[[ $OUT == "$alice_fp" ]] || fail "issue-client again gave '$OUT', want the same $alice_fp"
expect_error 1 "already has a certificate" issue-client "$DIR" alice --days 2
expect_error 1 "invalid name" issue-client "$DIR" "../escape"
expect_error 1 "invalid --days" issue-client "$DIR" carol --days -3

expect_ok issue-client "$DIR" shortlived --days 2
openssl x509 -in "$DIR/clients/shortlived.pem" -noout -checkend $((86400)) >/dev/null ||
  fail "--days 2 certificate expires within a day"
! openssl x509 -in "$DIR/clients/shortlived.pem" -noout -checkend $((3 * 86400)) >/dev/null ||
  fail "--days 2 certificate outlives 3 days"

expect_ok issue-client "$DIR" expired --not-before 20000101000000Z --not-after 20010101000000Z
grep -q "certificate has expired" <<<"$(openssl verify -CAfile "$DIR/client-ca.pem" \
  "$DIR/clients/expired.pem" 2>&1)" || fail "expired certificate is not expired"
expect_ok issue-client "$DIR" future --not-before 20990101000000Z --not-after 20991231000000Z
grep -q "certificate is not yet valid" <<<"$(openssl verify -CAfile "$DIR/client-ca.pem" \
  "$DIR/clients/future.pem" 2>&1)" || fail "future certificate is valid already"
expect_error 2 "cannot be combined" issue-client "$DIR" x --days 3 --not-after 20991231000000Z
expect_error 1 "invalid time" issue-client "$DIR" x --not-before 2001 --not-after 20991231000000Z

# --- sign-csr ----------------------------------------------------------------------------------
openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out "$WORK/bob.key" 2>/dev/null
openssl req -new -key "$WORK/bob.key" -subj "/CN=admin/O=Evil" -out "$WORK/bob.csr"
expect_ok sign-csr "$DIR" "$WORK/bob.csr" bob
bob_fp=$OUT
[[ $bob_fp == "$(openssl_fingerprint "$DIR/clients/bob.pem")" ]] || fail "sign-csr fingerprint"
[[ $(openssl x509 -in "$DIR/clients/bob.pem" -noout -subject) == "subject=CN = bob" ]] ||
  fail "sign-csr kept the CSR's subject: $(openssl x509 -in "$DIR/clients/bob.pem" -noout -subject)"
[[ $(openssl x509 -in "$DIR/clients/bob.pem" -noout -pubkey) == \
  "$(openssl pkey -in "$WORK/bob.key" -pubout)" ]] || fail "sign-csr certified another key"
expect_ok sign-csr "$DIR" "$WORK/bob.csr" bob
[[ $OUT == "$bob_fp" ]] || fail "sign-csr of the same CSR again is not idempotent"
openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out "$WORK/bob2.key" 2>/dev/null
openssl req -new -key "$WORK/bob2.key" -subj "/CN=bob" -out "$WORK/bob2.csr"
expect_error 1 "already has a certificate" sign-csr "$DIR" "$WORK/bob2.csr" bob
openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:1024 -out "$WORK/weak.key" 2>/dev/null
openssl req -new -key "$WORK/weak.key" -subj "/CN=weak" -out "$WORK/weak.csr"
expect_error 1 "at least 2048 required" sign-csr "$DIR" "$WORK/weak.csr" weak
openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$WORK/ec.key" 2>/dev/null
openssl req -new -key "$WORK/ec.key" -subj "/CN=ec" -out "$WORK/ec.csr"
expect_error 1 "not RSA" sign-csr "$DIR" "$WORK/ec.csr" ec
expect_error 1 "no such file" sign-csr "$DIR" "$WORK/missing.csr" carol

# --- revoke / crl ------------------------------------------------------------------------------
openssl crl -in "$DIR/crl.pem" -noout -text | grep -q "No Revoked Certificates" ||
  fail "the first CRL is not empty"
serial=$(openssl x509 -in "$DIR/clients/bob.pem" -noout -serial)
serial=${serial#serial=}
crl_before=$(sha256sum <"$DIR/crl.pem")
expect_ok revoke "$DIR" "$DIR/clients/bob.pem"
[[ $(sha256sum <"$DIR/crl.pem") != "$crl_before" ]] || fail "revoke did not rewrite crl.pem"
openssl crl -in "$DIR/crl.pem" -noout -text | grep -q "Serial Number: $serial" ||
  fail "crl.pem does not list bob's serial $serial"
openssl crl -in "$DIR/crl.pem" -CAfile "$DIR/client-ca.pem" -noout 2>&1 | grep -q "verify OK" ||
  fail "crl.pem is not signed by the client CA"
grep -q "certificate revoked" <<<"$(openssl verify -crl_check -CRLfile "$DIR/crl.pem" \
  -CAfile "$DIR/client-ca.pem" "$DIR/clients/bob.pem" 2>&1)" || fail "openssl does not see bob revoked"
openssl verify -crl_check -CRLfile "$DIR/crl.pem" -CAfile "$DIR/client-ca.pem" \
  "$DIR/clients/alice.pem" >/dev/null 2>&1 || fail "revoking bob revoked alice"
expect_ok revoke "$DIR" "$DIR/clients/bob.pem"
grep -q "already revoked" <<<"$ERR" || fail "revoking twice does not say so: $ERR"
openssl crl -in "$DIR/crl.pem" -noout -text | grep -q "Serial Number: $serial" ||
  fail "a second revoke dropped bob from the CRL"
expect_error 1 "already has a certificate (.*status Revoked)" issue-client "$DIR" bob
expect_error 1 "not signed by the client CA" revoke "$DIR" "$DIR/server.pem"
expect_error 1 "no such file" revoke "$DIR" "$WORK/nothing.pem"
expect_ok crl "$DIR"
openssl crl -in "$DIR/crl.pem" -noout -text | grep -q "Serial Number: $serial" ||
  fail "crl regenerated without bob"

expect_error 1 "no such file" fingerprint "$WORK/nothing.pem"
expect_error 1 "not a PEM certificate" fingerprint "$WORK/bob.csr"

# --- no secrets in anything pki.sh printed -----------------------------------------------------
grep -q "PRIVATE KEY" "$ALL_OUTPUT" && fail "pki.sh printed a private key"
key_line=$(sed -n 2p "$DIR/clients/alice.key")
grep -qF -- "$key_line" "$ALL_OUTPUT" && fail "pki.sh printed private key material"

if ((failures > 0)); then
  echo "$failures failure(s)" >&2
  exit 1
fi
echo "PASS"
