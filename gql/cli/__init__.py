"""The ``recograph`` command line: one module per command group."""

from __future__ import annotations

import click

from gql.cli import data, db, evaluate, keys, meta, models, serve


@click.group()
def main() -> None:
    """Recograph: a recommendation engine with a GraphQL API."""


for command in (
    serve.serve,
    serve.trainer,
    db.db,
    data.import_,
    data.export,
    models.train,
    models.plugins,
    keys.keys,
    keys.user_tokens,
    evaluate.evaluate,
    evaluate.tune,
    meta.schema,
    meta.settings,
    meta.graphiql_assets_cmd,
):
    main.add_command(command)

if __name__ == "__main__":
    main()
