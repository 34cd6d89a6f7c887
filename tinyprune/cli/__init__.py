"""Stage 9, the commands: run (and deep_compress, its recipe), sweep, sensitivity, lottery,
export_c and report, each with a main(); the run's phases (pipeline.py); the options they
share and the configs built from them (options.py, types.py). Nothing below takes an argparse
Namespace. `python -m tinyprune.<name>` runs them through the shims at the package root."""
