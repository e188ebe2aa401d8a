#!/bin/sh
# A planted test program that crashes half-way, before reporting a failure (harness-crash).
echo "TAP version 13"
echo "1..2"
echo "ok 1 planted.passes"
kill -SEGV $$
