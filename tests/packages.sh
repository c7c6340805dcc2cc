#!/usr/bin/env bash
# Builds the deb and the rpm and checks them on the host: lintian finds no error in the deb,
# rpm lists the expected files and scriptlets. Prints a summary line.
set -euo pipefail
cd "$(dirname "$0")/.."
pass=0 fail=0
ok() { echo "ok - $1"; pass=$((pass + 1)); }
bad() { echo "FAIL - $1"; fail=$((fail + 1)); }
built=$(packaging/build all)
deb=$(grep '\.deb$' <<<"$built")
rpm=$(grep '\.rpm$' <<<"$built")
if lintian --fail-on error "$deb" >/tmp/unitarmor-lintian.out 2>&1; then ok "lintian: no errors in $(basename "$deb")"; else bad "lintian"; cat /tmp/unitarmor-lintian.out; fi
files=$(rpm -qpl "$rpm" 2>/dev/null)
for f in /usr/bin/unitarmor /usr/lib/systemd/system/unitarmor.service /usr/lib/systemd/system-preset/90-unitarmor.preset \
  /usr/lib/systemd/system-generators/unitarmor-generator /usr/lib/systemd/system/user@.service.d/unitarmor.conf \
  /usr/share/dbus-1/system.d/org.unitarmor1.conf /usr/lib/systemd/catalog/unitarmor.catalog \
  /etc/unitarmor/policies/base.toml /usr/share/man/man8/unitarmor.8.gz /usr/share/man/man5/unitarmor.armor.5.gz \
  /usr/share/licenses/unitarmor/LICENSE /usr/share/bash-completion/completions/unitarmor \
  /usr/share/zsh/site-functions/_unitarmor /usr/share/fish/vendor_completions.d/unitarmor.fish; do
  if grep -qx "$f" <<<"$files"; then ok "rpm has $f"; else bad "rpm lacks $f"; fi
done
# The generator: a small binary of its own, not a link to the daemon's.
# Listings are read whole before grep -q looks at them: with pipefail, a grep that stops at
# its first match can kill the lister with SIGPIPE and fail the pipeline.
dump=$(rpm -qp --dump "$rpm" 2>/dev/null)
if grep -q '^/usr/lib/systemd/system-generators/unitarmor-generator [0-9]* [0-9]* [0-9a-f]\{64\} 0100755 ' <<<"$dump"; then
  ok "rpm installs the generator as an executable file"
else
  bad "rpm generator"
fi
contents=$(dpkg-deb -c "$deb")
if grep -q '^-rwxr-xr-x .* \./lib/systemd/system-generators/unitarmor-generator$' <<<"$contents"; then
  ok "deb installs the generator as an executable file"
else
  bad "deb generator"
fi
scripts=$(rpm -qp --scripts "$rpm" 2>/dev/null)
for s in "postinstall scriptlet" "preuninstall scriptlet" "postuninstall scriptlet" "unitarmor disarm" "systemctl preset unitarmor.service"; do
  if grep -q "$s" <<<"$scripts"; then ok "rpm scripts have '$s'"; else bad "rpm scripts lack '$s'"; fi
done
configs=$(rpm -qp --configfiles "$rpm" 2>/dev/null)
if grep -qx /etc/unitarmor/policies/base.toml <<<"$configs"; then ok "rpm marks the policies as config"; else bad "rpm config files"; fi
echo "$pass passed, $fail failed"
[ "$fail" -eq 0 ]
