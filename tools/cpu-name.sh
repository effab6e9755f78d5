#!/usr/bin/env bash
# tools/cpu-name.sh - the CPU model of this machine, as lscpu names it (one line; empty
# if lscpu says nothing). The benchmark scripts print it beside their figures.
lscpu 2>/dev/null | sed -n 's/^Model name: *//p' | head -1
