#!/usr/bin/env bash
# Regenerates the --tls-plaintext captures in testdata/captures/
# (tls-plaintext-*): cmd/wsdiag's TestLiveTLSPlaintextNginx, -HAProxy and
# -Apache run real nginx, haproxy and Apache httpd with TLS on 127.0.0.1,
# `wsdiag live --tls-plaintext -w` beside tcpdump, and keep
#
#   tls-plaintext-NAME.pcapng          live's -w file: the packets and the
#                                      proxy's TLS plaintext (exported PDUs)
#   tls-plaintext-NAME-tcpdump.pcap    tcpdump's recording of the same run
#   tls-plaintext-NAME-tcpdump.keylog  the clients' key log (Go, curl, Chromium)
#
# (MANIFEST-tlsplain.tsv says what they hold; it is written by hand.)
#
#   sudo testdata/gen/tlsplain.sh
#
# Needs root, BPF (Linux ≥ 5.8 with BTF), nginx, haproxy, apache2, tcpdump, curl,
# chromium. Uses 127.0.0.1 and free ports only.
set -euo pipefail
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
OUT=$(cd "$HERE/../captures" && pwd)
cd "$HERE/../.."
WSDIAG_SAVE_CAPTURES="$OUT" WSDIAG_REQUIRE_BROWSER=1 go test -count=1 -v -run 'TestLiveTLSPlaintext(Nginx|HAProxy|Apache)$' ./cmd/wsdiag
ls -l "$OUT"/tls-plaintext-*
