"""Public account flows: registration, login and logout, email verification and password reset,
OAuth/OIDC login and binding (GitHub, OIDC, Lark, WeChat), Cloudflare Turnstile.

Everything a flow must remember between two requests (verification codes, reset tokens, OAuth
states, accepted Turnstile tokens) lives in the shared cache with an expiry, so whichever admin
replica answers the second request sees what the first one stored.
"""
