"""Market data: the sim market, recorded-data replay, and the driver that moves simulated time."""
