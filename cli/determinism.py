"""The determinism check's part of the CLI: the ``--strict`` option and its warnings.

``engine check``, ``flows sync``, ``run`` and ``dev`` print each call in flow source
that differs between runs as one line on stderr (``file:line: what; use X instead``);
with ``--strict`` they are errors and the command exits non-zero.
"""

from __future__ import annotations

import click

from engine.determinism import ALLOW_MARKER, Finding, NondeterministicFlowError

strict_option = click.option(
    "--strict", is_flag=True,
    help=f"Calls in flow source that differ between runs are errors, not warnings (`# {ALLOW_MARKER}` on a line allows it).",
)


def echo_findings(findings: list[Finding]) -> None:
    """Each finding on one line of stderr."""
    for finding in findings:
        click.echo(finding.text(), err=True)


def report_findings(findings: list[Finding], strict: bool, consequence: str) -> None:
    """Print the findings; with ``strict``, refuse (one-line error, non-zero exit) if there are any."""
    echo_findings(findings)
    if strict and findings:
        raise NondeterministicFlowError(findings, consequence)
