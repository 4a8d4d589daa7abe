#!/usr/bin/env bash
# The dig + curl baseline of `python -m bench.real --shell` (issue 10): what a shell script does with the
# same (vantage, URL) jobs as the auditor (control's included), the same concurrency and the same timeouts.
#
#   bash bench/shell_baseline.sh JOBS CA_FILE [CONCURRENCY] [TIMEOUT]
#
# JOBS: one line per job, "ROLE SOURCE_IP RESOLVER_IP RESOLVER_PORT SCHEME NAME PORT" (bench.real_servers
# writes it). Each job: A and AAAA in one dig from the vantage's source address to its resolver (one try,
# TIMEOUT each, rounded up to whole seconds: dig takes no less); then curl from the same source address to
# the first A answer (--resolve, no second lookup), the certificate checked against CA_FILE,
# --connect-timeout TIMEOUT (TCP + TLS) and at most 3 x TIMEOUT in all; a timed-out curl is tried once
# more, as the auditor retries a timed-out step.
# Output, one line per job: "ROLE NAME dns=<rcode|timeout> http=<status|timeout|curl-N|-> attempts=N".
# Body bytes go to /dev/null, never to a file. Anything not on 127.0.0.0/8 is refused, never dialed.
set -euo pipefail
if [ $# -lt 2 ]; then
    echo "usage: $0 JOBS CA_FILE [CONCURRENCY] [TIMEOUT]" >&2
    exit 2
fi
jobs=$1
export CA=$2 T=${4:-2}
concurrency=${3:-50}
MAXT=$(awk -v t="$T" 'BEGIN { print 3 * t }')
DIGT=$(awk -v t="$T" 'BEGIN { d = int(t); if (d < t) d++; if (d < 1) d = 1; print d }')
export MAXT DIGT

one() {
    local role=$1 src=$2 res=$3 rport=$4 scheme=$5 name=$6 port=$7 out status ip code rc attempts=0
    case "$src $res" in
        127.*" "127.*) ;;
        *) echo "$role $name dns=not-loopback http=- attempts=0"; return 0 ;;
    esac
    out=$(dig +tries=1 +time="$DIGT" -b "$src" -p "$rport" "@$res" +noall +comments +answer \
        "$name" A "$name" AAAA 2>&1) || true
    # parsed with bash's own regular expressions: a grep or awk per job would cost more than the dig
    if [[ $out =~ status:\ ([A-Z]+) ]]; then
        status=${BASH_REMATCH[1]}
    else
        echo "$role $name dns=timeout http=- attempts=0"
        return 0
    fi
    ip=
    if [[ $out =~ [[:space:]]IN[[:space:]]+A[[:space:]]+([0-9.]+) ]]; then
        ip=${BASH_REMATCH[1]}
    fi
    if [ "$status" != NOERROR ] || [ -z "$ip" ]; then
        echo "$role $name dns=$status http=- attempts=0"
        return 0
    fi
    case "$ip" in
        127.*) ;;
        *) echo "$role $name dns=$status http=not-loopback attempts=0"; return 0 ;;
    esac
    while :; do
        attempts=$((attempts + 1))
        rc=0
        code=$(curl -q -sS -o /dev/null -w '%{http_code}' --noproxy '*' --interface "$src" \
            --connect-timeout "$T" -m "$MAXT" --cacert "$CA" --resolve "$name:$port:$ip" \
            "$scheme://$name:$port/" 2>/dev/null) || rc=$?
        if [ "$rc" -eq 28 ] && [ "$attempts" -lt 2 ]; then
            continue
        fi
        break
    done
    if [ "$rc" -eq 0 ]; then
        echo "$role $name dns=$status http=$code attempts=$attempts"
    elif [ "$rc" -eq 28 ]; then
        echo "$role $name dns=$status http=timeout attempts=$attempts"
    else
        echo "$role $name dns=$status http=curl-$rc attempts=$attempts"
    fi
}
export -f one

xargs -P "$concurrency" -L 1 bash -c 'one "$@"' _ < "$jobs"
