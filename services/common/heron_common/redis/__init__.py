"""Redis: the one client factory, the circuit breaker its users share, the rate limiter."""
