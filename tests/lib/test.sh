# shellcheck shell=bash
# tests/lib/test.sh - the common preamble of tests/integration/*.sh.  A test
# sources it, in one line, before anything else it runs:
#
#   source "$(dirname "${BASH_SOURCE[0]}")/../lib/test.sh" [OPTION...]
#
# and gets, in this order:
#   1. set -euo pipefail
#   2. fail MSG    print "FAIL: MSG" on stderr, exit 1 (a test may define its
#                  own fail after this line, e.g. to print more context)
#      skip MSG    print "SKIP: MSG" on stderr, exit 77 (what tb_skip does,
#                  also for tests that do not load the testbed)
#   3. source tests/lib/testbed.sh    the network-namespace testbed (TB_*)
#   4. source tests/lib/h2lb.sh       h2lb in the testbed (H2LB_*)
#   5. tb_require_root                skip (exit 77) when not root
#   6. tb_cleanup_on_exit             EXIT/INT/TERM/HUP run the cleanup hooks
#                                     and tear the testbed down
#
# OPTIONS say what a test does not need:
#   --no-h2lb      leave out 4 (the test runs no h2lb daemon of its own)
#   --no-testbed   leave out 3 to 6: only set -euo pipefail, fail and skip
#                  (a test that needs neither root nor namespaces)
#
# Checks for commands (tb_require_cmd CMD...) and further libraries (e.g.
# source "$TB_PEERS/probe.sh") stay in the test, after this line.
#
# Options come first and start with "--".  Parsing stops at the first other
# word: a script that sources this file without arguments passes its own
# "$@" (bash's `source` does so), e.g. the value of a parameterised test
# (tests/run.sh, "# params:"), which is left to the script.

set -euo pipefail

fail() {
    echo "FAIL: $*" >&2
    exit 1
}

skip() {
    echo "SKIP: $*" >&2
    exit 77
}

_test_h2lb=1 _test_testbed=1
while (($# > 0)) && [[ $1 == --* ]]; do
    case $1 in
        --no-h2lb) _test_h2lb= ;;
        --no-testbed) _test_testbed='' _test_h2lb='' ;;
        --) break ;;
        *)
            echo "tests/lib/test.sh: unknown option $1" >&2
            exit 2
            ;;
    esac
    shift
done

if [[ -n $_test_testbed ]]; then
    # shellcheck source=tests/lib/testbed.sh
    source "$(dirname "${BASH_SOURCE[0]}")/testbed.sh"
fi
if [[ -n $_test_h2lb ]]; then
    # shellcheck source=tests/lib/h2lb.sh
    source "$(dirname "${BASH_SOURCE[0]}")/h2lb.sh"
fi
if [[ -n $_test_testbed ]]; then
    tb_require_root
    tb_cleanup_on_exit
fi
unset _test_h2lb _test_testbed
