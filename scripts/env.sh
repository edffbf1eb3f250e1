# Sourced by the scripts: cargo's target dir lives outside the clone, so a
# clean clone on a warm machine rebuilds only what changed. (No compiler-cache
# wrapper: its server timing out at startup once failed a whole CI run, and the
# persistent target dir already gives warm builds.)
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-/var/tmp/duet-target}"
