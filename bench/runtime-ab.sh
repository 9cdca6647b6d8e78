#!/bin/bash
# Fine-grained A/B of the runtime upgrade: both servers up at once (an idle one costs nothing), wrk alternating
# between them, 6 rounds x 3 cases x 5 s each, so both see the same machine minute by minute.
# A = 66229af (Node 20.20, uWS 20.30 trufflesuite), B = 00d4dd9 (Node 22.23.5, uWS 20.51 @based/uws).
# Usage: bash bench/runtime-ab.sh A_CHECKOUT A_NODE B_CHECKOUT B_NODE   (each checkout built: npm ci && npm run build)
# Results of 2026-12-02: bench/results/runtime-upgrade/, summarised in bench/RESULTS.md (appendix).
set -u
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
A_DIR=$1 A_NODE=$2 B_DIR=$3 B_NODE=$4
D=$(mktemp -d)
start() { # name dir node
  SQLITE_SYNCHRONOUS=FULL PORT=$4 HOST=127.0.0.1 DB_PATH=$D/$1.db LOG_LEVEL=warn ACCESS_LOG=off "$3" "$2/dist/main.js" > $D/$1.log 2>&1 &
  echo $!
}
PA=$(start A "$A_DIR" "$A_NODE" 18081)
PB=$(start B "$B_DIR" "$B_NODE" 18082)
sleep 3
for p in 18081 18082; do curl -s -X POST -H 'content-type: application/json' localhost:$p/counters/c1/increment >/dev/null; done
cd "$HERE/wrk"
echo "round,case,build,rps,p99ms"
for r in 1 2 3 4 5 6; do
  for c in hot-read write increment; do
    for b in A B; do
      port=$([ $b = A ] && echo 18081 || echo 18082)
      case $c in
        hot-read) args="http://127.0.0.1:$port/counters/c1" ; s="" ;;
        write) args="http://127.0.0.1:$port/products"; s="-s post-product.lua" ;;
        increment) args="http://127.0.0.1:$port/counters/c1/increment"; s="-s post-increment.lua" ;;
      esac
      out=$(wrk -t1 -c64 -d5s --latency $s $args 2>&1)
      rps=$(echo "$out" | awk '/Requests\/sec/ {print $2}')
      p99=$(echo "$out" | awk '$1=="99%" {print $2}')
      echo "$r,$c,$b,$rps,$p99"
    done
  done
done
kill $PA $PB; wait 2>/dev/null; rm -rf $D
