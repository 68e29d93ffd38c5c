"""Loading a rebuild from the archive into the serving table (docs/rebuild.md): the loader
(local/rebuild.py runs it in one process) and the rebuild state machine's Lambdas (handlers.py;
their own roles, with the DeleteItem the late sweep needs: the sink ships serving/write only, so
its role keeps none)."""
