"""`mlv dag`."""

from __future__ import annotations

import json

import click

from mlv.cli import output


@click.command("dag")
@click.argument("stages", nargs=-1, metavar="[STAGE]...")
@click.option("--dot", is_flag=True, help="Graphviz dot.")
@click.option("--mermaid", is_flag=True, help="A Mermaid flowchart.")
@click.option("--downstream", is_flag=True, help="The named stages and what depends on them.")
def dag_cmd(stages: tuple[str, ...], dot: bool, mermaid: bool, downstream: bool) -> None:
    """Show how stages depend on each other (all, or the STAGEs named and what they need).

    Plain text lists the stages in run order, each with the stages whose outputs it reads.
    Stages that foreach or matrix generate are named GROUP@KEY (`train@0.1`); a GROUP
    names all of its stages.
    """
    if dot and mermaid:
        raise click.UsageError("--dot and --mermaid exclude each other")
    from mlv.core.pipeline.repro import load_graph
    from mlv.core.repo import Repo

    repo = Repo.open()
    try:
        graph = load_graph(repo)
    finally:
        repo.close()
    names = graph.select(stages, downstream)
    chosen = set(names)
    edges = [(p, n) for n in names for p in graph.parents[n] if p in chosen]
    if dot:
        lines = ["strict digraph {"]
        lines += [f"  {json.dumps(n)};" for n in names]
        lines += [f"  {json.dumps(a)} -> {json.dumps(b)};" for a, b in edges]
        lines.append("}")
    elif mermaid:
        ids = {n: f"s{i}" for i, n in enumerate(names)}
        lines = ["flowchart TD"]
        lines += [f'  {ids[n]}["{_mermaid(n)}"]' for n in names]
        lines += [f"  {ids[a]} --> {ids[b]}" for a, b in edges]
    else:
        rows = []
        for n in names:
            needs = [p for p in graph.parents[n] if p in chosen]
            rows.append([n, f"<- {', '.join(needs)}"] if needs else [n])
        lines = output.columns(rows)
    output.out("\n".join(lines))


def _mermaid(name: str) -> str:
    return name.replace('"', "#quot;")
