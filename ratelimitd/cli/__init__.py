"""Commands: ``ratelimitd`` (the daemon) and ``ratelimitctl`` (the control tool)."""
