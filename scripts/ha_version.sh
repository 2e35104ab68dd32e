# shellcheck shell=bash
# Sourced by scripts/develop, scripts/demo and scripts/verify-ha (after lib.sh and ha_deps.sh):
# which Home Assistant runs. `use_ha VERSION` sets VENV and HA_RUN_VERSION and gives the
# version overlays of its own (ha_deps.sh's DEPS and VOICE_DEPS):
#
#   latest, 2026.10.4 (or empty)   the latest test virtualenv, overlays .cache/develop-deps etc.
#   min, 2026.3.1                  the min test virtualenv
#   any other YEAR.MONTH.PATCH     .cache/venvs/ha-VERSION: homeassistant==VERSION from the package
#                                  index and the integration's requirements, nothing else
#
# The test virtualenvs are only ever created by ensure_venv (as scripts/test does), never changed.

use_ha() {
    local want="${1:-latest}" pin=""
    case "$want" in
        latest | "${HA_VERSION[latest]}") pin=latest ;;
        min | "${HA_VERSION[min]}") pin=min ;;
    esac
    if [[ -n "$pin" ]]; then
        ensure_venv "$pin"
        VENV="$(venv_dir "$pin")"
        HA_RUN_VERSION="${HA_VERSION[$pin]}"
    else
        [[ "$want" =~ ^20[0-9]{2}\.[0-9]{1,2}\.[0-9]+$ ]] ||
            die "Home Assistant version '$want': use latest, min or a release such as 2026.11.0"
        ensure_ha_venv "$want"
        VENV="$(venv_dir "ha-$want")"
        HA_RUN_VERSION="$want"
    fi
    if [[ "$pin" != latest ]]; then  # latest keeps the overlay directories it always had
        DEPS="$CACHE/develop-deps-$HA_RUN_VERSION"
        VOICE_DEPS="$CACHE/voice-deps-$HA_RUN_VERSION"
    fi
}

# A virtualenv with Home Assistant VERSION as a user installs it (pip install homeassistant).
ensure_ha_venv() {
    local version="$1" venv reqs stamp
    venv="$(venv_dir "ha-$version")"
    reqs="homeassistant==$version $(
        sed -n 's/.*"requirements": *\[\(.*\)\].*/\1/p' "$REPO/custom_components/spotify_scrobbler/manifest.json" | tr -d '",'
    )"
    stamp="$PY_MODE $PY_BIN $reqs"
    [[ -f "$venv/.stamp" && "$(cat "$venv/.stamp")" == "$stamp" ]] && return
    log "creating a virtualenv with Home Assistant $version in ${venv#"$REPO"/} (once, ~2 min)"
    rm -rf "$venv"
    mkdir -p "$(dirname "$venv")"
    in_env "$PY_BIN" -m venv "$venv"
    in_env "$venv/bin/pip" install -q --upgrade pip
    # shellcheck disable=SC2086  # one requirement per word
    in_env "$venv/bin/pip" install -q $reqs || { rm -rf "$venv"; die "installing Home Assistant $version failed"; }
    echo "$stamp" >"$venv/.stamp"
}

# A configuration directory as a new installation has it: Home Assistant's own default files
# (`hass --script ensure_config`: default_config:, the automation/script/scene includes and
# their empty files), then the lines in EXTRA (stdin) appended.
write_default_config() {
    local dir="$1"
    mkdir -p "$dir"
    in_env "$VENV/bin/hass" --script ensure_config -c "$dir" >/dev/null ||
        die "Home Assistant could not create a default configuration in $dir"
    [[ -f "$dir/automations.yaml" ]] || die "no automations.yaml in $dir after ensure_config"
    cat >>"$dir/configuration.yaml"
}
