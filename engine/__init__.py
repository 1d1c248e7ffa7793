"""tickdeck engine: market data, orders, risk and brokers. Never imports the console."""
