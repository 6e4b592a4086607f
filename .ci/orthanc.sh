#!/usr/bin/env bash
# Start a throw-away Orthanc PACS (DICOMweb + DIMSE) on 127.0.0.1 for the PACS tests and print
# where it is, one VAR=value line each:
#
#   RECIST_TEST_ORTHANC_URL=http://127.0.0.1:PORT            (REST; DICOMweb under /dicom-web)
#   RECIST_TEST_ORTHANC_DICOM=127.0.0.1:PORT                 (DIMSE: C-ECHO, C-FIND, C-GET, C-STORE)
#   RECIST_TEST_ORTHANC_AET=ORTHANC                          (the server's AE title)
#   RECIST_TEST_ORTHANC_CALLING_AET=RECIST                   (the one AE title it answers)
#   RECIST_TEST_ORTHANC_CREDENTIALS=/tmp/recist-orthanc.X/credentials.toml   (mode 600)
#   RECIST_TEST_ORTHANC_DIR=/tmp/recist-orthanc.X            (give it to --stop)
#
#   env=$(.ci/orthanc.sh)               # installs orthanc + orthanc-dicomweb (Debian) when missing
#   .ci/orthanc.sh --no-install         # ... or fail when they are missing (the pytest fixture)
#   .ci/orthanc.sh --stop [DIR]         # stop the server(s) this script started; remove their dirs
#   RECIST_ORTHANC_STORAGE_CACHE_MB=128 .ci/orthanc.sh   # Orthanc's storage cache (default here: 0)
#
# The storage folder, index and configuration are generated in a fresh temporary folder. HTTP
# needs a login (user `recist`, a random password) written to credentials.toml, readable by this
# user only; the server's own copy is in its configuration, readable by the server's user only.
# Orthanc 1.10 (Debian 12) cannot bind to one address: it listens on every interface, but refuses
# HTTP requests from other hosts (RemoteAccessAllowed false; "HttpBindAddresses" binds 127.0.0.1
# on Orthanc >= 1.12.10) and DICOM associations from any AE title or host other than RECIST on
# 127.0.0.1 (DicomCheckModalityHost, no DicomAlwaysAllow*). When run as root the server runs as
# the Debian package's `orthanc` user.
# Orthanc's storage cache (MaximumStorageCacheSize, 128 MB by default since 1.10) is off: a CT
# series larger than it (a 300-slice series is 150 MB) passes through it on every retrieve without
# a hit, each instance read from the storage and copied into the cache: 0.16-0.22 against
# 0.09-0.14 CPU s of the server per WADO-RS retrieve of that series (2026-12-04,
# benchmarks/README.md, PACS).
set -euo pipefail

log() { echo "orthanc.sh: $*" >&2; }

stop_dir() {
    local dir=$1
    if [[ -f "$dir/orthanc.pid" ]]; then
        local pid
        pid=$(cat "$dir/orthanc.pid")
        # only a process that is an Orthanc started with this folder's configuration
        if [[ -r "/proc/$pid/cmdline" ]] && tr '\0' ' ' <"/proc/$pid/cmdline" | grep -q "$dir/server/orthanc.json"; then
            kill "$pid" 2>/dev/null || true
            for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
            kill -9 "$pid" 2>/dev/null || true
        fi
    fi
    rm -rf "$dir"
}

if [[ "${1:-}" == "--stop" ]]; then
    if [[ -n "${2:-}" ]]; then
        [[ "$2" == /tmp/recist-orthanc.* ]] || { log "--stop: not a folder of this script: $2"; exit 1; }
        stop_dir "$2"
    else
        for dir in /tmp/recist-orthanc.*; do [[ -d "$dir" ]] && stop_dir "$dir"; done
    fi
    exit 0
fi

install=1
[[ "${1:-}" == "--no-install" ]] && install=0
storage_cache_mb=${RECIST_ORTHANC_STORAGE_CACHE_MB:-0}
[[ $storage_cache_mb =~ ^[0-9]+$ ]] || { log "RECIST_ORTHANC_STORAGE_CACHE_MB: not a number of MB: $storage_cache_mb"; exit 1; }

plugin=/usr/share/orthanc/plugins/libOrthancDicomWeb.so
if ! command -v Orthanc >/dev/null 2>&1 || [[ ! -e $plugin ]]; then
    if [[ $install -eq 0 ]]; then
        log "Orthanc or its DICOMweb plugin is not installed (Debian: orthanc orthanc-dicomweb)"; exit 1
    fi
    if [[ $(id -u) -ne 0 ]]; then
        log "Orthanc is not installed and this is not root: cannot apt-get install"; exit 1
    fi
    log "installing orthanc and orthanc-dicomweb from Debian packages"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq >&2
    apt-get install -y -qq --no-install-recommends orthanc orthanc-dicomweb >&2
fi
orthanc_bin=$(command -v Orthanc)

free_port() {
    python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

dir=$(mktemp -d /tmp/recist-orthanc.XXXXXX)
chmod 700 "$dir"
mkdir -m 700 "$dir/storage" "$dir/server"
password=$(python3 -c 'import secrets; print(secrets.token_urlsafe(18))')
(umask 077; printf 'username = "recist"\npassword = "%s"\n' "$password" >"$dir/credentials.toml")

as_server=()
if [[ $(id -u) -eq 0 ]] && id orthanc >/dev/null 2>&1; then
    as_server=(runuser -u orthanc --)
    chown orthanc "$dir/storage" "$dir/server"
    chmod 755 "$dir"   # the server's user must reach its folders; credentials.toml stays 600
fi

started=0
for attempt in 1 2 3; do
    http=$(free_port); dicom=$(free_port)
    [[ "$http" != "$dicom" ]] || continue
    (umask 077; cat >"$dir/server/orthanc.json" <<EOF
{
  "Name" : "recist-test",
  "StorageDirectory" : "$dir/storage",
  "IndexDirectory" : "$dir/storage",
  "Plugins" : [ "$plugin" ],
  "HttpPort" : $http,
  "HttpBindAddresses" : [ "127.0.0.1" ],
  "RemoteAccessAllowed" : false,
  "AuthenticationEnabled" : true,
  "RegisteredUsers" : { "recist" : "$password" },
  "HttpCompressionEnabled" : false,
  "OrthancExplorerEnabled" : false,
  "WebDavEnabled" : false,
  "ExecuteLuaEnabled" : false,
  "RestApiWriteToFileSystemEnabled" : false,
  "DicomServerEnabled" : true,
  "DicomAet" : "ORTHANC",
  "DicomPort" : $dicom,
  "DicomCheckCalledAet" : true,
  "DicomCheckModalityHost" : true,
  "DicomAlwaysAllowEcho" : false,
  "DicomAlwaysAllowStore" : false,
  "DicomAlwaysAllowFind" : false,
  "DicomAlwaysAllowGet" : false,
  "DicomAlwaysAllowMove" : false,
  "DicomModalities" : { "recist" : { "AET" : "RECIST", "Host" : "127.0.0.1", "Port" : 104 } },
  "StorageAccessOnFind" : "Never",
  "MaximumStorageCacheSize" : $storage_cache_mb,
  "MaximumPduLength" : 131072,
  "SaveJobs" : false,
  "StableAge" : 1,
  "DicomWeb" : { "Enable" : true, "Root" : "/dicom-web/", "EnableWado" : false,
                 "Host" : "127.0.0.1:$http", "Ssl" : false }
}
EOF
    )
    [[ ${#as_server[@]} -gt 0 ]] && chown orthanc "$dir/server/orthanc.json"
    "${as_server[@]}" "$orthanc_bin" "$dir/server/orthanc.json" >"$dir/orthanc.log" 2>&1 &
    pid=$!
    echo "$pid" >"$dir/orthanc.pid"
    for _ in $(seq 150); do
        if ! kill -0 "$pid" 2>/dev/null; then break; fi
        code=$(python3 - "$http" "$password" <<'PY' || true
import base64, sys, urllib.request
req = urllib.request.Request(f"http://127.0.0.1:{sys.argv[1]}/system")
req.add_header("Authorization", "Basic " + base64.b64encode(f"recist:{sys.argv[2]}".encode()).decode())
try:
    print(urllib.request.urlopen(req, timeout=1).status)
except Exception:
    print(0)
PY
        )
        if [[ "$code" == 200 ]]; then started=1; break; fi
        sleep 0.2
    done
    [[ $started -eq 1 ]] && break
    kill "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
    log "attempt $attempt failed; log tail:"; tail -5 "$dir/orthanc.log" >&2 || true
    rm -rf "$dir/storage"/*
done
if [[ $started -ne 1 ]]; then
    log "Orthanc did not start"; rm -rf "$dir"; exit 1
fi
# the pid file holds runuser's pid when run as root: record Orthanc's own
if [[ ${#as_server[@]} -gt 0 ]]; then
    child=$(pgrep -P "$pid" -x Orthanc || true)
    [[ -n "$child" ]] && echo "$child" >"$dir/orthanc.pid"
fi
log "running in $dir: HTTP 127.0.0.1:$http, DICOM 127.0.0.1:$dicom (stop: $0 --stop $dir)"
cat <<EOF
RECIST_TEST_ORTHANC_URL=http://127.0.0.1:$http
RECIST_TEST_ORTHANC_DICOM=127.0.0.1:$dicom
RECIST_TEST_ORTHANC_AET=ORTHANC
RECIST_TEST_ORTHANC_CALLING_AET=RECIST
RECIST_TEST_ORTHANC_CREDENTIALS=$dir/credentials.toml
RECIST_TEST_ORTHANC_DIR=$dir
EOF
