"""Training: the corpus, the token cache, the n-gram baseline and the trainer."""
