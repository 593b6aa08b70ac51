"""``llmdeploy completion SHELL``: print the shell completion script (kubectl/helm style).

``source <(llmdeploy completion bash)`` in ``~/.bashrc`` (zsh: ``source <(llmdeploy
completion zsh)``; fish: ``llmdeploy completion fish | source``). The script calls
llmdeploy back with ``_LLMDEPLOY_COMPLETE=complete_<shell>`` and the words typed so far;
typer/click answers with the commands, options and choices of the real command tree, so
completion can never drift from the CLI. Nothing is written to the user's rc files.
"""

# No `from __future__ import annotations` here: typer reads the annotations of the command
# defined inside register().
import sys
from typing import TYPE_CHECKING

from .cli_common import EXIT_OK, fail_usage

if TYPE_CHECKING:  # pragma: no cover
    import typer

SHELLS = ("bash", "zsh", "fish")
PROG = "llmdeploy"
COMPLETE_VAR = "_LLMDEPLOY_COMPLETE"


def script(shell: str) -> str:
    """The completion script for ``shell`` (typer's, bound to llmdeploy's completion variable)."""
    from typer.completion import get_completion_script

    return get_completion_script(prog_name=PROG, complete_var=COMPLETE_VAR, shell=shell)


def run(shell: str) -> int:
    """Print the completion script of ``shell``; usage error for an unknown shell."""
    if shell not in SHELLS:
        fail_usage(f"no completion for shell {shell!r}; choose {', '.join(SHELLS)}")
    text = script(shell)
    sys.stdout.write(text if text.endswith("\n") else text + "\n")
    return EXIT_OK


def register(app: "typer.Typer") -> None:
    """Add the completion command to ``app``."""
    from typing import Annotated

    import typer

    @app.command("completion")
    def completion(
        shell: Annotated[str, typer.Argument(help="bash, zsh or fish.", metavar="SHELL")],
    ) -> None:
        """Print the shell completion script: `source <(llmdeploy completion bash)`."""
        raise typer.Exit(run(shell))
