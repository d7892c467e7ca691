#!/usr/bin/env bash
# mlv end to end on a local folder: track a dataset and a model next to code in git, change
# them, get an older commit's data back byte for byte, then push everything to a folder
# remote and pull it into a second clone.
#
#   pip install . && examples/quickstart.sh
#
# Runs from any directory and works in a fresh temporary folder (removed at the end; set
# KEEP=1 to keep it and look around). Needs git and python3.
set -euo pipefail

# The console script after `pip install .`; `python3 -m mlv` if its folder is not on PATH.
if ! command -v mlv >/dev/null 2>&1; then
    mlv() { python3 -m mlv "$@"; }
fi

if ! mlv --version >/dev/null 2>&1; then
    echo "mlv is not installed: run \`pip install .\` in the mlv repository first" >&2
    exit 1
fi

step() { printf '\n==> %s\n' "$*"; }

# Content hashes of every file under a folder, in a stable order, to compare versions.
manifest() { (cd "$1" && find . -type f -print0 | LC_ALL=C sort -z | xargs -0 sha256sum); }

work="$(mktemp -d "${TMPDIR:-/tmp}/mlv-quickstart.XXXXXX")"
if [[ "${KEEP:-}" == 1 ]]; then
    echo "working in $work (kept)"
else
    trap 'rm -rf "$work"' EXIT
    echo "working in $work"
fi
cd "$work"
mlv --version

step "A git repository with a local identity, and mlv init"
git init -q project
cd project
git config user.name "mlv quickstart"
git config user.email "quickstart@example.com"
git config commit.gpgsign false
mlv init
git commit -q -m "Initialise mlv"

step "A dataset of 300 small files in 3 folders, and a 2 MiB model file"
python3 - <<'EOF'
import os
import random

rng = random.Random(42)
for label in ("cats", "dogs", "birds"):
    os.makedirs(f"data/{label}", exist_ok=True)
    for i in range(100):
        with open(f"data/{label}/{i:03d}.bin", "wb") as fh:
            fh.write(rng.randbytes(rng.randint(512, 4096)))
with open("model.bin", "wb") as fh:
    fh.write(rng.randbytes(2 << 20))
EOF
find data -type f | wc -l | xargs echo "files in data/:"

step "mlv add: hash into the cache, write data.mlv and model.bin.mlv, stage them in git"
mlv add data model.bin
echo "--- data.mlv (this small file is what git tracks):"
cat data.mlv
echo "--- .gitignore (the data itself stays out of git):"
cat .gitignore
git commit -q -m "Dataset and model, version 1"
echo "--- git log:"
git log --oneline

step "mlv status: the workspace matches the pointers"
mlv status
v1_data="$(manifest data)"
v1_model="$work/model-v1.bin"
cp model.bin "$v1_model"

step "Change one file, add one, delete one, and retrain the model"
printf 'relabelled\n' >> data/cats/000.bin
printf 'a new sample\n' > data/birds/100.bin
rm data/dogs/050.bin
python3 -c "import os; open('model.bin', 'wb').write(os.urandom(2 << 20))"

step "mlv status: modified, down to the files inside the directory"
mlv status
if mlv status --check >/dev/null; then
    echo "expected mlv status --check to fail on modified data" >&2
    exit 1
fi
echo "(mlv status --check exits 1 when anything is not clean)"

step "mlv commit records the changes; git commit records the new version"
mlv commit
git diff --cached --stat
git commit -q -m "Dataset and model, version 2"
v2_data="$(manifest data)"
mlv status --check

step "History without checking out: diff, ls, du and log of any revision, and mlv.api"
mlv diff HEAD~1 HEAD
[[ "$(mlv diff HEAD~1 HEAD --json | python3 -c 'import json, sys; d = json.load(sys.stdin); print(len(d["added"]), len(d["deleted"]), len(d["modified"]))')" == "1 1 2" ]] \
    || { echo "diff should list 1 added, 1 deleted, 2 modified" >&2; exit 1; }
mlv ls data --rev HEAD~1
mlv du data --rev HEAD~1 -s
mlv log model.bin
python3 -c 'import mlv.api, sys; sys.stdout.buffer.write(mlv.api.read("model.bin", rev="HEAD~1", mode="rb"))' \
    | cmp - "$v1_model"
echo "mlv.api.read gives version 1 of model.bin byte for byte"

step "Delete the data; mlv checkout restores it from the cache"
rm -rf data model.bin
mlv status || true
mlv checkout
mlv status --check
[[ "$(manifest data)" == "$v2_data" ]] || { echo "restored data differs" >&2; exit 1; }
echo "restored data matches version 2"

step "Reproduce version 1: the pointers of HEAD~1, then mlv checkout"
git checkout HEAD~1 -- data.mlv model.bin.mlv
mlv checkout
[[ "$(manifest data)" == "$v1_data" ]] || { echo "data differs from version 1" >&2; exit 1; }
cmp model.bin "$v1_model"
echo "data/ and model.bin are byte for byte version 1 ($(find data -type f | wc -l) files)"

step "Back to the latest version"
git checkout HEAD -- data.mlv model.bin.mlv
mlv checkout
[[ "$(manifest data)" == "$v2_data" ]] || { echo "data differs from version 2" >&2; exit 1; }
mlv status --check
v2_model="$work/model-v2.bin"
cp model.bin "$v2_model"

step "A folder remote next to the repository, the default for push and pull"
# A relative folder is relative to the repository root, so ../storage also works in a
# clone next to this one. s3://bucket/prefix or ssh://host/path work the same way.
mlv remote add -d storage ../storage
git commit -q -m "Data remote" .mlv/config.yaml
mlv remote list

step "mlv push --all-commits: the data of every commit (and of the workspace)"
mlv push --all-commits
mlv status --remote storage --check
echo "--- the remote holds packs of objects and an index of each (docs/remotes.md, packed remotes):"
# sed rather than head: it reads to the end, so find never gets SIGPIPE under pipefail.
(cd "$work/storage" && find index packs -type f | LC_ALL=C sort | sed -n 1,4p)
echo "--- mlv verify: every object every commit needs is on the remote, downloaded and re-hashed:"
mlv verify --remote storage --all-commits --full
echo "--- a second push finds everything there (one check per pointer):"
mlv push --json | python3 -c 'import json, sys; d = json.load(sys.stdin); print(d["transferred"], d["skipped"])'

step "A second clone, elsewhere: git brings the pointers, mlv pull brings the data"
cd "$work"
git clone -q project copy
cd copy
mlv status || true
mlv pull
mlv status --check
[[ "$(manifest data)" == "$v2_data" ]] || { echo "pulled data differs" >&2; exit 1; }
cmp model.bin "$v2_model"
echo "the clone's data/ and model.bin are byte for byte those of the first repository"

step "Version 1 in the clone: its pointers, then mlv pull fetches what the cache lacks"
git checkout HEAD~2 -- data.mlv model.bin.mlv
mlv pull
[[ "$(manifest data)" == "$v1_data" ]] || { echo "pulled version 1 differs" >&2; exit 1; }
cmp model.bin "$v1_model"
echo "the clone has version 1 byte for byte, from the remote"

echo
echo "quickstart OK"
