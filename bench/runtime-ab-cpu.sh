#!/bin/bash
# CPU per request at a fixed rate, A/B interleaved: server utime+stime (all threads, /proc/<pid>/stat) per answered
# request while autocannon offers RATE req/s for 5 s. A = 66229af (Node 20, uWS 20.30), B = 00d4dd9 (Node 22, uWS 20.51).
set -u
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
A_DIR=$1 A_NODE=$2 B_DIR=$3 B_NODE=$4
RATE=${RATE:-3000}
D=$(mktemp -d)
start() { SQLITE_SYNCHRONOUS=FULL PORT=$4 HOST=127.0.0.1 DB_PATH=$D/$1.db LOG_LEVEL=warn ACCESS_LOG=off "$3" "$2/dist/main.js" > $D/$1.log 2>&1 & echo $!; }
PA=$(start A "$A_DIR" "$A_NODE" 18081)
PB=$(start B "$B_DIR" "$B_NODE" 18082)
sleep 3
for p in 18081 18082; do curl -s -X POST -H 'content-type: application/json' localhost:$p/counters/c1/increment >/dev/null; done
TCK=$(getconf CLK_TCK)
cpu() { awk -v t=$TCK '{print ($14+$15)/t}' /proc/$1/stat; }
AC="$HERE/../node_modules/.bin/autocannon"
N="$HERE/../node_modules/.bin/node"
echo "round,case,build,rps,cpu_us_per_req,p99ms"
for r in 1 2 3 4 5 6; do
  for c in hot-read write increment; do
    for b in A B; do
      if [ $b = A ]; then port=18081; pid=$PA; else port=18082; pid=$PB; fi
      case $c in
        hot-read) opts="http://127.0.0.1:$port/counters/c1" ;;
        write) opts="-m POST -H content-type=application/json -b {\"name\":\"bench\",\"price\":9.99,\"stock\":5} http://127.0.0.1:$port/products" ;;
        increment) opts="-m POST -H content-type=application/json -b {\"by\":1} http://127.0.0.1:$port/counters/c1/increment" ;;
      esac
      c0=$(cpu $pid)
      out=$($N $AC -c 32 -R $RATE -d 5 -j $opts 2>/dev/null)
      c1=$(cpu $pid)
      echo "$out" | $N -e "let s='';process.stdin.on('data',d=>s+=d).on('end',()=>{const j=JSON.parse(s);const n=j.requests.total;console.log('$r,$c,$b,'+j.requests.average+','+(($c1-$c0)*1e6/n).toFixed(1)+','+j.latency.p99)})"
    done
  done
done
kill $PA $PB; wait 2>/dev/null; rm -rf $D
