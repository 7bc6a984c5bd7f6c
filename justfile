# devc-tasks: `just --list` shows every recipe.

# Tailscale in the devcontainer: just tailscale up|down|status|restart|logout|hostname|prune|doctor|compose|state [args]
mod tailscale 'devc_tasks/tailscale.just'

# Install the project and its test tools (editable)
[group('dev')]
setup:
    python3 -m pip install -e '.[test]'

# Run the test suite; pass pytest arguments, e.g. `just test -m unit`
[group('dev')]
[positional-arguments]
test *args:
    python3 -m pytest "$@"

# Print timings of the hot paths (needs the Docker engine)
[group('dev')]
bench:
    python3 -m bench.bench

# Set up and run the main job against a demo devcontainer
[group('dev')]
demo:
    bash scripts/demo
