# shellcheck shell=bash
# Sourced by scripts/develop and scripts/demo (after lib.sh): the requirements a real Home
# Assistant needs beyond the test virtualenv.

DEPS="$CACHE/develop-deps"  # pip --prefix overlay of the latest venv, see ensure_ha_deps
# Requirements of the UI and of integrations HA loads whatever the configuration (base
# platforms). assist_pipeline's are left out: they need a C++ compiler on Python 3.14.
EXTRA_REQ_DOMAINS=(frontend conversation camera tts ffmpeg infrared radio_frequency)

# The frontend and the base platforms' requirements are not in the test virtualenv. They go to
# a --prefix overlay (put on PYTHONPATH) so that venv stays exactly its requirements file; its
# versions are passed as constraints so pip never replaces them. Versions come from HA's own
# manifests, so they follow the pin.
ensure_ha_deps() {
    local venv="$1" reqs stamp
    reqs="$(in_env "$venv/bin/python" -c '
import json, pathlib, sys, homeassistant.components as c
for d in sys.argv[1:]:
    print(*json.loads((pathlib.Path(c.__path__[0]) / d / "manifest.json").read_text())["requirements"])
' "${EXTRA_REQ_DOMAINS[@]}")"
    stamp="$(cat "$venv/.stamp") $(echo "$reqs" | sha256sum | cut -c1-16)"
    [[ -f "$DEPS/.stamp" && "$(cat "$DEPS/.stamp")" == "$stamp" ]] && return
    log "installing HA's frontend and base platform requirements into ${DEPS#"$REPO"/} (once, ~15 s)"
    rm -rf "$DEPS" "$DEPS.partial"
    mkdir -p "$DEPS.partial"
    in_env "$venv/bin/pip" freeze >"$DEPS.partial/venv-constraints.txt"
    # shellcheck disable=SC2086  # one requirement per word
    in_env "$venv/bin/pip" install -q --prefix "$DEPS.partial" -c "$DEPS.partial/venv-constraints.txt" $reqs ||
        die "installing HA's extra requirements failed"
    mv "$DEPS.partial" "$DEPS"
    echo "$stamp" >"$DEPS/.stamp"
}

# The overlay's site-packages, for PYTHONPATH.
ha_deps_path() {
    local path
    path="$(printf '%s:' "$DEPS"/lib*/python3*/site-packages)"
    [[ -d "${path%%:*}" ]] || die "no site-packages in ${DEPS#"$REPO"/}; delete it and run again"
    echo "${path%:}"
}
