#!/usr/bin/env bash
# timeout: 120
#
# test_h2lb_addr_streams - one address cannot take every stream
# (--max-streams-per-address).
#
# With a limit of 50, a client address opens 3 connections of 40 streams
# each that it never ends (tests/peers/open_streams.py): 50 are served,
# the other 70 refused with RST_STREAM(REFUSED_STREAM), counted in
# addr_streams_full. Meanwhile a client from another address opens 40
# streams of its own and a GET, all served. Once the first address's
# connections close, its streams count no more: a GET from it is served.
source "$(dirname "${BASH_SOURCE[0]}")/../lib/test.sh"

tb_require_cmd nghttpd
OTHER=198.18.1.3

# field JSON NAME
field() { "$TB_PYTHON" -c 'import json, sys; print(json.loads(sys.argv[1])[sys.argv[2]])' "$1" "$2"; }

tb_up 2
tb_start_nghttpd
tb_exec cli ip addr add "$OTHER/24" dev eth0 || fail "cannot add $OTHER"
h2lb_start --backends "$(tb_backend_ip 1):8080,$(tb_backend_ip 2):8080" \
    --max-streams-per-address 50

tb_run cli "$TB_PYTHON" "$TB_PEERS/open_streams.py" --target "$H2LB_ADDR" \
    --bind "$TB_CLI_IP" --conns 3 --streams 40 --wait 4 >"$TB_STATE/hog" &
hog=$!
sleep 1.5
other=$(tb_run cli "$TB_PYTHON" "$TB_PEERS/open_streams.py" --target "$H2LB_ADDR" \
    --bind "$OTHER" --conns 1 --streams 40 --wait 1)
get=$(tb_run cli "$TB_PYTHON" "$TB_PEERS/open_streams.py" --target "$H2LB_ADDR" \
    --bind "$OTHER" --get --wait 2)
wait "$hog"
hog=$(cat "$TB_STATE/hog")
echo "   $TB_CLI_IP, 3 x 40 streams: $hog"
echo "   $OTHER, 40 streams: $other; a GET: $get"
refused=$(field "$hog" refused)
((refused >= 65 && refused <= 70)) || fail "$refused of 120 streams refused, want 70"
(($(h2lb_counter addr_streams_full) >= refused)) || fail "addr_streams_full does not count them"
(($(field "$other" refused) == 0)) || fail "the other address was refused streams"
[[ $(field "$get" status) == 2xx ]] || fail "the other address's GET got no answer"

sleep 0.5
again=$(tb_run cli "$TB_PYTHON" "$TB_PEERS/open_streams.py" --target "$H2LB_ADDR" \
    --bind "$TB_CLI_IP" --get --wait 2)
[[ $(field "$again" status) == 2xx ]] || fail "$TB_CLI_IP is still refused after its streams closed: $again"
h2lb_stop || fail "h2lb did not stop cleanly"
echo "PASS: one address got 50 streams and no more; another address was served throughout"
