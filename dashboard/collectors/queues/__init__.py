"""Job queue collectors: one reader per backend (Redis lists, RQ, Celery, SQL tables) behind one collector."""
