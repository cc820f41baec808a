#!/bin/sh
# Downloads the front-end files the web UI serves (and the browser tests inject) from the npm
# registry at pinned versions, copies them into web/static/vendor/ and records what was taken
# in web/static/vendor/README.md. Run by hand (`make vendor`) when a version changes; the
# files are committed, so installing and running Parcours never needs npm.
set -eu
cd "$(dirname "$0")/.."
dest=web/static/vendor
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

# package@version  file-in-package  name-in-vendor
set -- \
  "htmx.org@2.0.4 dist/htmx.min.js htmx.min.js" \
  "uplot@1.6.32 dist/uPlot.iife.min.js uPlot.iife.min.js" \
  "uplot@1.6.32 dist/uPlot.min.css uPlot.min.css" \
  "axe-core@4.10.3 axe.min.js axe.min.js"

{
  echo "# Vendored front-end files"
  echo
  echo "Fetched by \`scripts/vendor_assets.sh\` (\`make vendor\`) from the npm registry with"
  echo "\`npm pack\`; do not edit by hand. \`axe.min.js\` is used by the browser tests only."
  echo
  echo "| file | package | version | licence | sha256 |"
  echo "|---|---|---|---|---|"
} > "$work/README.md"

for entry in "$@"; do
  set -- $entry
  spec=$1; inner=$2; name=$3
  pkg=${spec%@*}; version=${spec##*@}
  dir="$work/$pkg-$version"
  if [ ! -d "$dir" ]; then
    mkdir -p "$dir"
    tarball=$(cd "$dir" && npm pack --silent "$spec")
    tar -xzf "$dir/$tarball" -C "$dir"
  fi
  cp "$dir/package/$inner" "$dest/$name"
  licence=$(node -e "console.log(require('$dir/package/package.json').license)")
  sum=$(sha256sum "$dest/$name" | cut -d' ' -f1)
  echo "| $name | $pkg | $version | $licence | \`$sum\` |" >> "$work/README.md"
done
cp "$work/README.md" "$dest/README.md"
