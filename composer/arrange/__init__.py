"""Arrange: roles to instruments, percussion, hit accents and markers."""
