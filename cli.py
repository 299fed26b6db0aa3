"""lookalike command line: the typer app, assembled from the command modules in `commands/`.

Each command parses options, builds configs and calls one library function; `commands.common` holds what they share
(option types, the one-line error handler, the store and eval setup).
"""

from __future__ import annotations

import signal
import sys
import warnings
from collections.abc import Sequence
from types import FrameType
from typing import Any

import typer
from typer._click.exceptions import NoArgsIsHelpError  # typer ≥ 0.29 vendors click as typer._click
from typer.core import TyperGroup

from commands.common import ExitCode
from commands.dedup import dedup_command
from commands.evaluate import (
    bench_copies_command,
    bench_mnist_command,
    eval_candidates_command,
    eval_copies_command,
    eval_oneshot_command,
    eval_pairs_command,
    eval_retrieval_command,
    submit_tll_command,
)
from commands.index import collections_command, encoders_command, ingest_command, query_command
from commands.maps import map_command
from commands.serve import serve_command
from commands.store import store_migrate_command
from commands.training import finetune_command


class _Terminated(KeyboardInterrupt):
    """SIGTERM, raised where Ctrl-C would be, so `kill` unwinds the same way: stores flushed and closed, locks and
    worker processes released, manifests rewritten."""


class LookalikeGroup(TyperGroup):
    """The top-level command: every error a user can cause is one `error: …` line on stderr with the README's exit
    code (2 usage, 130 Ctrl-C, 143 SIGTERM); click's multi-line usage block is kept for `--help` only."""

    def main(
        self,
        args: Sequence[str] | None = None,
        prog_name: str | None = None,
        complete_var: str | None = None,
        standalone_mode: bool = True,
        windows_expand_args: bool = True,
        **extra: Any,
    ) -> Any:
        received: list[int] = []

        def on_sigterm(signum: int, frame: FrameType | None) -> None:
            received.append(signum)
            raise _Terminated

        previous = signal.signal(signal.SIGTERM, on_sigterm)
        try:
            code = super().main(args, prog_name, complete_var, False, windows_expand_args, **extra)
        except NoArgsIsHelpError as e:
            e.show()
            code = ExitCode.USAGE
        except typer.TyperException as e:  # click's usage errors: bad option values, missing arguments, …
            ctx = getattr(e, "ctx", None)
            where = f" (see {ctx.command_path} --help)" if ctx is not None else ""
            typer.echo(f"error: {e.format_message()}{where}", err=True)
            code = ExitCode.USAGE
        except typer.Abort:  # EOF on a prompt
            code = ExitCode.INTERRUPTED
        finally:
            signal.signal(signal.SIGTERM, previous)
        code = _interrupted(code, bool(received))
        if standalone_mode:
            sys.exit(code or 0)
        return code


def _interrupted(code: Any, terminated: bool) -> Any:
    if code != ExitCode.INTERRUPTED:
        return code
    typer.echo("interrupted: what was done is kept (run the same command again to resume)", err=True)
    return ExitCode.TERMINATED if terminated else code


app = typer.Typer(
    cls=LookalikeGroup,
    help="Find images that match (faces, characters, look-alikes, near-duplicates) by nearest-neighbour search.",
    epilog="Exit codes: 0 done · 2 bad usage or refused (one error line) · 3 finished, but some inputs failed (see the "
    "report) · 130 Ctrl-C · 143 SIGTERM. Interrupted runs keep what was done; run the same command again to resume.",
    no_args_is_help=True,
    add_completion=False,
    rich_markup_mode=None,  # plain help: "[env X; default Y]" in option help is text, not rich markup
)


def _one_line_warning(message: Warning | str, category: type[Warning], *_: object, **__: object) -> str:
    """Warnings for users as one `warning: …` line, without the file, line number and source line."""
    return f"warning: {message}\n"


warnings.formatwarning = _one_line_warning
eval_app = typer.Typer(help="Measure accuracy through the same encoder → Qdrant → query path users get.")
app.add_typer(eval_app, name="eval")
submit_app = typer.Typer(help="Write leaderboard submissions through the same encoder → Qdrant → query path.")
app.add_typer(submit_app, name="submit")
store_app = typer.Typer(help="Look after the embedded store folder.")
app.add_typer(store_app, name="store")
bench_app = typer.Typer(help="Make benchmark sets: transformed copies with ground truth.")
app.add_typer(bench_app, name="bench")

app.command("encoders")(encoders_command)
app.command("ingest")(ingest_command)
app.command("query")(query_command)
app.command("collections")(collections_command)
app.command("map")(map_command)
eval_app.command("candidates")(eval_candidates_command)
eval_app.command("oneshot")(eval_oneshot_command)
eval_app.command("pairs")(eval_pairs_command)
eval_app.command("retrieval")(eval_retrieval_command)
eval_app.command("copies")(eval_copies_command)
submit_app.command("tll")(submit_tll_command)
app.command("finetune")(finetune_command)
app.command("dedup")(dedup_command)
app.command("serve")(serve_command)
bench_app.command("copies")(bench_copies_command)
bench_app.command("mnist")(bench_mnist_command)
store_app.command("migrate")(store_migrate_command)


def main() -> None:
    """Console-script entry point."""
    app()


if __name__ == "__main__":
    main()
