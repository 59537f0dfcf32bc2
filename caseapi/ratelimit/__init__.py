"""Rate limits: failed authentications per address and key, cases and comments per
customer (``service.RateLimiter``, settings in ``config``, the 429 in ``errors``)."""
