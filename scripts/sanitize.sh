#!/usr/bin/env bash
# Build the compiled modules with AddressSanitizer + UndefinedBehaviorSanitizer (gcc) into a venv of
# their own, and run the kernel and engine tests under them:
#
#     bash scripts/sanitize.sh                # kernel, engine, graph-core and tests/reliability/ tests
#     bash scripts/sanitize.sh -k reduce      # extra arguments go to pytest
#
# Python itself is not instrumented, so the ASan runtime is preloaded (LD_PRELOAD) and leak detection
# is off (CPython keeps objects alive until exit by design); PYTHONMALLOC=malloc routes Python's own
# allocations through ASan too. Any ASan report or UBSan "runtime error" stops the run and fails it.
# Not part of .ci/run (it takes minutes); the venv is kept in build/sanitize-venv for reruns.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
PY=${PYTHON:-python3}
export CC=${CC:-gcc}
VENV=${SANITIZE_VENV:-$ROOT/build/sanitize-venv}
SRC=$(mktemp -d)
trap 'rm -rf "$SRC"' EXIT

LIBASAN=$("$CC" -print-file-name=libasan.so)
[ -f "$LIBASAN" ] || { echo "no libasan.so for $CC (install gcc's sanitizer runtime: apt-get install libasan8)"; exit 1; }

echo "=== venv $VENV (no build isolation: the sanitizer flags must reach the compiler)"
"$PY" -m venv "$VENV"
"$VENV/bin/python" -m pip install -q "setuptools>=77" "Cython>=3.0" "numpy>=2.0" pytest hypothesis pytest-benchmark

echo "=== build with -fsanitize=address,undefined"
# A fresh copy of the sources: no stale build/ or generated .c can stand in for a sanitized build.
cp -r setup.py pyproject.toml MANIFEST.in README.md LICENSE src "$SRC"/
find "$SRC/src" -name '*.c' -delete -o -name '*.so' -delete
export CFLAGS="-fsanitize=address,undefined -fno-sanitize-recover=undefined -fno-omit-frame-pointer -g"
export LDFLAGS="-fsanitize=address,undefined"
export CLUMSYGRAD_DEBUG_BUILD=1  # keep -g (setup.py drops debug info otherwise)
"$VENV/bin/python" -m pip install -q --no-build-isolation --no-deps --force-reinstall "$SRC" > "$SRC/build.log" 2>&1 \
  || { tail -40 "$SRC/build.log"; exit 1; }
unset CFLAGS LDFLAGS
SITE=$("$VENV/bin/python" -c "import sysconfig; print(sysconfig.get_paths()['platlib'])")
mapfile -t MODULES < <(find "$SITE/clumsygrad" -name '*.so' | sort)
[ "${#MODULES[@]}" -gt 0 ] || { echo "no compiled module was built"; exit 1; }
for so in "${MODULES[@]}"; do
  readelf -d "$so" | grep -q 'libasan' || { echo "$so is not linked against libasan"; exit 1; }
done
echo "${#MODULES[@]} compiled modules, each linked against libasan"

# The compiled code's tests: kernels (test_kernels_*, test_kernel_*, test_*_kernel), engine, graph core,
# and the reliability suite (regressions and random programs on both backends).
TESTS=()
for t in tests/test_kernel*.py tests/test_*_kernel.py tests/test_engine_equivalence.py tests/test_graph*.py \
         tests/reliability/test_*.py; do
  [ -e "$t" ] && TESTS+=("$t")
done
echo "=== pytest ${TESTS[*]} $* under ASan + UBSan"
LOG="$ROOT/build/sanitize.log"
mkdir -p "$ROOT/build"
set +e
env -u CLUMSYGRAD_BACKEND \
  LD_PRELOAD="$LIBASAN" PYTHONMALLOC=malloc \
  ASAN_OPTIONS="detect_leaks=0:abort_on_error=0:halt_on_error=1:print_summary=1" \
  UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1" \
  "$VENV/bin/python" -m pytest -q -p no:cacheprovider "${TESTS[@]}" "$@" 2>&1 | tee "$LOG"
status=${PIPESTATUS[0]}
set -e
reports=$(grep -c -E "ERROR: AddressSanitizer|runtime error:|SUMMARY: (Address|UndefinedBehavior)Sanitizer" "$LOG" || true)
echo "=== pytest exit status $status, sanitizer reports: $reports (log: $LOG)"
[ "$status" -eq 0 ] && [ "$reports" -eq 0 ] && echo "sanitizer run clean" || { echo "sanitizer run NOT clean"; exit 1; }
