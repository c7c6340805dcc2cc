#!/bin/bash
# Tries to run /usr/bin/id and /usr/bin/true; writes "PROG ok" or "PROG denied" lines to $1.
out=$1
: >"$out"
if /usr/bin/id >/dev/null 2>&1; then echo "id ok" >>"$out"; else echo "id denied" >>"$out"; fi
if /usr/bin/true; then echo "true ok" >>"$out"; else echo "true denied" >>"$out"; fi
