"""The pure decision core: buckets, waiters and the ``Engine`` over them (no I/O, ``now`` passed in)."""

from .bucket import Bucket
from .core import Answer, Engine, describe_bucket
from .decision import Decision
from .waiting import Waiter

__all__ = ["Answer", "Bucket", "Decision", "Engine", "Waiter", "describe_bucket"]
