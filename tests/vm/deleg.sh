#!/bin/bash
# Runs in a Delegate=yes unit: moves itself into a sub-cgroup it creates, records where it
# ended up, then reads the file its unit's policy denies.
cg=/sys/fs/cgroup$(sed -n 's/^0:://p' /proc/self/cgroup)
mkdir "$cg/sub" && echo $$ >"$cg/sub/cgroup.procs" || exit 2
sed -n 's/^0:://p' /proc/self/cgroup >/run/armortest/deleg.cgroup
exec cat /etc/armor-secret
