"""Marks shared by test modules.

`make test-main` runs the main suite on two pytest-xdist workers (`--dist loadgroup`): most
tests are single-threaded Python against in-process moto, so two workers use both cores. The
tests that run the Flink job on a local stack (a JVM at parallelism 2, moto server, the API) are
one group, run one after another on one worker: two such stacks at once on 2 cores would starve
each other's checkpoints and timeouts."""
import pytest

FLINK_STACK = pytest.mark.xdist_group("flink_stack")
