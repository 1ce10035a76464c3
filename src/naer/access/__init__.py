"""Who may see what: sign-in and tokens, the access policy (care relations, blocks, break-the-glass) as a
condition inside every store query, SMART scopes, and the hash-chained audit log (docs/access.md)."""
