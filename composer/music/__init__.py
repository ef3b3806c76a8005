"""What every stage needs to know about music: reading scores and MIDI files."""
