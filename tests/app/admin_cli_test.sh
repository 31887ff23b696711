#!/usr/bin/env bash
# Process-level tests of the admin commands (keys create/list/revoke,
# customers credit) against a temporary SQLite store named by a config file.
# Usage: admin_cli_test.sh /path/to/gatewayz
set -uo pipefail  # no -e: every check runs and is counted

bin="$1"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

passed=0
failed=0
check() {  # check NAME CONDITION-EXIT-CODE
  if [[ "$2" == 0 ]]; then passed=$((passed + 1)); echo "ok   - $1"
  else failed=$((failed + 1)); echo "FAIL - $1"; fi
}

cat > "$work/gw.yaml" <<YAML
server:
  listen: "127.0.0.1:0"
storage:
  url: "sqlite://$work/gatewayz.db"
providers:
  - name: p
    kind: openai
    base_url: "http://127.0.0.1:1/v1"
    api_key: "unused"
    models:
      - id: m
YAML
cfg="$work/gw.yaml"

# --- keys create: a new customer with exact credits, the key alone on the last line
"$bin" keys create --customer acme --credits 12.5 --config "$cfg" >"$work/create.out" 2>"$work/create.err"
check "keys create exits 0" $?
key="$(tail -n 1 "$work/create.out")"
[[ "$key" =~ ^gwz_[A-Za-z0-9_-]{20,}$ ]]; check "the last line is the key and nothing else" $?
[[ "$(wc -l <"$work/create.out")" -ge 2 ]]; check "info lines come before the key" $?
head -n -1 "$work/create.out" | grep -q 'acme'; check "info lines name the customer" $?
head -n -1 "$work/create.out" | grep -q '12.50'; check "info lines show the balance" $?
! head -n -1 "$work/create.out" | grep -qF -- "$key"; check "the key is printed once" $?
! grep -qF -- "$key" "$work/create.err"; check "the key is not on stderr" $?

# A second key for the same customer adds credit to the existing balance.
"$bin" keys create --customer acme --credits 0.000000001 --config "$cfg" >"$work/create2.out" 2>&1
check "a second key for an existing customer" $?
grep -q '12.500000001' "$work/create2.out"; check "credits added exactly, to the nano-dollar" $?
key2="$(tail -n 1 "$work/create2.out")"
[[ "$key2" != "$key" && "$key2" =~ ^gwz_ ]]; check "each key is new" $?

# --- keys list: ids, customer, prefix, never the key ----------------------------
"$bin" keys list --config "$cfg" >"$work/list.out" 2>&1
check "keys list exits 0" $?
head -n 1 "$work/list.out" | grep -q 'ID.*CUSTOMER.*PREFIX.*REVOKED.*CREATED'; check "keys list has a header" $?
[[ "$(grep -c 'acme' "$work/list.out")" == 2 ]]; check "keys list shows both keys" $?
grep -qF -- "${key:0:8}" "$work/list.out"; check "keys list shows the display prefix" $?
! grep -qF -- "$key" "$work/list.out"; check "keys list never shows a key" $?
! grep -qF -- "${key:12}" "$work/list.out"; check "keys list shows no secret part of a key" $?
grep -Eq '[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9:]{8}Z' "$work/list.out"; check "keys list shows creation times" $?

# --- customers credit ---------------------------------------------------------------
out="$("$bin" customers credit acme 7.25 --config "$cfg" 2>&1)"
check "customers credit exits 0" $?
grep -q '19.750000001' <<<"$out"; check "customers credit prints the new balance" $?
out="$("$bin" customers credit acme -0.750000001 --config "$cfg" 2>&1)"
check "a negative credit removes credit" $?
grep -q '19.00' <<<"$out"; check "the balance after removing credit is exact" $?
"$bin" customers credit acme 1.0000000001 --config "$cfg" >"$work/bad.out" 2>&1; rc=$?
[[ $rc == 2 ]]; check "more than 9 decimals is rejected" $?
grep -q '9 decimals' "$work/bad.out"; check "the rejection says why" $?
"$bin" customers credit acme 1e3 --config "$cfg" >/dev/null 2>&1; rc=$?
[[ $rc == 2 ]]; check "an exponent is rejected" $?
"$bin" keys create --customer acme --credits -1 --config "$cfg" >/dev/null 2>&1; rc=$?
[[ $rc != 0 ]]; check "negative credits are rejected for keys create" $?
"$bin" customers credit nobody 1 --config "$cfg" >/dev/null 2>&1; rc=$?
[[ $rc == 1 ]]; check "crediting an unknown customer fails" $?
# Money is integer nano-USD within +-1e9 USD: an amount or a balance outside is refused.
"$bin" customers credit acme -9223372036 --config "$cfg" >"$work/range.out" 2>&1; rc=$?
[[ $rc == 2 ]]; check "an amount outside the range is rejected" $?
grep -q 'USD: is outside the allowed range of -1000000000 to 1000000000 USD' "$work/range.out"
check "the rejection names the range" $?
"$bin" customers credit acme 1000000000 --config "$cfg" >"$work/range.out" 2>&1; rc=$?
[[ $rc == 2 ]]; check "a credit taking the balance out of the range is rejected" $?
grep -q 'would take the balance from 19.00 to 1000000019.00 USD' "$work/range.out"
check "the rejection names the balance it would leave" $?
"$bin" keys create --customer acme --credits 999999990 --config "$cfg" >"$work/range.out" 2>&1; rc=$?
[[ $rc == 2 ]]; check "keys create refuses credits taking the balance out of the range" $?
grep -q -- '--credits: the amount 999999990.00 USD would take' "$work/range.out"; check "keys create names --credits" $?
"$bin" keys create --customer whale --credits 1000000000.5 --config "$cfg" >"$work/range.out" 2>&1; rc=$?
[[ $rc == 2 ]]; check "keys create refuses an amount outside the range" $?
! "$bin" keys list --config "$cfg" | grep -q whale; check "no customer or key was created for it" $?
out="$("$bin" customers credit acme 0 --config "$cfg" 2>&1)"
grep -q '19.00' <<<"$out"; check "nothing was added by the rejected commands" $?

# --- keys revoke --------------------------------------------------------------------
key_id="$(awk 'NR > 1 && $2 == "acme" { print $1; exit }' "$work/list.out")"
"$bin" keys revoke "$key_id" --config "$cfg" >"$work/revoke.out" 2>&1
check "keys revoke exits 0" $?
"$bin" keys list --config "$cfg" >"$work/list2.out" 2>&1
awk -v id="$key_id" 'NR > 1 && $1 == id { found = ($4 == "yes") } END { exit !found }' "$work/list2.out"
check "the revoked key is listed as revoked" $?
[[ "$(grep -c ' no ' "$work/list2.out")" == 1 ]]; check "the other key stays active" $?
"$bin" keys revoke "$key_id" --config "$cfg" >/dev/null 2>&1; rc=$?
[[ $rc == 1 ]]; check "revoking twice fails" $?
"$bin" keys revoke 999999 --config "$cfg" >/dev/null 2>&1; rc=$?
[[ $rc == 1 ]]; check "revoking an unknown id fails" $?

# --- config errors --------------------------------------------------------------------
"$bin" keys list --config "$work/missing.yaml" >/dev/null 2>&1; rc=$?
[[ $rc == 2 ]]; check "an unreadable config exits 2" $?
"$bin" keys list >/dev/null 2>&1; rc=$?
[[ $rc != 0 ]]; check "--config is required" $?

echo "$passed passed, $failed failed"
[[ $failed == 0 ]]
