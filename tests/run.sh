#!/usr/bin/env bash
# tests/run.sh - the h2lb test runner (what `make test` runs, as root).
#
#   tests/run.sh [FILTER...]        or   TESTS="FILTER..." tests/run.sh
#
# Runs, in this order:
#   unit/NAME         every executable build/tests/unit/NAME (cmocka binaries;
#                     the exit status counts)
#   test_NAME         every tests/integration/test_NAME.sh (run with bash)
#   test_NAME[VALUE]  the same, once per VALUE, for a parameterised script
# Exit status of a test: 0 = pass, 77 = skip, anything else = fail.
#
# Parameterised tests: a script with a line "# params: VALUE..." in its
# first 30 lines (e.g. "# params: tc cgroup") runs once per VALUE, as the
# test test_NAME[VALUE], with VALUE in the environment variable
# H2LB_TEST_PARAM and as its argument $1.  Each run is a test of its own:
# it counts once in the summary and has its own time limit, log
# (build/test-logs/test_NAME-VALUE.log) and testbed prefix.  A VALUE is
# letters, digits, '_', '.' and '-'.  Other tests get H2LB_TEST_PARAM empty
# and no argument.  By hand: bash tests/integration/test_NAME.sh VALUE.
#
# FILTER (comma or space separated): "unit" or "integration" for a whole
# group, a test's exact name (also test_NAME[VALUE]), a glob (test_l4_*),
# or a plain word matched as a substring of the test name (e.g. "l4" or
# "unit/parser").  A parameterised test's name matches with or without its
# "[VALUE]": test_h2lb_intercept runs every VALUE of it,
# test_h2lb_intercept[tc] only that one.
#
# Time limits: unit tests $UNIT_TIMEOUT (default 300 s); integration tests
# $TEST_TIMEOUT (default 600 s), or the value of a "# timeout: SECONDS"
# comment line in the first 30 lines of the script.
#
# Each test's output goes to build/test-logs/NAME.log (unit tests:
# unit-NAME.log); the tail of the log is printed for failures.  Integration
# tests get a private testbed prefix in H2LB_TB; after each one the runner
# removes anything left under that prefix, and a test that leaked network
# namespaces fails.
#
# Last line: "N passed, N failed, N skipped".  Exit status 1 if any failed.
set -uo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.." || exit 2
ROOT=$PWD
LOG_DIR=${TEST_LOG_DIR:-$ROOT/build/test-logs}
UNIT_DIR=$ROOT/build/tests/unit
INTEG_DIR=$ROOT/tests/integration
UNIT_TIMEOUT=${UNIT_TIMEOUT:-300}
TEST_TIMEOUT=${TEST_TIMEOUT:-600}
KILL_GRACE=30          # seconds between timeout's TERM and its KILL
TAIL_LINES=${TEST_TAIL_LINES:-40}

export H2LB_ROOT=$ROOT
export H2LB_PYTHON=${H2LB_PYTHON:-/usr/bin/python3}
export PYTHONDONTWRITEBYTECODE=1   # keep the tree clean of __pycache__

passed=0 failed=0 skipped=0
failed_names=()
CUR_PID=
CUR_PREFIX=

# ----------------------------------------------------------------- selection

read -r -a FILTERS <<<"$(printf '%s ' "$@" "${TESTS:-}" | tr ',' ' ')"

# selected KIND NAME [BASE]: does the test pass the filters?  BASE is a
# parameterised test's name without "[VALUE]".
selected() {
    local kind=$1 name=$2 base=${3:-$2} f
    ((${#FILTERS[@]} == 0)) && return 0
    for f in "${FILTERS[@]}"; do
        [[ $f == "$kind" || $f == "$name" ]] && return 0
        if [[ $f == *[\*\?\[]* ]]; then
            # shellcheck disable=SC2053  # glob match on purpose
            [[ $name == $f || $base == $f || ${name#unit/} == $f ]] && return 0
        elif [[ $name == *"$f"* ]]; then
            return 0
        fi
    done
    return 1
}

# params_of FILE: the values of a "# params: VALUE..." line in the head of
# an integration script (nothing if it has none).
params_of() {
    head -n 30 "$1" | sed -n 's/^#[[:space:]]*params:[[:space:]]*//p' | sed -n 1p
}

TESTS_KIND=() TESTS_NAME=() TESTS_CMD=() TESTS_PARAM=()
if [[ -d $UNIT_DIR ]]; then
    for f in "$UNIT_DIR"/*; do
        [[ -f $f && -x $f ]] || continue
        case $f in *.o | *.d | *.a | *.so | *.log | *.txt) continue ;; esac
        name=unit/${f##*/}
        selected unit "$name" || continue
        TESTS_KIND+=(unit) TESTS_NAME+=("$name") TESTS_CMD+=("$f") TESTS_PARAM+=("")
    done
fi
for f in "$INTEG_DIR"/test_*.sh; do
    [[ -f $f ]] || continue
    base=${f##*/}
    base=${base%.sh}
    read -r -a params <<<"$(params_of "$f")"
    if ((${#params[@]} == 0)); then
        params=("")     # not parameterised: one run, no value
    fi
    for p in "${params[@]}"; do
        if [[ -n $p && ! $p =~ ^[A-Za-z0-9_.-]+$ ]]; then
            echo "run.sh: ${f#"$ROOT"/}: bad value in '# params:': $p" >&2
            exit 2
        fi
        name=$base${p:+[$p]}
        selected integration "$name" "$base" || continue
        TESTS_KIND+=(integration) TESTS_NAME+=("$name") TESTS_CMD+=("$f")
        TESTS_PARAM+=("$p")
    done
done

# ----------------------------------------------------------------- helpers

# Time limit of a test: "# timeout: N" in an integration script's head.
time_limit() {
    local kind=$1 file=$2 t
    if [[ $kind == unit ]]; then
        echo "$UNIT_TIMEOUT"
        return
    fi
    t=$(head -n 30 "$file" | sed -n 's/^#[[:space:]]*timeout:[[:space:]]*\([0-9][0-9]*\).*/\1/p' | sed -n 1p)
    echo "${t:-$TEST_TIMEOUT}"
}

# Remove whatever a test left under its testbed prefix; returns 1 if there
# were leftover network namespaces.
sweep() {
    local prefix=$1
    [[ -n $prefix ]] || return 0
    H2LB_TB=$prefix bash -c '
        source "$1/tests/lib/testbed.sh"
        leaked=$(_tb_list_ns)
        if [[ -n $leaked || -e $TB_STATE ]]; then
            tb_down >/dev/null 2>&1
        fi
        if [[ -n $leaked ]]; then
            echo "leaked network namespaces:" $leaked
            exit 1
        fi' sweep "$ROOT"
}

on_signal() {
    local sig=$1 code=$2 i
    trap - INT TERM HUP
    echo "run.sh: caught SIG$sig, stopping the current test" >&2
    if [[ -n $CUR_PID ]]; then
        kill -TERM "$CUR_PID" 2>/dev/null
        for ((i = 0; i < KILL_GRACE * 10; i++)); do
            kill -0 "$CUR_PID" 2>/dev/null || break
            sleep 0.1
        done
        kill -KILL "$CUR_PID" 2>/dev/null
    fi
    sweep "$CUR_PREFIX" >&2
    echo "$passed passed, $((failed + 1)) failed, $skipped skipped"
    exit "$code"
}
trap 'on_signal INT 130' INT
trap 'on_signal TERM 143' TERM
trap 'on_signal HUP 129' HUP

# ----------------------------------------------------------------- main

mkdir -p "$LOG_DIR" || exit 2
ntests=${#TESTS_NAME[@]}
if ((ntests == 0)); then
    if ((${#FILTERS[@]} > 0)); then
        echo "run.sh: no test matches: ${FILTERS[*]}" >&2
        echo "0 passed, 0 failed, 0 skipped"
        exit 1
    fi
    echo "run.sh: no tests found" >&2
fi
if [[ $(id -u) -ne 0 ]]; then
    echo "run.sh: not root: integration tests will skip themselves" >&2
fi
echo "running $ntests tests (logs in ${LOG_DIR#"$ROOT"/})"

for ((t = 0; t < ntests; t++)); do
    kind=${TESTS_KIND[t]} name=${TESTS_NAME[t]} cmd=${TESTS_CMD[t]}
    param=${TESTS_PARAM[t]}
    if [[ -n $param ]]; then
        log=$LOG_DIR/${cmd##*/}     # test_NAME-VALUE.log
        log=${log%.sh}-$param.log
    else
        log=$LOG_DIR/${name//\//-}.log
    fi
    limit=$(time_limit "$kind" "$cmd")
    CUR_PREFIX=
    if [[ $kind == integration ]]; then
        CUR_PREFIX=h2t$$-$((t + 1))
        runner=(bash "$cmd" ${param:+"$param"})
    else
        runner=("$cmd")
    fi

    start=$EPOCHREALTIME
    # Background + wait, so that our signal traps run while a test runs.
    H2LB_TB=$CUR_PREFIX H2LB_TEST_PARAM=$param timeout -k "$KILL_GRACE" "$limit" "${runner[@]}" \
        </dev/null >"$log" 2>&1 &
    CUR_PID=$!
    wait "$CUR_PID" 2>/dev/null   # no "Killed" job notice from bash
    rc=$?
    CUR_PID=
    secs=$(awk -v a="$start" -v b="$EPOCHREALTIME" 'BEGIN { printf "%.1f", b - a }')

    note=
    case $rc in
        124) note="timed out after ${limit}s" ;;
        137) note="killed by SIGKILL" ;;
    esac
    if leak=$(sweep "$CUR_PREFIX"); then :; else
        echo "run.sh: $leak" >>"$log"
        note="${note:+$note; }$leak"
        ((rc == 0 || rc == 77)) && rc=1
    fi
    CUR_PREFIX=

    if ((rc == 0)); then
        status=PASS
        ((passed++))
    elif ((rc == 77)); then
        status=SKIP
        ((skipped++))
        reason=$(grep -m1 '^SKIP' "$log" | cut -c1-120)
        note=${reason:-}
    else
        status=FAIL
        ((failed++))
        failed_names+=("$name")
        note="exit $rc${note:+, $note}"
    fi
    printf '%-4s  %-40s %7ss%s\n' "$status" "$name" "$secs" "${note:+  ($note)}"
    if [[ $status == FAIL ]]; then
        echo "      ---- last $TAIL_LINES lines of ${log#"$ROOT"/} ----"
        tail -n "$TAIL_LINES" "$log" | sed 's/^/      | /'
        echo "      ----"
    fi
done

if ((failed > 0)); then
    echo "failed: ${failed_names[*]}"
fi
echo "$passed passed, $failed failed, $skipped skipped"
((failed == 0))
