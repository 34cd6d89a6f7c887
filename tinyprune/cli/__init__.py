"""What the commands (run, sweep, sensitivity, export_c) share: option types, shared flags,
and the configuration built from them. Nothing below the commands takes an argparse Namespace."""
