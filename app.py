#!/usr/bin/env python3
"""CDK entry point: `npx cdk synth` (cdk.json runs this with the project venv).

Settings come from context (infra/settings.py): `-c key=value` beats the deployment profile
(`-c profile=small|medium|large`: the capacity planner's values, capacity/profiles.py), which
beats cdk.json's "clickagg:defaults", which beats the schema's defaults (functions/common/schema.py).
E.g. `npx cdk deploy -c profile=large -c kinesis_shards=700`.

cdk-nag's AwsSolutions pack runs as a CDK validation plugin: an unacknowledged finding fails
the synth. Acknowledgements live next to the construct they concern, each with its reason.
"""
from __future__ import annotations

import os
import sys
from pathlib import Path

# functions/ on sys.path: infra imports common.config, the module the Lambdas bundle as `common`.
sys.path.insert(0, str(Path(__file__).resolve().parent / "functions"))

from aws_cdk import App, Environment, Validations  # noqa: E402
from cdk_nag import AwsSolutionsChecks  # noqa: E402

from infra.settings import StackSettings  # noqa: E402
from infra.stack import ClickAggStack  # noqa: E402


def build_app(app: App | None = None, *, nag: bool = True) -> App:
    """The app with the stack (and cdk-nag); tests pass their own App(context=...)."""
    app = app or App()
    settings = StackSettings.from_context(app.node)
    ClickAggStack(
        app, "ClickAgg",
        # Named when it held only the ingest path; kept so a deployed stack updates in place.
        stack_name=f"{settings.prefix}-ingest",
        settings=settings,
        env=Environment(account=os.environ.get("CDK_DEFAULT_ACCOUNT"),
                        region=os.environ.get("CDK_DEFAULT_REGION")),
    )
    if nag:
        Validations.of(app).add_plugins(AwsSolutionsChecks(app))
    return app


if __name__ == "__main__":
    build_app().synth()
