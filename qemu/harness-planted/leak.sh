#!/bin/sh
# A planted test program whose sealmem file outlives it (harness-leak): a background process
# keeps it open, so the gauges stay up and rmmod fails.
sh -c 'exec 3<>/dev/sealmem; exec sleep 100000' </dev/null >/dev/null 2>&1 &
while [ "$(cat /sys/kernel/debug/sealmem/counters/files)" = 0 ]; do sleep 0.1; done
echo "TAP version 13"
echo "1..1"
echo "ok 1 planted.passes"
