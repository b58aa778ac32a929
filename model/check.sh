#!/usr/bin/env bash
# Checks model/migration.pml with spin: every fault with no bug macro (expect no error), each
# BUGk with the fault that exposes it (expect an error), and the model's own findings N1-N3
# without their fix (expect an error). Prints a table; exits 1 if any row is not as expected.
#   model/check.sh            all rows, two at a time
#   JOBS=1 model/check.sh     one at a time
#   model/check.sh BUG4       only the rows whose name starts with BUG4
set -euo pipefail
cd "$(dirname "$0")"
command -v spin >/dev/null || { echo "spin is not installed (apt-get install spin gcc)" >&2; exit 2; }
JOBS=${JOBS:-2}
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT

# The fixes of the model's own findings N1-N4 (docs/PROTOCOL.md, "The model"), now in the code:
# the fault rows check the code as it is, and the N rows show that each fix is needed.
FIX="-DRBFIX=1 -DREAD_LEASE=1 -DDEADFIX=1 -DLEASEFIX=1"

# name | spin defines | expect (ok = no error, error = spin must report a violation)
ROWS=$(cat <<EOF
FAULT0 none|-DFAULT=0 $FIX|ok
FAULT1 crash|-DFAULT=1 $FIX|ok
FAULT2 partition|-DFAULT=2 $FIX|ok
FAULT3 pause|-DFAULT=3 $FIX|ok
FAULT4 skew|-DFAULT=4 $FIX|ok
FAULT5 unknown outcome|-DFAULT=5 $FIX|ok
FAULT6 fencer dies|-DFAULT=6 $FIX|ok
RESTART second attempt|-DFAULT=0 -DRESTART=1 $FIX|ok
FAULT0 DynamoDB (no store fence)|-DFAULT=0 -DNOFENCE=1 $FIX|ok
FAULT3 DynamoDB pause (the documented window)|-DFAULT=3 -DNOFENCE=1 $FIX|error
BUG1 (DynamoDB, no store fence)|-DFAULT=0 -DBUG1=1 -DNOFENCE=1 $FIX|error
BUG1 (fencing stores)|-DFAULT=0 -DBUG1=1 $FIX|ok
BUG2 crash|-DFAULT=1 -DBUG2=1 $FIX|error
BUG2 unknown outcome|-DFAULT=5 -DBUG2=1 $FIX|error
BUG3 pause|-DFAULT=3 -DBUG3=1 $FIX|error
BUG3 skew|-DFAULT=4 -DBUG3=1 $FIX|error
BUG4 unknown outcome|-DFAULT=5 -DBUG4=1 $FIX|error
BUG5 restart|-DFAULT=0 -DBUG5=1 -DRESTART=1 $FIX|error
BUG6 fencer dies|-DFAULT=6 -DBUG6=1 $FIX|error
N1 rollback READ_TARGET->SINGLE|-DFAULT=0 -DREAD_LEASE=1 -DDEADFIX=1 -DLEASEFIX=1|error
FAULT3 pause, reads renew first (code)|-DFAULT=3 -DRBFIX=1 -DDEADFIX=1 -DLEASEFIX=1|ok
N2 partitioned reads by a stale view|-DFAULT=2 -DRBFIX=1 -DDEADFIX=1 -DLEASEFIX=1|error
N3 dead owner repaired early|-DFAULT=2 -DRBFIX=1 -DREAD_LEASE=1 -DLEASEFIX=1|error
EOF
)
[ $# -gt 0 ] && ROWS=$(grep "^$1" <<<"$ROWS")

run_row() { # run_row INDEX NAME DEFINES EXPECT
  local dir="$WORK/$1" start end out errors result trail depth
  mkdir -p "$dir" && cp migration.pml "$dir/"
  cd "$dir"
  start=$(date +%s.%N)
  spin -a $3 migration.pml >/dev/null
  gcc -O2 -DCOLLAPSE -DVECTORSZ=2048 -w -o pan pan.c
  out=$(./pan -m1000000 2>&1 || true)
  end=$(date +%s.%N)
  errors=$(sed -n 's/.*errors: \([0-9]*\).*/\1/p' <<<"$out")
  trail=""
  if [ "${errors:-0}" != 0 ]; then
    # replay up to the error's depth: the steps after it (the never claim's last move) are noise
    depth=$(grep -m1 '^pan:1: ' <<<"$out" | sed -n 's/.*at depth \([0-9]*\).*/\1/p')
    trail=$(spin -t ${depth:+-u$depth} $3 migration.pml 2>/dev/null | sed -n 's/^ *@ //p' | paste -sd';' | sed 's/;/; /g')
    trail="$(grep -m1 '^pan:1: ' <<<"$out" | sed 's/^pan:1: //;s/ (at depth [0-9]*)//;s/  */ /g'): $trail"
  fi
  result=$([ "${errors:-x}" = 0 ] && echo ok || echo error)
  printf '%s|%s|%s|%s|%s|%s|%.0f|%s\n' "$1" "$2" "$4" "$result" \
    "$(sed -n 's/^ *\([0-9.e+]*\) states, stored.*/\1/p' <<<"$out")" \
    "$(sed -n 's/^ *\([0-9.e+]*\) transitions.*/\1/p' <<<"$out")" \
    "$(echo "$end - $start" | bc)" "$trail" >"$WORK/$1.row"
}
export -f run_row
export WORK

i=0
while IFS='|' read -r name defines expect; do
  i=$((i + 1))
  printf '%02d|%s|%s|%s\n' "$i" "$name" "$defines" "$expect"
done <<<"$ROWS" | xargs -P "$JOBS" -d '\n' -I{} bash -c 'IFS="|" read -r n name d e <<<"{}"; run_row "$n" "$name" "$d" "$e"'

fail=0
printf '%-34s %-6s %-6s %14s %14s %7s\n' row expect got "states" "transitions" "seconds"
for f in "$WORK"/*.row; do
  IFS='|' read -r _ name expect got states trans secs trail <"$f"
  mark=""
  [ "$expect" != "$got" ] && { mark="  <-- NOT AS EXPECTED"; fail=1; }
  printf '%-34s %-6s %-6s %14s %14s %7s%s\n' "$name" "$expect" "$got" "$states" "$trans" "$secs" "$mark"
  [ -n "$trail" ] && printf '    trail: %s\n' "$trail"
done
exit $fail
