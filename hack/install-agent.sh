#!/usr/bin/env bash
# Installs drover-agent on this host, registers the host with a Drover cluster and starts the agent
# under systemd - what ECS Anywhere's install script does for the ECS agent.
#
#   sudo hack/install-agent.sh --server https://drover.example.com:6443 --ca-cert-hash sha256:<hex> \
#     --activation-id <namespace>/<name> --activation-code <code> [--binary ./bin/drover-agent]
#
# `drover activation create` prints these values. The code can be passed in DROVER_ACTIVATION_CODE
# instead of --activation-code; it is never printed.
set -euo pipefail

usage() {
  cat <<'EOF'
Usage: install-agent.sh --server URL --ca-cert-hash sha256:HEX --activation-id NAMESPACE/NAME
                        --activation-code CODE [options]

Installs drover-agent to /usr/local/bin, writes the systemd unit drover-agent.service, registers
this host and starts the agent.

Options:
  --server URL            Drover control plane URL (https://...)
  --ca-cert-hash HASH     hash of the control plane's CA, sha256:<64 hex digits>
  --activation-id ID      activation, as <namespace>/<name>
  --activation-code CODE  the activation's code (or set DROVER_ACTIVATION_CODE)
  --binary PATH           drover-agent binary to install (default: bin/drover-agent beside this
                          script's repository, else drover-agent on PATH)
  --state-dir DIR         where the agent keeps its identity (default /var/lib/drover)
  --hostname NAME         hostname to register with (default: this host's name)
  --force                 register again even if the state dir holds a registration
  --prefix DIR            install under DIR instead of / and do not touch systemd (for packaging
                          and tests); the unit still refers to the final paths
  --dry-run               print what would be done, change nothing
  -h, --help              show this help
EOF
}

die() {
  echo "install-agent.sh: $*" >&2
  exit 1
}

server=""
ca_cert_hash=""
activation_id=""
activation_code="${DROVER_ACTIVATION_CODE:-}"
binary=""
state_dir="/var/lib/drover"
hostname_arg=""
force=0
prefix=""
dry_run=0

# value FLAG "$@": the value after FLAG, or fail. Never prints the value.
value() {
  [[ $# -ge 3 && -n "$3" && "$3" != --* ]] || die "$1 needs a value"
  printf '%s' "$3"
}

while [[ $# -gt 0 ]]; do
  case "$1" in
    --server) server="$(value "$1" "$@")"; shift 2 ;;
    --ca-cert-hash) ca_cert_hash="$(value "$1" "$@")"; shift 2 ;;
    --activation-id) activation_id="$(value "$1" "$@")"; shift 2 ;;
    --activation-code) activation_code="$(value "$1" "$@")"; shift 2 ;;
    --binary) binary="$(value "$1" "$@")"; shift 2 ;;
    --state-dir) state_dir="$(value "$1" "$@")"; shift 2 ;;
    --hostname) hostname_arg="$(value "$1" "$@")"; shift 2 ;;
    --prefix) prefix="$(value "$1" "$@")"; shift 2 ;;
    --force) force=1; shift ;;
    --dry-run) dry_run=1; shift ;;
    -h | --help) usage; exit 0 ;;
    --server=* | --ca-cert-hash=* | --activation-id=* | --activation-code=* | --binary=* | --state-dir=* | --hostname=* | --prefix=*)
      flag="${1%%=*}"
      set -- "$flag" "${1#*=}" "${@:2}"
      ;;
    *) die "unknown argument '${1%%=*}' (see --help)" ;;
  esac
done

errors=()
[[ "$server" =~ ^https://[^/?#[:space:]]+/?$ ]] || errors+=("--server must be an https URL such as https://drover.example.com:6443")
[[ "$ca_cert_hash" =~ ^sha256:[0-9a-fA-F]{64}$ ]] || errors+=("--ca-cert-hash must be sha256: followed by 64 hex digits")
[[ "$activation_id" =~ ^[a-z0-9]([-a-z0-9]*[a-z0-9])?/[a-z0-9]([-.a-z0-9]*[a-z0-9])?$ ]] || errors+=("--activation-id must be <namespace>/<name>")
[[ -n "$activation_code" ]] || errors+=("--activation-code (or DROVER_ACTIVATION_CODE) is required")
[[ "$state_dir" == /* ]] || errors+=("--state-dir must be an absolute path")
[[ -z "$prefix" || "$prefix" == /* ]] || errors+=("--prefix must be an absolute path")
if [[ -z "$binary" ]]; then
  repo_bin="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)/bin/drover-agent"
  if [[ -x "$repo_bin" ]]; then
    binary="$repo_bin"
  else
    binary="$(command -v drover-agent || true)"
  fi
fi
[[ -n "$binary" && -f "$binary" && -x "$binary" ]] || errors+=("--binary must name the drover-agent executable (build it with 'make build')")
if [[ ${#errors[@]} -gt 0 ]]; then
  printf 'install-agent.sh: %s\n' "${errors[@]}" >&2
  echo "See install-agent.sh --help." >&2
  exit 2
fi
if [[ $dry_run -eq 0 && -z "$prefix" && $EUID -ne 0 ]]; then
  die "run as root (sudo), or use --dry-run or --prefix"
fi

installed_binary="/usr/local/bin/drover-agent"
unit_path="/etc/systemd/system/drover-agent.service"

# run CMD...: runs CMD, or prints it with --dry-run.
run() {
  if [[ $dry_run -eq 1 ]]; then
    printf '+'
    printf ' %q' "$@"
    printf '\n'
  else
    "$@"
  fi
}

echo "Installing drover-agent to ${prefix}${installed_binary}"
run install -d -m 0755 "${prefix}/usr/local/bin"
run install -m 0755 "$binary" "${prefix}${installed_binary}"

echo "Writing the systemd unit ${prefix}${unit_path}"
run install -d -m 0755 "${prefix}/etc/systemd/system"
unit="$("$binary" systemd-unit --binary "$installed_binary" --state-dir "$state_dir")"
if [[ $dry_run -eq 1 ]]; then
  printf '+ write %q:\n%s\n' "${prefix}${unit_path}" "$unit"
else
  tmp="$(mktemp "${prefix}${unit_path}.XXXXXX")"
  printf '%s\n' "$unit" >"$tmp"
  chmod 0644 "$tmp"
  mv -f "$tmp" "${prefix}${unit_path}"
fi

register=("${prefix}${installed_binary}" register --server "$server" --ca-cert-hash "$ca_cert_hash"
  --activation-id "$activation_id" --state-dir "${prefix}${state_dir}")
[[ -z "$hostname_arg" ]] || register+=(--hostname "$hostname_arg")
[[ $force -eq 0 ]] || register+=(--force)
if [[ $force -eq 0 && -f "${prefix}${state_dir}/config.json" ]]; then
  echo "This host is already registered (${prefix}${state_dir}/config.json); not registering again (use --force to)."
else
  echo "Registering this host with activation $activation_id"
  if [[ $dry_run -eq 1 ]]; then
    # The code goes through the environment, not the command line; it is not shown.
    printf '+ DROVER_ACTIVATION_CODE=<hidden>'
    printf ' %q' "${register[@]}"
    printf '\n'
  else
    DROVER_ACTIVATION_CODE="$activation_code" "${register[@]}"
  fi
fi

if [[ -z "$prefix" && -d /run/systemd/system ]] && command -v systemctl >/dev/null 2>&1; then
  echo "Starting drover-agent.service"
  was_active=0
  if systemctl is-active --quiet drover-agent.service; then was_active=1; fi
  run systemctl daemon-reload
  run systemctl enable --now drover-agent.service
  # A running agent picks up a newly installed binary.
  [[ $was_active -eq 0 ]] || run systemctl restart drover-agent.service
  echo "Done. Check the agent with: systemctl status drover-agent; journalctl -u drover-agent -f"
else
  echo "Done. systemd is not managing this installation; run the agent with:"
  printf ' '
  printf ' %q' "$installed_binary" run --state-dir "$state_dir"
  printf '\n'
fi
