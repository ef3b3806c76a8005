"""Stage 4, retrieve: a reference library of pieces, found by meaning and by musical attributes."""
