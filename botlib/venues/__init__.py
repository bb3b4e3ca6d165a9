"""Where orders go and bars come from: the embedded simulator, stored bars, and Alpaca
(`alpaca/`, through the real alpaca-py SDK). Each implements `botlib.ports`."""
