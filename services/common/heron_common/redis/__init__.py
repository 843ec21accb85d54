"""Redis: the one client factory (with its circuit breaker) and the rate limiter on it."""
