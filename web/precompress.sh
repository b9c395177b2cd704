#!/usr/bin/env bash
# web/precompress.sh: writes FILE.gz beside each text file the gateway serves for the dashboard (its
# own HTML, CSS, JS and SVG, and the vendored browser libraries in node_modules), so modelmine-api
# can send them gzip-compressed (api/src/static.c sends FILE.gz only while it is not older than FILE).
# Run it after `npm ci` here and after changing a file; without it everything is sent uncompressed.
# Usage: web/precompress.sh [--clean]   (--clean removes the .gz files instead)
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")"
files=()
while IFS= read -r -d '' f; do files+=("$f"); done < <(find . -path ./node_modules -prune -o \
    -type f \( -name '*.html' -o -name '*.css' -o -name '*.js' -o -name '*.svg' -o -name '*.json' \) \
    ! -name 'package*.json' ! -name '*.gz' -print0)
for f in node_modules/chart.js/dist/chart.umd.js node_modules/socket.io-client/dist/socket.io.min.js; do
    [[ -f $f ]] && files+=("$f")
done
if [[ ${1:-} == --clean ]]; then
    for f in "${files[@]}"; do rm -f "$f.gz"; done
    echo "precompress: removed the .gz files"
    exit 0
fi
n=0
for f in "${files[@]}"; do
    # keeps FILE, writes FILE.gz with FILE's time (-n: no name or time inside, so the bytes are stable)
    if [[ ! -f $f.gz || $f -nt $f.gz ]]; then
        gzip -9 -n -k -f "$f"
        touch -r "$f" "$f.gz"
        n=$((n + 1))
    fi
done
echo "precompress: ${#files[@]} files, $n .gz written"
