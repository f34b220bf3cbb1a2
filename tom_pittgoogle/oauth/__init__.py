"""A TOM user's own Google account: the OAuth 2.0 sign-in (views, urls), its HTTP client and token encryption.

The credentials built from a stored connection are resolved with every other source in
:mod:`tom_pittgoogle.core.credentials`.
"""
