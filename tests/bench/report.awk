# report.awk: tests/bench/run's report, from the raw lines of tests/bench/guest.sh (their format
# is at the top of guest.sh). Prints the table of medians, the ratios with each target's verdict,
# and writes everything as JSON to the file named by -v json=FILE. POSIX awk (Debian's mawk).

function median(key,    n, i, j, v, a) {
	n = cnt[key]
	if (n == 0) return ""
	for (i = 1; i <= n; i++) a[i] = val[key, i]
	for (i = 2; i <= n; i++) {
		v = a[i]
		for (j = i - 1; j >= 1 && a[j] > v; j--) a[j + 1] = a[j]
		a[j + 1] = v
	}
	return n % 2 ? a[(n + 1) / 2] : (a[n / 2] + a[n / 2 + 1]) / 2
}
function add(key, v) { val[key, ++cnt[key]] = v }
function ratio(x, y) { return (x == "" || y == "" || y == 0) ? "" : x / y }
function fmt(r) { return r == "" ? "-" : sprintf("%.3f", r) }
# verdict(OK, WHAT, DETAIL): one target's line, kept for the JSON too.
function verdict(ok, what, detail) {
	nt++
	tgt[nt] = what
	tok[nt] = ok
	tdet[nt] = detail
	if (ok != "n/a") { if (ok) met++; else missed++ }
	printf "  %-8s %s: %s\n", ok == "n/a" ? "n/a" : (ok ? "met" : "MISSED"), what, detail
}
function jstr(s) { gsub(/\\/, "\\\\", s); gsub(/"/, "\\\"", s); return "\"" s "\"" }

$1 == "R" { add($3 SUBSEP $4, $5); ops[$4] = 1; if (!($4 in order)) { order[$4] = ++nops; opname[nops] = $4 } ; if ($2 > rounds) rounds = $2; next }
$1 == "S" { sc[$2 SUBSEP $3] += $4; sn[$2 SUBSEP $3] += $5; progs[$3] = 1; next }
$1 == "A" { add("apply" SUBSEP $2, $3); next }
$1 == "T" { add("start" SUBSEP $2, $3); next }
$1 == "N" { add("nginx" SUBSEP $3, $4); nr[$2 SUBSEP $3] += $4; nk[$2 SUBSEP $3]++; nv[$2 SUBSEP $3 SUBSEP nk[$2 SUBSEP $3]] = $4; if ($2 > nrounds) nrounds = $2; next }
$1 == "P" { pns[$2] = $3; preq[$2] = $4; next }
$1 == "Q" { qruns[$2 SUBSEP $3] = $4; qns[$2 SUBSEP $3] = $5; qprogs[$3] = 1; next }
$1 == "M" { m[$2] = $3; mnames[++nm] = $2; next }
$1 == "X" { sub(/^X /, ""); errors[++nerr] = $0; next }
/^# / && !head { head = substr($0, 3) }

END {
	ncases = split("none floor unarmored c10 c1000 c10000 landlock systemd", cases, " ")
	printf "unitarmor benchmark: %s\n", head
	printf "ns per operation (of the fastest of %d batches in a run: tests/bench/ops.c), median of %d runs of each case in %d rounds\n\n", 20, cnt["none" SUBSEP opname[1]], rounds
	printf "%-13s", "operation"
	for (c = 1; c <= ncases; c++) printf " %10s", cases[c]
	printf "\n"
	for (o = 1; o <= nops; o++) {
		op = opname[o]
		printf "%-13s", op
		for (c = 1; c <= ncases; c++) {
			med[cases[c], op] = median(cases[c] SUBSEP op)
			printf " %10s", med[cases[c], op] == "" ? "-" : sprintf("%.0f", med[cases[c], op])
		}
		printf "\n"
	}
	printf "\nratios\n%-13s %10s %10s %10s %10s %10s %10s\n", "operation", "floor/none", "unarm/none", "c10/unarm", "c1000/c10", "c10000/c10", "c10/landl"
	for (o = 1; o <= nops; o++) {
		op = opname[o]
		printf "%-13s %10s %10s %10s %10s %10s %10s\n", op,
			fmt(ratio(med["floor", op], med["none", op])), fmt(ratio(med["unarmored", op], med["none", op])),
			fmt(ratio(med["c10", op], med["unarmored", op])), fmt(ratio(med["c1000", op], med["c10", op])),
			fmt(ratio(med["c10000", op], med["c10", op])), fmt(ratio(med["c10", op], med["landlock", op]))
	}

	printf "\ntargets\n"
	for (o = 1; o <= nops; o++) {
		op = opname[o]
		a = med["none", op]; f = med["floor", op]; b = med["unarmored", op]
		if (a == "" || b == "") continue
		ok = (b / a <= 1.02) || (f != "" && f > a && b - a <= 1.10 * (f - a))
		verdict(ok, "unarmored/none <= 1.02 or within 10% of the floor's overhead, " op,
			sprintf("unarmored/none %.3f, floor/none %.3f", b / a, f == "" ? 0 : f / a))
	}
	for (o = 1; o <= nops; o++) {
		op = opname[o]
		if (med["c10", op] == "" || med["c10000", op] == "") continue
		r = med["c10000", op] / med["c10", op]
		verdict(r <= 1.10, "c10000/c10 <= 1.10 (flat in rule count), " op, sprintf("%.3f", r))
	}
	split("open-shallow open-deep", oo, " ")
	for (i = 1; i <= 2; i++) {
		op = oo[i]
		if (med["c10", op] == "" || med["unarmored", op] == "") continue
		r = med["c10", op] / med["unarmored", op]
		verdict(r <= 1.30, "c10/unarmored <= 1.30, " op, sprintf("%.3f", r))
		if (med["landlock", op] == "") continue
		r = med["c10", op] / med["landlock", op]
		verdict(r <= 1.00, "c10 <= landlock, " op, sprintf("c10/landlock %.3f", r))
	}
	ap = median("apply" SUBSEP "change")
	if (ap != "") {
		worst = 0
		for (i = 1; i <= cnt["apply" SUBSEP "change"]; i++) if (val["apply" SUBSEP "change", i] > worst) worst = val["apply" SUBSEP "change", i]
		bare = median("apply" SUBSEP "bare")
		if (bare == "") {
			verdict(ap <= 50, "apply latency median <= 50 ms (drop-in written to enforcement, daemon-reload included)",
				sprintf("median %d ms, worst %d ms; a daemon-reload with nothing changed: median %d ms", ap, worst, median("apply" SUBSEP "reload")))
		} else {
			# systemd's own reload is the same with or without unitarmor: the target is on
			# what unitarmor adds to it (the change is in force when the reload returns, below).
			# The reload that applies a change, against the same reload without unitarmor's
			# generator (the probes that see the change are not in it).
			# Judged on the pairs: each change's reload against the bare reload made next to
			# it (guest.sh), the median of the differences; single reloads vary by far more.
			cr = median("apply" SUBSEP "change_reload")
			if (cr == "") cr = ap
			for (i = 1; i <= cnt["apply" SUBSEP "change_reload"] && i <= cnt["apply" SUBSEP "bare"]; i++) {
				add("apply_added", val["apply" SUBSEP "change_reload", i] - val["apply" SUBSEP "bare", i])
				if (i <= cnt["apply" SUBSEP "floor"]) add("apply_any", val["apply" SUBSEP "floor", i] - val["apply" SUBSEP "bare", i])
			}
			added = median("apply_added")
			if (added == "") added = cr - bare
			any = median("apply_any")
			fl = any == "" ? "" : sprintf("; a generator that does nothing (/bin/true) in its place adds %d ms (median of the pairs)", any)
			verdict(added <= 50, "apply latency median <= 50 ms beyond systemd's own daemon-reload",
				sprintf("%d ms added (median of %d pairs: the reload applying a change against the same reload without unitarmor's generator, made next to it)%s; medians: the reload applying a change %d ms, without unitarmor's generator %d ms, one with nothing changed %d ms; from writing the drop-in to the first probe that sees it: median %d ms (worst %d)", added, cnt["apply_added"], fl, cr, bare, median("apply" SUBSEP "reload"), ap, worst))
		}
	}
	if (cnt["apply" SUBSEP "at_return"] > 0) {
		seen = 0
		for (i = 1; i <= cnt["apply" SUBSEP "at_return"]; i++) seen += val["apply" SUBSEP "at_return", i]
		verdict(seen == cnt["apply" SUBSEP "at_return"], "a change is in force when daemon-reload returns",
			sprintf("%d of %d changes seen by the first probe after the reload returned", seen, cnt["apply" SUBSEP "at_return"]))
	}
	if ("rss_kib_many" in m)
		verdict(m["rss_kib_many"] <= 20480, "daemon RSS <= 20 MiB with 1,000 armored units", sprintf("%.1f MiB with %d armored units, the median of 10 s at rest (at most %.1f; %.1f MiB with %d)", m["rss_kib_many"] / 1024, m["armored_units_many"], m["rss_kib_max_many"] / 1024, m["rss_kib"] / 1024, m["armored_units"]))
	else if ("rss_kib" in m)
		verdict("n/a", "daemon RSS <= 20 MiB with 1,000 armored units", sprintf("%.1f MiB with %d armored units; the 1,000 not measured (see the raw output)", m["rss_kib"] / 1024, m["armored_units"]))
	nu = median("nginx" SUBSEP "unarmored"); na = median("nginx" SUBSEP "armored")
	# Judged on pairs: a round's k-th armored run against its k-th unarmored one, which ran
	# next to it (ABBAABBA, guest.sh), the median of all the pairs; each round's sums are
	# shown beside it.
	nratios = ""
	for (r = 1; r <= nrounds; r++) {
		if (nr[r SUBSEP "unarmored"] > 0 && nr[r SUBSEP "armored"] > 0)
			nratios = nratios sprintf("%s%.1f%%", nratios == "" ? "" : ", ", 100 * nr[r SUBSEP "armored"] / nr[r SUBSEP "unarmored"])
		for (k = 1; k <= nk[r SUBSEP "armored"] && k <= nk[r SUBSEP "unarmored"]; k++)
			if (nv[r SUBSEP "unarmored" SUBSEP k] > 0)
				add("nginx_ratio", nv[r SUBSEP "armored" SUBSEP k] / nv[r SUBSEP "unarmored" SUBSEP k])
	}
	nq = median("nginx_ratio")
	if (nq != "")
		verdict(nq >= 0.98, "nginx requests per second under drop-ins/nginx.service.d >= 98% of unarmored",
			sprintf("%.1f%% (median of %d pairs of runs side by side; the rounds: %s; medians %.0f vs %.0f requests/s)", 100 * nq, cnt["nginx_ratio"], nratios, na, nu))
	else
		verdict("n/a", "nginx requests per second under armor >= 98% of unarmored", "not measured (see the raw output)")
	if (("unarmored" in pns) && ("armored" in pns))
		printf "\nnginx, the BPF programs' run time per request: %d ns unarmored, %d ns armored (%d ns added, %.1f%% of an armored request's %d ns)\n", pns["unarmored"], pns["armored"], pns["armored"] - pns["unarmored"], 100 * (pns["armored"] - pns["unarmored"]) / preq["armored"], preq["armored"]
	if ("nginx_cache_found_per_request" in m)
		printf "nginx under armor, the decision cache per request: %.3f opens found in it, %.3f decisions stored, %.3f keys with a kept mounts hash\n", m["nginx_cache_found_per_request"], m["nginx_cache_stored_per_request"], m["nginx_cache_kept_per_request"]
	# Each program that ran at least once in 100 requests, its runs and ns per request.
	nqp = 0
	for (p in qprogs)
		if (qruns["unarmored", p] + qruns["armored", p] >= 0.01) qlist[++nqp] = p
	for (i = 2; i <= nqp; i++) {
		v = qlist[i]
		for (j = i - 1; j >= 1 && qns["armored", qlist[j]] < qns["armored", v]; j--) qlist[j + 1] = qlist[j]
		qlist[j + 1] = v
	}
	if (nqp) printf "%-24s %11s %11s %11s %11s\n", "  per request", "runs unarm", "ns unarm", "runs armor", "ns armor"
	for (i = 1; i <= nqp; i++)
		printf "  %-22s %11.2f %11.0f %11.2f %11.0f\n", qlist[i], qruns["unarmored", qlist[i]], qns["unarmored", qlist[i]], qruns["armored", qlist[i]], qns["armored", qlist[i]]
	s0 = median("start" SUBSEP "0"); s1 = median("start" SUBSEP "1000")
	if (s0 != "") printf "\nunit start (oneshot, median): %d ms without rules, %d ms with 1,000\n", s0, s1
	# Ticks of 1/100 s in 10 s: a tick is 0.1 % of one CPU.
	if ("cpu_ticks_idle_10s" in m) printf "daemon CPU at idle: %.1f %% of a CPU with %d armored units", m["cpu_ticks_idle_10s"] / 10, m["armored_units"]
	if ("cpu_ticks_idle_10s_many" in m) printf ", %.1f %% with %d", m["cpu_ticks_idle_10s_many"] / 10, m["armored_units_many"]
	if ("cpu_ticks_idle_10s" in m) printf "\n"
	if ("cpu_ticks_flood_10s" in m) printf "daemon during a denial flood (%d denials in 10 s, one unit): %.1f %% of a CPU, %.1f MiB resident\n", m["flood_denied_10s"], m["cpu_ticks_flood_10s"] / 10, m["rss_kib_flood"] / 1024

	printf "\nper program (kernel.bpf_stats_enabled), ns per run\n%-16s %10s %10s %10s %10s\n", "program", "unarmored", "c10", "c1000", "c10000"
	split("unarmored c10 c1000 c10000", sc4, " ")
	for (p in progs) {
		line = sprintf("%-16s", p)
		for (c = 1; c <= 4; c++) {
			k = sc4[c] SUBSEP p
			line = line sprintf(" %10s", sc[k] ? sprintf("%.0f", sn[k] / sc[k]) : "-")
		}
		print line | "sort"
	}
	close("sort")

	if (nerr) {
		printf "\nINVALID RUN: %d failure(s)\n", nerr
		for (i = 1; i <= nerr; i++) printf "  %s\n", errors[i]
	}
	printf "\n%d target(s) met, %d missed\n", met, missed

	if (json == "") exit nerr ? 1 : 0
	printf "{\n  \"machine\": %s,\n  \"rounds\": %d,\n  \"median_ns\": {", jstr(head), rounds >json
	for (c = 1; c <= ncases; c++) {
		printf "%s\n    %s: {", (c > 1 ? "," : ""), jstr(cases[c]) >json
		first = 1
		for (o = 1; o <= nops; o++) {
			op = opname[o]
			if (med[cases[c], op] == "") continue
			printf "%s%s: %.0f", first ? "" : ", ", jstr(op), med[cases[c], op] >json
			first = 0
		}
		printf "}" >json
	}
	printf "\n  },\n  \"targets\": [" >json
	for (i = 1; i <= nt; i++)
		printf "%s\n    {\"target\": %s, \"met\": %s, \"detail\": %s}", (i > 1 ? "," : ""), jstr(tgt[i]), tok[i] == "n/a" ? "null" : (tok[i] ? "true" : "false"), jstr(tdet[i]) >json
	printf "\n  ],\n  \"program_ns_per_run\": {" >json
	first = 1
	for (p in progs) {
		printf "%s\n    %s: {", first ? "" : ",", jstr(p) >json
		first = 0
		f2 = 1
		for (c = 1; c <= 4; c++) {
			k = sc4[c] SUBSEP p
			if (!sc[k]) continue
			printf "%s%s: %.0f", f2 ? "" : ", ", jstr(sc4[c]), sn[k] / sc[k] >json
			f2 = 0
		}
		printf "}" >json
	}
	printf "\n  },\n  \"apply_ms\": {\"median\": %s, \"reload_median\": %s, \"bare_reload_median\": %s, \"floor_reload_median\": %s, \"added_median_of_pairs\": %s},\n", ap == "" ? "null" : ap, median("apply" SUBSEP "reload") == "" ? "null" : median("apply" SUBSEP "reload"), median("apply" SUBSEP "bare") == "" ? "null" : median("apply" SUBSEP "bare"), median("apply" SUBSEP "floor") == "" ? "null" : median("apply" SUBSEP "floor"), median("apply_added") == "" ? "null" : median("apply_added") >json
	printf "  \"start_ms\": {\"none\": %s, \"c1000\": %s},\n", s0 == "" ? "null" : s0, s1 == "" ? "null" : s1 >json
	printf "  \"nginx_rps\": {\"unarmored\": %s, \"armored\": %s, \"ratio\": %s},\n", nu == "" ? "null" : nu, na == "" ? "null" : na, nq == "" ? "null" : nq >json
	printf "  \"nginx_bpf_ns_per_request\": {\"unarmored\": %s, \"armored\": %s, \"request_ns\": %s},\n", ("unarmored" in pns) ? pns["unarmored"] : "null", ("armored" in pns) ? pns["armored"] : "null", ("armored" in preq) ? preq["armored"] : "null" >json
	printf "  \"nginx_bpf_per_program\": {" >json
	for (i = 1; i <= nqp; i++) printf "%s%s: {\"runs_unarmored\": %s, \"ns_unarmored\": %s, \"runs_armored\": %s, \"ns_armored\": %s}", (i > 1 ? ", " : ""), jstr(qlist[i]), qruns["unarmored", qlist[i]] + 0, qns["unarmored", qlist[i]] + 0, qruns["armored", qlist[i]] + 0, qns["armored", qlist[i]] + 0 >json
	printf "},\n" >json
	printf "  \"daemon\": {" >json
	for (i = 1; i <= nm; i++) printf "%s%s: %s", (i > 1 ? ", " : ""), jstr(mnames[i]), m[mnames[i]] >json
	printf "},\n  \"errors\": %d\n}\n", nerr >json
	exit nerr ? 1 : 0
}
