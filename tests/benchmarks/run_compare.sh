#!/usr/bin/env bash
# mlv vs DVC, side by side in one run (see README.md here). Usage:
#   tests/benchmarks/run_compare.sh [REPS]
# Environment: BENCH_ROOT (work folder, default /tmp/mlv-bench), SHARED (default ../shared
# next to the repository), STEPS (default "small small-hardlink large").
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)
shared=${SHARED:-$(cd "$repo/../shared" && pwd)}
root=${BENCH_ROOT:-/tmp/mlv-bench}
reps=${1:-3}
steps=${STEPS:-"small small-hardlink large"}
mkdir -p "$root/work" "$root/results"

if [ ! -x "$root/dvcenv/bin/dvc" ]; then
  python3 -m venv "$root/dvcenv"
  "$root/dvcenv/bin/pip" install -q dvc dvc-s3
fi
python3 -m venv "$root/mlvenv"
"$root/mlvenv/bin/pip" install -q --force-reinstall --no-deps "$repo"
"$root/mlvenv/bin/pip" install -q "$repo"
export DVC="$root/dvcenv/bin/dvc" MLV="$root/mlvenv/bin/mlv"
echo "dvc $($DVC --version), mlv $($MLV --version)"

[ -d "$root/data/small" ] || python3 "$shared/bench/make_data.py" small "$root/data/small"
[ -d "$root/data/large" ] || python3 "$shared/bench/make_data.py" large "$root/data/large" 2 512

run() {  # name, extra args...
  local name=$1; shift
  echo "== $name: python3 $shared/bench/compare.py $* --tools dvc,mlv --reps $reps"
  python3 "$shared/bench/compare.py" "$@" --tools dvc,mlv --reps "$reps" \
    --work "$root/work" --out "$root/results/$name.json" | tee "$root/results/$name.log" \
    | grep -v '^{'
}
for s in $steps; do
  case $s in
    small) run small "$root/data/small" --local-only ;;
    small-hardlink) run small-hardlink "$root/data/small" --local-only --link hardlink ;;
    large) run large "$root/data/large" --local-only ;;
    *) echo "unknown step $s" >&2; exit 2 ;;
  esac
done
