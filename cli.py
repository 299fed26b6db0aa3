"""lookalike command line: the typer app, assembled from the command modules in `commands/`.

Each command parses options, builds configs and calls one library function; `commands.common` holds what they share
(option types, the one-line error handler, the store and eval setup).
"""

from __future__ import annotations

import warnings

import typer

from commands.dedup import dedup_command
from commands.evaluate import (
    bench_copies_command,
    eval_candidates_command,
    eval_copies_command,
    eval_oneshot_command,
    eval_pairs_command,
    eval_retrieval_command,
    submit_tll_command,
)
from commands.index import collections_command, encoders_command, ingest_command, query_command
from commands.store import store_migrate_command
from commands.training import finetune_command

app = typer.Typer(
    help="Find images that match (faces, characters, look-alikes, near-duplicates) by nearest-neighbour search.",
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
eval_app.command("candidates")(eval_candidates_command)
eval_app.command("oneshot")(eval_oneshot_command)
eval_app.command("pairs")(eval_pairs_command)
eval_app.command("retrieval")(eval_retrieval_command)
eval_app.command("copies")(eval_copies_command)
submit_app.command("tll")(submit_tll_command)
app.command("finetune")(finetune_command)
app.command("dedup")(dedup_command)
bench_app.command("copies")(bench_copies_command)
store_app.command("migrate")(store_migrate_command)


def main() -> None:
    """Console-script entry point."""
    app()


if __name__ == "__main__":
    main()
