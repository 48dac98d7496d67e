#!/usr/bin/env bash
# Counts the public items reachable from helixrouter's lib.rs, as rustdoc documents them
# with every feature on: modules, types (structs, enums, traits, aliases), functions,
# constants, inherent methods and associated items (trait impls and blanket impls not
# counted), enum variants and public fields. Prints one line per kind and the total.
#   scripts/public-items.sh            (from anywhere inside the repository)
# Needs only the Rust toolchain and python3.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo doc --no-deps --locked -p helixrouter --all-features -q
python3 - target/doc/helixrouter <<'PY'
import glob, os, re, sys

root = sys.argv[1]
html = open(os.path.join(root, "all.html"), encoding="utf-8").read()
parts = re.split(r'<h3 id="([a-z-]+)"', html)
kinds, pages = {}, []
for name, body in zip(parts[1::2], parts[2::2]):
    links = re.findall(r'<a href="([^"]+)">', body)
    kinds[name] = len(links)
    if name in ("structs", "enums", "traits", "unions"):
        pages += links
modules = len(glob.glob(os.path.join(root, "**", "index.html"), recursive=True))
methods = fields = variants = 0
for link in pages:
    page = open(os.path.join(root, link), encoding="utf-8").read()
    fields += len(set(re.findall(r'id="structfield\.(\w+)"', page)))
    fields += len(set(re.findall(r'id="variant\.\w+\.field\.(\w+)"', page)))
    variants += len(set(re.findall(r'id="variant\.(\w+)"', page)))
    # Inherent impls only: the section before the trait implementations.
    own = page.split('id="trait-implementations"')[0]
    own = own.split('id="synthetic-implementations"')[0]
    methods += len(set(re.findall(r'id="(?:method|tymethod|associatedconstant|associatedtype)\.(\w+)"', own)))
counts = {"modules (the crate root included)": modules}
counts.update({k: v for k, v in sorted(kinds.items())})
counts.update({"inherent methods and associated items": methods, "enum variants": variants, "public fields": fields})
for k, v in counts.items():
    print(f"{v:6}  {k}")
print(f"{sum(counts.values()):6}  total")
PY
