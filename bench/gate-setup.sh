# Sourced by the benchmarks that drive a daemon with wrk (audit.sh, verify.sh): finds the release binary (or
# CUSTODY_BIN) as $custody, and installs wrk from Debian if it is missing.
custody=${CUSTODY_BIN:-"$(swift build -c release --product custody --show-bin-path)/custody"}
[ -x "$custody" ] || { echo "build first: make release" >&2; exit 2; }
if ! command -v wrk >/dev/null; then
  sudo=""; [ "$(id -u)" -eq 0 ] || sudo=sudo
  $sudo apt-get update -qq && DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq wrk >/dev/null
fi
