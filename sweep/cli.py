"""The `sweep` command: `run` is a Hydra app; the other subcommands read a sweep's folder."""
from __future__ import annotations

import os
import sys

USAGE = """usage: sweep <command> [args]

commands:
  run [overrides] [-m]     train one run, or a grid with -m (Hydra overrides: lr=1e-3,1e-2 optimizer=sgd,adam);
                           with cluster=slurm it returns once queued, or add --wait to block until done
  status SWEEP_DIR         table of a sweep's runs by status (see `sweep status --help`)
  collect SWEEP_DIR        one row per run as parquet/csv (see `sweep collect --help`)
  report SWEEP_DIR         plots and a summary table in the sweep's folder
  sync SWEEP_DIR           upload a sweep's offline wandb runs

`sweep run --help` lists the config groups and keys; `sweep run --cfg job` prints the resolved config.
Tab completion (bash): eval "$(sweep run -sc install=bash)"
"""


def main(argv: list[str] | None = None) -> None:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] in ("-h", "--help", "help"):
        print(USAGE)
        return
    command, rest = argv[0], argv[1:]
    if command in ("-sc", "--shell-completion"):
        # Hydra's completion script calls `sweep -sc query=bash` with the whole line in COMP_LINE: drop "run"
        # so Hydra completes `sweep run <overrides>` as if `run` were the program.
        line = os.environ.get("COMP_LINE", "")
        words = line.split(" ", 2)
        if len(words) >= 2 and words[1] == "run":
            os.environ["COMP_LINE"] = " ".join([words[0], *words[2:]])
            os.environ["COMP_POINT"] = str(max(0, int(os.environ.get("COMP_POINT", len(line))) - 4))
        command, rest = "run", argv
    if command == "run":
        # `--wait` (block until a SLURM sweep is done) is sweep's flag, not Hydra's: pass it as a config value.
        rest = ["cluster.wait=true" if a == "--wait" else a for a in rest]
        sys.argv = ["sweep", *rest]
        from sweep.app import run
        from sweep.errors import fail, one_line

        try:
            run()
        except ValueError as e:  # raised by Hydra before its own error reporting starts
            msg = one_line(e)
            if msg is None:
                raise
            fail(msg)
        return
    commands = {"status": "sweep.status", "collect": "sweep.collect", "report": "sweep.report",
                "sync": "sweep.sync"}
    if command not in commands:
        from sweep.errors import fail

        fail(f"unknown command '{command}'; choices: run, {', '.join(commands)}")
    import importlib

    module = importlib.import_module(commands[command])
    module.main(rest)


if __name__ == "__main__":
    main()
