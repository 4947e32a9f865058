#!/usr/bin/env bash
# Checks that MVSMTP.H equates every status code of include/mvsmtp.h by the same name
# (SMTP_PARTIAL becomes SMTP.PARTIAL) and number, and no other.
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
HEADER="$HERE/../../include/mvsmtp.h"

from_header=$(awk '$1 == "#define" && $2 ~ /^SMTP_/ { gsub("_", ".", $2); print $2, $3 }' "$HEADER" | sort)
from_include=$(awk '$1 == "EQU" && $2 ~ /^SMTP\./ && $4 ~ /^[0-9]+$/ { print $2, $4 }' "$HERE/MVSMTP.H" | sort)

if [[ "$from_header" == "$from_include" ]]; then
    echo "MVSMTP.H matches include/mvsmtp.h: $(wc -l <<< "$from_header") status codes."
else
    echo "MVSMTP.H differs from include/mvsmtp.h (< header, > MVSMTP.H):"
    diff <(echo "$from_header") <(echo "$from_include") || true
    exit 1
fi
