"""The `sweep` command: `run` is a Hydra app; the other subcommands read a sweep's folder."""

from __future__ import annotations

import os
import sys

USAGE = """usage: sweep <command> [args]

commands (and --version):
  run [overrides] [-m]     train one run, or a grid with -m (Hydra overrides: lr=1e-3,1e-2 optimizer=sgd,adam);
                           with cluster=slurm it returns once queued, or add --wait to block until done
  status SWEEP_DIR         table of a sweep's runs by status (see `sweep status --help`)
  collect SWEEP_DIR        one row per run as parquet/csv (see `sweep collect --help`)
  report SWEEP_DIR         plots and a summary table in the sweep's folder
  show SWEEP_DIR RUN_ID    one run: its config, summary, curve (and traceback)
  sync SWEEP_DIR           upload a sweep's runs to wandb (--offline: write wandb's offline files)
  check MODULE.CLS --like X  check your own optimizer against torch.optim's X (see `sweep check --help`)
  data fetch NAME          download a dataset (mnist, fashion_mnist, cifar10) into the shared cache, verified

`sweep run --help` lists the config groups and keys; `sweep run --cfg job` prints the resolved config.
Tab completion (bash): eval "$(sweep run -sc install=bash)"
"""


# Hydra's command-line flags that take a value (`--config-dir DIR`); `--info` takes one only from its choices.
HYDRA_VALUE_FLAGS = {
    "--config-path",
    "-cp",
    "--config-name",
    "-cn",
    "--config-dir",
    "-cd",
    "--cfg",
    "-c",
    "--package",
    "-p",
    "--experimental-rerun",
}
HYDRA_INFO_FLAGS = {"--info", "-i"}
HYDRA_INFO_CHOICES = {"all", "config", "defaults", "defaults-tree", "plugins", "searchpath"}
# Characters with a meaning in Hydra's override grammar: a value holding one is left as the user wrote it.
_GRAMMAR_CHARS = set("[]{}()'\"\\$ \t")


def split_flags(args: list[str]) -> tuple[list[str], list[str]]:
    """(flags with the values they take, overrides) of `run`'s arguments, each in its order: passed to Hydra as
    flags + overrides.

    Hydra's argparse reads the overrides as one positional list, so a flag after an override
    (`sweep run -m lr=1,2 --config-dir DIR cluster=mylab`, as the README writes it) made the overrides after it
    "unrecognized arguments". Overrides never start with '-', so every '-' word is a flag."""
    flags: list[str] = []
    overrides: list[str] = []
    i = 0
    while i < len(args):
        a = args[i]
        if not a.startswith("-"):
            overrides.append(a)
            i += 1
            continue
        flags.append(a)
        takes_value = a in HYDRA_VALUE_FLAGS or (
            a in HYDRA_INFO_FLAGS and i + 1 < len(args) and args[i + 1] in HYDRA_INFO_CHOICES
        )
        if takes_value and i + 1 < len(args):
            flags.append(args[i + 1])
            i += 1
        i += 1
    return flags, overrides


def quote_non_ascii(override: str) -> str:
    """`name=日本語` -> `name='日本語'`: Hydra's lexer accepts non-ASCII text only quoted. Each element of a sweep
    (`name=a,日本`) is quoted alone; a value with other grammar (lists, quotes, interpolations) is left as is,
    and Hydra's error then says to quote it (sweep.errors)."""
    key, eq, value = override.partition("=")
    if not eq or value.isascii() or any(ch in _GRAMMAR_CHARS for ch in value):
        return override
    return key + "=" + ",".join(e if e.isascii() or not e else f"'{e}'" for e in value.split(","))


HYDRA_OUTPUT_KEYS = ("hydra.run.dir", "hydra.sweep.dir", "hydra.sweep.subdir", "hydra.output_subdir")


def refuse_output_dirs(overrides: list[str]) -> None:
    """Hydra's output folders are not where sweep writes: `hydra.run.dir=...` was ignored without a word (an
    empty folder appeared). One line saying where results go instead, before Hydra makes any folder."""
    for o in overrides:
        key = o.partition("=")[0].lstrip("+~")
        if key in HYDRA_OUTPUT_KEYS:
            from sweep.errors import fail

            fail(f"{key} is not where sweep writes: results go to out_dir/name/ (set out_dir=DIR and name=NAME)")


def main(argv: list[str] | None = None) -> None:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] in ("-h", "--help", "help"):
        print(USAGE)
        return
    if argv[0] in ("-V", "--version"):
        from sweep import __version__

        print(f"sweep {__version__}")
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
        flags, overrides = split_flags(rest)
        refuse_output_dirs(overrides)
        rest = [*flags, *(quote_non_ascii(o) for o in overrides)]
        sys.argv = ["sweep", *rest]
        from sweep.app import main as run_app

        run_app()
        return
    commands = {
        "status": "sweep.status",
        "collect": "sweep.collect",
        "report": "sweep.report",
        "show": "sweep.show",
        "sync": "sweep.sync",
        "check": "sweep.check",
        "data": "sweep.data.command",
    }
    if command not in commands:
        from sweep.errors import fail

        fail(f"unknown command '{command}'; choices: run, {', '.join(commands)}")
    import importlib

    module = importlib.import_module(commands[command])
    module.main(rest)


if __name__ == "__main__":
    main()
