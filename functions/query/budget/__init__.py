"""The budget Lambda's AWS edges (docs/budget.md): its handler and its DynamoDB store. A package
of its own so that the query and reconcile Lambdas neither ship nor are granted its calls; the
pure rules it applies are query.pacing and query.budgets."""
