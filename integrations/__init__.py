"""Services that imageaudit publishes to (the AppDB-like catalogue lives in ``appdb``)."""
