"""Who may do what: the login guard, its views, accounts and tokens, sessions, rate limits and
signed links."""
