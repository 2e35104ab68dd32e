# shellcheck shell=bash
# Sourced by scripts/develop and scripts/demo (after lib.sh): the requirements a real Home
# Assistant needs beyond the test virtualenv. ensure_ha_deps VENV installs them; ha_deps_path
# is what goes on PYTHONPATH.

DEPS="$CACHE/develop-deps"  # pip --prefix overlay of the latest venv, see ensure_ha_deps
# Requirements of the UI and of integrations HA loads whatever the configuration (base
# platforms), of default_config and what it depends on (the generated configurations use it, as
# a default installation does), and of those onboarding sets up (met, radio_browser,
# google_translate), which otherwise fill the log with import errors. assist_pipeline's need a
# C++ compiler: see below.
EXTRA_REQ_DOMAINS=(frontend conversation camera tts ffmpeg infrared radio_frequency
    default_config met radio_browser google_translate)

# The frontend and the base platforms' requirements are not in the test virtualenv. They go to
# a --prefix overlay (put on PYTHONPATH) so that venv stays exactly its requirements file; its
# versions are passed as constraints so pip never replaces them. Versions come from HA's own
# manifests, so they follow the pin.
ensure_ha_deps() {
    local venv="$1" reqs stamp
    # The domains and their (after_)dependencies, transitively, as HA's requirements manager
    # takes them. Packages the venv already has are left out (HA runs with --skip-pip, as the
    # tests do): a pin of theirs may differ from HA's.
    reqs="$(in_env "$venv/bin/python" -c '
import importlib.metadata as md, json, pathlib, re, sys, homeassistant.components as c
todo, seen, out = sys.argv[1:], set(), []
while todo:
    if (d := todo.pop()) in seen or d == "assist_pipeline":
        continue
    seen.add(d)
    if not (path := pathlib.Path(c.__path__[0]) / d / "manifest.json").exists():
        continue  # not in this HA version (infrared and radio_frequency are newer than 2026.3)
    manifest = json.loads(path.read_text())
    todo += manifest.get("dependencies", []) + manifest.get("after_dependencies", [])
    for req in manifest.get("requirements", []):
        try:
            md.version(re.split(r"[<>=!~\[; ]", req)[0])
        except md.PackageNotFoundError:
            out.append(req)
print(*sorted(set(out)))
' "${EXTRA_REQ_DOMAINS[@]}")"
    stamp="$(cat "$venv/.stamp") $(echo "$reqs" | sha256sum | cut -c1-16)"
    if [[ ! -f "$DEPS/.stamp" || "$(cat "$DEPS/.stamp")" != "$stamp" ]]; then
        log "installing HA's frontend and base platform requirements into ${DEPS#"$REPO"/} (once, ~15 s)"
        rm -rf "$DEPS" "$DEPS.partial"
        mkdir -p "$DEPS.partial"
        in_env "$venv/bin/pip" freeze >"$DEPS.partial/venv-constraints.txt"
        # shellcheck disable=SC2086  # one requirement per word
        in_env "$venv/bin/pip" install -q --prefix "$DEPS.partial" -c "$DEPS.partial/venv-constraints.txt" $reqs ||
            die "installing HA's extra requirements failed"
        mv "$DEPS.partial" "$DEPS"
        echo "$stamp" >"$DEPS/.stamp"
    fi
    ensure_voice_deps "$venv"
}

# The frontend stays on "Loading..." unless assist_pipeline imports (HA's service descriptions
# import it), and its requirements build from source on Python 3.14: a C++ compiler, once.
VOICE_DEPS="$CACHE/voice-deps"
ensure_voice_deps() {
    local venv="$1" reqs stamp
    reqs="$(in_env "$venv/bin/python" -c '
import json, pathlib, homeassistant.components as c
print(*json.loads((pathlib.Path(c.__path__[0]) / "assist_pipeline" / "manifest.json").read_text())["requirements"])
')"
    stamp="$(cat "$DEPS/.stamp") $reqs"
    [[ -f "$VOICE_DEPS/.stamp" && "$(cat "$VOICE_DEPS/.stamp")" == "$stamp" ]] && return
    if [[ "$PY_MODE" == chroot ]] && ! in_env sh -c 'command -v g++' >/dev/null; then
        log "installing g++ into the Debian rootfs (once)"
        # A snapshot mirror's Release file may be past its Valid-Until date.
        in_env apt-get -o Acquire::Check-Valid-Until=false update -qq
        in_env env DEBIAN_FRONTEND=noninteractive apt-get -o Acquire::Check-Valid-Until=false \
            install -y -qq --no-install-recommends g++ >/dev/null
    fi
    log "building assist_pipeline's requirements into ${VOICE_DEPS#"$REPO"/} (once, ~30 s)"
    rm -rf "$VOICE_DEPS" "$VOICE_DEPS.partial"
    # shellcheck disable=SC2086  # one requirement per word
    in_env "$venv/bin/pip" install -q --prefix "$VOICE_DEPS.partial" -c "$DEPS/venv-constraints.txt" $reqs ||
        die "building assist_pipeline's requirements failed (they need a C++ compiler)"
    mv "$VOICE_DEPS.partial" "$VOICE_DEPS"
    echo "$stamp" >"$VOICE_DEPS/.stamp"
}

# The overlays' site-packages, for PYTHONPATH.
ha_deps_path() {
    local path
    path="$(printf '%s:' "$DEPS"/lib*/python3*/site-packages "$VOICE_DEPS"/lib*/python3*/site-packages)"
    [[ -d "${path%%:*}" ]] || die "no site-packages in ${DEPS#"$REPO"/}; delete it and run again"
    echo "${path%:}"
}
