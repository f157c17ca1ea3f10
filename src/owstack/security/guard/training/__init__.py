"""Training and evaluation corpora for the guard classifier (never imported on the request path)."""
