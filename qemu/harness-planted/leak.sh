#!/bin/sh
# A planted test program whose sealmem file outlives it (harness-leak): a background process
# keeps it open, so the gauges stay up and rmmod fails. First it reloads the module without
# reporting the gauges before the unload (what sm_reload() prints): the runner must see that
# too, as it would hide whatever the program had left before.
rmmod sealmem && insmod /sealmem/sealmem.ko || exit 1
sh -c 'exec 3<>/dev/sealmem; exec sleep 100000' </dev/null >/dev/null 2>&1 &
while [ "$(cat /sys/kernel/debug/sealmem/counters/files)" = 0 ]; do sleep 0.1; done
echo "TAP version 13"
echo "1..1"
echo "ok 1 planted.passes"
