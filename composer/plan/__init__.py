"""Stage 3, plan: tempo, bars, sections, intensity and hit points from the brief and the request."""
