#!/bin/sh
# A planted test program that reports a failed test (harness-notok).
echo "TAP version 13"
echo "1..2"
echo "ok 1 planted.passes"
echo "not ok 2 planted.fails"
exit 1
